"""``inferno optimize DIR``: solve a system directory and print the solution."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..system import Server, System
from ._decision import add_decision_arguments, decided
from ._table import render

if TYPE_CHECKING:
    from ..solver import Solution

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
    p.add_argument(
        "--format",
        choices=["table", "json"],
        default="table",
        help="table: a row per server (default); json: Inferno's solution shape "
        "(indented up to 200 servers)",
    )
    add_decision_arguments(p)
    p.add_argument(
        "--percentiles",
        action="store_true",
        help="also report p50/p95/p99 of wait, TTFT and latency (exact; slower)",
    )
    p.set_defaults(func=run)


#: JSON output is indented up to this many servers, compact above
PRETTY_MAX = 200


def run(args: argparse.Namespace) -> int:
    # imported here: `inferno --help` and the other commands need none of the model's machinery
    from ..data import load_system
    from ..data.solution_json import solution_to_json
    from ..solver import build_candidates, solve_table
    from ..solver.percentiles import add_percentiles

    system = load_system(args.directory)
    if not system.servers:
        raise InputError(
            "no servers: nothing to optimize",
            source=str(Path(args.directory) / "server-data.json"),
            path="$.servers",
        )
    system = decided(args, system)
    try:
        table = build_candidates(system)
        solution = solve_table(table, args.solver)
        if args.solver == "greedy" and solution.solver == "unlimited":
            print(
                "note: --solver greedy applies under capacity limits; this system is unlimited "
                "(add --limited to apply capacity-data.json)",
                file=sys.stderr,
            )
        if args.percentiles:
            solution = add_percentiles(table, solution)
    except InputError as err:  # a model limit (inferno.model): the data is the system's
        err.source = err.source or args.directory
        raise
    if args.format == "json":
        # indented for a person up to PRETTY_MAX servers; above, compact: json's C encoder
        # (indenting falls back to its Python one, a third of a 2,700-server run)
        indent = 2 if len(system.servers) <= PRETTY_MAX else None
        print(json.dumps(solution_to_json(solution, system), indent=indent))
    else:
        print(format_solution(solution, system, percentiles=args.percentiles))
    return 0


def format_solution(solution: Solution, system: System, *, percentiles: bool = False) -> str:
    from ..solver.serving_config import fallback_note, prefetch_note

    servers = {s.name: s for s in system.servers}
    headers = ["server", "accelerator", "replicas", "batch", "cost", "req/min", "λ*/replica"]
    headers += ["bound", "ITL ms", "wait|TTFT ms", "batch fill"]
    if percentiles:
        headers += ["p95 wait|TTFT", "p95 latency"]
    # model instances and batching delay: only when the solver decided them for some server
    serving = any(a.serving is not None for a in solution.allocations.values())
    if serving:
        headers += ["instances", "delay µs"]
    headers.append("note")
    rows = []
    misses = 0
    derived: dict[str, set[str]] = {}
    profiles = {(p.model, p.accelerator): p.profile for p in system.profiles}
    for p in system.profiles:
        if p.derived:
            derived.setdefault(p.model, set()).add(p.accelerator)
    for name in sorted(solution.allocations):
        a = solution.allocations[name]
        m = a.metrics
        ttft = servers[name].load.in_tokens > 0
        row: list[object] = [name, a.accelerator, a.replicas, a.max_batch, a.cost, a.demand]
        row += [a.max_rate_per_replica, a.bound, m.get("itl"), m.get("ttft" if ttft else "wait")]
        row.append(m.get("in_service", math.nan) / a.max_batch if a.max_batch else None)
        notes = [] if a.status == "allocated" else [f"{a.status}: {a.note}"]
        if a.accelerator in derived.get(servers[name].model, ()):
            notes.append("derived profile")
        if percentiles:
            row += [m.get("ttft_p95" if ttft else "wait_p95"), m.get("latency_p95")]
            missed = _p95_misses(system, servers[name], m, ttft)
            if missed:
                misses += 1
                notes.append("MISSES " + "; ".join(missed))
        if serving:
            dec = a.serving
            row += [dec.instances, dec.delay_us] if dec is not None else [None, None]
        profile = profiles.get((servers[name].model, a.accelerator))
        if a.serving is None and system.optimizer.decide_serving:
            fallback = fallback_note(profile)
            if fallback:
                notes.append(fallback)
        prefetch = prefetch_note(profile, a.serving)
        if prefetch:
            notes.append(prefetch)
        row.append("; ".join(notes))
        rows.append(row)
    numeric = {
        i for i, h in enumerate(headers) if h not in ("server", "accelerator", "bound", "note")
    }
    out = [render(headers, rows, right=numeric)]
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
    limits = "unlimited" if system.optimizer.unlimited else "capacity-limited"
    out.append(f"accelerator units used ({limits}): {used or 'none'}")
    for kind, g in solution.gpus.items():
        stranded = [
            f"{n} {what}"
            for n, what in (
                (g.stranded_compute, "MIG compute slices"),
                (g.stranded_memory, "MIG memory slices"),
                (g.stranded_shares, "MPS shares"),
            )
            if n
        ]
        out.append(
            f"{kind} GPUs after packing: {g.used} ({g.whole} whole, {g.packed} partitioned, "
            f"the shares sum to {g.relaxed:.2f}); stranded: {', '.join(stranded) or 'none'}"
        )
        out.extend(f"  note: {n}" for n in g.notes)
    out.extend(f"note: {n}" for n in system.notes)
    if percentiles:
        out.append(
            f"p95 targets: {misses} allocated server(s) miss one (MISSES in the note)"
            if misses
            else "p95 targets: every allocated server meets its p95 targets"
        )
    return "\n".join(out)


def _p95_misses(
    system: System, server: Server, metrics: Mapping[str, float], ttft: bool
) -> list[str]:
    """The server's targets set on the 95th percentile that its predicted p95 exceeds."""
    cls = system.classes.get(server.service_class)
    target = cls.targets.get(server.model) if cls is not None else None
    if target is None:
        return []
    checks: list[tuple[str, float | None, float | None, str]] = [
        ("latency", target.latency, target.latency_quantile, "latency_p95")
    ]
    if ttft:
        checks.append(("TTFT", target.ttft, target.ttft_quantile, "ttft_p95"))
    else:
        checks.append(("wait", target.ttw, target.ttw_quantile, "wait_p95"))
    out = []
    for what, goal, quantile, key in checks:
        value = metrics.get(key)
        if goal is None or quantile is None or abs(quantile - 0.95) > 1e-9 or value is None:
            continue
        if math.isfinite(value) and value > goal * (1 + 1e-9):
            out.append(f"p95 {what} {value:,.0f} ms > target {goal:,.0f} ms")
        elif not math.isfinite(value):
            out.append(f"p95 {what} unbounded > target {goal:,.0f} ms")
    return out
