"""The request lengths' spread per point, as the accurate model takes it (docs/model.md,
"Accurate mode"): the output lengths' CV and family, the input lengths' CV and family, and the
most output tokens a request gets. One value of this travels from the solver's candidates to
the points the model builds (:meth:`.accurate.AccuratePoints.build_accurate`), taken per point
as the candidates are.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]
B = NDArray[np.bool_]
Idx = NDArray[np.intp]

__all__ = ["LengthSpread"]


@dataclass(frozen=True, slots=True)
class LengthSpread:
    """Per point, arrays of shape (C,): the output lengths' coefficient of variation (NaN: the
    model's default) and whether they are lognormal (else gamma); the same of the input
    lengths (CV NaN: fixed); the most output tokens a request gets (NaN: no cap)."""

    out_cv: F
    out_lognormal: B
    in_cv: F
    in_lognormal: B
    out_max: F

    @classmethod
    def of(
        cls,
        c: int,
        *,
        out_cv: F | None = None,
        out_lognormal: B | None = None,
        in_cv: F | None = None,
        in_lognormal: B | None = None,
        out_max: F | None = None,
    ) -> LengthSpread:
        """``c`` points' spread; an array left out is every point's default."""

        def floats(v: F | None) -> F:
            out: F = np.full(c, np.nan) if v is None else np.asarray(v, dtype=np.float64)
            return out

        def flags(v: B | None) -> B:
            out: B = np.zeros(c, dtype=bool) if v is None else np.asarray(v, dtype=bool)
            return out

        spread = cls(
            floats(out_cv),
            flags(out_lognormal),
            floats(in_cv),
            flags(in_lognormal),
            floats(out_max),
        )
        for f in fields(cls):
            if getattr(spread, f.name).shape != (c,):
                raise ValueError(f"{f.name}: expected shape ({c},)")
        return spread

    def __len__(self) -> int:
        return int(self.out_cv.size)

    def take(self, idx: Idx | slice) -> LengthSpread:
        """The spread of the points ``idx`` (repeats allowed)."""
        return LengthSpread(*(getattr(self, f.name)[idx] for f in fields(self)))

    def columns(self) -> list[F]:
        """Every field as a float column (the families 0/1): part of a point's key."""
        return [np.asarray(getattr(self, f.name), dtype=np.float64) for f in fields(self)]
