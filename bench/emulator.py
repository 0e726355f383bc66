"""Emulator benchmark: requests simulated per second of wall time. Prints a table.

Scenarios (seed 1, deterministic service unless stated):

- ``batch``: one Triton-style server, batch kind α = 5 ms, β = 1 ms, N = 8, 4 replicas, Poisson
  load at about 80% of capacity, until ~200k requests have arrived.
- ``batch-exp``: the same with exponential batch times.
- ``llm-G0``: one LLM server, G0 profile of the large sample (granite_13b on A100: α = 20.58,
  β = 0.41 ms), N = 32, 20 replicas, 1024 output tokens (exponential lengths), Poisson load at
  about 80% of capacity, until ~200k requests have arrived (~3.6 h of simulated time).
- ``llm-G0-exp``: the same with exponential iteration times.
- ``large-1h``: Inferno's large sample as solved (27 servers at their published loads, 120–480
  req/min, 1024 output tokens, the solver's accelerators, replicas and batches), one hour,
  random routing, with a control step every 30 s reading every server's window.

Usage: python bench/emulator.py [--requests 200000] [--skip-large]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from inferno.data import load_system
from inferno.emulator import Exponential, Fixed, Poisson, ServerSpec, Simulation
from inferno.model.profiles import BatchProfile, G0Profile, Profile
from inferno.solver import solve
from inferno.units import MS_PER_MIN

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "large"


def timed(
    servers: dict[str, ServerSpec], until_ms: float, control_ms: float | None = None
) -> tuple[int, int, float]:
    """(requests arrived, events, wall seconds) of one run."""
    sim = Simulation(servers, seed=1)
    t0 = time.perf_counter()
    if control_ms is None:
        sim.run_until(until_ms)
    else:
        t = 0.0
        while t < until_ms:
            nxt = min(t + control_ms, until_ms)
            sim.run_until(nxt)
            for name in sim.servers:
                sim.window(name, t, nxt)
            t = nxt
    wall = time.perf_counter() - t0
    return sim.totals().arrivals, sim.events_processed, wall


def batch_case(requests: int, service: str) -> tuple[dict[str, ServerSpec], float]:
    p = BatchProfile(5.0, 1.0, 8)
    capacity = 4 * 8 / (p.alpha + p.beta * 8)  # req/ms with 4 full replicas
    rate = 0.8 * capacity
    spec = ServerSpec(p, Poisson(rate * MS_PER_MIN), replicas=4, service=service)  # type: ignore[arg-type]
    return {"batch": spec}, requests / rate


def llm_case(requests: int, service: str) -> tuple[dict[str, ServerSpec], float]:
    p = G0Profile(20.58, 0.41, 32, 512)
    n, replicas, out = 32, 20, 1024.0
    capacity = replicas * n / (out * (p.alpha + p.beta * n))  # req/ms
    rate = 0.8 * capacity
    spec = ServerSpec(
        p,
        Poisson(rate * MS_PER_MIN),
        replicas=replicas,
        batch_size=n,
        output_tokens=Exponential(out),
        service=service,  # type: ignore[arg-type]
    )
    return {"llm": spec}, requests / rate


def large_case() -> tuple[dict[str, ServerSpec], int]:
    system = load_system(SAMPLE)
    solution = solve(system)
    profiles: dict[tuple[str, str], Profile] = {
        (mp.model, mp.accelerator): mp.profile for mp in system.profiles
    }
    servers = {}
    replicas = 0
    for srv in system.servers:
        alloc = solution.allocations.get(srv.name)
        if alloc is None:
            continue
        prof = profiles[(srv.model, alloc.accelerator)]
        servers[srv.name] = ServerSpec(
            prof,
            Poisson(srv.load.arrival_rate),
            replicas=alloc.replicas,
            batch_size=alloc.max_batch,
            output_tokens=Fixed(max(int(round(srv.load.out_tokens)), 1)),
        )
        replicas += alloc.replicas
    return servers, replicas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()
    rows = []
    for name, (servers, until) in (
        ("batch", batch_case(args.requests, "deterministic")),
        ("batch-exp", batch_case(args.requests, "exponential")),
        ("llm-G0", llm_case(args.requests, "deterministic")),
        ("llm-G0-exp", llm_case(args.requests, "exponential")),
    ):
        n, events, wall = timed(servers, until)
        reps = sum(s.replicas for s in servers.values())
        rows.append((name, len(servers), reps, until / 3.6e6, n, events, wall))
    if not args.skip_large:
        servers, reps = large_case()
        n, events, wall = timed(servers, 3_600_000.0, control_ms=30_000.0)
        rows.append(("large-1h", len(servers), reps, 1.0, n, events, wall))
    head = ("scenario", "servers", "replicas", "sim h", "requests", "events", "wall s", "req/s")
    print("  ".join(f"{h:>10}" for h in head))
    for name, n_srv, reps, hours, n, events, wall in rows:
        rate = n / wall if wall > 0 else math.inf
        cells = (name, n_srv, reps, f"{hours:.2f}", n, events, f"{wall:.2f}", f"{rate:,.0f}")
        print("  ".join(f"{c:>10}" for c in cells))


if __name__ == "__main__":
    main()
