"""The accurate model's blocks: the λ-independent arrays of C points of one LLM kind
(:class:`~._accurate_core.AccurateBlock`), built once per block; :mod:`._accurate_core`
evaluates them at each arrival rate. What each kind's iterations cost and how varying lengths
enter is docs/model.md, "Accurate mode" (items 1, 2, 3 and 6).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from . import _kinds
from ._accurate_core import _CODES, AccurateBlock, Static, _per_state
from ._accurate_core import _col as col_
from ._accurate_inputs import LOW_EDGES, g3_chunks_over_inputs, g3_own_nodes, input_nodes
from ._accurate_spread import composition, episodes
from ._kinds import KindArrays
from ._lengths_capped import capped_nodes
from .bounds import MIN_SERVICE_MS
from .profiles import Kind

F = NDArray[np.float64]

__all__ = ["make_block"]


def make_block(
    p: KindArrays,
    n: F,
    n_tail: F,
    scv: F,
    lognormal: NDArray[np.bool_] | None = None,
    in_scv: F | None = None,
    in_lognormal: NDArray[np.bool_] | None = None,
    *,
    out_cap: F | None = None,
    composition_moments: bool = True,
) -> AccurateBlock:
    """The λ-independent parts of a block of one kind (``lognormal``: per point, the output
    lengths' family is lognormal, else gamma; ``in_scv``, ``in_lognormal``: the input lengths'
    SCV and family, None: fixed; ``out_cap``: the most output tokens over their mean, NaN or
    None: no cap). Without ``composition_moments`` G2's batch composition is left out (its
    moments are most of a G2 block's cost): a block for :func:`~._accurate_core.capacity`
    only, which does not read them, never to be evaluated."""
    c = n.size
    width = int(n.max()) if c else 1
    # read-only broadcasts where a row's values repeat (a subset's take copies what it keeps)
    b = np.broadcast_to(np.arange(1, width + 1, dtype=np.float64), (c, width))
    inside = b <= n[:, None]
    col = col_
    m, big_l = p.out_tokens, p.in_tokens
    second = m * m * (1.0 + scv)  # E[o²]
    first_iters = np.broadcast_to(1.0, (c, width))
    zero = np.zeros(c)
    kind = p.kind
    in_scv = np.zeros(c) if in_scv is None else np.asarray(in_scv, dtype=np.float64)
    in_scv = np.where(np.isfinite(in_scv) & (big_l > 0), np.maximum(in_scv, 0.0), 0.0)
    in_logn = np.zeros(c, dtype=bool) if in_lognormal is None else np.asarray(in_lognormal, bool)
    out_logn = np.zeros(c, dtype=bool) if lognormal is None else np.asarray(lognormal, bool)
    cap = np.full(c, np.nan) if out_cap is None else np.asarray(out_cap, dtype=np.float64)
    x_nodes, in_w = input_nodes(in_scv, in_logn)  # L/L̄ − 1
    # the first-token time's prompt part, relative, at b = N and b = 1 (G3: its chunks, which
    # depend on the batch; else it is the prompt's length)
    t_nodes = t_one = x_nodes
    in_first = np.zeros(x_nodes.shape)  # G3: the own cost's extra time to the first token
    g3_own: F | None = None  # G3: its variance and third moment over the prompts
    last_col = n.astype(np.intp) - 1
    if kind is Kind.G0 or kind is Kind.G1:
        decode = col(p.alpha) + col(p.beta) * b
        iters = np.broadcast_to(col(m), (c, width))
        pre0 = np.broadcast_to(col(p.gamma), (c, width))
        pre1 = p.delta * big_l if kind is Kind.G1 else zero
        stall = (big_l > 0) if kind is Kind.G1 else np.zeros(c, dtype=bool)
        own = pre1
    elif kind is Kind.G2:
        # batch members are length-biased: weights o + 1 (a request stays o + 1 iterations)
        w_bar = (p.beta * (big_l + m) + p.gamma * (big_l * (m + 1.0) + 0.5 * (second + m))) / (
            m + 1.0
        )
        tm_bar = big_l + 0.5 * (second + m) / (m + 1.0)
        base = col(p.alpha) + b * col(w_bar)
        decode = base + col(p.beta + p.gamma * tm_bar)
        stall = big_l > 0
        iters = np.broadcast_to(col(m + stall), (c, width))
        pre0 = base
        pre1 = (p.beta + p.gamma) * big_l
        own = pre1
    else:
        nc = _kinds.g3_chunks(p, b)
        w_pre = (col(p.beta) + col(p.gamma) * (nc + 1.0) / 2.0) * col(big_l)
        w_dec = p.beta * m + p.gamma * (m * big_l + 0.5 * (second + m))
        delta = (w_pre + col(w_dec)) / (nc + col(m))
        if x_nodes.any() or (scv > 0).any():  # varying prompts or output lengths
            nc, w_pre, *chunks, g3_own = g3_chunks_over_inputs(p, b, x_nodes, in_w, last_col, w_dec)
            delta = (w_pre + col(w_dec)) / (nc + col(m))
            rows = np.arange(c)
            means = (nc[:, 0], nc[rows, last_col], delta[rows, last_col])
            x_nodes, t_one, t_nodes, in_first, in_w = g3_own_nodes(
                p,
                x_nodes,
                in_w,
                (chunks[0], chunks[1], chunks[2]),
                means,
                capped_nodes(scv, out_logn, cap, LOW_EDGES),
            )
        decode = col(p.alpha) + b * delta
        iters = nc + col(m)
        pre0 = decode
        pre1 = zero
        stall = np.zeros(c, dtype=bool)
        first_iters = nc + 1.0
        own = zero
    decode = np.maximum(decode, MIN_SERVICE_MS)
    pre_part = np.broadcast_to(col(own), (c, width))
    if kind is Kind.G3:
        pre_part = (first_iters - 1.0) * decode
    # what another member's input adds to a request's service, per input token: its prompt
    # stalls the batch (G1 δ, G2 β + γ) and its KV slows each of the request's iterations (G2:
    # β/(m+1) + γ per decode iteration; G3: its per-iteration share δᵢ over the request's nc + m
    # iterations). A request's own input adds both to its own service.
    in_stall, in_kv, in_mean_kv = np.where(stall, own / np.maximum(big_l, 1e-300), 0.0), zero, zero
    if kind is Kind.G2:
        in_kv = m * (p.beta / (m + 1.0) + p.gamma)
        in_mean_kv = m * p.gamma  # γ·mean t_m: per token, over the b in the batch (at λ)
    elif kind is Kind.G3:
        in_kv = p.beta + p.gamma * ((nc[np.arange(c), last_col] + 1.0) / 2.0 + m)
    # the own input's shift of the service at N, per node: its prompt and its KV
    in_shift = pre_part[np.arange(c), last_col, None] * t_nodes + col(in_kv * big_l) * x_nodes
    spread, skew, persist, kv_work = zero, zero, zero, np.ones(c)
    ep_y = ep_i = ep_r = np.zeros((c, 1))
    ep_v = ep_m3 = zero
    if kind is Kind.G2 and composition_moments:
        spread, skew, persist, kv_work = composition(
            p, n, scv, decode[np.arange(c), last_col], in_scv, in_logn
        )
        ep_y, ep_i, ep_r, ep_v, ep_m3 = episodes(
            p, n, scv, out_logn, decode[np.arange(c), last_col], in_scv, in_logn, cap
        )
    elif g3_own is not None and g3_own[0].any():
        # G3 with varying prompts: each member adds its own δ to every iteration for its
        # nc + m iterations, so the full batch's speed depends on its members' prompts as G2's
        # on their lengths: σ over the N − 1 others, the skewness of one over √(N − 1), and a
        # correlation time of half a stay (members leave uniformly): κ = I/(2N·I/2) = 1/N
        others = np.maximum(n - 1.0, 0.0)
        var_d, mu3_d = g3_own
        d_full = decode[np.arange(c), last_col]
        spread = np.sqrt(others * var_d) / d_full
        with np.errstate(divide="ignore", invalid="ignore"):
            one = np.where(var_d > 0, mu3_d / np.maximum(var_d, 1e-300) ** 1.5, 0.0)
        skew = np.where(others > 0, one / np.sqrt(np.maximum(others, 1.0)), 0.0)
        persist = 1.0 / n
    static = None
    if not stall.any():  # every iteration is a decode iteration: nothing depends on λ
        tau = np.maximum(decode + (iters - 1.0) * decode, MIN_SERVICE_MS)
        static = Static(
            tau, np.arange(c), *_per_state(tau, decode, first_iters * decode, inside, n)
        )
        empty = np.zeros((c, 0))
        b = decode = iters = pre0 = first_iters = empty
        inside = np.zeros((c, 0), dtype=bool)
    return AccurateBlock(
        kind=np.full(c, _CODES[kind], dtype=np.int8),
        alpha=p.alpha,
        beta=p.beta,
        gamma=p.gamma,
        delta=p.delta,
        in_tokens=big_l,
        out_tokens=m,
        scv=scv,
        n_batch=n,
        n_tail=n_tail,
        b=b,
        inside=inside,
        decode=decode,
        iters=iters,
        pre0=pre0,
        pre1=pre1,
        stall=stall,
        first_iters=first_iters,
        spread=spread,
        skew=skew,
        persist=persist,
        kv_work=kv_work,
        ep_y=ep_y,
        ep_i=ep_i,
        ep_r=ep_r,
        ep_v=ep_v,
        ep_m3=ep_m3,
        lognormal=out_logn,
        out_cap=cap,
        pre_part=pre_part,
        in_shift=in_shift,
        in_stall=in_stall,
        in_kv=in_kv,
        in_mean_kv=in_mean_kv,
        in_scv=in_scv,
        in_x=x_nodes,
        in_nodes=t_nodes,
        in_nodes_1=t_one,
        in_first=in_first,
        in_w=in_w,
        static=static,
    )
