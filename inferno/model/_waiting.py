"""The waiting states of the tagged-request chain, stepped one event at a time (the chains whose
queue may fill while a request waits; see :class:`~inferno.model.percentiles.ResponseTime`)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]

__all__ = ["Waiting"]

#: events between two looks for rows and columns to stop stepping (each look costs a few sums)
_TRIM_EVERY = 4


class Waiting:
    """The waiting states stepped one event at a time, for chains whose queue may fill.

    ``w[i, j]``: the mass waiting with a = N + i requests ahead and j behind (n = a + 1 + j ≤ K).
    Only the columns j < ``cols`` can hold mass (one arrival per event), so only they are stepped.
    Two buffers take turns (no array is allocated per event); each has one row of zeros below the
    ``kept`` rows, so a departure from row i + 1 into row i is one shifted slice.
    """

    def __init__(
        self,
        lam: float,
        mu_n: float,
        n_b: int,
        n_max: int,
        kept: int,
        rate: float,
        accepted: F,
        negligible: float,
        first_row: int = 0,
    ) -> None:
        m = n_max - n_b
        i = np.arange(kept)[:, None]
        j = np.arange(m)[None, :]
        can_arrive = i + j + 1 <= m - 1
        self._stay = np.where(i + j <= m - 1, 1.0 - (mu_n + lam * can_arrive) / rate, 0.0)
        self._arrive = np.where(can_arrive, lam / rate, 0.0)
        self._depart = mu_n / rate
        self._first = n_b - 1  # joining with j behind: n = N + j in the system
        self._kept = kept
        self._negligible = negligible
        self._w: F | None = np.zeros((kept + 1, m))
        # an arrival seeing a = N + i ≥ N waits behind a (the rows i < first_row are not stepped
        # here: their waits are in closed form)
        self._w[first_row:kept, 0] = accepted[n_b + first_row : n_b + kept]
        self._next = np.zeros((kept + 1, m))
        self._tmp = np.empty((kept, m))
        self._cols = 1  # columns < _cols may hold mass
        self._rows = kept  # rows ≥ _rows and columns < _col0 are no longer stepped (_trim)
        self._row0 = first_row  # rows < _row0 hold nothing yet (one row down per event at most)
        self._col0 = 0
        self._steps = 0
        self._dropped = 0.0  # the mass those held when they were dropped (≤ 0.9 negligible)
        self._edge = 0.0  # the mass not let into new columns (≤ 0.1 negligible)
        self.mass = float(self._w.sum())

    def step_into(self, in_service: F) -> None:
        """One event: add the requests joining the batch to ``in_service``."""
        if self._w is None:
            return
        if self.mass < self._negligible:
            self._w, self.mass = None, 0.0
            return
        w, r1, c0, d = self._w, self._rows, self._col0, self._depart
        r0 = self._row0 = max(self._row0 - 1, 0)
        c, c1 = self._cols, min(self._cols + 1, w.shape[1])
        if c1 > c:  # a column more, unless what would flow into it is negligible (then dropped)
            edge = float((w[r0:r1, c - 1] * self._arrive[r0:r1, c - 1]).sum())
            if edge <= self._negligible * 1e-4 and self._edge + edge <= 0.1 * self._negligible:
                self._edge += edge
                c1 = c
        if r0 == 0:
            in_service[self._first + c0 : self._first + c] += w[0, c0:c] * d
        new, tmp = self._next[r0:r1, c0:c1], self._tmp[r0:r1, c0:c1]
        np.multiply(w[r0:r1, c0:c1], self._stay[r0:r1, c0:c1], out=new)
        np.multiply(w[r0 + 1 : r1 + 1, c0:c1], d, out=tmp)  # row r1 is zeros: none departs into
        new += tmp  # r1 − 1
        np.multiply(w[r0:r1, c0 : c1 - 1], self._arrive[r0:r1, c0 : c1 - 1], out=tmp[:, :-1])
        new[:, 1:] += tmp[:, :-1]
        self._w, self._next = self._next, w
        self._cols = c1
        self.mass = float(new.sum())
        self._steps += 1
        if self._steps % _TRIM_EVERY == 0:
            self._trim()

    def _trim(self) -> None:
        """Stop stepping the top rows and the left columns once what they hold, with all
        dropped before, is below 0.9 ``negligible``: nothing flows back into them (departures
        move mass down a row, arrivals right a column), so P(R > t) is low by at most that much.
        (A column is added on the right only when what flows into it is more than 1e-4
        ``negligible``; what does not flow, at most 0.1 ``negligible`` in all, is dropped.)"""
        w, c1 = self._w, self._cols
        assert w is not None
        while self._rows > self._row0 + 1:
            top = float(w[self._rows - 1, self._col0 : c1].sum())
            if self._dropped + top > 0.9 * self._negligible:
                break
            self._dropped += top
            self._rows -= 1
            w[self._rows, self._col0 : c1] = 0.0  # both buffers: the row below the kept ones
            self._next[self._rows, self._col0 : c1] = 0.0  # is read as zeros
        while self._col0 < c1 - 1:
            left = float(w[self._row0 : self._rows, self._col0].sum())
            if self._dropped + left > 0.9 * self._negligible:
                break
            self._dropped += left
            self._col0 += 1
