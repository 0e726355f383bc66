"""``inferno explain DIR SERVER``: every candidate of one server and why the chosen one won."""

from __future__ import annotations

import argparse

from ..errors import InputError
from ._decision import add_decision_arguments, decided
from ._table import render

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "explain", help="show every candidate of one server and why the chosen one won"
    )
    p.add_argument("directory", help="directory with Inferno's *-data.json files")
    p.add_argument("server", help="the server to explain (its name in server-data.json)")
    p.add_argument(
        "--solver",
        choices=["greedy", "milp"],
        default=None,
        help="as for optimize (default: the optimizer data's choice)",
    )
    add_decision_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import load_system
    from ..solver import build_candidates, solve_table
    from ..solver.explain import explain

    system = decided(args, load_system(args.directory))
    try:
        table = build_candidates(system)
        solution = solve_table(table, args.solver)
    except InputError as err:  # a model limit (inferno.model): the data is the system's
        err.source = err.source or args.directory
        raise
    try:
        ex = explain(table, solution, args.server)
    except KeyError:
        known = ", ".join(sorted(s.name for s in system.servers))
        raise InputError(
            f"no server named {args.server!r}; known: {known}", source=args.directory
        ) from None
    rows = [
        [
            ("* " if r.chosen else "  ") + r.accelerator,
            r.acc_count,
            r.max_batch,
            r.max_rate,
            r.bound,
            r.replicas if r.feasible else None,
            r.cost if r.feasible else None,
            r.value if r.feasible else None,
            r.why_not,
        ]
        for r in ex.rows
    ]
    print(f"server {ex.server}: demand {ex.demand:.2f} req/min")
    print(
        render(
            [
                "accelerator",
                "accs",
                "batch",
                "λ* req/min",
                "bound",
                "replicas",
                "cost",
                "value",
                "why not",
            ],
            rows,
            right={1, 2, 3, 5, 6, 7},
        )
    )
    print()
    print(ex.verdict)
    return 0
