"""Why the queue of a G2 batch sees the work a request brings (docs/model.md, "Accurate mode"
item 3, the work factor): a long request holds one of the N places *and* slows every member's
iteration for its whole stay. How much of the wait is the second alone?

A small G2 replica, simulated event by event: N places, FCFS, a request of output length o stays
o + 1 iterations and adds c(o) = β·t_c + γ·(in + o/2) to each iteration, d = α + Σ c over the
members (the emulator's G2 decode iteration without its prefill iterations). Three variants of
the same arrivals and lengths:

- **replica**: the members' own lengths set the iteration time;
- **independent slowing**: the iteration time comes from an independent copy of a full batch
  (same lengths' distribution, its members replaced as they finish), scaled to the occupancy —
  the same slowing, but not by the requests that hold the places;
- **constant**: d at its mean for the occupancy (no slowing by the composition).

Printed: the mean wait of each, and the ratio of the independent slowing's to the replica's.

Usage::

    python bench/accurate_work.py [--requests 1000000] [--markdown]
"""

from __future__ import annotations

import argparse
import heapq
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
from _tables import print_table  # bench/, first on sys.path when run as a script
from numpy.typing import NDArray

F = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Case:
    label: str
    alpha: float
    beta: float
    gamma: float
    n: int
    in_tokens: float
    out_tokens: float
    lognormal_cv: float | None  # None: exponential lengths
    cap: int | None
    load: float  # of the full batch's capacity at the length-biased mean cost


_LOGN = "G2 N=8 128/512 lognormal CV 1.5 cap 8192"
_MIXTRAL = "Free-mixtral_8_7b N=19 128/512 exponential"
CASES = (
    Case(_LOGN, 12.0, 0.05, 5e-4, 8, 128, 512, 1.5, 8192, 0.58),
    Case(_LOGN, 12.0, 0.05, 5e-4, 8, 128, 512, 1.5, 8192, 0.81),
    Case(_MIXTRAL, 11.18, 0.908, 2.956e-3, 19, 128, 512, None, None, 0.78),
)


def lengths(case: Case, size: int, rng: np.random.Generator) -> F:
    if case.lognormal_cv is None:
        o = rng.exponential(case.out_tokens, size)
    else:
        s2 = math.log1p(case.lognormal_cv**2)
        o = rng.lognormal(math.log(case.out_tokens) - 0.5 * s2, math.sqrt(s2), size)
    o = np.maximum(np.rint(o), 1.0)
    return o if case.cap is None else np.minimum(o, float(case.cap))


def simulate(case: Case, variant: str, lam: float, o: F, seed: int) -> float:
    """Mean wait (ms) after a 10% warm-up of ``variant`` at ``lam`` per ms."""
    rng = np.random.default_rng(seed)
    size = o.size
    arrivals = np.cumsum(rng.exponential(1.0 / lam, size))
    t_c = (case.in_tokens + o) / (o + 1.0)
    cost = case.beta * t_c + case.gamma * (case.in_tokens + o / 2.0)
    stays = o + 1.0
    full = case.alpha + case.n * float((stays * cost).sum() / stays.sum())
    # the independent batch: always N members, drawn from the same lengths
    shadow = rng.choice(np.arange(size), size=10 * size)
    k = 0
    ghost: list[tuple[float, float]] = []
    ghost_sum = 0.0
    it = 0.0  # iterations run (a continuous count: each iteration moves every member by one)
    if variant == "independent":
        for _ in range(case.n):
            j = int(shadow[k])
            k += 1
            ghost_sum += float(cost[j])
            heapq.heappush(ghost, (it + stays[j], float(cost[j])))
    t = 0.0
    members: list[tuple[float, int]] = []
    member_sum = 0.0
    queue: list[int] = []
    head = 0
    wait = np.zeros(size)
    i = 0
    while i < size or members:
        b = len(members)
        if variant == "replica":
            d = case.alpha + member_sum
        elif variant == "independent":
            d = case.alpha + ghost_sum * b / case.n
        else:
            d = case.alpha + b * (full - case.alpha) / case.n
        nxt = members[0][0] if members else math.inf
        if variant == "independent" and members:
            nxt = min(nxt, ghost[0][0])
        t_next = t + (nxt - it) * d if members else math.inf
        t_arr = float(arrivals[i]) if i < size else math.inf
        if t_arr <= t_next:
            if members:
                it += (t_arr - t) / d
            t = t_arr
            if b < case.n and head == len(queue):
                heapq.heappush(members, (it + stays[i], i))
                member_sum += float(cost[i])
            else:
                queue.append(i)
            i += 1
            continue
        t, it = t_next, nxt
        if members[0][0] <= it + 1e-9:
            _, j = heapq.heappop(members)
            member_sum -= float(cost[j])
            if head < len(queue):
                q = queue[head]
                head += 1
                wait[q] = t - arrivals[q]
                heapq.heappush(members, (it + stays[q], q))
                member_sum += float(cost[q])
        while variant == "independent" and ghost[0][0] <= it + 1e-9:
            _, c = heapq.heappop(ghost)
            j = int(shadow[k])
            k += 1
            ghost_sum += float(cost[j]) - c
            heapq.heappush(ghost, (it + stays[j], float(cost[j])))
    return float(wait[size // 10 :].mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    if args.requests < 1000:
        ap.error(f"--requests must be ≥ 1000, got {args.requests}")
    rows = []
    t0 = time.perf_counter()
    for case in CASES:
        o = lengths(case, args.requests, np.random.default_rng(3))
        stays = o + 1.0
        t_c = (case.in_tokens + o) / stays
        cost = case.beta * t_c + case.gamma * (case.in_tokens + o / 2.0)
        full = case.alpha + case.n * float((stays * cost).sum() / stays.sum())
        lam = case.load * case.n / (float(stays.mean()) * full)
        waits = [simulate(case, v, lam, o, 11) for v in ("replica", "independent", "constant")]
        ratio = f"{waits[1] / waits[0]:.2f}"
        rows.append([case.label, f"{case.load:.2f}", *(f"{w:,.0f}" for w in waits), ratio])
    headers = ["case", "load", "replica ms", "independent slowing ms", "constant ms", "ratio"]
    print_table(headers, rows, args.markdown)
    print(f"\n{args.requests:,} requests per run, {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
