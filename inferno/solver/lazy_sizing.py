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
2. size every other candidate whose floor is at most the best value round 1 found (all of them
   where round 1 found none feasible).

A candidate left unsized has a floor above a value some sized candidate reaches, so it is neither
the best nor tied with it: the unlimited solve's choice is the one the full table gives.

Not done, and why: a candidate could beat the best only with λ* ≥ demand / R (R the most
replicas within the best value), and one evaluation at that rate would rule out most of round 2
if the metrics grew with the rate. The accurate model's do not everywhere (a G1 server's ITL can
rise and fall again with the rate as joins stall the batch; a TTFT quantile at an edge of the
input lengths' bins sits at its target over a range of rates), and the search, which brackets
between the ends of its range, can then find λ* above a rate where a target is missed: the one
evaluation would rule out a candidate the full table chooses. A table with unsized candidates is
*incomplete*; whatever needs the others (the greedy under capacity, the MILP, ``explain``, a
re-solve off a refused MPS pool) asks for the complete table
(:meth:`~.candidates.CandidateTable.completed`), which sizes the rest. Distinct rows are sized
once, as :func:`.sized_points.sized_points` does, but built on their own (blocks of their own N,
fewer and fuller than the whole build's): λ* is the same root, within the search's precision
(1e-8 relative), not the same bits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..model.points import OperatingPoints
from ..model.sizing import HIGH_FRACTION, SloArrays, size
from ..system import System
from .replica_need import replicas_needed
from .transition_value import value_floor, values

if TYPE_CHECKING:  # the rate-free columns hold a LazySizing: the name only
    from .candidate_reuse import StaticCandidates

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["LazySizing", "best_values", "size_contenders", "worth_sizing"]


class LazySizing:
    """λ*, feasibility and bound of C candidates whose distinct rows (of capacity ``mu_n``; each
    candidate's in ``inverse``) are built (``build``) and sized when first asked for
    (:meth:`ensure`). The arrays
    ``rate``, ``feasible`` and ``bound`` are filled in place (NaN, False, "" until sized);
    ``sized`` says which are. Safe to share between threads (a solve's reuse of the rate-free
    columns: :mod:`.candidate_reuse`)."""

    def __init__(
        self, mu_n: F, slo: SloArrays, inverse: Idx, build: Callable[[Idx], OperatingPoints]
    ) -> None:
        c = inverse.size
        self._build = build
        self._slo = slo
        self._inverse = inverse
        self._done = np.zeros(mu_n.size, dtype=bool)
        self._lock = threading.Lock()
        self.rate = np.full(c, np.nan)
        self.feasible = np.zeros(c, dtype=bool)
        self.bound = np.full(c, "", dtype="<U8")
        self.sized = np.zeros(c, dtype=bool)
        #: the top of each candidate's search: λ* ≤ this (/ms)
        self.upper: F = HIGH_FRACTION * mu_n[inverse]

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
            sized = size(self._build(todo), self._slo.take(todo))
            self._done[todo] = True
            where = np.full(self._done.size, -1, dtype=np.intp)
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


def best_values(server: Idx, value: F, usable: NDArray[np.bool_], servers: int) -> F:
    """Each server's least ``value`` among its ``usable`` (sized, feasible) candidates (inf:
    none)."""
    best = np.full(servers, np.inf)
    np.minimum.at(best, server[usable], value[usable])
    return best


def size_contenders(system: System, st: StaticCandidates, lazy: LazySizing, d: F) -> None:
    """Size the candidates of ``st`` that can be their server's best at demand ``d`` (/ms, per
    candidate): the module's rounds."""
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.ceil(d / lazy.upper * (1.0 - 1e-12))
    least = np.maximum(np.where(d > 0, np.maximum(need, 1.0), 0.0), st.min_r)
    floor = value_floor(system, st.server_idx, st.names, least, st.unit_cost)
    n = len(system.servers)
    lazy.ensure(worth_sizing(st.server_idx, floor, n))
    rate, sized_feasible, _, _ = lazy.snapshot()
    replicas, feasible, _, _ = replicas_needed(d, rate, sized_feasible, st.min_r, st.max_r)
    value = values(system, st.server_idx, st.names, replicas, st.unit_cost * replicas)
    best = best_values(st.server_idx, value, feasible, n)
    lazy.ensure(np.flatnonzero((floor <= best[st.server_idx]) & ~lazy.sized))
