"""The accurate model's unlimited solve over the Inferno-compatible one's, measured in turns.

The issue's bound is a ratio of two solve times, and this machine's speed moves by tens of
percent over minutes: two timings taken minutes apart (``bench/solver.py`` runs one model's
whole table, then the other's) can cross the bound either way. Here each round solves the same
system with one model, then the other, in process, back to back; the table prints every round's
pair and ratio, and the median ratio.

The system is ``bench/solver.py``'s with ``--profiles g2`` (10,000 servers of distinct lengths,
G2 profiles, TTFT targets), unlimited capacity, at K = 11N and K = N.

Usage: python bench/solver_ratio.py [--size 10000] [--rounds 5] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import time

import solver as solver_bench  # bench/, first on sys.path when run as a script
from _tables import print_table  # bench/, first on sys.path when run as a script

from inferno.data import load_system
from inferno.solver import solve
from inferno.system import System

MODELS = ("inferno", "accurate")


def timed(system: System) -> tuple[float, float]:
    t0 = time.perf_counter()
    sol = solve(system)
    return time.perf_counter() - t0, sol.total_cost


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    base = solver_bench.g2_base(load_system(solver_bench.SAMPLE))
    rows = []
    for qf, qname in ((10.0, "K=11N"), (0.0, "K=N")):
        systems = {m: solver_bench.synthetic(base, args.size, args.seed, qf, m) for m in MODELS}
        for m in MODELS:  # one solve each first: imports, caches
            timed(systems[m])
        ratios = []
        for r in range(args.rounds):
            t_i, c_i = timed(systems["inferno"])
            t_a, c_a = timed(systems["accurate"])
            ratios.append(t_a / t_i)
            cells = [f"{t_i:.3f}", f"{t_a:.3f}", f"{t_a / t_i:.2f}×", f"{c_i:,.0f}", f"{c_a:,.0f}"]
            rows.append([qname, str(r + 1), *cells])
        rows.append([qname, "median", "", "", f"{statistics.median(ratios):.2f}×", "", ""])
    headers = ["queue", "round", "inferno s", "accurate s", "ratio"]
    headers += ["inferno cost", "accurate cost"]
    print_table(headers, rows, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
