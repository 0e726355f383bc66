"""What `--percentiles` costs: the whole `inferno optimize DIR` process with and without it, and
the percentile step alone in-process (wait/TTFT quantiles and the exact latency quantiles).

Whole process: start to output on stdout, the median of ``--repeat`` runs (the machine may be
shared: a median, not a best, and say so when quoting it). In-process: the median of
``add_percentiles`` after a first call (which also pays its imports, shown apart). ``--cpu``
times CPU seconds instead of wall seconds (the child's user + system time; the process's own for
the step): less disturbed by other work on a shared machine, though not by contention for caches.

Usage: python bench/percentiles.py [DIR ...] [--repeat 5] [--cpu] [--markdown]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _tables import print_table  # bench/, first on sys.path when run as a script

from inferno.data import load_system
from inferno.solver import build_candidates, solve_table
from inferno.solver.percentiles import add_percentiles

ROOT = Path(__file__).resolve().parent.parent


def children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def whole(directory: str, flags: list[str], repeat: int, cpu: bool = False) -> float:
    exe = shutil.which("inferno", path=str(Path(sys.executable).parent)) or "inferno"
    clock = children_cpu if cpu else time.perf_counter
    times = []
    for _ in range(repeat):
        start = clock()
        subprocess.run([exe, "optimize", directory, *flags], check=True, capture_output=True)
        times.append(clock() - start)
    return statistics.median(times)


def in_process(directory: str, repeat: int, cpu: bool = False) -> tuple[float, float, int]:
    system = load_system(directory)
    table = build_candidates(system)
    solution = solve_table(table, None)
    clock = time.process_time if cpu else time.perf_counter
    start = clock()
    add_percentiles(table, solution)  # the first call also imports what it needs
    first = clock() - start
    times = []
    for _ in range(repeat):
        start = clock()
        add_percentiles(table, solution)
        times.append(clock() - start)
    return first, statistics.median(times), len(solution.allocations)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directories", nargs="*", default=[str(ROOT / "samples" / "large")])
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    ap.add_argument("--cpu", action="store_true", help="CPU seconds instead of wall seconds")
    ap.add_argument("--markdown", action="store_true", help="a table for bench/README.md")
    args = ap.parse_args()
    rows = []
    for d in args.directories:
        plain = whole(d, [], args.repeat, args.cpu)
        with_p = whole(d, ["--percentiles"], args.repeat, args.cpu)
        first, again, servers = in_process(d, args.repeat, args.cpu)
        name = Path(d).name
        rows.append(
            [name, str(servers), f"{plain:.2f}", f"{with_p:.2f}", f"{first:.2f}", f"{again:.2f}"]
        )
    unit = "cpu s" if args.cpu else "s"
    headers = ["system", "servers"] + [
        f"{h} {unit}" for h in ("optimize", "+ --percentiles", "step, 1st", "step")
    ]
    print_table(headers, rows, args.markdown)


if __name__ == "__main__":
    main()
