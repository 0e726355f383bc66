"""The rate-free part of a candidate table, reused across solves of the same servers.

A candidate's pairing, sizing (λ*, what bounds it), operating points, batch limit and costs per
replica depend on the static data and on each server's model, class, request shape and replica
and batch limits, never on its rate. The optimizer service is asked every control period about
the same servers at new rates: when a solve's :func:`static_key` equals one of the last two
solves' (kept by the :class:`~.sizing_memo.SizingMemo` its owner passes in; the tables kept
hold at most as many candidates as the memo, ``INFERNO_SIZING_MEMO_ENTRIES``, about 270 bytes
each), that solve's :class:`StaticCandidates` is used as is and only the rate-dependent columns
(demand, replicas, cost, the transition value, the ranking) are computed again. The reused
values are the ones the same servers sized again give: the answers are the same, bit for bit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..system import System

if TYPE_CHECKING:  # the memo holds the tables and is imported by these: names only
    from .lazy_sizing import LazySizing
    from .serving_config import ServingDecision
    from .sized_points import LazyPoints

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["StaticCandidates", "StaticTables", "static_key"]

logger = logging.getLogger(__name__)

#: solves remembered (a period's solve and its stay decisions')
KEPT = 2


@dataclass(frozen=True)
class StaticCandidates:
    """The columns of a candidate table that do not depend on the servers' rates."""

    server_idx: Idx
    acc_i: Idx  # index of the accelerator in the sorted names
    names: NDArray[np.object_]
    acc_type: NDArray[np.object_]
    acc_count: F
    multiplicity: F
    unit_cost: F
    points: LazyPoints
    n_memory: F
    rate: F
    feasible: NDArray[np.bool_]
    bound: NDArray[np.str_]
    min_r: F
    max_r: F
    out_tok: F  # per server (a throughput class's demand is its TPS over these)
    reasons: tuple[str, ...]  # per server: why it has no candidate at all ("" if it has)
    priority: tuple[int, ...]
    serving: Mapping[int, ServingDecision]
    looked_up: int  # the distinct rows the sizing memo was asked for (counted as hits again)
    #: λ* sized when asked for (an unlimited solve's: :mod:`.lazy_sizing`); ``rate``,
    #: ``feasible`` and ``bound`` are its arrays then, filled in place. None: all sized
    sizing: LazySizing | None = None


def static_key(system: System, floats: F) -> tuple[Any, ...]:
    """What the rate-free columns depend on: the static data, each server's model, class,
    limits and kept accelerator, and ``floats`` (its request-shape columns) bit for bit."""
    shape = [
        (
            s.model,
            s.service_class,
            s.max_batch_size,
            s.max_queue_size,
            s.min_replicas,
            s.max_replicas,
            s.current.accelerator if s.keep_accelerator else None,
            (s.batch_tolerance, s.current.accelerator, s.current.max_batch)
            if s.batch_tolerance is not None
            else None,
        )
        for s in system.servers
    ]
    return (
        system.profiles,
        system.classes,
        system.accelerators,
        system.optimizer,
        shape,
        floats.tobytes(),
    )


class StaticTables:
    """The last :data:`KEPT` solves' rate-free columns, by their :func:`static_key`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[tuple[tuple[Any, ...], StaticCandidates]] = []

    def find(self, key: tuple[Any, ...]) -> StaticCandidates | None:
        with self._lock:
            for i, (k, found) in enumerate(self._held):
                # the cheap parts first: the sizes, the float columns' bytes
                if len(k[4]) == len(key[4]) and k[5] == key[5] and k == key:
                    self._held.append(self._held.pop(i))  # the most recent last
                    return found
        return None

    def keep(self, key: tuple[Any, ...], static: StaticCandidates, rows: int) -> None:
        """Keep ``static`` (under ``key``), the oldest dropped beyond :data:`KEPT` tables or
        ``rows`` candidates in all (none kept when it alone has more)."""
        with self._lock:
            self._held.append((key, static))
            del self._held[:-KEPT]
            while self._held and sum(t.rate.size for _, t in self._held) > rows:
                del self._held[0]

    def clear(self) -> None:
        with self._lock:
            self._held.clear()
