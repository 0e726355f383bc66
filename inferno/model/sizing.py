"""Sizing: the largest arrival rate per replica λ* that meets a server's SLOs on one accelerator.

Every metric of the chain grows with λ, so λ* is the root of g(λ) = max over targets of
(metric / target) = 1,
found on log λ in [0.001 μ(1), 0.999 μ(N)] for all points at once (a bracketing Illinois
search, to 1e-11 relative) (Inferno searches each
target separately and takes the minimum; for increasing metrics that is the same number). A target
already missed at the lower end makes the point infeasible; one still met at the upper end gives the
upper end. A throughput (TPS) class caps λ* at 0.9 × the upper end. Where a point's metrics may
fall as the rate grows (the accurate model's cheap prefills), λ* is the first crossing instead:
every rung of :data:`FALL_RUNGS` below it is checked, and a miss searched again below it
(:func:`size`; docs/model.md, "Sizing").

Statistics of a target:
- ``ttw`` (Inferno's ``slo-ttw``, G0): by default Inferno's rule, mean wait ≤ ttw / (−ln(1 − q)),
  which is the q-quantile of an *exponential* wait, not of the model's wait; with
  ``exact_wait_quantile`` the true q-quantile of the wait is used (P(W > ttw) ≤ 1 − q).
- ``ttft`` and ``latency``: the mean, or with a quantile q the true q-quantile (see
  :mod:`inferno.model.percentiles`). TTFT quantiles are vectorised; latency quantiles use the exact
  response-time distribution, one point at a time (Illinois on log P(R > target) in log λ, from
  the λ* of the mean at the same target for a costly point).
- ``itl``: the mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ._latency_quantile import GUIDE_BELOW, size_latency_quantile
from ._roots import illinois
from .points import OperatingPoints

F = NDArray[np.float64]

__all__ = ["BOUNDS", "REACH_MARGIN", "Sizing", "SloArrays", "below", "meets", "size"]

LOW_FRACTION = 0.001
HIGH_FRACTION = 0.999
#: a costly point (:meth:`OperatingPoints.costly`) is tried at these fractions of μ(N) before
#: the top (:func:`_bracket`)
PROBE_FRACTIONS = (0.5, 0.9)
#: … and a costly point with a batching delay at these multiples of its λ* on the virtual
#: instance (:meth:`OperatingPoints.virtual_instances`: pessimistic by a few percent near
#: saturation, within a fraction of a percent below it, and its means tens to hundreds of
#: times cheaper: bench/instance_models.py). The first two rungs are close because the two
#: agree to within a few percent: a narrow bracket the search closes in few steps
GUIDE_FRACTIONS = (0.998, 1.01, 1.04, 1.15)
_GUIDE_RTOL = 1e-4
#: a costly point's λ* is searched to at most this relative precision (each evaluation costs
#: tenths of a second; replicas are ⌈demand / λ*⌉, and λ* is the bracket's lower end, so a
#: coarser precision can only add a replica where demand / λ* is within it of a whole number):
#: a hundred times finer than the chain's own accuracy against the emulator (±1–2 %)
COSTLY_RTOL = 1e-4
TPS_FRACTION = 0.9
#: where a point's metrics may fall as the rate grows, the fractions of its λ* checked below it
#: (:func:`_first_crossing`), and how many times at most a point is searched again below them
FALL_RUNGS = (0.2, 0.4, 0.6, 0.8)
MAX_FALLS = 8
_RTOL = 1e-8  # relative precision of λ* (Inferno's float32 search: ~1e-7)
#: :func:`below` judges a rate by one evaluation this fraction under it: λ* is searched to
#: :data:`_RTOL`, in blocks whose sums round differently, so a root within that of the rate is
#: never ruled out by rounding
REACH_MARGIN = 1e-6

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

    def take(self, idx: NDArray[np.intp]) -> Sizing:
        """The sizing of the points at ``idx`` (repeats allowed)."""
        return Sizing(
            rate=self.rate[idx],
            feasible=self.feasible[idx],
            bound=self.bound[idx],
            low=self.low[idx],
            high=self.high[idx],
            detail={k: v[idx] for k, v in self.detail.items()},
        )


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
        # the model's TTFT survival (the chain's: the wait's, shifted by a constant)
        at = np.where(np.isfinite(ttft_q) & np.isfinite(slo.ttft), slo.ttft, np.nan)
        sf = points.ttft_sf(lam, at, metrics=m)
        ratios["ttft"] = np.where(np.isfinite(ttft_q), sf / (1.0 - ttft_q), mean_ttft)
    else:
        ratios["ttft"] = mean_ttft
    ratios["latency"] = np.where(
        np.isfinite(slo.latency_quantile), np.nan, m.response / slo.latency
    )
    return ratios


_TARGETS = ("itl", "ttft", "ttw", "latency")


def meets(points: OperatingPoints, slo: SloArrays, rate: F) -> NDArray[np.bool_]:
    """Whether each point meets every mean-type target (itl, ttft, ttw, mean latency) at
    ``rate`` (/ms): one evaluation, where :func:`size` searches. Latency-quantile targets are
    not judged here."""
    r = _ratios(points, rate, slo)
    stack = np.vstack([r[t] for t in _TARGETS])
    out: NDArray[np.bool_] = np.all(np.where(np.isnan(stack), 0.0, stack) <= 1.0, axis=0)
    return out


def below(points: OperatingPoints, slo: SloArrays, rate: F) -> NDArray[np.bool_]:
    """Whether each point's λ* (:func:`size`) is surely below ``rate`` (/ms), by one evaluation
    instead of a search: rates above the top of its search are (by more than
    :data:`REACH_MARGIN`, as every rate here is judged); and where λ* moves only one way
    with the targets it is judged by, a point that misses a target at :data:`REACH_MARGIN`
    under the rate (or at the bottom of its search, if that is higher: it is then infeasible)
    has its root below. That needs the metrics to grow with the rate, which the search assumes
    too; so only points judged on means alone (no TTFT or latency quantile, no exact wait
    quantile: a quantile can sit on its target over a range of rates, within an ulp either
    side) and whose metrics do not fall (:meth:`~OperatingPoints.may_fall`) are evaluated. A
    rate that is NaN or not positive says no."""
    rate = np.asarray(rate, dtype=np.float64)
    out = np.zeros(len(points), dtype=bool)
    with np.errstate(invalid="ignore"):
        asked = rate > 0  # NaN: no
        under = rate * (1.0 - REACH_MARGIN)  # what is judged (μ(N) of a row built alone and
        # in a whole build can differ in its last bit)
        over = asked & (under > HIGH_FRACTION * points.mu_n)  # inf: yes
    out[over] = True
    means = ~np.isfinite(slo.ttft_quantile) & ~np.isfinite(slo.latency_quantile)
    if slo.exact_wait_quantile:
        means &= ~np.isfinite(slo.ttw)
    judged = asked & ~over & means
    if judged.any():
        judged &= ~points.may_fall()
    idx = np.flatnonzero(judged)
    if idx.size:
        sub = points.subset(idx)
        at = np.maximum(under[idx], LOW_FRACTION * sub.mu_1)
        out[idx] = ~meets(sub, slo.take(idx), at)
    return out


def size(points: OperatingPoints, slo: SloArrays, *, rtol: float = _RTOL) -> Sizing:
    """λ* for every point (:func:`_size`), and where a point's metrics may fall as the rate
    grows (:meth:`~OperatingPoints.may_fall`), the first crossing: a replica's share of the
    demand is anywhere below λ*, so each such point is checked at :data:`FALL_RUNGS` of its
    λ*, and one that misses a target there is searched again below the lowest rung missed,
    until every rung is met (:func:`_first_crossing`)."""
    out = _size(points, slo, rtol=rtol)
    fall = points.may_fall() & out.feasible
    for _ in range(MAX_FALLS):
        if not fall.any():
            break
        out, fall = _first_crossing(points, slo, out, fall, rtol)
    return out


def _first_crossing(
    points: OperatingPoints, slo: SloArrays, sizing: Sizing, which: NDArray[np.bool_], rtol: float
) -> tuple[Sizing, NDArray[np.bool_]]:
    """The points ``which`` checked at :data:`FALL_RUNGS` of their λ* (mean-type targets, as
    the search judges them); those that miss are sized again with the lowest rung missed as
    the top of their search. Returns the sizing and the points sized again (to check again)."""
    idx = np.flatnonzero(which)
    sub, sub_slo, lam = points.subset(idx), slo.take(idx), sizing.rate[idx]
    top = np.full(idx.size, np.nan)
    for fraction in sorted(FALL_RUNGS, reverse=True):  # the lowest rung missed is kept
        rung = np.maximum(fraction * lam, sizing.low[idx])
        top = np.where(meets(sub, sub_slo, rung), top, rung)
    bad = np.flatnonzero(np.isfinite(top))
    again = np.zeros(len(points), dtype=bool)
    if not bad.size:
        return sizing, again
    rows = idx[bad]
    redo = _size(points.subset(rows), slo.take(rows), rtol=rtol, ceiling=top[bad])
    rate, feasible = sizing.rate.copy(), sizing.feasible.copy()
    bound = sizing.bound.astype(object)  # a name longer than any before it is not cut short
    rate[rows], feasible[rows], bound[rows] = redo.rate, redo.feasible, redo.bound
    # a target met at the ceiling keeps its own λ* from the search before (the ceiling is a
    # rung another target missed, not this one's)
    ceiling = np.minimum(np.maximum(top[bad], sizing.low[rows]), sizing.high[rows])
    detail = {t: v.copy() for t, v in sizing.detail.items()}
    for t, v in redo.detail.items():
        detail[t][rows] = np.where(v == ceiling, detail[t][rows], v)
    again[rows] = redo.feasible
    merged = Sizing(rate, feasible, bound.astype(str), sizing.low, sizing.high, detail)
    return merged, again


def _size(
    points: OperatingPoints, slo: SloArrays, *, rtol: float = _RTOL, ceiling: F | None = None
) -> Sizing:
    """λ* for every point: the smallest of its targets' own largest rates (vectorised over points
    and targets; latency-quantile targets one point at a time). ``detail`` holds each target's own
    λ* (NaN where the point has no such target or misses it even at the low end), as the
    single-server analyzer reports them. ``ceiling``: the top of each point's search, below
    :data:`HIGH_FRACTION` of its capacity (the TPS cap and ``high`` stay the capacity's).

    Each target is searched on its own rather than their maximum ratio: every single ratio is
    smooth in λ, while their maximum has a kink where the binding target changes, which slows a
    secant search to a crawl.

    :meth:`~OperatingPoints.costly` points are sized one at a time, after the others: each
    evaluation is a chain solve of its own anyway, and solving one chain at nearby rates in a
    row lets each solve borrow the last one's factorisation
    (:func:`~inferno.model._stationary.stationary_from`).
    """
    costly = points.costly()
    if costly.any() and len(points) > 1:
        alone = np.flatnonzero(costly)
        plain = np.flatnonzero(~costly)

        def part(i: NDArray[np.intp]) -> Sizing:
            cut = None if ceiling is None else ceiling[i]
            return _size(points.subset(i), slo.take(i), rtol=rtol, ceiling=cut)

        parts = [part(plain)] if plain.size else []
        parts += [part(alone[j : j + 1]) for j in range(alone.size)]
        return _joined(parts, np.concatenate([plain, alone]))
    c = len(points)
    low = LOW_FRACTION * points.mu_1
    full = HIGH_FRACTION * points.mu_n  # the search's top: 0.999 μ(N), or ``ceiling`` below it
    high = full if ceiling is None else np.minimum(np.maximum(ceiling, low), full)
    r_low = _ratios(points, low, slo)
    lower, r_lower, upper, r_high = _bracket(points, slo, low, high, r_low)
    detail = {t: np.full(c, np.nan) for t in _TARGETS}
    missed = np.zeros(c, dtype=bool)
    worst_low = np.full(c, -np.inf)
    bound = np.full(c, "max-rate", dtype=object)
    rows: list[NDArray[np.intp]] = []
    codes: list[NDArray[np.intp]] = []
    for k, t in enumerate(_TARGETS):
        has = np.isfinite(r_low[t])
        miss = has & (r_low[t] > 1.0)
        top = has & ~miss & (r_high[t] <= 1.0)
        detail[t][top] = high[top]
        missed |= miss
        worse = miss & (r_low[t] > worst_low)
        bound[worse] = t
        worst_low = np.where(worse, r_low[t], worst_low)
        search = np.flatnonzero(has & ~miss & ~top)
        rows.append(search)
        codes.append(np.full(search.size, k, dtype=np.intp))
    row_point = np.concatenate(rows)
    row_target = np.concatenate(codes)
    if row_point.size:
        tol = np.where(costly[row_point], max(rtol, COSTLY_RTOL), rtol)
        lam_row = _search(points, slo, row_point, row_target, lower, upper, r_lower, r_high, tol)
        for k, t in enumerate(_TARGETS):
            sel = row_target == k
            detail[t][row_point[sel]] = lam_row[sel]
    stack = np.vstack([detail[t] for t in _TARGETS])
    filled = np.where(np.isnan(stack), np.inf, stack)
    which = np.argmin(filled, axis=0)
    rate = np.minimum(filled[which, np.arange(c)], high)
    binding = ~missed & np.isfinite(filled[which, np.arange(c)]) & (rate < high)
    bound[binding] = np.array([_TARGETS[k] for k in which[binding]], dtype=object)
    feasible = ~missed
    # latency quantiles: the exact response-time distribution, one point at a time
    quant = np.isfinite(slo.latency_quantile) & np.isfinite(slo.latency) & feasible
    guess = _mean_bound(points, slo, quant & costly)
    for i in np.flatnonzero(quant):
        tol_i = max(rtol, COSTLY_RTOL) if costly[i] else max(rtol, 1e-7)
        lam_i, ok_i = size_latency_quantile(
            points, int(i), slo, float(rate[i]), float(low[i]), tol_i, float(guess[i])
        )
        detail["latency"][i] = lam_i
        if not ok_i:
            feasible[i] = False
            bound[i] = "latency"
        elif lam_i < rate[i]:
            rate[i] = lam_i
            bound[i] = "latency"
    tps = np.isfinite(slo.tps) & feasible
    capped = tps & (rate > TPS_FRACTION * full)
    rate = np.where(capped, TPS_FRACTION * full, rate)
    bound[capped] = "tps"
    rate = np.where(feasible, rate, np.nan)
    return Sizing(
        rate=rate, feasible=feasible, bound=bound.astype(str), low=low, high=full, detail=detail
    )


def _joined(parts: list[Sizing], order: NDArray[np.intp]) -> Sizing:
    """The sizings of ``parts`` (of the points ``order``, in turn) as one, in point order."""
    back = np.argsort(order)
    return Sizing(
        rate=np.concatenate([p.rate for p in parts])[back],
        feasible=np.concatenate([p.feasible for p in parts])[back],
        bound=np.concatenate([p.bound for p in parts])[back],
        low=np.concatenate([p.low for p in parts])[back],
        high=np.concatenate([p.high for p in parts])[back],
        detail={t: np.concatenate([p.detail[t] for p in parts])[back] for t in _TARGETS},
    )


def _bracket(
    points: OperatingPoints, slo: SloArrays, low: F, high: F, r_low: dict[str, F]
) -> tuple[F, dict[str, F], F, dict[str, F]]:
    """Each point's search bracket and its ratios at both ends: [low, :data:`HIGH_FRACTION` of
    the capacity], or for a :meth:`~OperatingPoints.costly` point (its chain near saturation
    costs seconds, and most targets bind well below it) the rungs of :func:`_rungs` climbed
    while every target is still met: [the last rung met, the first one where every target is
    missed]; a rung where some are met and some not sends it to the top. A guided point missed
    at its first rung goes down :data:`GUIDE_BELOW` instead, to the first rung met."""
    costly = points.costly()
    if not costly.any():
        return low, r_low, high, _ratios(points, high, slo)
    lower, r_lower = low.copy(), {t: v.copy() for t, v in r_low.items()}
    upper, r_upper = high.copy(), {t: np.full(len(points), np.nan) for t in _TARGETS}
    # a costly point with no mean-type target (a latency quantile alone) has nothing to bracket
    idle = costly & ~np.any(np.vstack([np.isfinite(r_low[t]) for t in _TARGETS]), axis=0)
    costly = costly & ~idle
    rungs, guide = _rungs(points, slo, costly)

    def probe(idx: NDArray[np.intp], rung: F) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Evaluate ``idx`` at ``rung``: where every target is missed it is the bracket's top,
        where every one is met its bottom."""
        r = _ratios(points.subset(idx), rung, slo.take(idx))
        stack = np.vstack([r[t] for t in _TARGETS])
        has = np.isfinite(stack)
        missed = has.any(axis=0) & np.all(~has | (stack > 1.0), axis=0)
        met = has.any(axis=0) & np.all(~has | (stack <= 1.0), axis=0)
        for t in _TARGETS:
            r_upper[t][idx[missed]] = r[t][missed]
            r_lower[t][idx[met]] = r[t][met]
        upper[idx[missed]] = rung[missed]
        lower[idx[met]] = rung[met]
        return missed, met

    climbing = np.flatnonzero(costly)
    falling = climbing[:0]
    for j in range(rungs.shape[1]):
        rung = np.maximum(rungs[climbing, j], low[climbing])
        at = np.isfinite(rung) & (rung < high[climbing])
        climbing, rung = climbing[at], rung[at]
        if climbing.size == 0:
            break
        missed, met = probe(climbing, rung)
        if j == 0:
            falling = climbing[missed & np.isfinite(guide[climbing])]
        climbing = climbing[met]
    # a guided point missed at its first rung: down the rungs below it until one is met
    for fraction in GUIDE_BELOW:
        if falling.size == 0:
            break
        missed, _ = probe(falling, np.maximum(fraction * guide[falling], low[falling]))
        falling = falling[missed]
    # every plain point, and the costly ones not yet bracketed
    top = np.flatnonzero((upper == high) & ~idle)
    if top.size:
        at_top = _ratios(points.subset(top), high[top], slo.take(top))
        for t in _TARGETS:
            r_upper[t][top] = at_top[t]
    return lower, r_lower, upper, r_upper


