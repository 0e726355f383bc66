"""How many replicas a candidate needs: ⌈demand / λ*⌉, at least its server's minimum, and
whether that count is feasible (countable, within its server's maximum)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]
B = NDArray[np.bool_]

__all__ = ["MOST_REPLICAS", "replicas_needed"]

#: the most replicas a candidate may need and stay countable (2^53: exact in a float)
MOST_REPLICAS = float(2**53)


def replicas_needed(d: F, rate: F, sized_feasible: B, min_r: F, max_r: F) -> tuple[F, B, B, B]:
    """The replicas each candidate needs for its server's demand ``d`` at λ* ``rate`` (both
    /ms), and which are feasible: sized feasible, countable (not ``endless``) and within the
    most replicas (not ``over``)."""
    feasible = sized_feasible.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.ceil(d / rate * (1.0 - 1e-12))
    need = np.where(d > 0, np.maximum(need, 1.0), 0.0)
    # λ* so small that no count of replicas is exact (NaN, inf, beyond 2^53: a profile tuned
    # or written absurdly): infeasible, with the reason, never cast to a garbage integer
    endless = feasible & ~(need <= MOST_REPLICAS)
    feasible &= ~endless
    replicas = np.where(feasible, np.maximum(need, min_r), 0.0)
    over = feasible & (replicas > max_r)
    feasible &= ~over
    return replicas, feasible, endless, over
