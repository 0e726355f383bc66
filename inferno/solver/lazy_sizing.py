"""Sizing only the candidates that can win: λ* computed when a solve needs it.

Without capacity limits each server takes its best candidate, ranked by Inferno's transition value
(then cost, then name), and every other candidate is computed for nothing. With the accurate model
sizing is most of a solve (each G2 candidate whose lengths vary averages its queue over the
batch's compositions: bench/README.md, "G2 servers of distinct lengths"), so a solve that needs
only the best sizes only the candidates that might be it.

The bound that makes it exact: λ* never exceeds the top of its search, 0.999 μ(N)
(:data:`~inferno.model.sizing.HIGH_FRACTION`), so ⌈demand / (0.999 μ(N))⌉ replicas are a lower
bound on what a candidate needs, and so its cost and its transition value
(:func:`.transition_value.value_floor`) have lower bounds too. Two rounds:

1. size each server's candidates of the least value floor;
2. size every candidate whose floor is at most the best value round 1 found (all of them where
   round 1 found none feasible).

A candidate left unsized has a floor above a value some sized candidate reaches, so it is neither
the best nor tied with it: the unlimited solve's choice is the one the full table gives. A table
with unsized candidates is *incomplete*; whatever needs the others (the greedy under capacity, the
MILP, ``explain``, a re-solve off a refused MPS pool) asks for the complete table
(:meth:`~.candidates.CandidateTable.completed`), which sizes the rest. Distinct rows are sized
once, as :func:`.sized_points.sized_points` does, at the full build's block widths, so a candidate
sized in a round has the bits the full sizing gives it.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from ..model.points import OperatingPoints
from ..model.sizing import HIGH_FRACTION, SloArrays, size

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["LazySizing", "worth_sizing"]


class LazySizing:
    """λ*, feasibility and bound of C candidates whose distinct rows (``unique``, each
    candidate's in ``inverse``) are sized when first asked for (:meth:`ensure`). The arrays
    ``rate``, ``feasible`` and ``bound`` are filled in place (NaN, False, "" until sized);
    ``sized`` says which are. Safe to share between threads (a solve's reuse of the rate-free
    columns: :mod:`.candidate_reuse`)."""

    def __init__(self, unique: OperatingPoints, slo: SloArrays, inverse: Idx) -> None:
        c = inverse.size
        self._unique = unique
        self._slo = slo
        self._inverse = inverse
        self._done = np.zeros(len(unique), dtype=bool)
        self._lock = threading.Lock()
        self.rate = np.full(c, np.nan)
        self.feasible = np.zeros(c, dtype=bool)
        self.bound = np.full(c, "", dtype="<U8")
        self.sized = np.zeros(c, dtype=bool)
        #: the top of each candidate's search: λ* ≤ this (/ms)
        self.upper: F = HIGH_FRACTION * unique.mu_n[inverse]

    @property
    def complete(self) -> bool:
        return bool(self._done.all())

    def snapshot(self) -> tuple[F, NDArray[np.bool_], NDArray[np.str_], bool]:
        """Copies of ``rate``, ``feasible`` and ``bound`` as they are now, and whether every
        candidate is sized in them, taken together."""
        with self._lock:
            done = bool(self._done.all())
            return self.rate.copy(), self.feasible.copy(), self.bound.copy(), done

    def ensure(self, idx: Idx | None = None) -> None:
        """Size the candidates ``idx`` (all: None) not sized yet."""
        with self._lock:
            rows = self._inverse if idx is None else self._inverse[idx]
            todo = np.unique(rows[~self._done[rows]])
            if todo.size == 0:
                return
            sized = size(self._unique.subset(todo, same_width=True), self._slo.take(todo))
            self._done[todo] = True
            where = np.full(len(self._unique), -1, dtype=np.intp)
            where[todo] = np.arange(todo.size)
            k = where[self._inverse]
            new = k >= 0
            self.rate[new] = sized.rate[k[new]]
            self.feasible[new] = sized.feasible[k[new]]
            self.bound[new] = sized.bound[k[new]]
            self.sized[new] = True


def worth_sizing(server: Idx, floor: F, servers: int) -> Idx:
    """Round 1's candidates: each server's of the least value ``floor`` (ties all kept)."""
    least = np.full(servers, np.inf)
    np.minimum.at(least, server, floor)
    return np.flatnonzero(floor <= least[server])


def within_best(server: Idx, floor: F, value: F, usable: NDArray[np.bool_], servers: int) -> Idx:
    """Round 2's candidates: those whose ``floor`` is at most the best ``value`` among their
    server's ``usable`` (sized, feasible) ones (every candidate of a server with none)."""
    best = np.full(servers, np.inf)
    np.minimum.at(best, server[usable], value[usable])
    return np.flatnonzero(floor <= best[server])
