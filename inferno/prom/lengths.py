"""The lengths' coefficient of variation and family, from a Prometheus histogram of the tokens
generated per request (vLLM's ``vllm:request_generation_tokens``) or of the prompt tokens
(``vllm:request_prompt_tokens``): pure, no I/O.

The accurate model (docs/model.md, "Accurate mode") takes each server's output-length CV
(``outTokensCOV``) and family (``outTokensDist``: gamma or lognormal), and the input lengths'
(``inTokensCOV``, ``inTokensDist``). A serving engine that exports a histogram of tokens per
request gives both: over the load window the
buckets' increases are the lengths' empirical distribution function at the bucket bounds. With
the mean fixed at the measured one (the token counters'), each family's one shape parameter is
fitted by least squares on the distribution function at the bounds (lengths are whole numbers,
``le`` is inclusive, so at bound + ½), and the family that fits better is taken (gamma on a tie,
the default). With fewer than :data:`MIN_REQUESTS` requests in the window there is no fit; the
collector then fits the histogram over a longer window (``INFERNO_LENGTHS_WINDOW``, and the mean
over the same), so that a server near that rate is not told a spread in one cycle and the
model's default in the next; with too few there too, the model keeps its default.

A histogram whose mass is all in one bucket (fixed lengths look so), or in two, has too few
bounds inside it to fit a shape to, but it confines the lengths to a span (lo, hi], and lengths
of mean m within a span vary at most as much as lengths split between its two ends with that
mean do: CV ≤ √((m − lo')(hi − m))/m, lo' the shortest whole length in it (the Bhatia–Davis
inequality). That bound is what is reported (gamma, ``bounded``): the spread is at most it,
where the model's default (CV 1 for the output lengths) would overstate it by far for fixed
lengths (one of vLLM's 1-2-5 buckets allows under 0.48). Not where the bound is above 1, or
where the span is open (lengths in the +Inf bucket). With a cap, at most what the cap allows;
with the mean at the cap, every length is the cap: CV 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

__all__ = ["MIN_REQUESTS", "LengthFit", "counted", "fit_lengths"]

#: requests in the window below which the histogram is not fitted
MIN_REQUESTS = 100.0
#: the coefficient of variation each family's fit may take
_CV_RANGE = (0.01, 10.0)
#: a mean within this fraction above the cap is at it (every length the cap: rounding)
_AT_CAP = 1e-9
#: the largest span bound reported (:func:`_span_bound`): the model's default output-length CV
#: (beyond it the bound says less than the default assumes)
_BOUND_MOST = 1.0


@dataclass(frozen=True, slots=True)
class LengthFit:
    """A fitted output-length distribution: its CV and family, the requests it rests on and
    each family's sum of squared errors on the distribution function (gamma, lognormal)."""

    cv: float
    family: str
    requests: float
    sse: tuple[float, float]
    #: the CV is the most the histogram's span allows (one or two buckets hold every length),
    #: not a fit; ``sse`` is then NaN
    bounded: bool = False


def _gamma_cdf(x: np.ndarray, mean: float, cv: float) -> np.ndarray:
    k = 1.0 / (cv * cv)
    out: np.ndarray = stats.gamma.cdf(x, k, scale=mean / k)
    return out


def _lognormal_cdf(x: np.ndarray, mean: float, cv: float) -> np.ndarray:
    s2 = math.log1p(cv * cv)
    out: np.ndarray = stats.lognorm.cdf(x, math.sqrt(s2), scale=math.exp(math.log(mean) - s2 / 2))
    return out


def counted(buckets: Sequence[tuple[float, float]]) -> float:
    """The requests a histogram's ``buckets`` count (its largest cumulative count: the ``+Inf``
    bucket's, as :func:`fit_lengths` reads them; 0 for none)."""
    counts = [c for le, c in buckets if not math.isnan(le) and math.isfinite(c) and c >= 0]
    return max(counts, default=0.0)


