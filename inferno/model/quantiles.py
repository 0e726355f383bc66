"""Quantiles of wait, TTFT and latency for many operating points (see :mod:`.percentiles` for the
method). Wait and TTFT quantiles are vectorised; latency quantiles use the exact response-time
chain one point at a time, so they are opt-in where many servers are involved."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .percentiles import quantile
from .points import OperatingPoints

F = NDArray[np.float64]

__all__ = ["latency_quantiles", "ttft_quantiles", "wait_quantiles"]

_ITERATIONS = 60


def wait_quantiles(points: OperatingPoints, rate: F, q: float) -> F:
    """The q-quantile of the waiting time of every point at its rate (ms)."""
    m = points.metrics(rate, wait_beyond=np.zeros(len(points)))
    target = 1.0 - q
    zero = m.wait_sf <= target  # most requests do not wait at all
    # Markov's inequality: P(W > E[W]/(1−q)) ≤ 1−q, so the quantile lies below that
    lo = np.zeros(len(points))
    hi = np.maximum(m.wait / target, 1e-9) * (1.0 + 1e-9)
    for _ in range(_ITERATIONS):
        mid = 0.5 * (lo + hi)
        above = points.metrics(rate, wait_beyond=mid).wait_sf > target
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    out: F = np.where(zero, 0.0, hi)
    return out


def ttft_quantiles(points: OperatingPoints, rate: F, q: float) -> F:
    """TTFT = W + a constant (prefill at the mean occupancy, + one ITL for G2/G3)."""
    m = points.metrics(rate)
    out: F = wait_quantiles(points, rate, q) + (m.ttft - m.wait)
    return out


def latency_quantiles(points: OperatingPoints, rate: F, qs: Sequence[float]) -> F:
    """Response-time quantiles, shape (C, len(qs)), from the exact tagged-request chain."""
    m = points.metrics(rate)
    out = np.empty((len(points), len(qs)))
    for i in range(len(points)):
        rt = points.response_time(i, float(rate[i]))
        for j, q in enumerate(qs):
            out[i, j] = quantile(rt.survival, q, float(m.response[i]) * 3.0)
    return out
