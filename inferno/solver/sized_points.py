"""The candidates' operating points and their sizing (:func:`sized_points`), with the same
point under the same targets sized once, and with a :class:`~.sizing_memo.SizingMemo` not sized
again across solves; the points themselves are built when first needed (:class:`LazyPoints`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ..model.accurate import build_points, capacities
from ..model.length_spread import LengthSpread
from ..model.points import OperatingPoints
from ..model.profile_arrays import ProfileArrays, batch_size, block_widths
from ..model.sizing import Sizing, SloArrays, size
from .lazy_sizing import LazySizing
from .sizing_memo import SizingMemo, pack_sizing, unpack_sizing

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["LazyPoints", "lazily_sized_points", "sized_points"]


class LazyPoints:
    """The candidates' operating points, built when first asked for (``full``). With ``part``
    (points built again for some candidates at given block widths, which evaluate to the same
    bits as in the full build), the metrics of a few candidates need no full build: a solve
    whose sizing came from a :class:`~.sizing_memo.SizingMemo` builds only its chosen ones."""

    def __init__(
        self,
        full: Callable[[], OperatingPoints],
        n_batch: F,
        mu_1: F,
        *,
        built: OperatingPoints | None = None,
        part: Callable[[Idx, F], OperatingPoints] | None = None,
        widths: F | None = None,
    ) -> None:
        self._full = full
        self._built = built
        self._part = part
        self._widths = widths
        self.n_batch = n_batch  #: N per candidate
        self.mu_1 = mu_1  #: μ(1) per candidate, /ms

    @property
    def full(self) -> OperatingPoints:
        if self._built is None:
            self._built = self._full()
        return self._built

    def of(self, idx: Idx, *, same_width: bool = False) -> OperatingPoints:
        """The points ``idx`` as ``full.subset(idx, same_width=...)`` gives them."""
        if self._built is not None or self._part is None or self._widths is None:
            return self.full.subset(idx, same_width=same_width)
        if not same_width and idx.size != 1:  # the subset's own widths: not kept here
            return self.full.subset(idx)
        return self._part(idx, self._widths[idx] if same_width else self.n_batch[idx] + 1.0)


#: odd 64-bit multipliers of the rows' hash (any fixed odd numbers do: collisions are checked)
_HASH_MULTIPLIERS = np.array(
    [(0x9E3779B97F4A7C15 * (2 * i + 1) + (i << 33)) % 2**64 | 1 for i in range(64)],
    dtype=np.uint64,
)


def _row_hashes(rows: F) -> NDArray[np.uint64]:
    """A 64-bit hash of each row's bits (at most 64 columns): each value's bits mixed (those of
    small integers sit in the top bits), then summed with fixed odd multipliers, mod 2^64."""
    bits = np.ascontiguousarray(rows, dtype=np.float64).view(np.uint64)
    mixed = bits ^ (bits >> np.uint64(32))
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(29)
    mixed *= _HASH_MULTIPLIERS[: bits.shape[1]]  # numpy's uint64 matmul is slow: multiply, sum
    h: NDArray[np.uint64] = mixed.sum(axis=1, dtype=np.uint64)  # wraps mod 2^64
    h ^= h >> np.uint64(32)
    return h


def _first_of_equal_rows(
    key: F, hashes: NDArray[np.uint64] | None = None
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """For the rows of ``key``: the index of each distinct row's first occurrence, and for
    every row the position of its distinct row among those (rows are equal when their bytes
    are). Each row is hashed to 64 bits (its values' bits mixed, then summed with fixed odd
    multipliers, mod 2^64): rows of distinct hashes are distinct, so all-distinct rows (servers
    whose request shapes differ) cost a sort of the hashes; rows of one hash are checked to be
    equal, and only if two distinct rows share a hash are they grouped by a dict on their
    bytes (the dict alone took 0.2 s of a 10,000-server solve; ``np.unique(axis=0)`` more)."""
    rows = np.ascontiguousarray(key, dtype=np.float64)
    n = rows.shape[0]
    if n == 0 or rows.shape[1] > _HASH_MULTIPLIERS.size:
        return _first_of_equal_rows_dict(rows)
    bits = rows.view(np.uint64)
    h = _row_hashes(rows) if hashes is None else hashes
    if (np.diff(np.sort(h)) != 0).all():  # every row distinct
        every = np.arange(n, dtype=np.intp)
        return every, every.copy()
    order = np.argsort(h)
    new_hash = np.ones(n, dtype=bool)
    new_hash[1:] = h[order[1:]] != h[order[:-1]]
    starts = np.flatnonzero(new_hash)
    first_of_hash = np.minimum.reduceat(order, starts)  # each hash's first row
    which = np.empty(n, dtype=np.intp)
    which[order] = np.cumsum(new_hash) - 1
    if not (bits == bits[first_of_hash[which]]).all():  # a collision: two rows, one hash
        return _first_of_equal_rows_dict(rows)
    by_first = np.argsort(first_of_hash)  # distinct rows in order of first occurrence
    rank = np.empty(by_first.size, dtype=np.intp)
    rank[by_first] = np.arange(by_first.size)
    return first_of_hash[by_first].astype(np.intp), rank[which]


def _first_of_equal_rows_dict(rows: F) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """:func:`_first_of_equal_rows` by a dict on the rows' bytes (the reference)."""
    rows = np.ascontiguousarray(rows)
    width = rows.shape[1] * rows.dtype.itemsize
    seen: dict[object, int] = {}
    first: list[int] = []
    inverse = np.empty(rows.shape[0], dtype=np.intp)
    records = rows.view(np.dtype((np.void, width))).ravel().tolist()  # one bytes per row
    for i, record in enumerate(records):
        j = seen.get(record)
        if j is None:
            j = seen[record] = len(first)
            first.append(i)
        inverse[i] = j
    return np.asarray(first, dtype=np.intp), inverse


