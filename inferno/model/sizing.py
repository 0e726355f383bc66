"""Sizing: the largest arrival rate per replica λ* that meets a server's SLOs on one accelerator.

Every metric grows with λ, so λ* is the root of g(λ) = max over targets of (metric / target) = 1,
found by bisection on log λ in [0.001 μ(1), 0.999 μ(N)] for all points at once (Inferno searches each
target separately and takes the minimum; for increasing metrics that is the same number). A target
already missed at the lower end makes the point infeasible; one still met at the upper end gives the
upper end. A throughput (TPS) class caps λ* at 0.9 × the upper end.

Statistics of a target:
- ``ttw`` (Inferno's ``slo-ttw``, G0): by default Inferno's rule, mean wait ≤ ttw / (−ln(1 − q)),
  which is the q-quantile of an *exponential* wait, not of the model's wait; with
  ``exact_wait_quantile`` the true q-quantile of the wait is used (P(W > ttw) ≤ 1 − q).
- ``ttft`` and ``latency``: the mean, or with a quantile q the true q-quantile (see
  :mod:`inferno.model.percentiles`). TTFT quantiles are vectorised; latency quantiles use the exact
  response-time chain, one point at a time.
- ``itl``: the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .points import Metrics, OperatingPoints

F = NDArray[np.float64]

__all__ = ["BOUNDS", "Sizing", "SloArrays", "size"]

LOW_FRACTION = 0.001
HIGH_FRACTION = 0.999
TPS_FRACTION = 0.9
_ITERATIONS = 44  # log-bisection steps: relative precision ~1e-12 over the search range

#: What can bind λ*: a target, the TPS cap, or the top of the search range ("max-rate").
BOUNDS = ("itl", "ttft", "ttw", "latency", "tps", "max-rate")


@dataclass(frozen=True, slots=True)
class SloArrays:
    """Targets of C points (ms; NaN = no target). Quantiles NaN = the mean."""

    itl: F
    ttft: F
    ttw: F
    latency: F
    tps: F  # tokens/s; any finite value makes it a throughput class
    ttft_quantile: F
    latency_quantile: F
    ttw_quantile: F  # 0.95 in Inferno's data
    exact_wait_quantile: bool = False

    @classmethod
    def empty(cls, c: int) -> SloArrays:
        nan = np.full(c, np.nan)
        return cls(*(nan.copy() for _ in range(8)))  # type: ignore[arg-type]

    def take(self, idx: NDArray[np.intp]) -> SloArrays:
        arrays = [getattr(self, f)[idx] for f in _ARRAY_FIELDS]
        return SloArrays(*arrays, exact_wait_quantile=self.exact_wait_quantile)  # type: ignore[arg-type]


_ARRAY_FIELDS = ("itl", "ttft", "ttw", "latency", "tps", "ttft_quantile", "latency_quantile", "ttw_quantile")


@dataclass(frozen=True, slots=True)
class Sizing:
    """λ* per point (/ms; NaN when infeasible), what bounds it, and the search range."""

    rate: F
    feasible: NDArray[np.bool_]
    bound: NDArray[np.str_]  # one of BOUNDS; for infeasible points the target missed at the low end
    low: F
    high: F
    detail: dict[str, F] = field(default_factory=dict)  # target -> its own λ* (NaN: no target)


def _ratios(points: OperatingPoints, lam: F, slo: SloArrays) -> dict[str, F]:
    """metric / target for every target kind (NaN where a point has no such target)."""
    ttw_q = np.where(np.isfinite(slo.ttw_quantile), slo.ttw_quantile, 0.95)
    ttft_q = slo.ttft_quantile
    beyond: F | None = None
    if slo.exact_wait_quantile and np.isfinite(slo.ttw).any():
        beyond = np.where(np.isfinite(slo.ttw), slo.ttw, np.nan)
    elif np.isfinite(ttft_q).any():
        beyond = np.full(lam.shape, np.nan)
    m = points.metrics(lam, wait_beyond=None)
    ratios: dict[str, F] = {"itl": m.itl / slo.itl}
    if slo.exact_wait_quantile:
        if beyond is not None:
            sf = points.metrics(lam, wait_beyond=beyond).wait_sf
            ratios["ttw"] = sf / (1.0 - ttw_q)
        else:
            ratios["ttw"] = np.full(lam.shape, np.nan)
    else:
        ratios["ttw"] = m.wait * -np.log1p(-ttw_q) / slo.ttw
    mean_ttft = m.ttft / slo.ttft
    if np.isfinite(ttft_q).any():
        # TTFT = W + a constant offset, so P(TTFT > t) = P(W > t − offset)
        shift = np.where(np.isfinite(ttft_q) & np.isfinite(slo.ttft), slo.ttft - (m.ttft - m.wait), np.nan)
        sf = points.metrics(lam, wait_beyond=shift).wait_sf
        ratios["ttft"] = np.where(np.isfinite(ttft_q), sf / (1.0 - ttft_q), mean_ttft)
    else:
        ratios["ttft"] = mean_ttft
    ratios["latency"] = np.where(np.isfinite(slo.latency_quantile), np.nan, m.response / slo.latency)
    return ratios


def _worst(ratios: dict[str, F], targets: tuple[str, ...]) -> tuple[F, NDArray[np.intp]]:
    stack = np.vstack([ratios[k] for k in targets])
    filled = np.where(np.isnan(stack), -np.inf, stack)
    which = np.argmax(filled, axis=0)
    return filled[which, np.arange(stack.shape[1])], which


_TARGETS = ("itl", "ttft", "ttw", "latency")


def size(points: OperatingPoints, slo: SloArrays, *, per_target: bool = False) -> Sizing:
    """λ* for every point (vectorised; latency-quantile points one at a time).

    With ``per_target`` the result's ``detail`` also holds each target's own λ* (NaN where the point
    has no such target or misses it at the low end), as the single-server analyzer reports.
    """
    rate, feasible, bound, low, high = _bisect(points, slo, _TARGETS)
    detail: dict[str, F] = {}
    if per_target:
        for name in _TARGETS:
            has = np.isfinite(getattr(slo, name))
            if has.any():
                r, ok, _, _, _ = _bisect(points, slo, (name,))
                detail[name] = np.where(has & ok, r, np.nan)
    tps = np.isfinite(slo.tps) & feasible
    capped = tps & (rate > TPS_FRACTION * high)
    rate = np.where(capped, TPS_FRACTION * high, rate)
    bound[capped] = "tps"
    rate = np.where(feasible, rate, np.nan)
    return Sizing(rate=rate, feasible=feasible, bound=bound.astype(str), low=low, high=high, detail=detail)


def _bisect(
    points: OperatingPoints, slo: SloArrays, targets: tuple[str, ...]
) -> tuple[F, NDArray[np.bool_], NDArray[np.object_], F, F]:
    low = LOW_FRACTION * points.mu_1
    high = HIGH_FRACTION * points.mu_n
    r_low, which_low = _worst(_ratios(points, low, slo), targets)
    r_high, _ = _worst(_ratios(points, high, slo), targets)
    feasible = r_low <= 1.0
    at_top = feasible & (r_high <= 1.0)
    search = np.flatnonzero(feasible & ~at_top)
    lo = np.log(low)
    hi = np.log(high)
    if search.size:
        sub = points.subset(search)
        sub_slo = slo.take(search)
        a, b = lo[search], hi[search]
        for _ in range(_ITERATIONS):
            mid = 0.5 * (a + b)
            r, _ = _worst(_ratios(sub, np.exp(mid), sub_slo), targets)
            ok = r <= 1.0
            a = np.where(ok, mid, a)
            b = np.where(ok, b, mid)
        lo[search] = a
        hi[search] = b
    rate = np.where(at_top, high, np.exp(lo))
    _, which_root = _worst(_ratios(points, np.exp(hi), slo), targets)
    bound = np.array([targets[i] for i in which_root], dtype=object)
    bound[at_top] = "max-rate"
    bound[~feasible] = np.array([targets[i] for i in which_low[~feasible]], dtype=object)
    if "latency" in targets:
        # latency quantiles: exact response-time chain, one point at a time
        quant = np.isfinite(slo.latency_quantile) & np.isfinite(slo.latency) & feasible
        for i in np.flatnonzero(quant):
            lam_i, ok_i, bound_i = _size_latency_quantile(
                points, int(i), slo, float(rate[i]), float(low[i])
            )
            rate[i] = lam_i
            feasible[i] = ok_i
            if bound_i:
                bound[i] = bound_i
    return rate, feasible, bound, low, high


def _size_latency_quantile(
    points: OperatingPoints, i: int, slo: SloArrays, upper: float, low: float
) -> tuple[float, bool, str]:
    """Largest λ ≤ ``upper`` (already feasible for the other targets) meeting the latency quantile."""
    q = float(slo.latency_quantile[i])
    target = float(slo.latency[i])

    def meets(lam: float) -> bool:
        sf = points.response_time(i, lam).survival([target])[0]
        return bool(sf <= 1.0 - q)

    if not meets(low):
        return math.nan, False, "latency"
    if meets(upper):
        return upper, True, ""
    a, b = math.log(low), math.log(upper)
    while b - a > 1e-7:
        mid = 0.5 * (a + b)
        if meets(math.exp(mid)):
            a = mid
        else:
            b = mid
    return math.exp(a), True, "latency"


def metrics_at(points: OperatingPoints, rate: F) -> Metrics:
    """Metrics at the given per-replica rates (a thin alias kept for symmetry with :func:`size`)."""
    return points.metrics(rate)
