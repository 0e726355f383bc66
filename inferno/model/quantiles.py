"""Quantiles of wait, TTFT and latency for many operating points (see :mod:`.percentiles` for the
method). Wait and TTFT quantiles are vectorised; latency quantiles use the exact response-time
chain one point at a time, so they are opt-in where many servers are involved."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from .percentiles import ResponseTime
from .points import Metrics, OperatingPoints
from .quantile_search import newton_quantiles
from .wait_tail import wait_survival, wait_survival_density

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["latency_quantiles", "ttft_quantiles", "wait_quantiles", "wait_quantiles_of"]

_ITERATIONS = 60
#: the bisection stops when the bracket is this narrow (relative): answers hold to 1e-9 and more
_RTOL = 1e-12
#: the latency quantiles' search stops at this relative width (each step costs a survival sweep)
_RTOL_LATENCY = 1e-11


def wait_quantiles(points: OperatingPoints, rate: F, q: float) -> F:
    """The q-quantile of the waiting time of every point at its rate (ms)."""
    return wait_quantiles_of(points, rate, [q])[:, 0]


def wait_quantiles_of(
    points: OperatingPoints, rate: F, qs: Sequence[float], *, metrics: Metrics | None = None
) -> F:
    """The waiting time's ``qs``-quantiles of every point at its rate (ms), shape (C, len(qs)).

    Where the wait is the chain's (:meth:`OperatingPoints.wait_tail`), Newton steps on its log
    survival with the density in closed form (:func:`.wait_tail.wait_survival_density`), from the
    guess an exponential tail would give; elsewhere (bulk rows, other models) one bisection for
    all points and quantiles, a point leaving when its bracket is :data:`_RTOL` narrow.
    ``metrics``: ``points.metrics(rate)`` if the caller has it.
    """
    c, nq = len(points), len(qs)
    rate = np.asarray(rate, dtype=np.float64)
    m = points.metrics(rate) if metrics is None else metrics
    target = np.repeat(1.0 - np.asarray(qs, dtype=np.float64), c)  # [q0 of all points, q1 …]
    each = np.tile(np.arange(c), nq)
    out = np.zeros(c * nq)
    # the wait is the chain's unless a subclass (another model) evaluates it in its own metrics
    plain = type(points).metrics is OperatingPoints.metrics
    chain, tail = points.wait_tail(rate) if plain else (np.zeros(c, dtype=bool), ())
    if chain.any():
        rows = np.flatnonzero(chain[each])
        args = tuple(a[each[rows]] for a in tail)
        sf0 = wait_survival(np.zeros(rows.size), *args)
        tau = target[rows]
        out[rows[np.isnan(sf0)]] = np.nan  # a rate the chain cannot take (NaN): no quantile
        go = np.flatnonzero(sf0 > tau)  # else most requests do not wait at all: the quantile is 0
        if go.size:
            sub = tuple(a[go] for a in args)
            sf0, tau = sf0[go], tau[go]

            def evaluate(t: F, r: Idx) -> tuple[F, F]:
                sf, dens = wait_survival_density(t, *(a[r] for a in sub))
                return sf, -dens

            # P(W > t) ≈ P(W > 0)·e^{−t/θ}, θ = E[W | W > 0]: the quantile θ·log(P(W > 0)/(1 − q))
            theta = m.wait[each[rows[go]]] / sf0
            start = np.maximum(theta * np.log(sf0 / tau), 1e-9)
            # Markov's inequality: P(W > E[W]/(1−q)) ≤ 1−q, so the quantile lies below that
            hi = np.maximum(m.wait[each[rows[go]]] / tau, 1e-9) * (1.0 + 1e-9)
            start = np.minimum(start, 0.5 * hi)
            out[rows[go]] = newton_quantiles(evaluate, tau, start, hi=hi, rtol=_RTOL)
    if not chain.all():
        rest = np.flatnonzero(~chain[each])
        if plain:  # bulk rows: each point's distribution built once, its wait bisected
            out[rest] = _bulk_waits(points, rate, each[rest], target[rest], m.wait)
        else:
            out[rest] = _bisect_waits(
                points.subset(each[rest], same_width=True), rate[each[rest]], target[rest]
            )
    result: F = out.reshape(nq, c).T
    return result


def _bulk_waits(points: OperatingPoints, rate: F, which: Idx, target: F, mean: F) -> F:
    """The wait quantiles of bulk rows (``which``: each asked row's point) by bisection on the
    wait survival of the point's response-time distribution, built once per point: the same
    function :meth:`OperatingPoints.metrics` evaluates with ``wait_beyond``, which builds it
    anew for every time asked."""
    out = np.zeros(which.size)
    for i in np.unique(which).tolist():
        rows = np.flatnonzero(which == i)
        if not rate[i] > 0:
            continue
        rt = points.response_time(i, float(rate[i]))
        if isinstance(rt, ResponseTime):  # a chain row (not asked here): as any model's
            one = points.subset(np.full(rows.size, i), same_width=True)
            out[rows] = _bisect_waits(one, np.full(rows.size, rate[i]), target[rows])
            continue
        out[rows] = _bisect_one(rt.wait_survival, float(mean[i]), target[rows], rtol=_RTOL)
    return out


def _bisect_waits(pts: OperatingPoints, lam: F, target: F) -> F:
    """The wait quantiles by bisection on ``pts.metrics(…, wait_beyond=…)`` (any model)."""
    m = pts.metrics(lam, wait_beyond=np.zeros(len(pts)))
    zero = m.wait_sf <= target  # most requests do not wait at all

    def survival(t: F) -> F:
        sf: F = pts.metrics(lam, wait_beyond=t).wait_sf
        return sf

    return _bisect(survival, m.wait, target, np.where(zero, 0.0, np.nan))


def _bisect(survival: Callable[[F], F], mean: F, target: F, known: F) -> F:
    """The ``target``-survival times of a non-negative time of ``mean`` by bisection on
    ``survival`` (per point; NaN where a point is not asked), except where ``known`` already
    holds the answer (not NaN)."""
    # Markov's inequality: P(T > E[T]/(1−q)) ≤ 1−q, so the quantile lies below that
    lo = np.zeros(mean.size)
    hi = np.maximum(mean / target, 1e-9) * (1.0 + 1e-9)
    done = ~np.isnan(known)
    for _ in range(_ITERATIONS):
        active = ~done & (hi - lo > _RTOL * hi)
        if not active.any():
            break
        mid = 0.5 * (lo + hi)
        sf = survival(np.where(active, mid, np.nan))
        above = active & (sf > target)
        lo = np.where(above, mid, lo)
        hi = np.where(active & ~above, mid, hi)
    out: F = np.where(done, known, hi)
    return out


def ttft_quantiles(points: OperatingPoints, rate: F, q: float) -> F:
    """The q-quantile of TTFT of every point at its rate (ms). Where TTFT is W + a constant
    (prefill at the mean occupancy, + one ITL for G2/G3: :meth:`OperatingPoints.ttft_sf`), the
    wait's quantile shifted; where a model has its own TTFT survival, a bisection on it."""
    m = points.metrics(rate)
    if type(points).ttft_sf is OperatingPoints.ttft_sf:
        out: F = wait_quantiles(points, rate, q) + (m.ttft - m.wait)
        return out
    target = np.full(len(points), 1.0 - q)
    return _bisect(
        lambda t: points.ttft_sf(rate, t, metrics=m), m.ttft, target, np.full(len(points), np.nan)
    )


def latency_quantiles(
    points: OperatingPoints, rate: F, qs: Sequence[float], *, metrics: Metrics | None = None
) -> F:
    """Response-time quantiles, shape (C, len(qs)), from the exact tagged-request chain (solved
    once per distinct chain: several classes of one model often share one). ``metrics``:
    ``points.metrics(rate)`` if the caller has it."""
    m = points.metrics(rate) if metrics is None else metrics
    out = np.empty((len(points), len(qs)))
    done: dict[tuple[bool, float, int, bytes], int] = {}
    for i in range(len(points)):
        key = points.response_key(i, float(rate[i]))
        if key in done:
            out[i] = out[done[key]]
            continue
        done[key] = i
        rt = points.response_time(i, float(rate[i]))
        guess = float(m.response[i]) * 3.0
        if isinstance(rt, ResponseTime):  # the survival's slope is at hand: Newton steps
            out[i] = rt.quantiles(qs, guess, rtol=_RTOL)
            continue
        # a survival whose cost grows with the times asked (a bulk row's: a term per batch
        # start, u and arrivals, hundreds of thousands near saturation): one bisection for every
        # quantile at once, a time per quantile per step (37 steps to 1e-11), not a grid of 33
        out[i] = _bisect_one(rt.survival, float(m.response[i]), 1.0 - np.asarray(qs, dtype=float))
    return out


def _bisect_one(
    survival: Callable[[F], F], mean: float, target: F, *, rtol: float = _RTOL_LATENCY
) -> F:
    """The ``target``-survival times of one distribution of mean ``mean``, by bisection on
    ``survival`` to ``rtol`` (0 where it is at most the target at 0)."""
    at_zero = float(survival(np.array([0.0]))[0])
    known = np.where(at_zero <= target, 0.0, np.nan)
    lo = np.zeros(target.size)
    hi = np.maximum(mean / target, 1e-9) * (1.0 + 1e-9)  # Markov: the quantile lies below
    done = ~np.isnan(known)
    for _ in range(_ITERATIONS):
        active = ~done & (hi - lo > rtol * hi)
        if not active.any():
            break
        idx = np.flatnonzero(active)
        mid = 0.5 * (lo[idx] + hi[idx])
        above = survival(mid) > target[idx]
        lo[idx] = np.where(above, mid, lo[idx])
        hi[idx] = np.where(above, hi[idx], mid)
    out: F = np.where(done, known, hi)
    return out
