"""The stationary distribution of a residual-time chain (:mod:`.bulk_multi`,
:mod:`.bulk_multi_delay`): GMRES with an incomplete-LU preconditioner over the states reachable
from the empty replica, a nearby rate's factorisation lent where one is kept."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["forget_lent", "lent", "stationary_from"]

F = NDArray[np.float64]
Ix = NDArray[np.int64]
#: per (chain, room): the states, incomplete LU and solution of its last solve
_Kept = OrderedDict[tuple[object, ...], tuple[Ix, Any, F]]

#: the last solves' incomplete LUs (:func:`stationary_from`'s ``reuse``), shared by the threads
#: that solve (the services' workers: a cycle's solves need not run on the last cycle's thread):
#: a solve takes its key's entry out while it runs, so no two threads use one factorisation
_LENT: _Kept = OrderedDict()
_LENT_LOCK = threading.Lock()
#: the kept factorisations' nonzeros, at most (12 bytes each: about 120 MB). A fleet of 1,000
#: opted-in servers on samples/gpulets' rows keeps about 8 million (bench/serving_config.py): its
#: next cycle, the loads moved, borrows a factorisation for every chain it solves again
_LENT_NONZEROS = 10_000_000
#: GMRES restarts (of 60 iterations) allowed with a lent incomplete LU before a fresh one
_REUSED_RESTARTS = 1


def forget_lent() -> None:
    """Forget the factorisations kept for lending (a bench timing a first decision:
    :func:`~.bulk_multi.clear_rooms`)."""
    with _LENT_LOCK:
        _LENT.clear()


def lent() -> tuple[int, int]:
    """How many factorisations are kept for lending, and their nonzeros."""
    with _LENT_LOCK:
        return len(_LENT), _held()


def _held() -> int:
    """The kept factorisations' nonzeros (the caller holds :data:`_LENT_LOCK`)."""
    return sum(int(ilu.nnz) for _, ilu, _ in _LENT.values())


def stationary_from(
    src: list[Ix],
    dst: list[Ix],
    val: list[F],
    size: int,
    origin: int,
    reuse: tuple[object, ...] | None = None,
) -> tuple[Ix, F]:
    """The stationary distribution of the chain whose transitions are (src, dst, weight) in
    parts (rows renormalised), over the states reachable from ``origin`` (the empty replica):
    those states, in order, and their probabilities.

    ``reuse`` names the chain and its room (the same key for the same states): the last solve
    of that key on this thread lends its incomplete LU as the preconditioner and its π as the
    first guess when its states hold this one's (those it reached and this one does not are kept,
    with π = 0; a λ* search solves one chain at rates a few percent apart), and a fresh one is
    made when GMRES does not converge with them in :data:`_REUSED_RESTARTS` restarts."""
    from scipy import sparse
    from scipy.sparse.csgraph import breadth_first_order

    s, d, v = (np.concatenate(x) for x in (src, dst, val))
    p_mat = sparse.csr_matrix((v, (s, d)), shape=(size, size))
    p_mat = sparse.diags(1.0 / np.maximum(np.asarray(p_mat.sum(axis=1)).ravel(), 1e-300)) @ p_mat
    reach = np.sort(breadth_first_order(p_mat, origin, directed=True, return_predecessors=False))
    reach = reach.astype(np.int64)
    kept = _kept(reuse)
    if kept is not None and not np.array_equal(kept[0], reach):
        # a state reached at a nearby rate only through a transition now dropped as tiny: kept,
        # with π = 0, so the states stay the same and the next solve can borrow this one's LU
        reach = np.union1d(reach, kept[0])
    lent = kept[1:] if kept is not None and np.array_equal(kept[0], reach) else None
    sub = p_mat[reach][:, reach]
    a = (sub.T - sparse.identity(reach.size, format="csr")).tocsr()
    # Σπ = 1 in place of the first balance equation (row 0 replaced without a LIL round trip)
    ones = sparse.csr_matrix(np.ones((1, reach.size)))
    a = sparse.vstack([ones, a[1:]], format="csc")
    rhs = np.zeros(reach.size)
    rhs[0] = 1.0
    x, ilu = _stationary(a, rhs, lent)
    pi = np.clip(x, 0.0, None)
    pi /= pi.sum()
    if reuse is not None and ilu is not None:
        _keep(reuse, reach, ilu, x)
    return reach, pi


def _kept(reuse: tuple[object, ...] | None) -> tuple[Ix, Any, F] | None:
    """The (states, incomplete LU, solution) the last solve of ``reuse`` left, taken out of the
    store until this solve keeps its own (:func:`_keep`)."""
    if reuse is None:
        return None
    with _LENT_LOCK:
        return _LENT.pop(reuse, None)


def _keep(reuse: tuple[object, ...], reach: Ix, ilu: Any, x: F) -> None:
    """Keep this solve's factorisation for the next solve of ``reuse``; the least recently kept
    go first while the store holds more than :data:`_LENT_NONZEROS`."""
    with _LENT_LOCK:
        _LENT[reuse] = (reach, ilu, x)
        _LENT.move_to_end(reuse)
        held = _held()
        while held > _LENT_NONZEROS and len(_LENT) > 1:
            _, (_, old, _) = _LENT.popitem(last=False)
            held -= int(old.nnz)


def _stationary(a: Any, rhs: F, lent: tuple[Any, F] | None = None) -> tuple[F, Any]:
    """Solve a·x = rhs by GMRES preconditioned with an incomplete LU: the ``lent`` one (from a
    nearby rate, its solution the first guess) if any, then a loose one (a few dozen iterations
    below saturation), a tighter one where that stalls (a queue at its cap mixes slowly),
    SuperLU's direct solve last (it fills in badly on this chain). Also returns the incomplete
    LU that solved it (None: the direct solve)."""
    from scipy.sparse.linalg import LinearOperator, gmres, spilu, spsolve

    def solved(ilu: Any, restarts: int, x0: F | None = None) -> F | None:
        pre = LinearOperator(a.shape, ilu.solve)
        x, info = gmres(a, rhs, x0=x0, M=pre, rtol=1e-11, atol=0.0, restart=60, maxiter=restarts)
        return np.asarray(x, dtype=np.float64) if info == 0 and np.all(np.isfinite(x)) else None

    if lent is not None and (x := solved(lent[0], _REUSED_RESTARTS, lent[1])) is not None:
        return x, lent[0]
    for drop, fill, restarts in ((1e-2, 5, 2), (1e-4, 20, 10)):
        try:
            ilu = spilu(a, drop_tol=drop, fill_factor=fill)
        except RuntimeError:  # a singular incomplete factor
            continue
        if (x := solved(ilu, restarts)) is not None:
            return x, ilu
    out: F = np.asarray(spsolve(a, rhs), dtype=np.float64)
    return out, None
