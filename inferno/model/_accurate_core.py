"""The accurate model's arithmetic for LLM kinds (G0–G3), one block of points at a time.

A block is C points padded to its largest batch limit B; per-state arrays are (C, B), column b−1
for b requests in the batch. Everything is vectorised numpy; the method is in ``docs/model.md``
("Accurate mode"). In short:

- *Iterations.* A request needs I iterations (G0, G1: out; G2: out + 1 with input; G3: nc + out),
  each lasting the batch's iteration time: D(b) for decode, and for G1/G2 a prefill iteration
  whenever requests join (G1: γ + δ·in·k; G2: α + b·w̄ + (β+γ)·in·k for k joiners). Joins per
  iteration are j = λ·D(b) while the batch has room and (N − 1)/I once it is full (a completion
  lets the next one in), so a fraction q = 1 − e^{−j} of iterations are prefill iterations, with
  k̄ = j/q joiners each. The mean iteration d̄(b) and a request's time in the batch
  τ(b) = own prefill + (I − 1)·d̄(b) give the death rates μ(b) = b/τ(b) of a birth-death chain.
- *Lengths.* G2/G3 costs are averaged over the batch's members, which are length-biased (a
  request of o tokens stays o + 1 iterations): E[o²] = m²(1 + c²) for an output-length SCV c².
- *Queue.* The chain's mass on n ≥ N is kept; within it the queue length is geometric with the
  ratio r' that scales the chain's mean queue by (1 + c_s²)/2 (Allen–Cunneen), c_s² the SCV of
  the service time — M/D/1 and M/M/1 exactly at N = 1; capped at K like the chain.
- *Boundaries.* An arrival that finds room joins at the end of the running iteration (half an
  iteration on average); its first token comes F later (one iteration; G1 the prefill iteration;
  G2 prefill + one decode; G3 nc + 1 iterations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from . import _chain, _kinds
from ._kinds import KindArrays
from .bounds import MIN_SERVICE_MS
from .profiles import Kind

F = NDArray[np.float64]

__all__ = [
    "AccurateBlock",
    "BlockState",
    "capacity",
    "evaluate",
    "make_block",
    "response_survival",
    "wait_survival",
]

_TINY = 1e-300


@dataclass(frozen=True, slots=True)
class AccurateBlock:
    """C points of LLM kinds, padded to B = max N. ``stall`` rows have prefill iterations."""

    kind: NDArray[np.int8]  # 0 G0, 1 G1, 2 G2, 3 G3
    alpha: F
    beta: F
    gamma: F
    delta: F
    in_tokens: F
    out_tokens: F
    scv: F  # output-length SCV c²
    n_batch: F
    n_tail: F  # K − N
    b: F  # (C, B): 1..B
    inside: NDArray[np.bool_]  # (C, B): b ≤ N
    decode: F  # (C, B): D(b)
    iters: F  # (C, B): I(b)
    pre0: F  # (C, B): prefill iteration at k joiners = pre0 + pre1·k (stall rows)
    pre1: F  # (C,)
    stall: NDArray[np.bool_]  # (C,)
    first_iters: F  # (C, B): iterations before the first token (G3: nc + 1; else 1)

    def take(self, rows: NDArray[np.intp]) -> AccurateBlock:
        """The block of ``rows`` (repeats allowed), trimmed to their largest N."""
        width = int(self.n_batch[rows].max()) if rows.size else 1
        out = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            out[name] = v[rows, :width] if v.ndim == 2 else v[rows]
        return AccurateBlock(**out)


_CODES = {Kind.G0: 0, Kind.G1: 1, Kind.G2: 2, Kind.G3: 3}


def make_block(p: KindArrays, n: F, n_tail: F, scv: F) -> AccurateBlock:
    """The λ-independent parts of a block of one kind."""
    c = n.size
    width = int(n.max()) if c else 1
    b = np.broadcast_to(np.arange(1, width + 1, dtype=np.float64), (c, width)).copy()
    inside = b <= n[:, None]
    col = _col
    m, big_l = p.out_tokens, p.in_tokens
    second = m * m * (1.0 + scv)  # E[o²]
    first_iters = np.ones((c, width))
    zero = np.zeros(c)
    kind = p.kind
    if kind is Kind.G0 or kind is Kind.G1:
        decode = col(p.alpha) + col(p.beta) * b
        iters = np.broadcast_to(col(m), (c, width)).copy()
        pre0 = np.broadcast_to(col(p.gamma), (c, width)).copy()
        pre1 = p.delta * big_l if kind is Kind.G1 else zero
        stall = (big_l > 0) if kind is Kind.G1 else np.zeros(c, dtype=bool)
    elif kind is Kind.G2:
        # batch members are length-biased: weights o + 1 (a request stays o + 1 iterations)
        w_bar = (p.beta * (big_l + m) + p.gamma * (big_l * (m + 1.0) + 0.5 * (second + m))) / (
            m + 1.0
        )
        tm_bar = big_l + 0.5 * (second + m) / (m + 1.0)
        base = col(p.alpha) + b * col(w_bar)
        decode = base + col(p.beta + p.gamma * tm_bar)
        stall = big_l > 0
        iters = np.broadcast_to(col(m + stall), (c, width)).copy()
        pre0 = base
        pre1 = (p.beta + p.gamma) * big_l
    else:
        nc = _kinds.g3_chunks(p, b)
        w_pre = (col(p.beta) + col(p.gamma) * (nc + 1.0) / 2.0) * col(big_l)
        w_dec = p.beta * m + p.gamma * (m * big_l + 0.5 * (second + m))
        delta = (w_pre + col(w_dec)) / (nc + col(m))
        decode = col(p.alpha) + b * delta
        iters = nc + col(m)
        pre0 = decode
        pre1 = zero
        stall = np.zeros(c, dtype=bool)
        first_iters = nc + 1.0
    decode = np.maximum(decode, MIN_SERVICE_MS)
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
        iters=np.maximum(iters, 1.0),
        pre0=pre0,
        pre1=pre1,
        stall=stall,
        first_iters=first_iters,
    )


def _col(v: F) -> F:
    return v[:, None]


@dataclass(frozen=True, slots=True)
class BlockState:
    """What a block's metrics and distributions need at arrival rates λ (all (C,) unless noted)."""

    throughput: F
    wait: F  # mean wait to enter the batch (queue + iteration boundary)
    service: F  # mean time from entering the batch to the last token
    held: F
    in_service: F
    utilization: F
    blocking: F
    itl: F
    first: F  # mean time from entering the batch to the first token
    p_empty: F  # an accepted arrival finds the replica empty
    room: F  # (C, B): P(accepted arrival finds n = b requests, 1 ≤ b < N)
    iteration: F  # (C, B): mean iteration d̄(b)
    p_queue: F  # an accepted arrival has to queue
    queue_mean: F  # mean queueing wait of those that queue
    queue_rate: F  # κ = −log r': the queued wait is a truncated exponential of rate κ on [0, M]
    queue_room: F  # M = K − N
    decode_part: F  # mean of the service's length-dependent part (out · ITL)
    service_var: F  # variance of the service time