def _rungs(points: OperatingPoints, slo: SloArrays, costly: NDArray[np.bool_]) -> tuple[F, F]:
    """The rates (P, R) at which each costly point is probed, in order (NaN: no more rungs):
    :data:`PROBE_FRACTIONS` of μ(N), or with a delay :data:`GUIDE_FRACTIONS` of its λ* on the
    virtual instance (where that is feasible); and that λ* (NaN: none)."""
    width = max(len(PROBE_FRACTIONS), len(GUIDE_FRACTIONS))
    out = np.full((len(points), width), np.nan)
    idx = np.flatnonzero(costly)
    out[idx, : len(PROBE_FRACTIONS)] = np.outer(points.mu_n[idx], PROBE_FRACTIONS)
    guide = np.full(len(points), np.nan)
    guided = np.flatnonzero(costly & points.delayed())
    if guided.size and GUIDE_FRACTIONS:
        # the means' targets only: a latency quantile is searched after the means (size), on
        # its own guide (_mean_bound), and the virtual instance's distribution is slow
        cheap = points.subset(guided).virtual_instances()
        lam = size(cheap, _without_quantiles(slo.take(guided)), rtol=_GUIDE_RTOL).rate
        ok = np.isfinite(lam)
        guide[guided[ok]] = lam[ok]
        out[guided[ok]] = np.nan
        out[guided[ok], : len(GUIDE_FRACTIONS)] = np.outer(lam[ok], GUIDE_FRACTIONS)
    return out, guide


