"""Sizing: the largest arrival rate per replica λ* that meets a server's SLOs on one accelerator.

Every metric grows with λ, so λ* is the root of g(λ) = max over targets of (metric / target) = 1,
found on log λ in [0.001 μ(1), 0.999 μ(N)] for all points at once (a bracketing Illinois
search, to 1e-11 relative) (Inferno searches each
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .points import Metrics, OperatingPoints

F = NDArray[np.float64]

__all__ = ["BOUNDS", "Sizing", "SloArrays", "size"]

LOW_FRACTION = 0.001
HIGH_FRACTION = 0.999
TPS_FRACTION = 0.9
_RTOL = 1e-10  # relative precision of λ* (Inferno's float32 search: ~1e-7)
_MAX_ITERATIONS = 80

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
    def of_columns(cls, cols: Sequence[F], *, exact_wait_quantile: bool = False) -> SloArrays:
        """From 8 columns in field order (itl, ttft, ttw, latency, tps, and the 3 quantiles)."""
        c = list(cols)
        return cls(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], exact_wait_quantile)

    @classmethod
    def empty(cls, c: int) -> SloArrays:
        return cls.of_columns([np.full(c, np.nan) for _ in range(8)])

    def take(self, idx: NDArray[np.intp]) -> SloArrays:
        cols = [getattr(self, f)[idx] for f in _ARRAY_FIELDS]
        return SloArrays.of_columns(cols, exact_wait_quantile=self.exact_wait_quantile)


_ARRAY_FIELDS = (
    "itl",
    "ttft",
    "ttw",
    "latency",
    "tps",
    "ttft_quantile",
    "latency_quantile",
    "ttw_quantile",
)


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
        shift = np.where(
            np.isfinite(ttft_q) & np.isfinite(slo.ttft), slo.ttft - (m.ttft - m.wait), np.nan
        )
        sf = points.metrics(lam, wait_beyond=shift).wait_sf
        ratios["ttft"] = np.where(np.isfinite(ttft_q), sf / (1.0 - ttft_q), mean_ttft)
    else:
        ratios["ttft"] = mean_ttft
    ratios["latency"] = np.where(
        np.isfinite(slo.latency_quantile), np.nan, m.response / slo.latency
    )
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
    return Sizing(
        rate=rate, feasible=feasible, bound=bound.astype(str), low=low, high=high, detail=detail
    )


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
    # Search in y = −log(1 − λ/μ(N)), the log-distance to saturation: queue metrics blow up like
    # 1/(1 − λ/μ(N)), so log g is close to linear in y near the top and in λ near the bottom,
    # which is what makes the secant steps of the Illinois search converge in a few evaluations.
    lam_lo = low.copy()
    lam_hi = high.copy()
    if search.size:
        sub = points.subset(search)
        sub_slo = slo.take(search)
        mu_n = points.mu_n[search]

        def lam_of(y: F) -> F:
            out: F = mu_n * -np.expm1(-y)
            return out

        def f(y: F, idx: NDArray[np.intp]) -> F:
            part = sub if idx.size == search.size else sub.subset(idx)
            r, _ = _worst(_ratios(part, mu_n[idx] * -np.expm1(-y), sub_slo.take(idx)), targets)
            out: F = np.log(r)
            return out

        def converged(a: F, b: F) -> NDArray[np.bool_]:
            la, lb = lam_of(a), lam_of(b)
            out: NDArray[np.bool_] = lb - la <= _RTOL * la
            return out

        ya, yb = _illinois(
            f,
            -np.log1p(-low[search] / mu_n),
            -np.log1p(-high[search] / mu_n),
            np.log(r_low[search]),
            np.log(r_high[search]),
            converged,
            lambda y: 0.4 * _RTOL * np.expm1(y),
        )
        lam_lo[search], lam_hi[search] = lam_of(ya), lam_of(yb)
    rate = np.where(at_top, high, lam_lo)
    _, which_root = _worst(_ratios(points, lam_hi, slo), targets)
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


def _illinois(
    f: Callable[[F, NDArray[np.intp]], F],
    a: F,
    b: F,
    fa: F,
    fb: F,
    converged: Callable[[F, F], NDArray[np.bool_]],
    step: Callable[[F], F],
) -> tuple[F, F]:
    """Vectorised Illinois (modified regula falsi) for the root of an increasing f on [a, b] with
    f(a) ≤ 0 < f(b); returns the final bracket once ``converged(a, b)``. A secant step is kept at
    least ``step(a)`` (a little under the convergence tolerance) from either end, so the last steps
    close the bracket from the far side instead of creeping; the Illinois rule halves a stale end's
    value so one-sided convergence cannot stall. Typically 8–15 evaluations instead of 40."""
    a, b, fa, fb = a.copy(), b.copy(), fa.copy(), fb.copy()
    side = np.zeros(a.shape, dtype=np.int8)  # which end moved last: −1 a, +1 b
    for _ in range(_MAX_ITERATIONS):
        active = np.flatnonzero(~converged(a, b))
        if active.size == 0:
            break
        aa, bb, fa_, fb_ = a[active], b[active], fa[active], fb[active]
        width = bb - aa
        with np.errstate(divide="ignore", invalid="ignore"):
            c = bb - fb_ * width / (fb_ - fa_)
        c = np.where(np.isfinite(c), c, 0.5 * (aa + bb))
        # never closer to an end than a step that can still decide convergence
        margin = np.minimum(step(aa), 0.25 * width)
        c = np.clip(c, aa + margin, bb - margin)
        fc = f(c, active)
        ok = fc <= 0.0
        s_ = side[active]
        # Illinois: halve the stale end's value when the same end moves twice in a row
        fb_ = np.where(ok & (s_ == -1), 0.5 * fb_, fb_)
        fa_ = np.where(~ok & (s_ == 1), 0.5 * fa_, fa_)
        a[active] = np.where(ok, c, aa)
        fa[active] = np.where(ok, fc, fa_)
        b[active] = np.where(ok, bb, c)
        fb[active] = np.where(ok, fb_, fc)
        side[active] = np.where(ok, -1, 1)
    return a, b


def _size_latency_quantile(
    points: OperatingPoints, i: int, slo: SloArrays, upper: float, low: float
) -> tuple[float, bool, str]:
    """Largest λ ≤ ``upper`` (feasible for the other targets) meeting the latency quantile."""
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
