"""The accurate model's arithmetic for LLM kinds (G0–G3), one block of points at a time.

A block is C points padded to its largest batch limit B; per-state arrays are (C, B), column b−1
for b requests in the batch. Everything is vectorised numpy; the method is in ``docs/model.md``
("Accurate mode"). In short:

- *Iterations.* A request needs I iterations (G0, G1: out; G2: out + 1 with input; G3: nc + out),
  each lasting the batch's iteration time: D(b) for decode, and for G1/G2 a prefill iteration
  whenever requests join (G1: γ + δ·in·k; G2: α + b·w̄ + (β+γ)·in·k for k joiners). While the
  batch has room, the requests joining at a boundary arrived during the iteration just ended:
  λ·D(b) of them after a decode iteration, λ·P̄ after a prefill of mean length P̄, so the
  prefill fraction q and the mean joiners k̄ come from a two-state chain whose P̄ is its own
  fixed point (:func:`prefill_joins`); once it is full, (N − 1)/I join per iteration (a
  completion lets the next one in), q = 1 − e^{−j} and k̄ = j/q. The mean iteration d̄(b)
  and a request's time in the batch τ(b) = own prefill + (I − 1)·d̄(b) give the death rates
  μ(b) = b/τ(b) of a birth-death chain.
- *Lengths.* G2/G3 costs are averaged over the batch's members, which are length-biased (a
  request of o tokens stays o + 1 iterations): E[o²] = m²(1 + c²) for an output-length SCV c².
- *Queue.* The chain's mass on n ≥ N is kept; within it the queue length is geometric with the
  ratio r' that scales the chain's mean queue by a two-moment factor in c_s², the SCV of the
  service time (:func:`._accurate_queue.queue_factor`: Cosmetatos' M/D/c below c_s² = 1,
  Kimura's system interpolation above, both Allen–Cunneen's (1 + c_s²)/2 at N = 1); capped at
  K like the chain. At N = 1 the queue is the exact M/G/1/K (:mod:`._accurate_single`) but for
  exponential services, where the geometric queue is M/M/1/K itself.
- *Boundaries.* An arrival that finds room joins at the end of the running iteration (half an
  iteration on average); its first token comes F later (one iteration; G1 the prefill iteration;
  G2 prefill + one decode; G3 nc + 1 iterations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._accurate_queue import log_geometric, matched_log_ratio, queue_factor, truncated_geometric
from ._accurate_single import single_queue
from .bounds import MIN_SERVICE_MS
from .profiles import Kind

F = NDArray[np.float64]

__all__ = [
    "AccurateBlock",
    "BlockState",
    "capacity",
    "evaluate",
    "prefill_joins",
]

_TINY = 1e-300


@dataclass(frozen=True, slots=True)
class Static:
    """The λ-independent per-state arrays of a block whose rows never stall (G0, G3, no input):
    (C, B) with column n for the state of n requests (n < N; beyond, the head is cut)."""

    tau_all: F  # τ at b = n + 1 (column b − 1) of the block this one was taken from
    tau_rows: NDArray[np.intp]  # (C,): this block's rows in tau_all (only the latency needs τ)
    cs: F  # Σ_{b ≤ n} log μ(b); +inf for n ≥ N (no head state)
    log_mu_n: F  # (C,) log μ(N)
    it_n: F  # (C,) d̄(N)
    tau_n: F  # (C,) τ(N)
    it_state: F  # the mean iteration with n in the batch (column 0: with 1)
    rate_state: F  # n / d̄(n), tokens per ms with n in the batch (column 0: 0)
    first_at: F  # the first-token time of a request joining n requests (column n)

    def take(self, rows: NDArray[np.intp], width: int) -> Static:
        cut = (v[rows] if v.ndim == 1 else v[rows, :width] for v in _static_arrays(self))
        return Static(self.tau_all, self.tau_rows[rows], *cut)

    def tau(self, width: int) -> F:
        out: F = self.tau_all[self.tau_rows, :width]
        return out


def _static_arrays(st: Static) -> tuple[F, ...]:
    return st.cs, st.log_mu_n, st.it_n, st.tau_n, st.it_state, st.rate_state, st.first_at


@dataclass(frozen=True, slots=True)
class AccurateBlock:
    """C points of LLM kinds, padded to B = max N. ``stall`` rows have prefill iterations.

    A block none of whose rows stalls carries :class:`Static` instead: its per-state arrays
    ``b`` … ``first_iters`` are then empty, (C, 0) (what :func:`evaluate` needs is in ``static``,
    and subsets copy less)."""

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
    spread: F  # (C,) σ: relative s.d. of the full batch's iteration from its members' KV
    skew: F  # (C,) that iteration's skewness over compositions
    persist: F  # (C,) κ: the queue's window over the composition's time, times (1 − √ρ)²
    kv_work: F  # (C,) factor on the service SCV at N from the KV a request brings the batch (≥ 1)
    #: (C, J) G2's composition as shot noise per output-length node (:func:`._accurate_spread.
    #: episodes`): a member's relative extra cost per iteration, its stay, its joining rate
    ep_y: F
    ep_i: F
    ep_r: F
    ep_v: F  # (C,) the input lengths' relative variance and third moment in that cost
    ep_m3: F
    lognormal: NDArray[np.bool_]  # (C,) output lengths lognormal (else gamma: exponential, fixed)
    out_cap: F  # (C,) the most output tokens over their mean (outTokensMax; NaN: no cap)
    #: (C, B): the part of the first-token time (column n) that the request's own input makes
    #: (G1 δ·L̄, G2 (β+γ)·L̄, G3 its nc chunk iterations), which varies with its input length
    pre_part: F
    in_shift: F  # (C, J): at each input node, the own input's shift of the service (ms)
    in_stall: F  # (C,) another member's prompt: the time it adds to a request's service per token
    in_kv: F  # (C,) another member's input KV: the same, over the request's decode iterations
    in_mean_kv: F  # (C,) G2's decode term γ·mean t_m: in_kv's part that is divided by b
    in_scv: F  # (C,) the input lengths' SCV (0: fixed)
    in_x: F  # (C, J): L/L̄ − 1 at the input-length nodes (:mod:`._accurate_inputs`)
    in_nodes: F  # (C, J): ``pre_part``'s relative change there at b = N (G3: of the chunks;
    #: else in_x), and at b = 1 (in between: linear in b)
    in_nodes_1: F
    in_first: F  # (C, J): ms added to the first-token time at each node (G3's own cost)
    in_w: F  # (C, J): their weights
    static: Static | None = None  # when no row stalls: what does not depend on λ

    def take(
        self, rows: NDArray[np.intp], *, same_width: bool = False, width: int | None = None
    ) -> AccurateBlock:
        """The block of ``rows`` (repeats allowed), trimmed to their largest N (``same_width``:
        not trimmed, so that sums over the columns round as in the whole block; ``width``: that
        many columns)."""
        if width is None:
            width = int(self.n_batch[rows].max()) if rows.size else 1
            if same_width:
                width = int(self.n_batch.max())
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if name == "static":
                out[name] = None if v is None else v.take(rows, width)
            elif name in _NODE_FIELDS:
                out[name] = v[rows]
            else:
                out[name] = _take_rows(v, rows, width) if v.ndim == 2 else v[rows]
        return AccurateBlock(**out)  # type: ignore[arg-type]


def _take_rows(v: NDArray[np.generic], rows: NDArray[np.intp], width: int) -> NDArray[np.generic]:
    """``v[rows, :width]`` of a (C, B) array; a read-only broadcast (the rows or columns that
    repeat in :func:`._accurate_build.make_block`) stays one, so a subset of many repeated rows
    copies only what varies."""
    if rows.size and v.size:
        if v.strides[0] == 0:  # every row the same
            return np.broadcast_to(v[0, :width], (rows.size, width))
        if v.strides[1] == 0:  # every column the same
            return np.broadcast_to(v[rows, :1], (rows.size, width))
    return v[rows, :width]


_CODES = {Kind.G0: 0, Kind.G1: 1, Kind.G2: 2, Kind.G3: 3}
#: (C, J) fields: J nodes, not B states (a subset keeps every column)
_NODE_FIELDS = (
    "in_shift",
    "in_x",
    "in_nodes",
    "in_nodes_1",
    "in_first",
    "in_w",
    "ep_y",
    "ep_i",
    "ep_r",
)


def _col(v: F) -> F:
    return v[:, None]


def _per_state(tau: F, it_mean: F, first_at: F, inside: NDArray[np.bool_], n: F) -> tuple[F, ...]:
    """:class:`Static`'s arrays from τ(b), d̄(b) and the first-token time (column b − 1)."""
    rows = np.arange(n.size)
    last = n.astype(np.intp) - 1
    c, width = tau.shape
    with np.errstate(divide="ignore"):
        log_mu = np.log(np.arange(1, width + 1) / tau)
    cs = np.empty((c, width))
    cs[:, 0] = 0.0
    np.cumsum(log_mu[:, :-1], axis=1, out=cs[:, 1:])
    cs[~inside] = np.inf
    it_state = np.empty((c, width))
    it_state[:, 0] = it_mean[:, 0]
    it_state[:, 1:] = it_mean[:, :-1]
    rate_state = np.arange(width) / it_state
    at_n = (log_mu[rows, last], it_mean[rows, last], tau[rows, last])
    return cs, *at_n, it_state, rate_state, first_at


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
    room: F  # (C, B): P(accepted arrival finds n requests), column n, 1 ≤ n < N (else 0)
    p_room: F  # Σ room: an accepted arrival finds 1 ≤ n < N
    iteration: F  # (C, B): mean iteration d̄ with n in the batch, column n
    p_queue: F  # an accepted arrival has to queue
    queue_mean: F  # mean queueing wait of those that queue
    queue_rate: F  # κ = −log r': the queued wait is a truncated exponential of rate κ on [0, M]
    queue_room: F  # M = K − N
    decode_part: F  # mean of the service's length-dependent part (out · ITL)
    service_var: F  # variance of the service time
    lognormal: NDArray[np.bool_]  # the service's length part is lognormal (else gamma)
    out_cap: F  # ... and at most this many times its mean (the output's cap; NaN: no cap)
    #: N = 1: the service's SCV c_s² (a queued request waits for whole services); NaN for N > 1
    #: (the queue moves at a full batch's departures, taken at their mean)
    slot_scv: F
    first_at: F  # (C, B): the first-token time of a request joining n requests (column n)
    first_full: F  # the first-token time of a queued request (it joins N − 1)
    pre_part: F  # (C, B): the own input's part of ``first_at`` (:class:`AccurateBlock`)
    pre_full: F  # that part of ``first_full``
    in_nodes: F  # (C, J): ``pre_part``'s relative change at the input nodes, at b = N
    in_nodes_1: F  # (C, J): the same at b = 1
    in_first: F  # (C, J): ms added to the first-token time at each node
    n_batch: F  # N
    in_w: F  # (C, J): their weights
    # the queued wait as a mixture of parts k (one, or the compositions of
    # :mod:`._accurate_composition`), each a truncated exponential as above: (C, K) arrays
    part_p: F  # P(an accepted arrival queues, in part k); Σ_k = p_queue
    part_mean: F  # the mean queued wait in part k
    part_rate: F  # κ of part k


