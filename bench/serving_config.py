"""Deciding model instances and batching delay (inferno/solver/serving_config.py) against
batch-only decisions: the cost of the batch-kind servers and the time to decide.

The sample data carries no contention measurement, so the bench gives every batch-kind row under
Triton's batching of ``samples/gpulets`` (whole GPUs and MIG slices) a contention list,
κ = ``--kappa`` (default 1, 1.2, 1.35, as in the accuracy bench's range), which opts it in; the
batch-only run is the same system without it. ``samples/large`` has no batch-kind server (the
bench says so: nothing to decide there).

1. ``samples/gpulets`` as it is (16 servers, capacity limits as in its data);
2. a fleet of N servers (default 1,000, issue 12's size): the sample's servers repeated with loads
   scaled by a seeded factor in [0.5, 4], capacity unlimited. Its servers share the sample's
   (model, accelerator, class) rows, so each option's λ* is sized once and cached
   (inferno/solver/serving_config.py); bench/README.md has the times.

Times are in-process wall times of candidates + solve, the option cache and the model's memoised
chains cleared first (the first cycle of a controller); "next cycle s" solves the same system
again with both kept, as the optimizer's next cycle does when the profiles have not changed;
"loads moved s" then solves it with every server's load times a seeded draw in [0.9, 1.1], as a
controller's next cycle sees it (the options' λ* do not depend on the load; the predicted
metrics at each replica's new rate do).

``--offer-no-delay`` also offers c > 1 instances without a delay, as the optimizer data's
``offerNoDelay`` does (off by default): what it saves, and what its exact model costs the
decision.

Usage: python bench/serving_config.py [--fleet 1000] [--kappa 1,1.2,1.35] [--offer-no-delay]
       [--markdown]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import gpulets  # bench/, first on sys.path when run as a script
import numpy as np
from _tables import print_table

from inferno.data import load_system
from inferno.model import _stationary
from inferno.model.profiles import BatchProfile
from inferno.solver import build_candidates, serving_config, solve_table
from inferno.solver.result import Solution
from inferno.system import System

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "gpulets"


def opted_in(system: System, kappa: tuple[float, ...], no_delay: bool = False) -> System:
    profiles = tuple(
        dataclasses.replace(
            mp, profile=dataclasses.replace(mp.profile, contention=kappa, decide_serving=True)
        )
        if isinstance(mp.profile, BatchProfile) and mp.profile.batching == "triton"
        else mp
        for mp in system.profiles
    )
    # decideServing: true (and offerNoDelay)
    spec = dataclasses.replace(system.optimizer, decide_serving=True, offer_no_delay=no_delay)
    return dataclasses.replace(system, profiles=profiles, optimizer=spec)


def fleet(system: System, n: int, seed: int = 1) -> System:
    """bench/gpulets.py's fleet, with rates from 0.5 to 4 times the sample's."""
    return gpulets.fleet(system, n, seed, spread=(0.5, 4.0))


def _batch_servers(system: System) -> set[str]:
    models = {
        mp.model
        for mp in system.profiles
        if isinstance(mp.profile, BatchProfile) and mp.profile.batching == "triton"
    }
    return {s.name for s in system.servers if s.model in models}


def moved(system: System, seed: int = 7) -> System:
    """``system`` with every server's load times a uniform draw in [0.9, 1.1]."""
    rng = np.random.default_rng(seed)
    servers = tuple(
        dataclasses.replace(
            s,
            load=dataclasses.replace(
                s.load, arrival_rate=s.load.arrival_rate * float(rng.uniform(0.9, 1.1))
            ),
        )
        if s.load is not None
        else s
        for s in system.servers
    )
    return dataclasses.replace(system, servers=servers)


def _run(system: System, fresh: bool = True) -> tuple[Solution, float]:
    if fresh:  # a first cycle: no option sized, no chain memoised
        serving_config.clear_cache()
    t = time.perf_counter()
    sol = solve_table(build_candidates(system))
    return sol, time.perf_counter() - t


def row(name: str, plain: System, kappa: tuple[float, ...], no_delay: bool) -> list[str]:
    names = _batch_servers(plain)
    base, t_base = _run(plain)
    decided, t_dec = _run(opted_in(plain, kappa, no_delay))
    _, t_again = _run(opted_in(plain, kappa, no_delay), fresh=False)  # the next cycle
    _, t_moved = _run(opted_in(moved(plain), kappa, no_delay), fresh=False)
    cost_base = sum(a.cost for n, a in base.allocations.items() if n in names)
    cost_dec = sum(a.cost for n, a in decided.allocations.items() if n in names)
    more = sum(
        1
        for n, a in decided.allocations.items()
        if n in names and a.serving is not None and a.serving.instances > 1
    )
    return [
        name,
        str(len(names)),
        f"{cost_base:,.2f}",
        f"{cost_dec:,.2f}",
        f"{cost_dec / cost_base:.3f}" if cost_base else "-",
        str(more),
        f"{len(base.allocations)}/{len(decided.allocations)}",
        f"{t_base:.1f}",
        f"{t_dec:.1f}",
        f"{t_again:.1f}",
        f"{t_moved:.1f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet", type=int, default=1000, help="servers in the synthetic fleet")
    ap.add_argument("--kappa", default="1,1.2,1.35", help="κ(1), κ(2), … given to every row")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument(
        "--offer-no-delay",
        action="store_true",
        help="also offer c > 1 instances without a delay (the optimizer data's offerNoDelay; "
        "off by default: its exact model makes a first decision take minutes)",
    )
    args = ap.parse_args()
    kappa = tuple(float(x) for x in args.kappa.split(","))
    sample = load_system(SAMPLE)
    large = load_system(ROOT / "samples" / "large")
    rows = [
        row("samples/gpulets", sample, kappa, args.offer_no_delay),
        row(f"fleet of {args.fleet}", fleet(sample, args.fleet), kappa, args.offer_no_delay),
    ]
    headers = [
        "system",
        "batch servers",
        "cost batch-only",
        "cost decided",
        "ratio",
        "c > 1",
        "allocated (before/after)",
        "batch-only s",
        "decided s",
        "next cycle s",
        "loads moved s",
    ]
    print_table(headers, rows, args.markdown)
    kept, nonzeros = _stationary.lent()
    print(f"\nsamples/large: {len(_batch_servers(large))} batch-kind servers (nothing to decide)")
    print(
        f"after the last run: {kept} factorisations kept for lending, {nonzeros:,} nonzeros "
        f"(at most {_stationary._LENT_NONZEROS:,})"
    )


if __name__ == "__main__":
    main()