def _search(
    points: OperatingPoints,
    slo: SloArrays,
    row_point: NDArray[np.intp],
    row_target: NDArray[np.intp],
    low: F,
    high: F,
    r_low: dict[str, F],
    r_high: dict[str, F],
    rtol: F,
) -> F:
    """Each (point, target) row's own largest rate, by the Illinois search (to its ``rtol``).

    The search runs in y = −log(1 − λ/μ(N)), the log-distance to saturation: queue metrics blow
    up like 1/(1 − λ/μ(N)), so log(metric/target) is close to linear in y near the top and in λ
    near the bottom, which is what makes the secant steps converge in a few evaluations.
    """
    sub = points.subset(row_point)
    sub_slo = slo.take(row_point)
    mu_n = points.mu_n[row_point]
    names = list(_TARGETS)

    def lam_of(y: F) -> F:
        out: F = mu_n * -np.expm1(-y)
        return out

    def ratio_of(r: dict[str, F], idx: NDArray[np.intp]) -> F:
        stack = np.vstack([r[t] for t in names])
        out: F = stack[row_target[idx], np.arange(idx.size)]
        return out

    itl_code = names.index("itl")

    def f(y: F, idx: NDArray[np.intp]) -> F:
        lam = mu_n[idx] * -np.expm1(-y)
        # an ITL row asks for the ITL alone (OperatingPoints.itl: less work in some models)
        alone = (row_target[idx] == itl_code) & sub.itl_alone
        out: F = np.empty(idx.size)
        with np.errstate(divide="ignore"):
            if alone.any():
                j = idx[alone]
                part = sub if j.size == row_point.size else sub.subset(j)
                out[alone] = np.log(part.itl(lam[alone]) / sub_slo.itl[j])
            if not alone.all():
                k = idx[~alone]
                part = sub if k.size == row_point.size else sub.subset(k)
                r = _ratios(part, lam[~alone], sub_slo.take(k))
                out[~alone] = np.log(ratio_of(r, k))
        return out

    def converged(a: F, b: F) -> NDArray[np.bool_]:
        la, lb = lam_of(a), lam_of(b)
        out: NDArray[np.bool_] = lb - la <= rtol * la
        return out

    everyone = np.arange(row_point.size)
    lo_ratio = ratio_of({t: v[row_point] for t, v in r_low.items()}, everyone)
    hi_ratio = ratio_of({t: v[row_point] for t, v in r_high.items()}, everyone)
    with np.errstate(divide="ignore"):
        f_lo, f_hi = np.log(lo_ratio), np.log(hi_ratio)
    ya, _ = illinois(
        f,
        -np.log1p(-low[row_point] / mu_n),
        -np.log1p(-high[row_point] / mu_n),
        f_lo,
        f_hi,
        converged,
        lambda y, idx: 0.4 * rtol[idx] * np.expm1(y),
    )
    return lam_of(ya)