def _stalling(blk: AccurateBlock, lam: F) -> tuple[F, tuple[F, ...]]:
    """τ(b) and :class:`Static`'s arrays at λ for a block with prefill stalls."""
    n = blk.n_batch
    stall = blk.stall[:, None]
    q, prefill = prefill_joins(
        lam[:, None], blk.decode, blk.pre0, _col(blk.pre1), n[:, None] - blk.b
    )
    # a full batch (b = N): (N − 1)/I join per iteration, whatever λ (the columns beyond N are
    # the block's padding, never read)
    rows = np.arange(n.size)
    last = n.astype(np.intp) - 1
    q[rows, last], prefill[rows, last] = _full_joins(blk, rows, last)
    it_mean = np.where(stall, blk.decode + q * (prefill - blk.decode), blk.decode)
    own = np.where(stall, prefill, blk.decode)
    tau = np.maximum(own + (blk.iters - 1.0) * it_mean, MIN_SERVICE_MS)
    first_at = blk.first_iters * it_mean
    g2 = (blk.kind == 2)[:, None]
    first_at = np.where(stall, prefill + np.where(g2, it_mean, 0.0), first_at)
    return tau, _per_state(tau, it_mean, first_at, blk.inside, n)


def _pade(series: list[float], m: int) -> tuple[F, F]:
    """The [m/m] Padé approximant of a power series (2m + 1 coefficients, lowest order first):
    its numerator's and denominator's coefficients, lowest first, the denominator's first 1."""
    c = np.asarray(series, dtype=np.float64)
    rows = np.array([[c[k - j] for j in range(1, m + 1)] for k in range(m + 1, 2 * m + 1)])
    den = np.concatenate([[1.0], np.linalg.solve(rows, -c[m + 1 : 2 * m + 1])])
    num = np.array([sum(den[j] * c[k - j] for j in range(k + 1)) for k in range(m + 1)])
    return num, den


