"""The solve time of the accurate model on G2 data with exponential output lengths, where it
averages the queue over the batch's composition (docs/model.md, "Accurate mode", item 3).

``bench/solver.py``'s synthetic system of ``--size`` servers (K = 11N) with every G0 profile
made G2 and 128/512-token loads of output-length CV 1 (``bench/accurate_cost.py``'s ``g2exp``
conversion), solved with unlimited capacity by each model; the best of ``--repeat`` runs, in
process. ``--dist lognormal --cov 1.5`` is the ``g2logn`` conversion, and ``--cap 8192`` with
it ``g2logn8k`` (lengths served capped, the data their served moments and ``outTokensMax``).

Usage::

    python bench/accurate_solve_g2.py [--size 10000] [--repeat 3]
        [--dist lognormal] [--cov 1.5] [--cap 8192]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import accurate_cost  # bench/, first on sys.path when run as a script
import solver as solver_bench

from inferno.data import load_system
from inferno.solver import solve

logger = logging.getLogger(__name__)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dist", choices=("gamma", "lognormal"), default=None)
    ap.add_argument("--cov", type=float, default=1.0, help="output lengths' CV")
    ap.add_argument("--cap", type=int, default=None, help="outTokensMax")
    args = ap.parse_args()
    base = load_system(accurate_cost.SAMPLE)
    system = accurate_cost.synthetic(
        solver_bench.synthetic(base, args.size, 0, 10.0), "G2", args.cov, args.dist, args.cap
    )
    best: dict[str, float] = {}
    for model in ("inferno", "accurate"):
        one = accurate_cost.with_model(system, model)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            sol = solve(one)
            times.append(time.perf_counter() - t0)
        best[model] = min(times)
        cost = sum(a.cost for a in sol.allocations.values())
        print(
            f"{model:9s} {args.size} servers: {best[model]:.2f} s (best of {args.repeat}), "
            f"cost {cost:,.0f}"
        )
    print(f"accurate / inferno: {best['accurate'] / best['inferno']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
