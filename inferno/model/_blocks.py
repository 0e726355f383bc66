"""How :class:`~inferno.model.points.OperatingPoints` groups points into blocks: inside a kind,
sorted by the batch limit N and cut so that padding each row to its block's largest N wastes
little (:func:`blocks_of`), or grouped by a width given per point (:func:`width_groups`: points
built again to evaluate to the same bits as in an earlier build)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .bounds import MAX_BATCH
from .profiles import Kind

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["blocks_of", "width_groups"]

_BLOCK = 4096  # points per block at most
_SPAN = 2.0  # a block's largest N is at most this times its smallest (padding stays under half)
_MIN_WIDTH = 16  # ... or this, for small N


def _cut(members: Idx, n_sorted: F) -> list[Idx]:
    """Cut points sorted by N into blocks of bounded size and bounded padding."""
    out = []
    start = 0
    while start < members.size:
        limit = max(_SPAN * n_sorted[start], n_sorted[start] + _MIN_WIDTH)
        end = int(np.searchsorted(n_sorted, limit, side="right"))
        end = min(max(end, start + 1), start + _BLOCK)
        out.append(members[start:end])
        start = end
    return out


def blocks_of(kind: NDArray[np.int8], n: F) -> list[tuple[int, Idx, int]]:
    """(kind code, points, width) of the blocks :meth:`OperatingPoints.build` cuts."""
    out: list[tuple[int, Idx, int]] = []
    for code in range(len(Kind)):
        members = np.flatnonzero(kind == code)
        if members.size == 0:
            continue
        members = members[np.argsort(n[members], kind="stable")]
        out.extend((code, idx, int(n[idx].max()) + 1) for idx in _cut(members, n[members]))
    return out


def width_groups(kind: NDArray[np.int8], widths: F) -> list[tuple[int, Idx, int]]:
    """Blocks of the points of one kind and one width (at most ``_BLOCK`` points each)."""
    out = []
    key = kind.astype(np.int64) * (MAX_BATCH + 2) + widths.astype(np.int64)
    order = np.argsort(key, kind="stable")
    cuts = np.flatnonzero(np.diff(key[order])) + 1
    for group in np.split(order, cuts) if order.size else []:
        for start in range(0, group.size, _BLOCK):
            idx = group[start : start + _BLOCK]
            out.append((int(kind[idx[0]]), idx, int(widths[idx[0]])))
    return out