#: e^{−W(z)} = W(z)/z (W: Lambert's, w·e^w = z) as its [3/3] Padé approximant about z = 0
#: (series Σ (−(n + 1))^n z^n/(n + 1)!): within 5e-11 relative for 0 ≤ z ≤ :data:`_PADE_TOP`
#: (``tests/model/test_accurate_joins.py``), where most rows' z are, for a few multiplications
#: where ``exp`` and ``log`` cost tens; above it, Newton's method
_EXP_MINUS_W = _pade([(-(n + 1.0)) ** n / math.factorial(n + 1) for n in range(7)], 3)
_PADE_TOP = 0.05
#: Newton steps for W above :data:`_PADE_TOP`, from log(1 + z): four reach double precision
_W_STEPS = 4


def _horner(coefs: F, z: F) -> F:
    out: F = z * coefs[-1]
    out += coefs[-2]
    for c in coefs[-3::-1]:
        out *= z
        out += c
    return out


def exp_minus_w(z: F) -> F:
    """e^{−W(z)} = W(z)/z for z ≥ 0 (1 at z = 0): the Padé approximant up to
    :data:`_PADE_TOP`; above, W by Newton's method on w + log w = log z from log(1 + z) (above
    the root; the function is concave, so the first step lands below it and the rest climb)."""
    num, den = _EXP_MINUS_W
    out = _horner(num, z)
    out /= _horner(den, z)
    big = z > _PADE_TOP
    if big.any():
        zb = z[big]
        log_z = np.log(zb)
        w = np.log1p(zb)
        for _ in range(_W_STEPS):
            w = w * (1.0 + log_z - np.log(w)) / (1.0 + w)
        out[big] = w / zb
    return out


