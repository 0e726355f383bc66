"""The accurate model's queue when the batch's speed depends on which requests are in it (G2).

A G2 iteration costs γ per KV token of every member, so with varying output lengths a batch
holding a few long requests is slower for as long as they stay — tens of seconds, longer than
a queueing episode. The birth-death chain sees the average composition only, and finds the batch
full too rarely (``bench/accurate_worst.py``). Here the queue is averaged over the composition:
the other members are shot noise (:func:`._accurate_spread.episodes`), each averaged over the
queue's window by its own stay (:func:`._accurate_spread.window_cumulants`: a long request
counts whole, a short one is averaged away), and the block is evaluated at speeds
s = 1 + σ_eff·z at the 7 nodes z of the translated gamma of that variance and skewness
(:func:`skewed_nodes`). The queue's numbers (the chance to queue, the queued wait, the blocking)
are the nodes' average; the queued wait's distribution keeps one part per node
(``BlockState.part_*``). A row's nodes are evaluated together, for the queue's numbers only
(:mod:`._accurate_nodes`). G3's composition (its members' prompts) keeps one correlation time
(:func:`effective_spread`). The method: ``docs/model.md``, "Accurate mode", item 3.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from numpy.typing import NDArray

from . import _accurate_core as core
from . import _accurate_nodes as nodes
from ._accurate_spread import window_cumulants

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["evaluate"]

logger = logging.getLogger(__name__)

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(7)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
#: the slowest and fastest speed a node may take (beyond 1.5 a node is overloaded anyway)
_SPEED_RANGE = (0.5, 1.5)
#: P(queue) + P(blocked) of a row's slowest composition below which the row keeps the central
#: chain's numbers (:func:`_queueing`)
_NEGLIGIBLE = 1e-12
#: ... and the central chain's at or above which the slowest composition's is surely above it
_SURE = 1e-3


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


#: the translated gamma's shapes k = 4/skew² tabulated (log-spaced, ratio 1.03: skewness 14 to
#: 0.002); beyond the last, towards the normal's nodes (:func:`skewed_nodes`)
_K_GRID = np.geomspace(0.02, 1e6, 601)


@functools.cache
def _laguerre_table() -> tuple[F, F]:
    """Standardised Gauss–Laguerre nodes (mean 0, variance 1, skewness 2/√k) and weights of
    the gamma distributions of shape k on :data:`_K_GRID`: (K, 7) each, built once by
    Golub–Welsch (the eigenvalues of the generalised Laguerre polynomials' Jacobi matrix, the
    weights the squared first components of its eigenvectors)."""
    i = np.arange(_NODES.size, dtype=np.float64)
    k = _K_GRID[:, None]
    jacobi = np.zeros((_K_GRID.size, _NODES.size, _NODES.size))
    idx = np.arange(_NODES.size)
    jacobi[:, idx, idx] = 2.0 * i + k  # α + 1 = k
    off = np.sqrt(i[1:] * (i[1:] + k - 1.0))
    jacobi[:, idx[1:], idx[:-1]] = off
    jacobi[:, idx[:-1], idx[1:]] = off
    t, vec = np.linalg.eigh(jacobi)
    w = vec[:, 0, :] ** 2
    w = w / w.sum(axis=1, keepdims=True)
    return (t - k) / np.sqrt(k), w


def skewed_nodes(skew: F) -> tuple[F, F]:
    """(z, weights), (R, 7): standardised nodes of the translated gamma of this skewness (the
    classic approximation of a compound sum: mean, variance and skewness matched).

    Continuous in the skewness, since the λ* searches cross it (a node that jumps makes the
    queue's numbers jump, and a search then closes on the jump by halving): between two
    tabulated shapes k = 4/skew² the nodes and weights are interpolated in log k; below the
    table's smallest skewness (0.002), between the normal's Gauss–Hermite nodes and the table's
    last, linearly in the skewness. The interpolated nodes are standardised again (mean 0,
    variance 1 exactly)."""
    z_tab, w_tab = _laguerre_table()
    a = np.abs(np.nan_to_num(skew))
    step = np.log(_K_GRID[1] / _K_GRID[0])
    with np.errstate(divide="ignore"):
        # the position on the table (fractional), from the largest shape down
        t = np.log(4.0 / np.maximum(a, 1e-300) ** 2 / _K_GRID[0]) / step
    last = _K_GRID.size - 1
    t = np.clip(t, 0.0, float(last))
    i = np.minimum(np.floor(t).astype(np.intp), last - 1)
    f = (t - i)[:, None]
    z = (1.0 - f) * z_tab[i] + f * z_tab[i + 1]
    w = (1.0 - f) * w_tab[i] + f * w_tab[i + 1]
    # beyond the table's last shape: towards the normal, linearly in the skewness
    a_last = 2.0 / np.sqrt(_K_GRID[-1])
    g = np.clip(a / a_last, 0.0, 1.0)[:, None]
    near = (a < a_last)[:, None]
    z = np.where(near, (1.0 - g) * _NODES + g * z_tab[last], z)
    w = np.where(near, (1.0 - g) * _WEIGHTS + g * w_tab[last], w)
    mean = np.einsum("ij,ij->i", w, z)[:, None]
    sd = np.sqrt(np.einsum("ij,ij->i", w, (z - mean) ** 2))[:, None]
    z = (z - mean) / sd
    z = np.where((skew < 0)[:, None], -z, z)
    return z, w


def effective_composition(blk: core.AccurateBlock, lam: F) -> tuple[F, F]:
    """(σ_eff, skewness) at λ. G2 rows: the composition as shot noise, each member averaged
    over the queue's window W = (m + 1)/(2N·(1 − √ρ)²) iterations by its own stay
    (:func:`._accurate_spread.window_cumulants`); others: :func:`effective_spread`."""
    rows = np.flatnonzero(blk.ep_r.any(axis=1))
    # the other rows (G3's prompts): one correlation time for the whole spread
    sigma = np.zeros(lam.size) if rows.size == lam.size else effective_spread(blk, lam)
    skew = blk.skew
    if not rows.size:
        return sigma, skew
    rho = np.clip(lam[rows] / np.maximum(core.capacity(blk)[rows], 1e-300), 0.0, 1.0)
    gap = (1.0 - np.sqrt(rho)) ** 2
    with np.errstate(divide="ignore"):
        window = np.where(
            gap > 0,
            (blk.out_tokens[rows] + 1.0) / (2.0 * blk.n_batch[rows] * np.maximum(gap, 1e-300)),
            np.inf,
        )
    var, k3 = window_cumulants(
        blk.ep_y[rows], blk.ep_i[rows], blk.ep_r[rows], blk.ep_v[rows], blk.ep_m3[rows], window
    )
    skew = skew.copy()
    sigma[rows] = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        skew[rows] = np.where(var > 0, k3 / np.maximum(var, 1e-300) ** 1.5, 0.0)
    return sigma, skew


def _queueing(
    blk: core.AccurateBlock, st: core.BlockState, lam: F, rows: Idx, z: F, wts: F, s: F
) -> tuple[Idx, F, F, F]:
    """The rows (and their nodes) where the slowest composition queues at all: P(queue) +
    P(blocked) of the slowest node above :data:`_NEGLIGIBLE`. Elsewhere every node queues less
    (the chance grows with λ·s), so the average moves the metrics by less than that and the
    row keeps the central chain's numbers. Not a threshold on the central chain's chance: where
    it is small the slow compositions' is not, and such a threshold is a step in λ (a λ* search
    then closes on it by halving; ``tests/model/test_accurate_composition.py``)."""
    unsure = np.flatnonzero(st.p_queue[rows] + st.blocking[rows] < _SURE)
    if not unsure.size:
        return rows, z, wts, s
    top = s[unsure].max(axis=1)
    p, _, _, blocked = nodes.queue_at(blk, rows[unsure], (lam[rows[unsure]] * top)[:, None])
    keep = np.ones(rows.size, dtype=bool)
    keep[unsure] = p[:, 0] + blocked[:, 0] > _NEGLIGIBLE
    return rows[keep], z[keep], wts[keep], s[keep]


def evaluate(blk: core.AccurateBlock, lam: F, *, detail: bool = True) -> core.BlockState:
    """:func:`._accurate_core.evaluate`, with the queue averaged over the batch's composition
    where it matters (G2 rows with a spread; others are evaluated once)."""
    st = core.evaluate(blk, lam, detail=detail)
    if not blk.spread.any():
        return st
    sigma, skew_all = effective_composition(blk, lam)
    rows = np.flatnonzero((sigma > 0) & (st.p_queue + st.blocking > 0.0))
    if not rows.size:
        return st
    # the composition is skewed (a few long requests): the translated gamma's nodes
    z, wts = skewed_nodes(skew_all[rows])
    s = np.clip(1.0 + sigma[rows, None] * z, *_SPEED_RANGE)
    rows, z, wts, s = _queueing(blk, st, lam, rows, z, wts, s)
    if not rows.size:
        return st
    lam_r = lam[rows]
    # every time s times longer: the chain at rate λ·s, its times scaled by s; the nodes of a
    # row evaluated together (:mod:`._accurate_nodes`)
    p_node, mean_node, rate_node, blocking_node = nodes.queue_at(blk, rows, lam_r[:, None] * s)
    blocking_r = np.zeros(rows.size)
    for k in range(_NODES.size):  # node by node: the sum rounds as it always has
        blocking_r += wts[:, k] * blocking_node[:, k]
    blocking = st.blocking.copy()
    blocking[rows] = blocking_r
    mixed = [wts * p_node, s * mean_node, rate_node]
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
        out_cap=st.out_cap,
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
