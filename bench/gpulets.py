"""GPU partitions against whole GPUs: GPUs used and cost at the same SLOs, and the time to solve
and pack a large fleet.

1. ``samples/gpulets`` (``bench/make_gpulets.py``) solved as it is (whole GPUs and MIG slices
   together, then packed) and with its partitions removed (whole GPUs only, Inferno as before).
2. A fleet of N servers: the sample's 16 servers repeated with loads scaled by a seeded factor
   in [0.5, 2], capacity unlimited; the wall time of candidates + solve + packing, in-process.

Usage: python bench/gpulets.py [--fleet 1000] [--markdown]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from types import MappingProxyType

import numpy as np
from _tables import print_table  # bench/, first on sys.path when run as a script

from inferno.data import load_system
from inferno.solver import build_candidates, solve_table
from inferno.solver.result import Solution
from inferno.system import Load, System

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "gpulets"


def whole_only(system: System) -> System:
    accs = {k: a for k, a in system.accelerators.items() if not a.partition}
    profiles = tuple(p for p in system.profiles if p.accelerator in accs)
    return dataclasses.replace(system, accelerators=MappingProxyType(accs), profiles=profiles)


def fleet(
    system: System, n: int, seed: int = 1, spread: tuple[float, float] = (0.5, 2.0)
) -> System:
    """``n`` servers cycling over ``system``'s, each at its rate × a uniform draw in ``spread``
    (bench/serving_config.py uses it too)."""
    rng = np.random.default_rng(seed)
    servers = []
    for i in range(n):
        base = system.servers[i % len(system.servers)]
        load = base.load or Load(0.0)
        scale = float(rng.uniform(*spread))
        servers.append(
            dataclasses.replace(
                base,
                name=f"{base.name}-{i}",
                load=dataclasses.replace(load, arrival_rate=load.arrival_rate * scale),
            )
        )
    spec = dataclasses.replace(system.optimizer, unlimited=True)
    return dataclasses.replace(system, servers=tuple(servers), optimizer=spec)


def solve(system: System) -> tuple[Solution, float]:
    start = time.perf_counter()
    solution = solve_table(build_candidates(system), None)
    return solution, time.perf_counter() - start


def gpus(solution: Solution) -> int:
    return sum(solution.units_used.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", type=int, default=1000, help="servers in the large fleet")
    ap.add_argument("--markdown", action="store_true", help="tables for bench/README.md")
    args = ap.parse_args()
    system = load_system(SAMPLE)
    rows = []
    whole, _ = solve(whole_only(system))
    parts, _ = solve(system)
    for label, sol in (("whole GPUs", whole), ("whole GPUs + MIG slices", parts)):
        stranded = sum(g.stranded_compute for g in sol.gpus.values())
        rows.append(
            [
                label,
                str(len(sol.allocations)),
                ", ".join(f"{k} {v}" for k, v in sol.units_used.items()),
                str(gpus(sol)),
                f"{gpus(sol) / gpus(whole):.2f}×",
                f"{sol.total_cost:,.2f}",
                str(stranded),
            ]
        )
    headers = ["samples/gpulets", "servers", "GPUs by type", "GPUs", "× whole", "cost", "stranded"]
    print_table(headers, rows, args.markdown)
    print()
    big = fleet(system, args.fleet)
    frows = []
    for label, sysm in (("whole GPUs", whole_only(big)), ("+ MIG slices", big)):
        sol, seconds = solve(sysm)
        frows.append([label, str(len(sysm.servers)), str(gpus(sol)), f"{seconds:.2f}"])
    print_table(["fleet", "servers", "GPUs", "solve + pack s"], frows, args.markdown)


if __name__ == "__main__":
    main()