def evaluate(blk: AccurateBlock, lam: F, *, detail: bool = True) -> BlockState:
    """The accurate model of every point of the block at its arrival rate λ (/ms, > 0).

    Without ``detail`` the service time's variance (only the latency distribution needs it) is
    not computed (NaN)."""
    b, inside, n = blk.b, blk.inside, blk.n_batch
    rows = np.arange(n.size)
    last = n.astype(np.intp) - 1
    iters = blk.iters
    stall = blk.stall[:, None]
    any_stall = bool(blk.stall.any())
    if any_stall:
        full = b >= n[:, None]
        with np.errstate(over="ignore"):
            j = np.where(full, np.maximum(n[:, None] - 1.0, 0.0) / iters, lam[:, None] * blk.decode)
        q = -np.expm1(-j)
        k_bar = np.where(q > 1e-12, j / np.maximum(q, _TINY), 1.0)
        prefill = blk.pre0 + _col(blk.pre1) * k_bar
        it_mean = np.where(stall, blk.decode + q * (prefill - blk.decode), blk.decode)
        own = np.where(stall, prefill, blk.decode)
    else:  # G0, G3, no input: every iteration is a decode iteration
        prefill = it_mean = own = blk.decode
    tau = np.maximum(own + (iters - 1.0) * it_mean, MIN_SERVICE_MS)
    with np.errstate(divide="ignore"):
        log_mu = np.where(inside, np.log(b / tau), np.inf)
    cum = np.concatenate([np.zeros((n.size, 1)), np.cumsum(log_mu, axis=1)], axis=1)
    log_mu_n = log_mu[rows, last]
    # the chain's head p(0..N) and the mass of n ≥ N, with the chain's tail ratio r = λ/μ(N)
    idx = np.arange(cum.shape[1], dtype=np.float64)
    a = idx * np.log(lam)[:, None] - cum  # log p̃(n), −inf past N
    a_n = a[rows, last + 1]
    log_r = np.log(lam) - log_mu_n
    m_tail = blk.n_tail
    log_g = _log_geometric(log_r, m_tail + 1.0)  # log Σ_{j=0..M} r^j
    log_tail = a_n + log_g
    head = a[:, :-1]  # n = 0..N−1 (padding −inf beyond)
    head = np.where(np.arange(head.shape[1])[None, :] < n[:, None], head, -np.inf)
    shift = np.maximum(head.max(axis=1), log_tail)
    e = np.exp(head - shift[:, None])
    tail_e = np.exp(log_tail - shift)
    z = e.sum(axis=1) + tail_e
    p_head = e / z[:, None]  # p(n), n = 0..N−1
    p_tail = tail_e / z
    # the queue within n ≥ N: geometric with the mean-matched ratio r'
    tau_n = tau[rows, last]
    it_n = it_mean[rows, last]
    cs2 = blk.scv * (blk.out_tokens * it_n / tau_n) ** 2
    f = 0.5 * (1.0 + cs2)
    log_r2 = _matched_log_ratio(log_r, f)
    mean_j, top = _truncated_geometric(log_r2, m_tail)
    p_full = p_tail * top
    accept = 1.0 - p_full
    x = lam * accept
    in_service = (p_head * np.arange(p_head.shape[1])).sum(axis=1) + n * p_tail
    lq = p_tail * mean_j
    held = in_service + lq
    p_queue = np.maximum(p_tail - p_full, 0.0) / accept
    wait_q = lq / x
    queue_mean = np.where(p_queue > 0, wait_q / np.maximum(p_queue, _TINY), 0.0)
    # arrivals that find 1 ≤ n < N join at the end of the running iteration
    room = p_head[:, 1:] / accept[:, None]  # n = 1..N−1 → columns 0..N−2
    room = np.concatenate([room, np.zeros((n.size, 1))], axis=1)  # (C, B), n = b
    it_at = it_mean  # d̄ at b = n (the running batch)
    boundary = (room * it_at).sum(axis=1) * 0.5
    wait = wait_q + boundary
    service = in_service / x
    # ITL: the mean iteration, weighted by the tokens each state produces
    occ = np.concatenate([p_head[:, 1:], np.zeros((n.size, 1))], axis=1)
    occ[rows, last] += p_tail
    occ = occ * b
    itl = occ.sum(axis=1) / np.maximum((occ / it_mean).sum(axis=1), _TINY)
    # the first token: one iteration at the batch the request joins (b_join = min(n + 1, N))
    first_at = blk.first_iters * it_mean
    if any_stall:
        g2 = blk.kind[:, None] == 2
        first_at = np.where(stall, prefill + np.where(g2, it_mean, 0.0), first_at)
    p_join = p_head / accept[:, None]  # an arrival finding n < N joins a batch of n + 1
    p_join[rows, last] += p_queue
    first = (p_join * first_at).sum(axis=1)
    # the service time's variance: the output length's, plus the spread of the batch a request
    # joins (half of it: the batch changes during its life)
    d_part = blk.out_tokens * itl
    service_var = np.full(n.size, np.nan)
    if detail:
        tau_join = np.where(inside, tau, 0.0)
        m1 = (p_join * tau_join).sum(axis=1)
        m2 = (p_join * tau_join**2).sum(axis=1)
        var_batch = 0.5 * np.maximum(m2 - m1 * m1, 0.0)
        service_var = blk.scv * d_part**2 + var_batch
    return BlockState(
        throughput=x,
        wait=wait,
        service=service,
        held=held,
        in_service=in_service,
        utilization=1.0 - p_head[:, 0],
        blocking=p_full,
        itl=itl,
        first=first,
        p_empty=p_head[:, 0] / accept,
        room=room,
        iteration=it_mean,
        p_queue=p_queue,
        queue_mean=queue_mean,
        queue_rate=-log_r2,
        queue_room=np.maximum(m_tail, 1.0),
        decode_part=np.minimum(d_part, service),
        service_var=service_var,
    )