def fit_lengths(
    buckets: Sequence[tuple[float, float]], mean: float, cap: float | None = None
) -> LengthFit | None:
    """The lengths' CV and family from ``buckets`` — (upper bound ``le``, cumulative count)
    pairs in any order, ``+Inf`` included, as ``increase()`` of the ``_bucket`` series gives
    them — with the mean ``mean`` tokens per request; None when they cannot say (too few
    requests, a span too wide or open to bound the spread where every length lies within one or
    two buckets, or values that are not a histogram). With ``cap``
    (the server's most tokens, above the mean) the lengths are served capped, and each family
    is fitted capped (:func:`inferno.model.served_cdf`): the CV is the served lengths', at most
    what the cap allows (a mean above the cap contradicts it: fitted as without one)."""
    if not (math.isfinite(mean) and mean > 0):
        return None
    pairs = sorted(
        (le, c) for le, c in buckets if not math.isnan(le) and math.isfinite(c) and c >= 0
    )
    if not pairs or not math.isinf(pairs[-1][0]):
        return None
    bounds = np.array([le for le, _ in pairs[:-1]], dtype=np.float64)
    # increase() extrapolates each bucket on its own: a running maximum restores the order
    counts = np.maximum.accumulate(np.array([c for _, c in pairs], dtype=np.float64))
    total = float(counts[-1])
    if total < MIN_REQUESTS:
        return None
    cdf = counts[:-1] / total
    inside = (cdf > 0.0) & (cdf < 1.0)
    kappa = cap / mean if cap is not None and math.isfinite(cap) else math.nan  # NaN: no cap
    if kappa < 1.0 - _AT_CAP:
        # a mean above the cap: the cap does not hold for these lengths (the collector tells
        # the model none, with a warning), so they are fitted as they are
        kappa = math.nan
    most_capped = math.inf  # the most CV the cap allows (a mean at the cap: none)
    if kappa > 1.0:
        from ..model import largest_served_cv

        most_capped = largest_served_cv(kappa)
    elif kappa <= 1.0:
        most_capped = 0.0
    if np.count_nonzero(inside) < 2:
        span = _span_bound(bounds, cdf, mean)
        if span is None:
            return None
        return LengthFit(min(span, most_capped), "gamma", total, (math.nan, math.nan), True)
    x = bounds + 0.5
    if kappa > 1.0:
        most = min(_CV_RANGE[1], most_capped)
        cv_range = (min(_CV_RANGE[0], 0.5 * most), most)
        g_sse, g_cv = _fit(_capped(kappa, False), x, cdf, mean, cv_range)
        l_sse, l_cv = _fit(_capped(kappa, True), x, cdf, mean, cv_range)
    else:
        g_sse, g_cv = _fit(_gamma_cdf, x, cdf, mean)
        l_sse, l_cv = _fit(_lognormal_cdf, x, cdf, mean)
    if l_sse < g_sse:
        return LengthFit(l_cv, "lognormal", total, (g_sse, l_sse))
    return LengthFit(g_cv, "gamma", total, (g_sse, l_sse))


def _span_bound(bounds: np.ndarray, cdf: np.ndarray, mean: float) -> float | None:
    """The largest CV of whole lengths of mean ``mean`` within the span the histogram confines
    them to, (the last bound with no length at or below it, the first with every one]:
    √((m − lo')(hi − m))/m, lo' the span's shortest whole length (at least 1); None where the
    span is open above, does not hold the mean, or allows more than :data:`_BOUND_MOST`."""
    full = np.flatnonzero(cdf >= 1.0)
    if full.size == 0:
        return None
    hi = float(bounds[full[0]])
    empty = np.flatnonzero(cdf <= 0.0)
    below = empty[empty < full[0]]
    lo = max(math.floor(float(bounds[below[-1]])) + 1.0, 1.0) if below.size else 1.0
    if not lo <= mean <= hi:
        return None
    most = math.sqrt((mean - lo) * (hi - mean)) / mean
    return most if most <= _BOUND_MOST else None


def _capped(kappa: float, lognormal: bool) -> Callable[[np.ndarray, float, float], np.ndarray]:
    """The distribution function of a family served capped at κ times its mean."""
    from ..model import served_cdf

    def cdf(x: np.ndarray, mean: float, cv: float) -> np.ndarray:
        return served_cdf(x / mean, cv * cv, kappa, lognormal)

    return cdf


def _fit(
    family: Callable[[np.ndarray, float, float], np.ndarray],
    x: np.ndarray,
    cdf: np.ndarray,
    mean: float,
    cv_range: tuple[float, float] = _CV_RANGE,
) -> tuple[float, float]:
    """The least sum of squared errors of ``family``'s distribution function at ``x`` against
    ``cdf``, over the CV (mean fixed), and that CV."""

    def sse(log_cv: float) -> float:
        return float(np.sum((family(x, mean, math.exp(log_cv)) - cdf) ** 2))

    lo, hi = (math.log(v) for v in cv_range)
    best = optimize.minimize_scalar(sse, bounds=(lo, hi), method="bounded")
    return float(best.fun), math.exp(float(best.x))
