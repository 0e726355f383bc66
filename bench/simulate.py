"""``inferno simulate`` benchmark: wall time of an hour over the large sample, every policy.

The bundled demo scenario (``samples/scenarios/demo.yaml``: 27 servers, control every 30 s,
60 s start-up, sizing on the 99th percentile) stretched to one hour with the same load shape
(peak for 10 min, trough at 40%, steps to 50% and 62.5%, back to the peak for the last 10 min),
run for the four policies (inferno, static, hpa, queue) and reported. Prints one line per policy
and the total; the target is under 2 minutes.

Usage: python bench/simulate.py [--duration 3600]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from inferno.emulator import Steps
from inferno.simulate import build_report, load_scenario, run_scenario
from inferno.units import S_PER_HOUR

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "samples" / "scenarios" / "demo.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=3600.0, help="simulated seconds")
    args = ap.parse_args()
    sc = load_scenario(DEMO)
    d = args.duration
    shape = [(0.0, 1.0), (d / 6, 0.4), (d / 2, 0.5), (2 * d / 3, 0.625), (5 * d / 6, 1.0)]
    traces = {
        s.name: Steps([(t, f * s.load.arrival_rate) for t, f in shape]) for s in sc.system.servers
    }
    sc = dataclasses.replace(sc, duration_s=d, traces=traces)
    t0 = time.perf_counter()
    result = run_scenario(sc)
    report = build_report(result)
    wall = time.perf_counter() - t0
    print(f"{'policy':>10}  {'requests':>9}  {'SLO met':>8}  {'GPU-hours':>9}  {'wall s':>7}")
    for p in report.policies:
        print(
            f"{p.name:>10}  {p.requests:>9}  {100 * p.attainment:>7.2f}%  "
            f"{p.gpu_hours:>9.1f}  {p.wall_s:>7.2f}"
        )
    print(f"{len(sc.servers)} servers, {d / S_PER_HOUR:.2f} h simulated: {wall:.1f} s wall in all")


if __name__ == "__main__":
    main()
