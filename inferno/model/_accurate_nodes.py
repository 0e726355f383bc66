"""The queue of a block's rows at several arrival rates at once: what the composition average
(:mod:`._accurate_composition`) needs of each of its nodes — the chance to queue, the mean queued
wait, the queue's rate κ and the blocking — and nothing else of :func:`._accurate_core.evaluate`.

The nodes of a row share everything that does not depend on λ (the block's per-state arrays, the
full batch's τ(N), μ(N) and d̄(N), the service SCV), so they are evaluated together as
(rows, nodes, B) arrays, a chunk of rows of similar N at a time. The chain's τ(b) at each λ is
:func:`._accurate_core.evaluate`'s; its head is summed relative to the state N − 1 instead of in
logs: p(n)/p(N − 1) = Π_{b=n+1}^{N−1} μ(b)/λ, a running product from the batch's end, which needs
no logarithm and no exponential per state. It rounds differently from the logs, not worse: the
two agree within 1e-9 (``tests/model/test_accurate_nodes.py``). Where the product leaves the
floating-point range (a large batch far from full), those rows are evaluated by
:func:`._accurate_core.evaluate`.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from . import _accurate_core as core
from ._accurate_queue import log_geometric, matched_log_ratio, queue_factor, truncated_geometric
from .bounds import MIN_SERVICE_MS

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["queue_at"]

logger = logging.getLogger(__name__)

#: elements of one (rows, nodes, B) array per chunk: about a MiB, so a chunk's passes stay in cache
_CHUNK = 1 << 17
_TINY = core._TINY


def queue_at(blk: core.AccurateBlock, rows: Idx, lam: F) -> tuple[F, F, F, F]:
    """The chance to queue, the mean queued wait of those that queue, the queue's rate κ and the
    blocking of ``rows`` of the block, each at its k rates ``lam`` (rows, k): (rows, k) arrays,
    :func:`._accurate_core.evaluate`'s ``p_queue``, ``queue_mean``, ``queue_rate`` and
    ``blocking`` at those rates."""
    r, k = lam.shape
    n = blk.n_batch[rows][:, None]
    m_tail = blk.n_tail[rows][:, None]
    if blk.static is not None:
        log_mu_n, it_n, tau_n = (
            v[rows] for v in (blk.static.log_mu_n, blk.static.it_n, blk.static.tau_n)
        )
    else:
        it_n, tau_n = core.at_full(blk, rows)
        log_mu_n = np.log(blk.n_batch[rows] / tau_n)
    own_in_var = np.einsum("ij,ij->i", blk.in_w[rows], blk.in_shift[rows] ** 2)
    cs2 = blk.scv[rows] * blk.kv_work[rows] * (blk.out_tokens[rows] * it_n) ** 2 + own_in_var
    cs2 = cs2 / tau_n**2
    log_r = np.log(lam) - log_mu_n[:, None]
    # Σ_{n<N} p(n)/p(N − 1), a chunk of rows of similar N at a time
    head = np.empty((r, k))
    order = np.argsort(n[:, 0], kind="stable")
    step = max(1, _CHUNK // (k * int(n.max())))
    for lo in range(0, r, step):
        sel = order[lo : lo + step]
        head[sel] = _head_sum(blk, rows[sel], lam[sel])
    # P(n ≥ N) = T/(S + T), T = p(N)/p(N − 1)·Σ_{j≤M} r^j = exp(log r + log Σ r^j) (S = inf:
    # replaced below)
    with np.errstate(over="ignore", invalid="ignore"):
        p_tail = 1.0 / (1.0 + head * np.exp(-(log_r + log_geometric(log_r, m_tail + 1.0))))
    log_r2 = matched_log_ratio(log_r, queue_factor(cs2[:, None], log_r, n))
    mean_j, top = truncated_geometric(log_r2, m_tail)
    p_full = p_tail * top
    accept = 1.0 - p_full
    x = lam * accept
    lq = p_tail * mean_j
    p_queue = np.maximum(p_tail - p_full, 0.0) / accept
    wait_q = lq / x
    queue_mean = np.where(p_queue > 0, wait_q / np.maximum(p_queue, _TINY), 0.0)
    out = (p_queue, queue_mean, -log_r2, p_full)
    bad_r, bad_k = np.nonzero(~np.isfinite(head))
    if bad_r.size:  # the product overflowed: these rows in logs, as the central evaluation
        one = core.evaluate(blk.take(rows[bad_r], same_width=True), lam[bad_r, bad_k], detail=False)
        for v, name in zip(out, ("p_queue", "queue_mean", "queue_rate", "blocking"), strict=True):
            v[bad_r, bad_k] = getattr(one, name)
    return out


def _tau(blk: core.AccurateBlock, rows: Idx, lam: F, width: int) -> F:
    """τ(b) at each rate of ``lam`` (r, k), columns b = width … 1 (reversed): (r, k, width)."""
    if blk.static is not None:  # nothing depends on λ
        st = blk.static
        fixed = st.tau_all[st.tau_rows[rows], :width][:, None, ::-1]
        return np.broadcast_to(fixed, (*lam.shape, width))

    def cols(v: F) -> F:
        out: F = v[rows, :width][:, None, ::-1]
        return out

    decode = cols(blk.decode)
    # the joins with room in every column (the full batch's, (N − 1)/I, is not needed: the
    # product runs over b < N)
    room = blk.n_batch[rows][:, None, None] - np.arange(width, 0, -1, dtype=np.float64)
    q, prefill = core.prefill_joins(
        lam[:, :, None], decode, cols(blk.pre0), blk.pre1[rows][:, None, None], room
    )
    it_mean = prefill - decode
    it_mean *= q
    it_mean += decode
    stall = blk.stall[rows]
    own = prefill
    if not stall.all():
        s3 = stall[:, None, None]
        it_mean = np.where(s3, it_mean, decode)
        own = np.where(s3, prefill, decode)
    tau = np.multiply(cols(blk.iters) - 1.0, it_mean, out=q)
    tau += own
    np.maximum(tau, MIN_SERVICE_MS, out=tau)
    return tau


def _head_sum(blk: core.AccurateBlock, rows: Idx, lam: F) -> F:
    """S = Σ_{n<N} p(n)/p(N − 1) of a chunk of rows at each of their rates (r, k): with
    h(b) = μ(b)/λ for b < N and 1 beyond, p(n)/p(N − 1) = Π_{b>n} h(b), the running product of
    h from the last column (columns reversed), which is 1 for every n ≥ N − 1."""
    n = blk.n_batch[rows]
    width = int(n.max())
    tau = _tau(blk, rows, lam, width)
    b = np.arange(width, 0, -1, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # inf: summed in logs by the caller
        h = np.divide(b, tau)
        h *= (1.0 / lam)[:, :, None]
        h = np.where((b >= n[:, None])[:, None, :], 1.0, h)
        np.cumprod(h, axis=2, out=h)
        # the (width − N) columns beyond the batch each add exactly 1
        out: F = h.sum(axis=2) - (width - n)[:, None]
    return out