def capacity(blk: AccurateBlock) -> F:
    """μ(N) of the accurate chain: the largest throughput (λ-independent)."""
    rows = np.arange(blk.n_batch.size)
    last = blk.n_batch.astype(np.intp) - 1
    out: F = blk.n_batch / _rates_at_full(blk)[rows, last]
    return out


def _rates_at_full(blk: AccurateBlock) -> F:
    """τ(b) with the full-batch join rate everywhere (used for the capacity at b = N)."""
    n = blk.n_batch
    j = np.maximum(n[:, None] - 1.0, 0.0) / blk.iters
    q = -np.expm1(-j)
    k_bar = np.where(q > 1e-12, j / np.maximum(q, _TINY), 1.0)
    prefill = blk.pre0 + _col(blk.pre1) * k_bar
    stall = blk.stall[:, None]
    it_mean = np.where(stall, blk.decode + q * (prefill - blk.decode), blk.decode)
    own = np.where(stall, prefill, blk.decode)
    out: F = np.maximum(own + (blk.iters - 1.0) * it_mean, MIN_SERVICE_MS)
    return out


def _log_geometric(log_r: F, m: F) -> F:
    """log Σ_{j<M} r^j for M ≥ 1, stable for every r (reflected above 1)."""
    a, _ = _chain._geometric_sums(np.abs(log_r), m)
    out: F = np.log(a) + np.where(log_r > 0, (m - 1.0) * log_r, 0.0)
    return out