def prefill_joins(lam: F, decode: F, pre0: F, pre1: F, room: F) -> tuple[F, F]:
    """With room in the batch (``room`` = N − b ≥ 1; the other columns' values are not to be
    used): the fraction q of iterations that are prefill iterations and their mean length P̄.

    The requests joining at a boundary are those that arrived during the iteration just ended,
    so their number is Poisson in λ times *its* length: λ·D(b) after a decode iteration,
    x = λ·P̄ after a prefill iteration, P̄ = pre0 + pre1·k̄ for k̄ joiners on average. Two
    states (decode, prefill): from decode a join follows with q_d = 1 − e^{−λD}, from prefill
    with 1 − e^{−x}, so q = q_d / (q_d + e^{−x}). The prefills after a decode bring
    k_d = λD/q_d joiners and those after a prefill x/(1 − e^{−x}), so over the prefills
    k̄ = e^{−x}·k_d + x, and with a = λ·pre1, x = λ·pre0 + a·k̄ solves
    (1 − a)·x = λ·pre0 + a·k_d·e^{−x}: x = x₀ + W(z) (Lambert's W), x₀ = λ·pre0/(1 − a),
    z = a·k_d·e^{−x₀}/(1 − a). So e^{−x} = e^{−x₀}·e^{−W(z)} and
    P̄ = (pre0 + pre1·k_d·e^{−x₀}·e^{−W(z)})/(1 − a). At most ``room`` join (k_d too); with
    a ≥ 1 each prefill brings in more than it lasts for, and the room fills.

    ``lam`` and ``pre1`` are per row (a trailing axis of 1), the rest per column too."""
    a = lam * pre1
    stable = a < 1.0
    inv = 1.0 / np.where(stable, 1.0 - a, 1.0)  # 1/(1 − a)
    room1 = np.maximum(room, 1.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        j_d = lam * decode
        q_d = np.negative(j_d)
        np.expm1(q_d, out=q_d)
        np.negative(q_d, out=q_d)
        t = np.divide(j_d, np.maximum(q_d, _TINY), out=j_d)  # k_d ≥ 1, → 1 as λD → 0
        np.clip(t, 1.0, room1, out=t)
        e0 = np.multiply(pre0, -lam * inv)
        np.exp(e0, out=e0)  # e^{−x₀}
        t *= e0  # k_d·e^{−x₀}
        r = exp_minus_w(t * (a * inv))
        prefill = np.multiply(t, r, out=t)
        prefill *= pre1
        prefill += pre0
        prefill *= inv
        miss = np.multiply(e0, r, out=e0)  # e^{−x}: no join after a prefill
        cap = pre0 + pre1 * room1
        over = prefill > cap
        if not stable.all():
            over |= ~stable
        over &= room >= 1.0
        at = np.nonzero(over)
        if at[0].size:  # the room fills: k̄ = room, x = λ·(pre0 + pre1·room)
            cap_at = np.broadcast_to(cap, over.shape)[at]
            prefill[at] = cap_at
            miss[at] = np.exp(-np.broadcast_to(lam, over.shape)[at] * cap_at)
        miss += q_d
        q = np.divide(q_d, np.maximum(miss, _TINY), out=miss)
    return q, prefill


def evaluate(blk: AccurateBlock, lam: F, *, detail: bool = True) -> BlockState:
    """The accurate model of every point of the block at its arrival rate λ (/ms, > 0).

    Without ``detail`` the service time's variance (only the latency distribution needs it) is
    not computed (NaN)."""
    n = blk.n_batch
    rows = np.arange(n.size)
    last = n.astype(np.intp) - 1
    tau: F | None = None
    if blk.static is not None:
        arrays = _static_arrays(blk.static)
    else:
        tau, arrays = _stalling(blk, lam)
    cs, log_mu_n, it_n, tau_n, it_state, rate_state, first_at = arrays
    width = cs.shape[1]
    states = np.arange(width, dtype=np.float64)
    # the chain's head p(0..N−1) (cs = +inf beyond) and the mass of n ≥ N, tail ratio r = λ/μ(N)
    log_lam = np.log(lam)
    head = np.multiply.outer(log_lam, states)
    head -= cs
    a_n = n * log_lam - (cs[rows, last] + log_mu_n)
    log_r = log_lam - log_mu_n
    m_tail = blk.n_tail
    log_tail = a_n + log_geometric(log_r, m_tail + 1.0)  # + log Σ_{j=0..M} r^j
    shift = np.maximum(head.max(axis=1), log_tail)
    head -= shift[:, None]
    e = np.exp(head, out=head)  # unnormalised p(n), n = 0..N−1
    tail_e = np.exp(log_tail - shift)
    z = e.sum(axis=1) + tail_e
    inv = 1.0 / z
    p_tail = tail_e * inv
    # the queue within n ≥ N: geometric with the mean-matched ratio r'
    # the service's SCV: the output length's, and the own prompt's where input lengths vary
    own_in_var = np.einsum("ij,ij->i", blk.in_w, blk.in_shift**2)
    cs2 = blk.scv * blk.kv_work * (blk.out_tokens * it_n) ** 2 + own_in_var
    cs2 = cs2 / tau_n**2
    log_r2 = matched_log_ratio(log_r, queue_factor(cs2, log_r, n))
    mean_j, top = truncated_geometric(log_r2, m_tail)
    p_full = p_tail * top
    accept = 1.0 - p_full
    x = lam * accept
    in_service = (e @ states) * inv + n * p_tail
    lq = p_tail * mean_j
    held = in_service + lq
    p_queue = np.maximum(p_tail - p_full, 0.0) / accept
    wait_q = lq / x
    queue_mean = np.where(p_queue > 0, wait_q / np.maximum(p_queue, _TINY), 0.0)
    # arrivals that find 1 ≤ n < N join at the end of the running iteration
    scale = inv / accept
    e0 = e[:, 0].copy()
    p_empty = e0 * scale
    first = np.einsum("ij,ij->i", e, first_at) * scale + p_queue * first_at[rows, last]
    first = first + np.einsum("ij,ij->i", blk.in_w, blk.in_first)  # G3: the own cost's mean
    boundary = 0.5 * (np.einsum("ij,ij->i", e, it_state) - e0 * it_state[:, 0]) * scale
    wait = wait_q + boundary
    service = in_service / x
    # ITL: the mean iteration, weighted by the tokens each state produces
    tokens_per_ms = np.einsum("ij,ij->i", e, rate_state) * inv + p_tail * n / it_n
    itl = in_service / np.maximum(tokens_per_ms, _TINY)
    utilization = 1.0 - e0 * inv
    # N = 1: the queue is M/G/1/K, solved exactly (:mod:`._accurate_single`) for a service of
    # the lengths' family, but where the service is exponential (the geometric queue is M/M/1/K
    # itself) and where it is not of that family: G2's KV makes it quadratic in the length
    # (kv_work > 1). The geometric queue's rate stays the shape of the queued wait's distribution
    family = blk.kv_work <= 1.0 + 1e-9
    one = np.flatnonzero((n == 1) & family & (blk.lognormal | (np.abs(cs2 - 1.0) > 1e-9)))
    if one.size:
        at, p0, p_k, lq1 = single_queue(
            lam[one], tau_n[one], cs2[one], blk.lognormal[one], m_tail[one], blk.out_cap[one]
        )
        i = one[at]
        accept1 = 1.0 - p_k
        p_full[i], x[i] = p_k, lam[i] * accept1
        in_service[i] = utilization[i] = 1.0 - p0
        held[i] = in_service[i] + lq1
        p_queue[i] = np.maximum(1.0 - p0 - p_k, 0.0) / accept1
        wait[i] = lq1 / x[i]  # no iteration boundary to wait out at N = 1
        queue_mean[i] = np.where(p_queue[i] > 0, wait[i] / np.maximum(p_queue[i], _TINY), 0.0)
        p_empty[i] = p0 / accept1
        first[i] = (p_empty[i] + p_queue[i]) * first_at[i, 0] + np.einsum(
            "ij,ij->i", blk.in_w[i], blk.in_first[i]
        )
        service[i] = in_service[i] / x[i]
    p_room = np.maximum(z - tail_e - e0, 0.0) * scale
    room = np.multiply(e, scale[:, None], out=e)  # P(an accepted arrival finds n), n < N
    p_join = room.copy() if detail else room
    room[:, 0] = 0.0
    # the service time's variance: the output length's, plus the spread of the batch a request
    # joins (half of it: the batch changes during its life)
    d_part = blk.out_tokens * itl
    service_var = np.full(n.size, np.nan)
    # the own input's shift of the service at each node, with G2's mean-KV term at this λ
    mean_kv = blk.in_mean_kv * blk.in_tokens / np.maximum(in_service, 1.0)
    in_shift = blk.in_shift + mean_kv[:, None] * blk.in_x
    if detail:
        if one.size:
            p_join[i, 0] = p_empty[i]  # the exact queue's, as the chain's above
        p_join[rows, last] += p_queue  # a queued request joins a full batch
        if tau is None:
            assert blk.static is not None
            tau = blk.static.tau(width)
        inside = np.arange(1, width + 1) <= n[:, None]
        tau_join = np.where(inside, tau, 0.0)
        m1 = np.einsum("ij,ij->i", p_join, tau_join)
        m2 = np.einsum("ij,ij->i", p_join, tau_join * tau_join)
        var_batch = 0.5 * np.maximum(m2 - m1 * m1, 0.0)
        service_var = blk.scv * d_part**2 + var_batch
        # the other members' inputs: each joiner during its stay stalls it (about as many as
        # are in service), and the KV of those it finds and of those that join, each over a
        # uniform share of its stay (E[share²] = 1/3)
        var_in = blk.in_scv * blk.in_tokens**2
        kv = blk.in_kv + blk.in_mean_kv / np.maximum(in_service, 1.0)
        service_var += var_in * in_service * (blk.in_stall**2 + (2.0 / 3.0) * kv**2)
        # and its own input (its prompt and KV: the shift at each node)
        service_var += np.einsum("ij,ij->i", blk.in_w, in_shift**2)
    return BlockState(
        throughput=x,
        wait=wait,
        service=service,
        held=held,
        in_service=in_service,
        utilization=utilization,
        blocking=p_full,
        itl=itl,
        first=first,
        p_empty=p_empty,
        room=room,
        p_room=p_room,
        iteration=it_state,
        p_queue=p_queue,
        queue_mean=queue_mean,
        queue_rate=-log_r2,
        queue_room=np.maximum(m_tail, 1.0),
        decode_part=np.minimum(d_part, service),
        service_var=service_var,
        lognormal=blk.lognormal,
        out_cap=blk.out_cap,
        slot_scv=np.where(n == 1, cs2, np.nan),
        first_at=first_at,
        first_full=first_at[rows, last],
        pre_part=blk.pre_part,
        pre_full=blk.pre_part[rows, last],
        in_nodes=blk.in_nodes,
        in_nodes_1=blk.in_nodes_1,
        in_first=blk.in_first,
        n_batch=n,
        in_w=blk.in_w,
        part_p=p_queue[:, None],
        part_mean=queue_mean[:, None],
        part_rate=-log_r2[:, None],
    )


def capacity(blk: AccurateBlock) -> F:
    """μ(N) of the accurate chain: the largest throughput (λ-independent)."""
    if blk.static is not None:
        fixed: F = blk.n_batch / blk.static.tau_n
        return fixed
    out: F = blk.n_batch / at_full(blk, np.arange(blk.n_batch.size))[1]
    return out


def cheap_prefills(blk: AccurateBlock) -> NDArray[np.bool_]:
    """The rows with prefill stalls whose prefill iteration of one joiner is shorter than the
    decode iteration at some batch b < N: there, the more requests arrive, the more of the
    iterations are those cheaper prefills, and the mean iteration (the ITL) can fall as the
    load grows (bench/accurate_joins.py's G1 server: up at ρ = 0.6, down at 0.8)."""
    if blk.static is not None:
        return np.zeros(blk.n_batch.size, dtype=bool)
    inside = blk.b < blk.n_batch[:, None]
    cheap = (blk.pre0 + _col(blk.pre1) < blk.decode) & inside
    out: NDArray[np.bool_] = blk.stall & cheap.any(axis=1)
    return out


def _full_joins(blk: AccurateBlock, rows: NDArray[np.intp], last: NDArray[np.intp]) -> tuple[F, F]:
    """A full batch's prefill fraction q and mean prefill iteration (column ``last`` = N − 1 of
    ``rows``): a completion lets the next one in, so j = (N − 1)/I join per iteration whatever
    λ, q = 1 − e^{−j} and k̄ = j/q."""
    j = np.maximum(blk.n_batch[rows] - 1.0, 0.0) / blk.iters[rows, last]
    q = -np.expm1(-j)
    k_bar = np.where(q > 1e-12, j / np.maximum(q, _TINY), 1.0)
    return q, blk.pre0[rows, last] + blk.pre1[rows] * k_bar


def at_full(blk: AccurateBlock, rows: NDArray[np.intp]) -> tuple[F, F]:
    """d̄(N) and τ(N) of a stalling block's ``rows``: column N − 1 of :func:`_stalling`'s, which
    does not depend on λ, the same operations."""
    last = blk.n_batch[rows].astype(np.intp) - 1
    decode, iters = blk.decode[rows, last], blk.iters[rows, last]
    q, prefill = _full_joins(blk, rows, last)
    stall = blk.stall[rows]
    it_mean = np.where(stall, decode + q * (prefill - decode), decode)
    own = np.where(stall, prefill, decode)
    return it_mean, np.maximum(own + (iters - 1.0) * it_mean, MIN_SERVICE_MS)
