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

__all__ = ["latency_quantiles", "ttft_quantiles", "wait_quantiles", "wait_quantiles_of"]

_ITERATIONS = 60
#: the bisection stops when the bracket is this narrow (relative): answers hold to 1e-9 and more
_RTOL = 1e-12
#: the latency quantiles' search stops at this relative width (each step costs a survival sweep)
_RTOL_LATENCY = 1e-11


def wait_quantiles(points: OperatingPoints, rate: F, q: float) -> F:
    """The q-quantile of the waiting time of every point at its rate (ms)."""
    return wait_quantiles_of(points, rate, [q])[:, 0]


def wait_quantiles_of(points: OperatingPoints, rate: F, qs: Sequence[float]) -> F:
    """The waiting time's ``qs``-quantiles of every point at its rate (ms), shape (C, len(qs)).

    One bisection for all points and quantiles at once; a point leaves it when its bracket is
    :data:`_RTOL` narrow (its wait survival is then no longer computed).
    """
    c, nq = len(points), len(qs)
    pts = points if nq == 1 else points.subset(np.tile(np.arange(c), nq))
    lam = np.tile(np.asarray(rate, dtype=np.float64), nq)
    target = np.repeat(1.0 - np.asarray(qs, dtype=np.float64), c)
    m = pts.metrics(lam, wait_beyond=np.zeros(c * nq))
    zero = m.wait_sf <= target  # most requests do not wait at all
    # Markov's inequality: P(W > E[W]/(1−q)) ≤ 1−q, so the quantile lies below that
    lo = np.zeros(c * nq)
    hi = np.maximum(m.wait / target, 1e-9) * (1.0 + 1e-9)
    for _ in range(_ITERATIONS):
        active = ~zero & (hi - lo > _RTOL * hi)
        if not active.any():
            break
        mid = 0.5 * (lo + hi)
        sf = pts.metrics(lam, wait_beyond=np.where(active, mid, np.nan)).wait_sf
        above = active & (sf > target)
        lo = np.where(above, mid, lo)
        hi = np.where(active & ~above, mid, hi)
    out: F = np.where(zero, 0.0, hi).reshape(nq, c).T
    return out


def ttft_quantiles(points: OperatingPoints, rate: F, q: float) -> F:
    """TTFT = W + a constant (prefill at the mean occupancy, + one ITL for G2/G3)."""
    m = points.metrics(rate)
    out: F = wait_quantiles(points, rate, q) + (m.ttft - m.wait)
    return out


def latency_quantiles(points: OperatingPoints, rate: F, qs: Sequence[float]) -> F:
    """Response-time quantiles, shape (C, len(qs)), from the exact tagged-request chain (solved
    once per distinct chain: several classes of one model often share one)."""
    m = points.metrics(rate)
    out = np.empty((len(points), len(qs)))
    done: dict[tuple[bool, float, int, bytes], int] = {}
    for i in range(len(points)):
        key = points.response_key(i, float(rate[i]))
        if key in done:
            out[i] = out[done[key]]
            continue
        done[key] = i
        rt = points.response_time(i, float(rate[i]))
        for j, q in enumerate(qs):
            out[i, j] = quantile(rt.survival, q, float(m.response[i]) * 3.0, rtol=_RTOL_LATENCY)
    return out
