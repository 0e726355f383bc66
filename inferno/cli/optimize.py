"""``inferno optimize DIR``: solve a system directory and print the solution."""

from __future__ import annotations

import argparse
import json

from ..data import load_system
from ..data.solution_json import solution_to_json
from ..solver import Solution, solve
from ..system import System
from ._table import render

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("optimize", help="allocate every server of a system directory")
    p.add_argument("directory", help="directory with Inferno's *-data.json files")
    p.add_argument(
        "--solver",
        choices=["greedy", "milp"],
        default=None,
        help="override optimizer-data.json (greedy: Inferno's heuristic; milp: exact)",
    )
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument(
        "--limited",
        action="store_true",
        help="apply capacity limits even if optimizer data says unlimited",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    system = load_system(args.directory)
    if args.limited and system.optimizer.unlimited:
        from dataclasses import replace

        system = replace(system, optimizer=replace(system.optimizer, unlimited=False))
    solution = solve(system, args.solver)
    if args.format == "json":
        print(json.dumps(solution_to_json(solution, system), indent=2))
    else:
        print(format_solution(solution, system))
    return 0


def format_solution(solution: Solution, system: System) -> str:
    servers = {s.name: s for s in system.servers}
    rows = []
    for name in sorted(solution.allocations):
        a = solution.allocations[name]
        srv = servers[name]
        m = a.metrics
        second = m.get("ttft") if srv.load.in_tokens > 0 else m.get("wait")
        rows.append(
            [
                name,
                a.accelerator,
                a.replicas,
                a.max_batch,
                a.cost,
                a.demand,
                a.max_rate_per_replica,
                a.bound,
                m.get("itl"),
                second,
                m.get("utilization"),
                "" if a.status == "allocated" else str(a.status),
            ]
        )
    out = [
        render(
            [
                "server",
                "accelerator",
                "replicas",
                "batch",
                "cost",
                "req/min",
                "λ*/replica",
                "bound",
                "ITL ms",
                "wait|TTFT ms",
                "util",
                "note",
            ],
            rows,
            right={2, 3, 4, 5, 6, 8, 9, 10},
        )
    ]
    for name, u in sorted(solution.unallocated.items()):
        out.append(f"UNALLOCATED {name}: {u.reason}")
    used = ", ".join(
        f"{k} {v}/{system.capacity[k]}" if k in system.capacity else f"{k} {v}"
        for k, v in solution.units_used.items()
    )
    out.append("")
    out.append(
        f"status: {solution.status}   solver: {solution.solver}   servers: "
        f"{len(solution.allocations)} allocated, {len(solution.unallocated)} unallocated   "
        f"total cost: {solution.total_cost:,.2f}"
    )
    out.append(f"accelerator units used: {used or 'none'}")
    return "\n".join(out)