def sized_points(
    prof: ProfileArrays,
    in_tok: F,
    out_tok: F,
    batch: F,
    max_queue: F,
    queue_factor: float | None,
    slo: SloArrays,
    slo_rows: F,
    model: str = "inferno",
    lengths: LengthSpread | None = None,
    memo: SizingMemo | None = None,
) -> tuple[LazyPoints, Sizing]:
    """The candidates' operating points and their sizing. Candidates that are the same point
    under the same targets (servers of one model and class whose request shapes agree — every
    batch-kind server of a class) are sized once: λ* does not depend on the server's load.

    With ``memo`` (the chain model only) the distinct candidates found in it are not sized
    again, and the others are sized at the block widths the full build would give them (the
    same bits) and stored; the points are then built only for the candidates asked for."""
    rows = prof.kind.size
    first = np.arange(rows)
    inverse = first
    key = np.zeros((0, 0))
    hashes = np.zeros(0, dtype=np.uint64)
    widths = np.zeros(0)
    values = np.zeros((0, 0))
    if rows:
        key = _row_key(prof, in_tok, out_tok, batch, max_queue, slo_rows, lengths)
    use_memo = memo is not None and model == "inferno" and rows > 0
    # the options that change λ* (part of the memo's key)
    options = np.array(
        [-np.inf if queue_factor is None else queue_factor, float(slo.exact_wait_quantile)]
    )
    again = memo.recall(key, options) if memo is not None and use_memo else None
    if again is not None:  # the same candidates as the memo's last request: all found
        first, inverse, widths, values = again
    elif rows:
        hashes = _row_hashes(key)
        first, inverse = _first_of_equal_rows(key, hashes)
    distinct = first.size == rows
    back = inverse.reshape(-1)

    def build(idx: Idx | None = None, widths: F | None = None) -> OperatingPoints:
        return _build(
            model, prof, in_tok, out_tok, batch, max_queue, queue_factor, lengths, idx, widths
        )

    def build_all() -> OperatingPoints:
        return build() if distinct else build(first).subset(back)

    if memo is None or not use_memo:
        if distinct:
            points = build()
            sized = size(points, slo)
        else:
            unique = build(first)
            sized = size(unique, slo.take(first)).take(back)
            points = unique.subset(back)
        return LazyPoints(build_all, points.n_batch, points.mu_1, built=points), sized
    if again is None:
        values, widths = _look_up(
            memo, key, hashes, first, inverse, options, build, prof, out_tok, batch, slo
        )
    sized, mu_1 = unpack_sizing(values)
    lazy = LazyPoints(
        build_all,
        batch_size(prof, out_tok, batch),
        mu_1[back],
        part=lambda idx, w: build(idx, w),
        widths=widths[back],
    )
    return lazy, sized.take(back)


