"""A vectorised bracketing root finder for the λ* searches (:mod:`.sizing`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["illinois"]

F = NDArray[np.float64]
#: at most this many evaluations per root
MAX_ITERATIONS = 80


def illinois(
    f: Callable[[F, NDArray[np.intp]], F],
    a: F,
    b: F,
    fa: F,
    fb: F,
    converged: Callable[[F, F], NDArray[np.bool_]],
    step: Callable[[F, NDArray[np.intp]], F],
) -> tuple[F, F]:
    """Vectorised Illinois (modified regula falsi) for the root of an increasing f on [a, b] with
    f(a) ≤ 0 < f(b); returns the final bracket once ``converged(a, b)``. A secant step is kept at
    least ``step(a)`` (a little under the convergence tolerance) from either end, so the last steps
    close the bracket from the far side instead of creeping; the Illinois rule halves a stale end's
    value so one-sided convergence cannot stall. Typically 8–15 evaluations instead of 40."""
    a, b, fa, fb = a.copy(), b.copy(), fa.copy(), fb.copy()
    side = np.zeros(a.shape, dtype=np.int8)  # which end moved last: −1 a, +1 b
    for _ in range(MAX_ITERATIONS):
        active = np.flatnonzero(~converged(a, b))
        if active.size == 0:
            break
        aa, bb, fa_, fb_ = a[active], b[active], fa[active], fb[active]
        width = bb - aa
        with np.errstate(divide="ignore", invalid="ignore"):
            c = bb - fb_ * width / (fb_ - fa_)
        # bisect while an end has no finite value (a ratio of 0: no wait at all at that rate)
        c = np.where(np.isfinite(c) & np.isfinite(fa_), c, 0.5 * (aa + bb))
        # never closer to an end than a step that can still decide convergence
        margin = np.minimum(step(aa, active), 0.25 * width)
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