def _matched_log_ratio(log_r: F, f: F) -> F:
    """log r' with r'/(1 − r') = f·r/(1 − r): the geometric queue whose mean is f times the
    chain's (untruncated); r' = 1 at r = 1, and r' > 1 exactly when r > 1."""
    r = np.exp(np.minimum(log_r, 50.0))
    den = 1.0 - r + f * r
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F = np.where(den > 1e-12, np.log(f) + log_r - np.log(np.maximum(den, _TINY)), 50.0)
    return np.where(np.abs(log_r) < 1e-12, 0.0, out)


def _truncated_geometric(log_r: F, m: F) -> tuple[F, F]:
    """For j on 0..M with P(j) ∝ r^j: (E[j], P(j = M)), stable for every r."""
    x = np.abs(log_r)
    a, bsum = _chain._geometric_sums(x, m + 1.0)  # Σ s^k, Σ k s^k, k = 0..M, s = e^{−|log r|}
    mean_low = bsum / a
    up = log_r > 0
    mean = np.where(up, m - mean_low, mean_low)
    top = np.where(up, 1.0 / a, np.exp(-m * x) / a)
    return mean, top


# --- distributions ------------------------------------------------------------------------------

_NODES = 256  # nodes of the queued wait in the response-time survival


def _trunc_sf(kappa: F, m: F, x: F) -> F:
    """P(X > x) for X on [0, M] with density ∝ e^{−κx} (any sign of κ)."""
    xx = np.clip(x, 0.0, m)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pos = (np.exp(-kappa * xx) - np.exp(-kappa * m)) / -np.expm1(-kappa * m)
        neg = np.expm1(kappa * (m - xx)) / np.expm1(kappa * m)
        flat = (m - xx) / m
    small = np.abs(kappa * m) < 1e-9
    out: F = np.where(small, flat, np.where(kappa > 0, pos, neg))
    return np.clip(np.where(x <= 0, 1.0, out), 0.0, 1.0)


