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
2. of every other candidate whose floor is at most the best value round 1 found, size those
   that can still beat it: a candidate beats the best only with at most R replicas
   (:func:`.transition_value.most_replicas`), i.e. with λ* ≥ demand / R, so one evaluation at
   that rate (:func:`~inferno.model.sizing.below`) rules out those that miss a target there,
   where the metrics grow with the rate. Where round 1 found nothing feasible, every candidate
   is sized.

A candidate left unsized either has a floor above a value some sized candidate reaches or cannot
reach the rate it would need to beat it, so it is neither the best nor tied with it: the
unlimited solve's choice is the one the full table gives, wherever the search's own premise
holds. The one evaluation judges only points whose metrics grow with the rate: not those whose
ITL can rise and fall again (:meth:`~inferno.model.points.OperatingPoints.may_fall`: a G1
server's joins stall the batch at middling loads), nor quantile targets (a TTFT quantile on an
edge of the input lengths' bins sits at its target, within an ulp, over a range of rates).
Where a metric misses its target below a rate and meets it again above (a dip the search,
bracketing between the ends of its range, does not see), the evaluation leaves out a candidate
the full table keeps at a λ* above the miss: a replica there would see the miss, since its share
of the demand is anywhere below λ*, so the lazy choice is the one its SLOs ask for, and the
capacity-limited solvers, which size the whole table, keep the search's.

A table with unsized candidates is *incomplete*; whatever needs the others (the greedy under
capacity, the MILP, ``explain``, a re-solve off a refused MPS pool) asks for the complete table
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
from ..model.sizing import HIGH_FRACTION, SloArrays, below, size
from ..system import System
from .replica_need import replicas_needed
from .transition_value import most_replicas, value_floor, values

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

    def ensure(self, idx: Idx | None = None, *, reach: F | None = None) -> None:
        """Size the candidates ``idx`` (all: None) not sized yet; with ``reach`` (/ms, one per
        candidate of ``idx``), only those whose λ* may be at least it: each distinct row is
        judged once, at the least rate asked of it (:func:`~inferno.model.sizing.below`), and
        a row ruled out stays unsized."""
        with self._lock:
            rows = self._inverse if idx is None else self._inverse[idx]
            fresh = ~self._done[rows]
            todo, back = np.unique(rows[fresh], return_inverse=True)
            if todo.size == 0:
                return
            points, slo = self._build(todo), self._slo.take(todo)
            if reach is not None:
                least = np.full(todo.size, np.inf)
                with np.errstate(invalid="ignore"):  # NaN stays NaN: sized
                    np.minimum.at(least, back.reshape(-1), reach[fresh])
                keep = np.flatnonzero(~below(points, slo, least))
                if keep.size == 0:
                    return
                if keep.size < todo.size:
                    todo, points, slo = todo[keep], points.subset(keep), slo.take(keep)
            sized = size(points, slo)
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
    maybe = np.flatnonzero((floor <= best[st.server_idx]) & ~lazy.sized)
    if maybe.size == 0:
        return
    # a candidate beats the best only with at most R replicas, i.e. with λ* ≥ d/R (with the
    # replica count's own rounding, replica_need): one evaluation at that rate rules most out
    mine = best[st.server_idx[maybe]]
    most = most_replicas(system, st.server_idx[maybe], st.names[maybe], st.unit_cost[maybe], mine)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = np.where(most >= 0, d[maybe] * (1.0 - 1e-12) / most, np.inf)
    open_ = ~np.isfinite(mine) | (d[maybe] <= 0)  # no best yet, or idle: sized whole
    lazy.ensure(maybe, reach=np.where(open_, np.nan, at))
