"""Write ``bench/scenarios/replay.csv``, the replayed hour of ``bench/closed_loop.py`` (e).

A made-up but real-looking hour of arrivals, deterministic (a fixed seed): one series per class of
the large sample, named after it (``premium``, ``bronze``, ``free``), around the class's
``arrivalRate`` (120, 240 and 480 req/min). The rate, piecewise constant over 10-second slots, is

    rate(t) = arrivalRate × diurnal(t) × noise(t) × spikes(t)

- ``diurnal``: 0.6 − 0.3·cos(2πt / 1 h), from 30% at the start up to 90% at 30 minutes and back;
- ``noise``: a log-normal AR(1) factor per slot (correlation 0.9 from slot to slot, stationary
  standard deviation 0.1 of the log), a load that wanders around the wave;
- ``spikes``: three per series, at random minutes, × 1.3–1.6 for 1–3 minutes.

Arrivals are Poisson within each slot. Every request has 0 input tokens (the large sample's G0
data) and 1024 output tokens; the ``-exp`` series (``premium-exp``, ...) are the same arrivals
with exponential output lengths of mean 1024 (at least 1), for the bench's variant with
exponential lengths. About 31,000 requests per set, 1.5 MB in all.

Usage: python bench/make_replay.py [--out bench/scenarios/replay.csv]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "scenarios" / "replay.csv"
SEED = 9
DURATION_S = 3600.0
SLOT_S = 10.0
OUT_TOKENS = 1024
#: the series and their base rate (the class's arrivalRate in samples/large, req/min)
SERIES = {"premium": 120.0, "bronze": 240.0, "free": 480.0}


def rates(base_per_min: float, rng: np.random.Generator) -> np.ndarray:
    """The rate of each slot, requests per second."""
    slots = int(DURATION_S / SLOT_S)
    t = (np.arange(slots) + 0.5) * SLOT_S
    diurnal = 0.6 - 0.3 * np.cos(2.0 * math.pi * t / DURATION_S)
    rho, sd = 0.9, 0.1
    x = np.empty(slots)
    x[0] = rng.normal(0.0, sd)
    for k in range(1, slots):
        x[k] = rho * x[k - 1] + rng.normal(0.0, sd * math.sqrt(1.0 - rho * rho))
    noise = np.exp(x - sd * sd / 2.0)
    spikes = np.ones(slots)
    per_min = int(60.0 / SLOT_S)
    for _ in range(3):
        start = int(rng.integers(0, slots - 3 * per_min))
        length = int(rng.integers(1, 4)) * per_min
        spikes[start : start + length] *= rng.uniform(1.3, 1.6)
    out: np.ndarray = base_per_min / 60.0 * diurnal * noise * spikes
    return out


def arrivals(rate_per_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times (s): a Poisson process of the given rate in each slot."""
    parts = []
    for k, r in enumerate(rate_per_s):
        n = int(rng.poisson(r * SLOT_S))
        parts.append(np.sort(k * SLOT_S + SLOT_S * rng.random(n)))
    return np.concatenate(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="the CSV to write")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    rows: list[tuple[float, str, int]] = []
    for name, base in SERIES.items():
        times = arrivals(rates(base, rng), rng)
        lengths = np.maximum(np.rint(rng.exponential(OUT_TOKENS, times.size)), 1).astype(int)
        rows += [(float(t), name, OUT_TOKENS) for t in times]
        rows += [(float(t), f"{name}-exp", int(n)) for t, n in zip(times, lengths, strict=True)]
    rows.sort(key=lambda r: (r[0], r[1]))
    with open(args.out, "w", encoding="utf-8", newline="") as f:
        f.write("timestamp,server,input_tokens,output_tokens\n")
        for t, name, n in rows:
            f.write(f"{t:.3f},{name},0,{n}\n")
    size = args.out.stat().st_size
    print(f"{args.out}: {len(rows)} requests, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
