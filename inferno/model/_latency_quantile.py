"""A latency-quantile target's λ* for one point (:func:`size_latency_quantile`): the exact
response-time distribution, searched one point at a time by :func:`.sizing.size` after the
means' targets (vectorised there) have bounded it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ._roots import illinois
from .points import OperatingPoints

if TYPE_CHECKING:  # sizing imports this module
    from .sizing import SloArrays

F = NDArray[np.float64]

__all__ = ["GUIDE_BELOW", "size_latency_quantile"]

#: a guided search descends to these fractions of its guide when the guide is missed (a short
#: batching delay: the virtual instance is then optimistic, as it is without one); also the
#: rungs of :func:`.sizing._bracket` below a costly point's guide
GUIDE_BELOW = (0.92, 0.8, 0.6)


def size_latency_quantile(
    points: OperatingPoints,
    i: int,
    slo: SloArrays,
    upper: float,
    low: float,
    rtol: float = 1e-7,
    guess: float = math.nan,
) -> tuple[float, bool]:
    """Largest λ ≤ ``upper`` meeting point ``i``'s latency quantile: the root of
    log(P(R > target) / (1 − q)) in log λ, by the Illinois search (to ``rtol``; P(R > target)
    may be 0 at the low end, where it bisects). With a ``guess`` (:func:`.sizing._mean_bound`) the
    bracket is sought there first — the guess, then :data:`GUIDE_BELOW` of it — instead of at
    ``upper``, near saturation, where each evaluation of a costly point is slowest."""
    q = float(slo.latency_quantile[i])
    target = float(slo.latency[i])

    def excess(lam: float) -> float:
        sf = float(points.response_time(i, lam).survival([target])[0])
        with np.errstate(divide="ignore"):
            return float(np.log(sf / (1.0 - q)))

    f_low = excess(low)
    if f_low > 0.0:
        return math.nan, False
    top, f_top = upper, math.nan
    if math.isfinite(guess) and low < guess < upper:
        f_guess = excess(guess)
        if f_guess > 0.0:
            top, f_top = guess, f_guess
            for fraction in GUIDE_BELOW:
                rung = fraction * guess
                if rung <= low:
                    break
                f_rung = excess(rung)
                if f_rung <= 0.0:
                    low, f_low = rung, f_rung
                    break
                top, f_top = rung, f_rung
        else:
            low, f_low = guess, f_guess
    if math.isnan(f_top):
        f_top = excess(upper)
        if f_top <= 0.0:
            return upper, True

    def f(y: F, idx: NDArray[np.intp]) -> F:
        return np.array([excess(math.exp(float(v))) for v in y])

    a, _ = illinois(
        f,
        np.array([math.log(low)]),
        np.array([math.log(top)]),
        np.array([f_low]),
        np.array([f_top]),
        lambda a, b: (b - a) <= math.log1p(rtol),
        lambda y, idx: np.full(y.shape, 0.4 * rtol),
    )
    return math.exp(float(a[0])), True