def _trunc_mean(kappa: F, m: F) -> F:
    """E[X] of :func:`_trunc_sf`'s distribution."""
    a = np.abs(kappa)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        low = 1.0 / a - m * np.exp(-a * m) / -np.expm1(-a * m)
    small = a * m < 1e-6
    out: F = np.where(small, 0.5 * m, np.where(kappa > 0, low, m - low))
    return out


def _trunc_ppf(kappa: F, m: F, p: F) -> F:
    """The p-quantile of :func:`_trunc_sf`'s distribution (p broadcasts against κ)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pos = -np.log1p(p * np.expm1(-kappa * m)) / kappa
        neg = m - np.log1p((1.0 - p) * np.expm1(kappa * m)) / kappa
    small = np.abs(kappa * m) < 1e-9
    out: F = np.where(small, p * m, np.where(kappa > 0, pos, neg))
    return np.clip(out, 0.0, m)


def _queue_scale(st: BlockState) -> F:
    """ms per unit of X: the queued wait is X·scale, with the mean ``queue_mean``."""
    mean_x = _trunc_mean(st.queue_rate, st.queue_room)
    out: F = np.where(mean_x > 0, st.queue_mean / np.maximum(mean_x, _TINY), 0.0)
    return out


def wait_survival(st: BlockState, t: F) -> F:
    """P(W > t) per point (t of shape (C,)): the boundary wait, uniform on one iteration, for
    arrivals that find room; for those that queue, the queue's truncated geometric made
    continuous (rate κ on [0, K − N]) and scaled to the queued wait's mean."""
    tt = np.maximum(t, 0.0)
    scale = _queue_scale(st)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(1.0 - tt[:, None] / st.iteration, 0.0, 1.0)
        x = np.where(scale > 0, tt / np.maximum(scale, _TINY), np.inf)
    queued = np.where(scale > 0, _trunc_sf(st.queue_rate, st.queue_room, x), 0.0)
    out: F = (st.room * frac).sum(axis=1) + st.p_queue * queued
    return np.where(t < 0, 1.0, out)


def _gamma_sf(k: F, theta: F, u: F) -> F:
    from scipy import special  # here: a plain solve with mean targets needs no scipy

    out: F = np.where(u > 0, special.gammaincc(k, np.maximum(u, 0.0) / theta), 1.0)
    return out


def response_survival(st: BlockState, t: F) -> F:
    """P(R > t) per point, R = W + S: S = s₀ + Gamma (mean and variance of the service), W the
    mixture of :func:`wait_survival` with the boundary wait at its mean."""
    mean_g = np.maximum(st.decode_part, 1e-12)
    var_g = np.maximum(st.service_var, (1e-4 * mean_g) ** 2)
    k = mean_g**2 / var_g
    theta = var_g / mean_g
    s0 = st.service - mean_g
    u = t - s0
    out = st.p_empty * _gamma_sf(k, theta, u)
    half = 0.5 * st.iteration
    room = (st.room * _gamma_sf(k[:, None], theta[:, None], u[:, None] - half)).sum(axis=1)
    # the queued wait at equal-probability nodes of its distribution
    p = (np.arange(_NODES) + 0.5) / _NODES
    wq = _queue_scale(st)[:, None] * _trunc_ppf(
        st.queue_rate[:, None], st.queue_room[:, None], p[None, :]
    )
    queued = _gamma_sf(k[:, None], theta[:, None], u[:, None] - wq).mean(axis=1)
    res: F = np.clip(out + room + st.p_queue * queued, 0.0, 1.0)
    return res