def _mean_bound(points: OperatingPoints, slo: SloArrays, which: NDArray[np.bool_]) -> F:
    """For the points ``which`` (costly, with a latency quantile): about the λ* at which the
    *mean* latency reaches the quantile's target (on the virtual instance where it has a delay;
    NaN elsewhere or where none is found). A quantile q ≥ ½ of a right-skewed latency is at
    least its mean, so this is near or above the quantile's λ*: a guide for
    :func:`._latency_quantile.size_latency_quantile`, which checks it."""
    out = np.full(len(points), np.nan)
    idx = np.flatnonzero(which)
    if idx.size == 0:
        return out
    sub = slo.take(idx)
    cols = [getattr(sub, f) for f in _ARRAY_FIELDS]
    cols[_ARRAY_FIELDS.index("latency_quantile")] = np.full(idx.size, np.nan)
    mean_slo = SloArrays.of_columns(cols, exact_wait_quantile=sub.exact_wait_quantile)
    out[idx] = size(points.subset(idx).virtual_instances(), mean_slo, rtol=_GUIDE_RTOL).rate
    return out


def _without_quantiles(slo: SloArrays) -> SloArrays:
    """``slo`` with every latency-quantile target dropped (the means' targets only)."""
    cols = [getattr(slo, f).copy() for f in _ARRAY_FIELDS]
    has = np.isfinite(slo.latency_quantile)
    cols[_ARRAY_FIELDS.index("latency")][has] = np.nan
    cols[_ARRAY_FIELDS.index("latency_quantile")][has] = np.nan
    return SloArrays.of_columns(cols, exact_wait_quantile=slo.exact_wait_quantile)
