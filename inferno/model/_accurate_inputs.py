"""The input lengths' spread in the accurate model: nodes of the input-length distribution.

A request's own prompt is part of its first-token time (G1: δ per input token in its prefill
iteration; G2: β + γ; G3: the chunks its prompt needs), so with varying input lengths the
first-token time, and the latency, are mixtures over the request's own input length: the model
shifts the own-prefill part of the first-token time (``pre_part``) by L/L̄ − 1 at each node.

The nodes are the conditional means of the distribution (mean L̄, coefficient of variation c,
gamma or lognormal) on fixed bins of probability, finer in the upper tail where the 95th and
99th percentiles fall. Conditional means keep the mean exactly: Σ wⱼ·(Lⱼ/L̄ − 1) = 0.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from . import _kinds
from ._kinds import KindArrays

F = NDArray[np.float64]

__all__ = [
    "BIN_EDGES",
    "LOW_EDGES",
    "distinct_rows",
    "g3_chunks_over_inputs",
    "g3_own_nodes",
    "input_nodes",
]

#: the bins' edges in probability: tenths, then finer towards the 99.5th percentile
BIN_EDGES = np.array(
    [
        0.0,
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.85,
        0.9,
        0.93,
        0.95,
        0.97,
        0.98,
        0.99,
        0.995,
        1.0,
    ]
)


#: the same bins mirrored, fine in the lower tail: a G3 request's own first-token time is
#: longest for the shortest outputs (its prompt's cost spread over few iterations)
LOW_EDGES = 1.0 - BIN_EDGES[::-1]


def distinct_rows(*cols: NDArray[np.generic]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """(first, inverse): one row of each distinct combination of the columns' values (equal
    bits), and each row's place among them — so that a per-row computation runs once per
    distinct row (10,000 servers of one length distribution: one inverse incomplete gamma row
    instead of 10,000)."""
    keys = np.ascontiguousarray(np.column_stack([np.asarray(c, np.float64) for c in cols]))
    void = keys.view(np.dtype((np.void, keys.dtype.itemsize * keys.shape[1]))).ravel()
    _, first, inverse = np.unique(void, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def input_nodes(scv: F, lognormal: NDArray[np.bool_], edges: F = BIN_EDGES) -> tuple[F, F]:
    """(nodes, weights), each (C, J): per point, L/L̄ − 1 at the conditional mean of each bin
    and the bin's probability, for input lengths of squared coefficient of variation ``scv``
    (0: fixed) and family gamma (else lognormal). J is 1 (the node 0) when no point varies.
    ``edges``: the bins in probability (:data:`BIN_EDGES`, fine in the upper tail;
    :data:`LOW_EDGES`, fine in the lower). Computed once per distinct (scv, family)."""
    scv = np.where(np.isfinite(scv), np.maximum(scv, 0.0), 0.0)
    lognormal = np.broadcast_to(np.asarray(lognormal, bool), scv.shape)
    first, inverse = distinct_rows(scv, lognormal)
    if first.size == scv.size:
        return _input_nodes(scv, lognormal, edges)
    nodes, w = _input_nodes(scv[first], lognormal[first], edges)
    return nodes[inverse], w[inverse]


def _input_nodes(scv: F, lognormal: NDArray[np.bool_], edges: F) -> tuple[F, F]:
    """:func:`input_nodes` of every row (``scv`` finite, ≥ 0)."""
    c = scv.size
    varies = scv > 1e-12
    if not varies.any():
        return np.zeros((c, 1)), np.ones((c, 1))
    from scipy import special  # 0.4 s of imports: only where lengths vary

    lo, hi = edges[:-1], edges[1:]
    w = np.broadcast_to(hi - lo, (c, lo.size)).copy()
    share = np.zeros((c, lo.size))  # Σ over the bin of x / L̄
    gam = np.flatnonzero(varies & ~lognormal)
    if gam.size:
        k = 1.0 / scv[gam, None]  # shape; x / L̄ = X / (k θ) with θ = L̄ / k
        q = special.gammaincinv(k, np.broadcast_to(edges, (gam.size, edges.size)))
        cdf1 = special.gammainc(k + 1.0, q)  # E[X; X < q] / E[X]
        cdf1[:, -1] = 1.0
        share[gam] = np.diff(cdf1, axis=1)
    logn = np.flatnonzero(varies & lognormal)
    if logn.size:
        sigma = np.sqrt(np.log1p(scv[logn, None]))
        with np.errstate(divide="ignore"):
            z = special.ndtri(edges)  # −inf, …, +inf
        share[logn] = np.diff(special.ndtr(z[None, :] - sigma), axis=1)
    nodes = np.where(varies[:, None], share / w - 1.0, 0.0)
    return nodes, w


def g3_chunks_over_inputs(
    p: KindArrays, b: F, x: F, w: F, last: NDArray[np.intp], w_dec: F
) -> tuple[F, F, F, F, F, F]:
    """G3 over the input nodes ``x`` (weights ``w``): the mean chunk count nc(b) and prefill
    work w_pre(b) (a prompt of L tokens needs nc(L, b) chunks: a step function of L, so the
    mean is not nc at the mean); per node its chunk count at b = 1 and at b = N and its
    prefill work at N; and the variance and third central moment over the prompts of a
    member's own cost δ = (w_pre + w_dec)/(nc + m), (2, C), for the batch's composition."""
    rows = np.arange(x.shape[0])
    nc = np.zeros(b.shape)
    w_pre = np.zeros(b.shape)
    at_n = np.empty(x.shape)
    at_1 = np.empty(x.shape)
    pre_n = np.empty(x.shape)
    m = p.out_tokens
    for j in range(x.shape[1]):
        big_l = p.in_tokens * (1.0 + x[:, j])
        nc_j = _kinds.g3_chunks(replace(p, in_tokens=big_l), b)
        pre_j = (_column(p.beta) + _column(p.gamma) * (nc_j + 1.0) / 2.0) * _column(big_l)
        wj = w[:, j, None]
        nc += wj * nc_j
        w_pre += wj * pre_j
        at_n[:, j] = nc_j[rows, last]
        at_1[:, j] = nc_j[:, 0]
        pre_n[:, j] = pre_j[rows, last]
    own = (pre_n + (w_dec + p.gamma * m * p.in_tokens * x.T).T) / (at_n + m[:, None])
    dev = own - np.einsum("ij,ij->i", w, own)[:, None]
    moments = np.stack([np.einsum("ij,ij->i", w, dev**2), np.einsum("ij,ij->i", w, dev**3)])
    return nc, w_pre, at_1, at_n, pre_n, moments


def g3_own_nodes(
    p: KindArrays,
    x: F,
    w: F,
    chunks: tuple[F, F, F],
    mean: tuple[F, F, F],
    out_nodes: tuple[F, F],
) -> tuple[F, F, F, F, F]:
    """G3: the nodes of a request's own (prompt, output length), re-binned to the input nodes'
    bins by the time they add to its first token: (x, the relative chunk count at b = 1 and at
    b = N, the extra first-token time, the weights), each (C, J). The output nodes are fine in
    the lower tail (:data:`LOW_EDGES`): the shortest outputs add the most.

    A request's own cost δ = (w_pre(L) + β·o + γ·o·(L + (o + 1)/2))/(nc(L) + o) is charged in
    each of its nc + o iterations, so its first nc + 1 iterations last (nc + 1)·(δ − δ̄) longer
    than the batch's mean member's (δ̄, length-biased, what the iteration time takes): a short
    output carries its prompt's whole prefill cost over few iterations. ``chunks``: per input
    node its chunk count at b = 1 and at b = N and its prefill work at N; ``mean``: the mean
    chunk count at b = 1 and at N and δ̄; ``out_nodes``: the output lengths' nodes and weights
    (o/m − 1 on :data:`LOW_EDGES`'s bins)."""
    at_1, at_n, pre_n = chunks
    nc_1, nc_n, d_bar = mean
    m, big_l = p.out_tokens[:, None], p.in_tokens[:, None]
    y, wy = out_nodes
    c = x.shape[0]
    # every (input node j, output node k), flattened j-major: (C, J·K)
    rep = (np.repeat(v, y.shape[1], axis=1) for v in (x, w, at_1, at_n, pre_n))
    xx, ww, a1, an, pn = rep
    o = np.maximum(np.tile(m * (1.0 + y), (1, x.shape[1])), 1.0)
    ww = ww * np.tile(wy, (1, x.shape[1]))
    big = big_l * (1.0 + xx)
    d = (pn + p.beta[:, None] * o + p.gamma[:, None] * o * (big + (o + 1.0) / 2.0)) / (an + o)
    first = (an + 1.0) * (d - d_bar[:, None])
    # ordered by the time the node adds to the first token: its own cost, and its chunks beyond
    # the mean (0 without a prompt: every node then has the same chunks)
    key = first + (an - nc_n[:, None]) * d_bar[:, None]
    order = np.argsort(key, axis=1, kind="stable")
    take = np.take_along_axis
    ww = take(ww, order, axis=1)
    centre = np.cumsum(ww, axis=1) - 0.5 * ww
    bins = np.clip(np.searchsorted(BIN_EDGES, centre, side="right") - 1, 0, BIN_EDGES.size - 2)
    flat = (np.arange(c)[:, None] * (BIN_EDGES.size - 1) + bins).ravel()
    size = c * (BIN_EDGES.size - 1)
    weight: F = np.bincount(flat, weights=ww.ravel(), minlength=size).reshape(c, -1).astype(float)
    safe = np.maximum(weight, 1e-300)

    def binned(v: F) -> F:
        sums = np.bincount(flat, weights=(ww * take(v, order, axis=1)).ravel(), minlength=size)
        out: F = np.where(weight > 0, sums.reshape(c, -1) / safe, 0.0)
        return out

    rel_1 = np.where(nc_1[:, None] > 0, a1 / np.maximum(nc_1[:, None], 1e-300) - 1.0, 0.0)
    rel_n = np.where(nc_n[:, None] > 0, an / np.maximum(nc_n[:, None], 1e-300) - 1.0, 0.0)
    return binned(xx), binned(rel_1), binned(rel_n), binned(first), weight


def _column(v: F) -> F:
    return v[:, None]
