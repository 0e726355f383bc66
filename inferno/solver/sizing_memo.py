"""A bounded memo of candidates' sizing across solves: :class:`SizingMemo`.

A candidate's λ* (and what bounds it) does not depend on its server's load: only on the profile
on that accelerator, the request shape, the batch limit and queue, the SLO targets, the model's
options and the width of the block its sums run over (:meth:`OperatingPoints.widths`). The
optimizer service is called every control period with the same static data and new rates, so
the service keeps one memo across requests and the steady state sizes nothing again.

The key of a candidate is exactly those inputs, bit for bit (its parameter row, the block width
included): an entry is found by a 64-bit hash of the row and used only when the stored row is
bit-equal, so nothing ever invalidates it — a changed profile, SLO or token count is another
key. Entries are evicted least recently used first (by solve) beyond ``max_entries``.

Exactness: a solve of the servers the entries were sized with (the steady state: the same
servers at new rates) gives, bit for bit, the answer of a solve without the memo (tested).
Candidates sized in other company (servers added or changed in between) may differ from a memo-less
solve in the last bits of λ* (within 1e-12 relative: ``tests/solver/test_sizing_memo.py``), as
a memo-less solve's own do when the servers around them change: the chain's matrix-vector
product (BLAS) rounds by a row's position in its block.

The memo is an object its owner passes in (:func:`inferno.solver.solve`'s ``memo``); nothing
here is global. It is safe to share between threads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..model.sizing import BOUNDS, Sizing
from .candidate_reuse import StaticTables

F = NDArray[np.float64]
Idx = NDArray[np.intp]
U64 = NDArray[np.uint64]

__all__ = ["MemoStats", "SizingMemo", "pack_sizing", "unpack_sizing"]

logger = logging.getLogger(__name__)

#: the detail targets stored, in :data:`inferno.model.sizing._TARGETS` order
_DETAIL = ("itl", "ttft", "ttw", "latency")
#: stored per entry: rate, feasible, bound code, low, high, the 4 details, μ(1)
VALUES = 10
#: requests remembered for :meth:`SizingMemo.recall`
REMEMBERED = 4


@dataclass(frozen=True)
class MemoStats:
    entries: int
    max_entries: int
    hits: int
    misses: int
    evictions: int


def pack_sizing(sizing: Sizing, mu_1: F) -> F:
    """A sizing (and the points' μ(1)) as rows of :data:`VALUES` floats."""
    code = np.zeros(sizing.rate.shape[0])
    for k, name in enumerate(BOUNDS):
        code[sizing.bound == name] = k
    return np.column_stack(
        [
            sizing.rate,
            sizing.feasible.astype(np.float64),
            code,
            sizing.low,
            sizing.high,
            *(sizing.detail[t] for t in _DETAIL),
            mu_1,
        ]
    )


def unpack_sizing(values: F) -> tuple[Sizing, F]:
    """:func:`pack_sizing`'s rows back as a sizing and μ(1)."""
    v = np.ascontiguousarray(values.T)
    sizing = Sizing(
        rate=v[0],
        feasible=v[1] != 0.0,
        bound=np.array(BOUNDS)[v[2].astype(np.intp)],
        low=v[3],
        high=v[4],
        detail={t: v[5 + k] for k, t in enumerate(_DETAIL)},
    )
    return sizing, v[9]


class SizingMemo:
    """At most ``max_entries`` sized candidates, keyed by their full input rows."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = int(max_entries)
        self._lock = threading.Lock()
        self._sorted = np.zeros(0, dtype=np.uint64)  # the held hashes, sorted
        self._sorted_slot = np.zeros(0, dtype=np.intp)  # ... and their slots
        self._keys = np.zeros((0, 0))
        self._values = np.zeros((0, VALUES))
        self._hash = np.zeros(0, dtype=np.uint64)
        self._stamp = np.zeros(0, dtype=np.int64)
        self._used = 0
        #: the last few requests, the most recent first (:meth:`remember`)
        self._last: list[tuple[Idx, Idx, F, Idx]] = []
        self._clock = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        #: the last solves' rate-free candidate columns (:mod:`.candidate_reuse`)
        self.tables = StaticTables()

    def __len__(self) -> int:
        return self._used

    def stats(self) -> MemoStats:
        with self._lock:
            return MemoStats(
                self._used, self.max_entries, self._hits, self._misses, self._evictions
            )

    def clear(self) -> None:
        with self._lock:
            self._reset(0)
        self.tables.clear()

    def _reset(self, width: int) -> None:
        """Empty, for keys of ``width`` columns (the lock held)."""
        self._sorted = np.zeros(0, dtype=np.uint64)
        self._sorted_slot = np.zeros(0, dtype=np.intp)
        self._used = 0
        self._last.clear()
        self._keys = np.zeros((0, width))
        self._values = np.zeros((0, VALUES))
        self._hash = np.zeros(0, dtype=np.uint64)
        self._stamp = np.zeros(0, dtype=np.int64)

    def reused(self, rows: int) -> None:
        """Count ``rows`` found again without a look-up (a reused candidate table)."""
        with self._lock:
            self._hits += rows

    def lookup(self, keys: F, hashes: U64) -> tuple[NDArray[np.bool_], F, Idx]:
        """Which rows of ``keys`` (with their ``hashes``) are held, their values (rows of
        :data:`VALUES`; undefined where not held) and slots (−1 where not held)."""
        n = keys.shape[0]
        out = np.zeros((n, VALUES))
        with self._lock:
            self._clock += 1
            if self._used == 0 or keys.shape[1] != self._keys.shape[1]:
                self._misses += n
                return np.zeros(n, dtype=bool), out, np.full(n, -1, dtype=np.intp)
            slots = self._slots_of(hashes)
            found = slots >= 0
            at = slots[found]
            # the hash found the slot; the row's bits decide (a collision is a miss)
            mine = keys if at.size == n else keys[found]  # every row found: no copy
            same = (mine.view(np.uint64) == self._keys[at].view(np.uint64)).all(axis=1)
            found[np.flatnonzero(found)[~same]] = False
            at = slots[found]
            out[found] = self._values[at]
            self._stamp[at] = self._clock
            hits = int(found.sum())
            self._hits += hits
            self._misses += n - hits
        return found, out, np.where(found, slots, -1)

    def recall(self, key: F, options: F) -> tuple[Idx, Idx, F, F] | None:
        """The last request again (the steady state: the same candidates, new rates)? If every
        row of ``key`` (and the ``options`` columns) is bit-equal to what the slots remembered by
        :meth:`remember` hold: the distinct rows' first index, every row's distinct row, the
        distinct rows' widths and values. None otherwise (then :meth:`lookup` row by row)."""
        with self._lock:
            if self._keys.shape[1] != key.shape[1] + 1 + options.size:
                return None
            for first, inverse, widths, slots in self._last:
                if inverse.size != key.shape[0]:
                    continue
                every = slots[inverse]
                if every.size and int(every.max()) >= self._used:
                    continue
                held = self._keys[every]
                expect = np.column_stack(
                    [key, widths[inverse], np.broadcast_to(options, (every.size, options.size))]
                )
                if not (held.view(np.uint64) == expect.view(np.uint64)).all():
                    continue
                self._clock += 1
                self._stamp[slots] = self._clock
                self._hits += slots.size
                return first, inverse, widths, self._values[slots]
            return None

    def remember(self, first: Idx, inverse: Idx, widths: F, slots: Idx) -> None:
        """The request just looked up (its distinct rows held at ``slots``), for :meth:`recall`:
        the last :data:`REMEMBERED` requests, so that a cycle's solve, its stay decisions' and
        the tuning guard's solves (tuned and base profiles: as many rows, other keys) are each
        found again. Slots reused since are no harm: a recall compares the rows' bits."""
        with self._lock:
            if (slots < 0).any():
                return
            # the same request again replaces its entry (not a second copy)
            kept = [
                e
                for e in self._last
                if not (e[3].size == slots.size and np.array_equal(e[3], slots))
            ]
            self._last[:] = [(first, inverse, widths, slots), *kept][:REMEMBERED]

    def store(self, keys: F, hashes: U64, values: F) -> Idx:
        """Hold these rows, evicting the least recently used beyond the bound; their slots (−1
        for a row not held: a second row of one hash, or more rows than the bound)."""
        held = np.full(keys.shape[0], -1, dtype=np.intp)
        with self._lock:
            if keys.shape[1] != self._keys.shape[1]:  # another key layout: start again
                self._reset(keys.shape[1])
            _, first = np.unique(hashes, return_index=True)  # one row per hash
            first = np.sort(first)[: self.max_entries]
            keys, hashes, values = keys[first], hashes[first], values[first]
            known = self._slots_of(hashes)
            old = known >= 0  # a hash held for another row: that slot takes the new row
            slots = np.empty(hashes.size, dtype=np.intp)
            slots[old] = known[old]
            new = int((~old).sum())
            slots[~old] = self._free_slots(new, protect=known[old])
            self._grow(int(slots.max()) + 1 if slots.size else 0, keys.shape[1])
            self._keys[slots] = keys
            self._values[slots] = values
            self._hash[slots] = hashes
            self._stamp[slots] = self._clock
            hashed = self._hash[: self._used]
            order = np.argsort(hashed, kind="stable")
            self._sorted, self._sorted_slot = hashed[order], order.astype(np.intp)
            held[first] = slots
        return held

    def _slots_of(self, hashes: U64) -> Idx:
        """The slot holding each hash (−1: none)."""
        if self._sorted.size == 0:
            return np.full(hashes.size, -1, dtype=np.intp)
        pos = np.minimum(np.searchsorted(self._sorted, hashes), self._sorted.size - 1)
        out: Idx = np.where(self._sorted[pos] == hashes, self._sorted_slot[pos], -1)
        return out

    def _free_slots(self, m: int, protect: Idx) -> Idx:
        """``m`` slots to fill: unused ones, then the least recently used (evicted) among those
        held before (never a slot just handed out, nor one of ``protect``)."""
        held = self._used
        fresh = min(m, self.max_entries - held)
        out = np.arange(held, held + fresh, dtype=np.intp)
        self._used += fresh
        evict = m - fresh
        if evict <= 0:
            return out
        stamp = self._stamp[:held].copy()
        stamp[protect] = np.iinfo(np.int64).max
        victims = np.argpartition(stamp, evict - 1)[:evict].astype(np.intp)
        self._evictions += evict
        return np.concatenate([out, victims])

    def _grow(self, need: int, width: int) -> None:
        have = self._keys.shape[0]
        if need <= have:
            return
        size = min(self.max_entries, max(need, 2 * have, 1024))
        keys = np.zeros((size, width))
        keys[:have] = self._keys
        values = np.zeros((size, VALUES))
        values[:have] = self._values
        hashes = np.zeros(size, dtype=np.uint64)
        hashes[:have] = self._hash
        stamp = np.zeros(size, dtype=np.int64)
        stamp[:have] = self._stamp
        self._keys, self._values, self._hash, self._stamp = keys, values, hashes, stamp