def lazily_sized_points(
    prof: ProfileArrays,
    in_tok: F,
    out_tok: F,
    batch: F,
    max_queue: F,
    queue_factor: float | None,
    slo: SloArrays,
    slo_rows: F,
    model: str,
    lengths: LengthSpread | None = None,
) -> tuple[LazyPoints, LazySizing]:
    """The candidates' operating points, built when asked for, and their sizing, done when
    asked for (:mod:`.lazy_sizing`); the same point under the same targets is sized once, as
    :func:`sized_points` does. Now: each candidate's N, μ(1) and μ(N), the bounds the lazy
    sizing starts from (for the accurate model without what only evaluating its points needs:
    :func:`~inferno.model.accurate.capacities`)."""
    rows = prof.kind.size
    if rows:
        key = _row_key(prof, in_tok, out_tok, batch, max_queue, slo_rows, lengths)
        first, inverse = _first_of_equal_rows(key)
    else:
        first = inverse = np.arange(0, dtype=np.intp)
    distinct = first.size == rows

    def build(idx: Idx | None = None) -> OperatingPoints:
        return _build(model, prof, in_tok, out_tok, batch, max_queue, queue_factor, lengths, idx)

    def build_rows(todo: Idx) -> OperatingPoints:
        """The distinct rows ``todo`` (repeats allowed), built on their own: blocks of their
        own N, fewer and fuller than the whole build's (each block costs its arithmetic's
        overhead per evaluation, whatever its rows), each distinct row once."""
        if distinct:
            return build(todo)
        once, back = np.unique(todo, return_inverse=True)
        built = build(first[once])
        return built if np.array_equal(once, todo) else built.subset(back.reshape(-1))

    if model == "accurate":
        n_u, mu_1_u, mu_n = capacities(
            prof.take(first),
            in_tok[first],
            out_tok[first],
            lengths=None if lengths is None else lengths.take(first),
            batch=batch[first],
            max_queue=max_queue[first],
            queue_factor=queue_factor,
        )
        # the candidates asked for (the chosen ones' metrics) are built on their own
        points = LazyPoints(
            lambda: build_rows(inverse),
            n_u[inverse],
            mu_1_u[inverse],
            part=lambda idx, _: build_rows(inverse[idx]),
            widths=n_u[inverse],
        )
    else:
        whole = build()
        mu_n = whole.mu_n[first]
        points = LazyPoints(lambda: whole, whole.n_batch, whole.mu_1, built=whole)
    sizing = LazySizing(mu_n, slo if distinct else slo.take(first), inverse, build_rows)
    return points, sizing


def _row_key(
    prof: ProfileArrays,
    in_tok: F,
    out_tok: F,
    batch: F,
    max_queue: F,
    slo_rows: F,
    lengths: LengthSpread | None,
) -> F:
    """What makes two candidates the same point under the same targets, one row each."""
    key = np.column_stack(
        [
            *(getattr(prof, f).astype(np.float64) for f in ProfileArrays.__dataclass_fields__),
            in_tok,
            out_tok,
            batch,
            max_queue,
            slo_rows.reshape(prof.kind.size, -1),
            *([] if lengths is None else lengths.columns()),
        ]
    )
    return np.where(np.isnan(key), -np.inf, key)  # NaN ≠ NaN; −inf equals itself


def _build(
    model: str,
    prof: ProfileArrays,
    in_tok: F,
    out_tok: F,
    batch: F,
    max_queue: F,
    queue_factor: float | None,
    lengths: LengthSpread | None,
    idx: Idx | None = None,
    widths: F | None = None,
) -> OperatingPoints:
    """The points of the candidates ``idx`` (all: None), at block ``widths`` when given."""
    sel = slice(None) if idx is None else idx
    return build_points(
        model,
        prof if idx is None else prof.take(idx),
        in_tok[sel],
        out_tok[sel],
        lengths=None if lengths is None else lengths.take(sel),
        batch=batch[sel],
        max_queue=max_queue[sel],
        queue_factor=queue_factor,
        widths=widths,
    )


def _look_up(
    memo: SizingMemo,
    key: F,
    hashes: NDArray[np.uint64],
    first: Idx,
    inverse: Idx,
    options: F,
    build: Callable[[Idx, F], OperatingPoints],
    prof: ProfileArrays,
    out_tok: F,
    batch: F,
    slo: SloArrays,
) -> tuple[F, F]:
    """The distinct candidates' (``first``; ``inverse``: each row's) sizing values and block
    widths: found in ``memo`` row by row, the others sized at their widths and stored."""
    if first.size == key.shape[0]:  # the usual case: every row distinct, no copies
        widths = block_widths(prof, out_tok, batch)
        u_key, u_hashes = key, hashes
    else:
        widths = block_widths(prof.take(first), out_tok[first], batch[first])
        u_key, u_hashes = key[first], hashes[first]
    # the memo's key: the row, its block width and the options that change λ*
    extra = np.column_stack([widths, np.broadcast_to(options, (first.size, options.size))])
    mkey = np.column_stack([u_key, extra])
    mhash = u_hashes ^ _row_hashes(extra)
    found, values, slots = memo.lookup(mkey, mhash)
    miss = np.flatnonzero(~found)
    if miss.size:
        missed = build(first[miss], widths[miss])
        values[miss] = pack_sizing(size(missed, slo.take(first[miss])), missed.mu_1)
        slots[miss] = memo.store(mkey[miss], mhash[miss], values[miss])
    memo.remember(first, inverse, widths, slots)
    return values, widths
