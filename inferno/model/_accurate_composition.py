"""The accurate model's queue when the batch's speed depends on which requests are in it (G2).

A G2 iteration costs γ per KV token of every member, so with varying output lengths a batch
holding a few long requests is slower for as long as they stay — tens of seconds, longer than
a queueing episode. The birth-death chain sees the average composition only, and finds the batch
full too rarely (``bench/accurate_worst.py``). Here the queue is averaged over the composition:
the block is evaluated at speeds s = 1 + σ_eff·(x + skew·(x² − 1)/6) (7 Gauss–Hermite nodes x,
Cornish–Fisher's skew correction), σ_eff the part of the composition's spread σ
(:func:`._accurate_spread.composition`) that persists over the queue's window, and the queue's
numbers (the chance to queue, the queued wait, the blocking) are the average; the queued wait's
distribution keeps one part per node (``BlockState.part_*``). A row's nodes are evaluated
together, for the queue's numbers only (:mod:`._accurate_nodes`). The method: ``docs/model.md``,
"Accurate mode", item 3.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from . import _accurate_core as core
from . import _accurate_nodes as nodes

F = NDArray[np.float64]

__all__ = ["evaluate"]

logger = logging.getLogger(__name__)

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(7)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
#: the slowest and fastest speed a node may take (σ_eff is a few percent in practice)
_SPEED_RANGE = (0.5, 1.5)
#: P(queue) + P(blocked) below which a row is left as the chain has it (the composition's
#: effect on the queue is a fraction of a queue that is not there)
_CONGESTED = 1e-6


def window_variance(x: F) -> F:
    """The fraction of a stationary process's variance left in its average over a window of x
    correlation times (exponential correlation): 2(x − 1 + e^{−x})/x², 1 at x = 0."""
    xs = np.clip(x, 1e-6, 1e12)  # beyond, 2/x: nothing left
    out: F = np.where(x < 1e-6, 1.0, 2.0 * (xs - 1.0 + np.exp(-xs)) / (xs * xs))
    return out


def effective_spread(blk: core.AccurateBlock, lam: F) -> F:
    """σ_eff at λ: σ·√g(W/T), the queue's window W half its relaxation time
    1/(μ(N)·(1 − √ρ)²), T the composition's correlation time (W/T = κ/(1 − √ρ)²)."""
    rho = np.clip(lam / np.maximum(core.capacity(blk), 1e-300), 0.0, 1.0)
    gap = (1.0 - np.sqrt(rho)) ** 2
    with np.errstate(divide="ignore"):
        x = np.where(gap > 0, blk.persist / np.maximum(gap, 1e-300), np.inf)
    out: F = blk.spread * np.sqrt(window_variance(x))
    return out


def evaluate(blk: core.AccurateBlock, lam: F, *, detail: bool = True) -> core.BlockState:
    """:func:`._accurate_core.evaluate`, with the queue averaged over the batch's composition
    where it matters (G2 rows with a spread; others are evaluated once)."""
    st = core.evaluate(blk, lam, detail=detail)
    if not blk.spread.any():
        return st
    sigma = effective_spread(blk, lam)
    # rows whose batch is ever full at all (below, the composition moves nothing measurable)
    rows = np.flatnonzero((sigma > 0) & (st.p_queue + st.blocking > _CONGESTED))
    if not rows.size:
        return st
    lam_r, sigma_r, skew = lam[rows], sigma[rows, None], blk.skew[rows, None]
    # the composition is skewed (a few long requests): Cornish–Fisher's first correction
    x = _NODES
    s = np.clip(1.0 + sigma_r * (x + skew / 6.0 * (x * x - 1.0)), *_SPEED_RANGE)
    # every time s times longer: the chain at rate λ·s, its times scaled by s; the nodes of a
    # row evaluated together (:mod:`._accurate_nodes`)
    p_node, mean_node, rate_node, blocking_node = nodes.queue_at(blk, rows, lam_r[:, None] * s)
    blocking_r = np.zeros(rows.size)
    for k, w in enumerate(_WEIGHTS):  # node by node: the sum rounds as it always has
        blocking_r += w * blocking_node[:, k]
    blocking = st.blocking.copy()
    blocking[rows] = blocking_r
    mixed = [_WEIGHTS * p_node, s * mean_node, rate_node]
    # rows left out keep their one part (in the first column, the others empty)
    central = (st.part_p, st.part_mean, st.part_rate)
    stacked = []
    for v, one in zip(mixed, central, strict=True):
        full = np.zeros((lam.size, _NODES.size))
        full[:, :1] = one
        full[rows] = v
        stacked.append(full)
    part_p, part_mean, part_rate = stacked
    p_queue = part_p.sum(axis=1)
    wait_q = np.einsum("ij,ij->i", part_p, part_mean)
    wait_q0 = st.p_queue * st.queue_mean
    keep = np.where(st.p_queue < 1.0, (1.0 - p_queue) / np.maximum(1.0 - st.p_queue, 1e-300), 1.0)
    throughput = lam * (1.0 - blocking)
    return core.BlockState(
        throughput=throughput,
        wait=st.wait - wait_q0 + wait_q,
        service=st.service,
        held=st.in_service + throughput * wait_q,
        in_service=st.in_service,
        utilization=st.utilization,
        blocking=blocking,
        itl=st.itl,
        first=st.first,
        p_empty=st.p_empty * keep,
        room=st.room * keep[:, None],
        p_room=st.p_room * keep,
        iteration=st.iteration,
        p_queue=p_queue,
        queue_mean=np.where(p_queue > 0, wait_q / np.maximum(p_queue, 1e-300), 0.0),
        queue_rate=st.queue_rate,
        queue_room=st.queue_room,
        decode_part=st.decode_part,
        service_var=st.service_var,
        lognormal=st.lognormal,
        slot_scv=st.slot_scv,
        first_at=st.first_at,
        first_full=st.first_full,
        pre_part=st.pre_part,
        pre_full=st.pre_full,
        in_nodes=st.in_nodes,
        in_nodes_1=st.in_nodes_1,
        in_first=st.in_first,
        n_batch=st.n_batch,
        in_w=st.in_w,
        part_p=part_p,
        part_mean=part_mean,
        part_rate=part_rate,
    )
