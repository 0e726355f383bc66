"""Model vs emulator for Triton's batching delay and model instances (issue 12, item 1).

For one profile (α = 20 ms, β = 2 ms, N = 8: τ(N) = 36 ms) and contention κ(c) = 1, 1.2, 1.35,
1.5 for c = 1..4, on a grid of instances c, delays D (multiples of κ·τ(N)) and loads (fractions
of the capacity c·N/(κ·τ(N))), runs the discrete-event emulator (Poisson arrivals, deterministic
batch times, K = 11 N) and prints the model's mean and p95 latency next to the emulator's, with
the relative errors. The emulator is the ground truth: it serves batches as Triton does.

``--virtual`` evaluates c > 1 with a delay on the virtual instance instead of the chain (the
approximation the serving decision screens its options with; inferno/model/bulk_instances.py).

Usage: python bench/serving_config_accuracy.py [--requests 1000000] [--instances 1,2,3,4]
       [--delays 0,0.5,1,3] [--loads 0.3,0.6,0.9,0.95] [--virtual] [--markdown]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _tables import print_table  # bench/, first on sys.path when run as a script

from inferno.emulator import Poisson, ServerSpec, Simulation
from inferno.model.bulk_instances import serving_time
from inferno.model.percentiles import quantile
from inferno.model.profiles import BatchProfile
from inferno.units import MS_PER_MIN

ALPHA, BETA, N = 20.0, 2.0, 8
KAPPA = (1.0, 1.2, 1.35, 1.5)
WARMUP = 2000


def emulate(c: int, delay: float, lam: float, requests: int, seed: int) -> np.ndarray:
    p = BatchProfile(ALPHA, BETA, N, queue_delay_ms=delay, instances=c, contention=KAPPA)
    spec = ServerSpec(p, Poisson(lam * MS_PER_MIN), max_queue=10 * N)
    sim = Simulation({"s": spec}, seed=seed)
    sim.run_until(requests / lam)
    r = sim.records("s")
    out: np.ndarray = r.latency[r.completed][WARMUP:]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--instances", default="1,2,3,4")
    ap.add_argument("--delays", default="0,0.5,1,3", help="multiples of κ·τ(N)")
    ap.add_argument("--loads", default="0.3,0.6,0.9,0.95")
    ap.add_argument(
        "--virtual", action="store_true", help="c > 1 with a delay: the virtual instance"
    )
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    rows = []
    for c in (int(x) for x in args.instances.split(",")):
        kappa = KAPPA[c - 1]
        tau_n = kappa * (ALPHA + BETA * N)
        for dm in (float(x) for x in args.delays.split(",")):
            for load in (float(x) for x in args.loads.split(",")):
                lam = load * c * N / tau_n
                delay = dm * tau_n
                t0 = time.perf_counter()
                rt = serving_time(
                    ALPHA,
                    BETA,
                    N,
                    11 * N,
                    lam,
                    delay=delay,
                    instances=c,
                    kappa=kappa,
                    virtual=args.virtual,
                )
                mean = rt.metrics.response
                p95 = quantile(rt.survival, 0.95, 2.0 * mean, rtol=1e-4)
                secs = time.perf_counter() - t0
                lat = emulate(c, delay, lam, args.requests, seed=7)
                e_mean, e_p95 = float(lat.mean()), float(np.quantile(lat, 0.95))
                rows.append(
                    [
                        str(c),
                        f"{delay:.0f}",
                        f"{load:.2f}",
                        f"{mean:.1f}",
                        f"{e_mean:.1f}",
                        f"{100 * (mean / e_mean - 1):+.1f}",
                        f"{p95:.1f}",
                        f"{e_p95:.1f}",
                        f"{100 * (p95 / e_p95 - 1):+.1f}",
                        f"{secs:.1f}",
                    ]
                )
    print_table(
        [
            "c",
            "D ms",
            "load",
            "mean",
            "emu mean",
            "err %",
            "p95",
            "emu p95",
            "err %",
            "model s",
        ],
        rows,
        markdown=args.markdown,
    )


if __name__ == "__main__":
    main()
