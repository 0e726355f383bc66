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
   (:func:`.transition_value.most_replicas`), i.e. with λ* ≥ demand / R, and metrics grow with
   the rate, so one evaluation at that rate (:meth:`LazySizing.reach`, a millionth below it)
   rules out those that miss a target there. Where round 1 found nothing feasible, every
   candidate is sized.

A candidate left unsized either has a floor above a value some sized candidate reaches or cannot
reach the rate it would need to beat it, so it is neither the best nor tied with it: the
unlimited solve's choice is the one the full table gives. A table with unsized candidates is
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
from ..model.sizing import HIGH_FRACTION, SloArrays, meets, size
from ..system import System
from .replica_need import replicas_needed
from .transition_value import most_replicas, value_floor, values

if TYPE_CHECKING:  # the rate-free columns hold a LazySizing: the name only
    from .candidate_reuse import StaticCandidates

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["REACH_MARGIN", "LazySizing", "best_values", "size_contenders", "worth_sizing"]

#: a candidate is judged on reaching a rate this fraction below the one it would need to win:
#: λ* is searched to 1e-8 relative, so a root within that of the rate is never ruled out by
#: the search's own rounding
REACH_MARGIN = 1e-6


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

    def reach(self, idx: Idx, rate: F) -> NDArray[np.bool_]:
        """Whether each candidate of ``idx`` may have λ* ≥ ``rate`` (/ms): one evaluation of
        each distinct row, at the least rate asked of it, where sizing searches (every
        mean-type target met there: metrics grow with the rate, so a row that misses there
        misses every rate asked of it; one that meets it says yes to all). A rate that is not a
        positive number, or a latency-quantile target (one evaluation does not judge it), says
        yes; a rate above the search's top, no."""
        rows = self._inverse[idx]
        plain = (rate > 0) & np.isfinite(rate) & ~np.isfinite(self._slo.latency_quantile[rows])
        out = ~plain
        ask = np.flatnonzero(plain & (rate <= self.upper[idx]))
        if ask.size == 0:
            return out
        r = rows[ask]
        order = np.lexsort((rate[ask], r))  # by row, then rate: each row's least rate first
        lead = np.ones(order.size, dtype=bool)
        lead[1:] = r[order[1:]] != r[order[:-1]]
        least = ask[order[lead]]
        met = meets(self._build(rows[least]), self._slo.take(rows[least]), rate[least])
        out[ask] = np.isin(r, rows[least][met])
        return out

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
    maybe = np.flatnonzero((floor <= best[st.server_idx]) & ~lazy.sized)
    if maybe.size == 0:
        return
    # a candidate beats the best only with at most R replicas, i.e. with λ* ≥ d/R: one
    # evaluation at that rate rules most out (a little below it: never a root within the
    # search's precision)
    mine = best[st.server_idx[maybe]]
    most = most_replicas(system, st.server_idx[maybe], st.names[maybe], st.unit_cost[maybe], mine)
    with np.errstate(divide="ignore", invalid="ignore"):
        at = d[maybe] * (1.0 - 1e-12) / most * (1.0 - REACH_MARGIN)
    open_ = ~np.isfinite(mine) | (d[maybe] <= 0)  # no best yet, or idle: sized whole
    lazy.ensure(maybe[open_ | ((most >= 0) & lazy.reach(maybe, at))])
