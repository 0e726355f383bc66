"""Triton's dynamic batcher with a batching delay, on one model instance (pure numpy).

:mod:`.bulk` solves ``max_queue_delay`` 0. With a delay D > 0 a batch starts when N requests
wait or when the oldest waiting request has waited D, whichever comes first (and never while
the instance runs a batch). A request that finds the instance idle waits up to D for company.
Batches of b take τ(b) = κ·(α + β·b); arrivals are Poisson(λ); at most K requests are held.

The embedded chain is taken at batch *starts*: the state is (b, L), the batch that starts and
the requests left waiting behind it (L > 0 only when b = N). Everything after the start depends
on (b, L) alone:

- the run lasts τ(b); A ~ Poisson(λτ(b)) arrive, X = min(b + L + A, K) − b wait at its end;
- X ≥ N: the next batch (N, X − N) starts at once;
- X = 0: the instance idles (mean 1/λ), the next arrival opens a *window*: it closes when N − 1
  more have come or after D, and b' = min(1 + A(D), N) start;
- 1 ≤ X < N: the oldest waiting request has age a. With L = 0 it is the run's first arrival:
  the run's arrivals have the joint law P(first at τ − a, X = m) = λe^{−λ(τ−a)}·P(A(a) = m − 1)
  da. If a ≥ D the batch of X starts at once; otherwise a window of D − a opens with X waiting.
  Summed over X and a this has a closed form in Poisson probabilities at λτ, λu and λD
  (u = min(τ, D): :func:`_young_closed`) unless the run can fill the queue (K − b < N), where a
  is integrated by Gauss–Legendre (:func:`_young`). With L > 0 the oldest is a request left
  behind by the previous full batch: its age is taken as τ(N)·(1 + L/(N + L + 1)) (it waited
  through this run and, on average, that share of the previous one) — the one approximation,
  used only when D > τ(N) and a full batch with leftovers is followed by fewer than N waiting.

A window from x waiting with horizon θ ends at min(θ, S_{N−x}) (S_k the time to k arrivals), so
E[length] = Σ_{i<N−x} P(A(θ) > i)/λ, the time-integral of the number waiting is
Σ_{i<N−x} (x + i)·P(A(θ) > i)/λ, and b' = min(x + A(θ), N). With the run's integral
(:func:`inferno.model.bulk._areas`), renewal-reward over the cycle from one start to the next
gives the time-average number in the system L̄, the throughput E[b]/E[cycle] and, by Little's
law, the mean response time.

The transition matrix is built for all states at once (numpy, no loop over states, no window
per quadrature node); tests/model/test_serving_fast.py holds it to the values of the loop it
replaced (1e-9 relative).

Several instances (c > 1) are :mod:`.bulk_instances`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .bulk import BulkMetrics, _areas, _poisson_pmf, _poisson_sf

__all__ = ["DelayChain", "delay_chain", "delay_metrics"]

F = NDArray[np.float64]
Idx = NDArray[np.intp]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)


def _gl(lo: float, hi: float) -> tuple[F, F]:
    """Gauss–Legendre nodes and weights on [lo, hi]."""
    half = (hi - lo) / 2.0
    x: F = lo + half * (_NODES + 1.0)
    w: F = half * _WEIGHTS
    return x, w


@dataclass(frozen=True, slots=True)
class Windows:
    """Windows opened with x waiting and horizon θ (arrays of one shape): the law of the batch
    that closes them, their mean length and the mean time-integral of the number waiting."""

    batch: F  # (..., N + 1): P(b' = j), j = 0..N
    length: F
    area: F


def windows(x: F, theta: F, n: int, rate: float) -> Windows:
    """See :class:`Windows`; ``x`` in 1..N (x = N: closed at once)."""
    shape = np.broadcast_shapes(np.shape(x), np.shape(theta))
    xs = np.broadcast_to(x, shape).ravel().astype(np.float64)
    th = np.broadcast_to(theta, shape).ravel().astype(np.float64)
    i = np.arange(n, dtype=np.float64)
    mean = rate * th
    pmf = _poisson_pmf(n + 1, mean)  # P(A(θ) = i), i = 0..N
    sf = _poisson_sf(n, mean)  # P(A(θ) > i), i = 0..N−1
    need = n - xs  # arrivals that fill the batch
    live = i[None, :] < need[:, None]
    length = np.where(live, sf, 0.0).sum(axis=1) / rate
    area = np.where(live, (xs[:, None] + i[None, :]) * sf, 0.0).sum(axis=1) / rate
    j = np.arange(n + 1, dtype=np.float64)
    k = j[None, :] - xs[:, None]  # arrivals for b' = j
    below = np.take_along_axis(pmf, np.clip(k, 0, n).astype(np.intp), axis=1)
    batch = np.where((k >= 0) & (j[None, :] < n), below, 0.0)
    batch[:, n] = np.clip(1.0 - batch[:, :n].sum(axis=1), 0.0, 1.0)
    return Windows(batch.reshape(*shape, n + 1), length.reshape(shape), area.reshape(shape))


@dataclass(frozen=True, slots=True)
class DelayChain:
    """The chain at batch starts, solved. State s = (b, L): s = b − 1 for L = 0, N − 1 + L for
    b = N; ``pi`` its stationary law, ``tau`` the run, ``cycle``/``area`` the mean cycle length
    and time-integral of the number in the system from that start to the next."""

    n: int
    k: int
    rate: float
    delay: float
    tau_of: F  # τ(b), b = 0..N (τ(0) unused)
    pi: F
    batch: F
    left: F
    tau: F
    cycle: F
    area: F
    idle: F  # P(the instance idles after the run of each state)
    p_a: F  # P(A = j arrivals during the run of each state), capped at the room left
    room: Idx  # the arrivals that fit during the run of each state

    def opened(self) -> tuple[F, F, F, F]:
        """The windows opened after the run of each state (for the distributions): the state's
        index, the requests waiting when it opens (the idle case: 1, the first arrival), its
        horizon and its probability given the state. Windows of horizon 0 (the batch starts at
        once) carry no waiting and are left out."""
        n, k, rate, delay = self.n, self.k, self.rate, self.delay
        wins: list[tuple[F, F, F, F]] = []
        scratch = (np.zeros((k, k)), np.zeros(k), np.zeros(k))
        for s in range(k):
            ell = int(self.left[s])
            if ell == 0:
                p0 = float(self.p_a[s, 0])
                wins.append((np.array([s]), np.array([1.0]), np.array([delay]), np.array([p0])))
                st, x, th, w = _young(
                    s, int(self.room[s]), float(self.tau[s]), n, rate, delay, *scratch
                )
                live = th > 0
                wins.append((st[live], x[live], th[live], w[live]))
            elif ell < n:
                top = min(n - 1, ell + int(self.room[s]))
                xm = np.arange(ell, top + 1, dtype=np.float64)
                age = float(_leftover_age(float(self.tau_of[n]), n, np.array([float(ell)]))[0])
                wins.append(
                    (
                        np.full(xm.shape, float(s)),
                        xm,
                        np.full(xm.shape, max(delay - age, 0.0)),
                        self.p_a[s, (xm - ell).astype(np.intp)],
                    )
                )
        ws, wx, wt, ww = (np.concatenate([w[i] for w in wins]) for i in range(4))
        return ws, wx, wt, ww


def _leftover_age(tau_n: float, n: int, left: F) -> F:
    """The approximate age at a run's end of the oldest request a full batch left behind."""
    out: F = tau_n * (1.0 + left / (n + left + 1.0))
    return out


def delay_chain(alpha: float, beta: float, n: int, k: int, rate: float, delay: float) -> DelayChain:
    """Solve the chain at batch starts (times already scaled by κ).

    The transition matrix is built for all states at once. From a start (b, 0) whose run cannot
    fill the queue (K − b ≥ N) the windows opened by the run's first arrival at age a are summed
    over a in closed form (:func:`_young_closed`); only the rare starts whose run can reach K
    (a short queue, K < N + b) integrate over a by Gauss–Legendre (:func:`_young`)."""
    if k < n:
        raise ValueError(f"need K ≥ N, got N={n}, K={k}")
    size = k  # states: b = 1..N with L = 0, then L = 1..K − N
    tau_of = alpha + beta * np.arange(n + 1, dtype=np.float64)
    batch = np.concatenate([np.arange(1, n + 1), np.full(k - n, n)]).astype(np.float64)
    left = np.concatenate([np.zeros(n), np.arange(1, k - n + 1)]).astype(np.float64)
    tau = tau_of[batch.astype(np.intp)]
    room = (k - batch - left).astype(np.intp)  # arrivals during a run that still fit
    pre_len = np.zeros(size)
    pre_area = np.zeros(size)
    # arrivals during each run: A ~ Poisson(λτ), capped so that b + L + A ≤ K
    pmf = _poisson_pmf(k + 1, rate * tau)  # (K, K + 1)
    j = np.arange(k + 1)
    below = np.where(j[None, :] < room[:, None], pmf, 0.0)
    p_a = below.copy()
    rows = np.arange(size)
    p_a[rows, room] = np.maximum(0.0, 1.0 - below.sum(axis=1))  # A ≥ room: capped
    xs = left[:, None] + j[None, :]  # X at the run's end
    # X ≥ N: the next full batch (N, X − N) at once, state X − 1 (distinct within a row)
    trans = np.zeros((size, size + 1))
    full = (xs >= n) & (j[None, :] <= room[:, None])
    r_full, c_full = np.nonzero(full)
    trans[r_full, (xs[r_full, c_full] - 1).astype(np.intp)] = p_a[r_full, c_full]
    trans = trans[:, :size]
    young = left == 0
    # X = 0 (only from L = 0): idle, then a window of the next arrival alone with horizon D
    idle = windows(np.array([1.0]), np.array([delay]), n, rate)
    idle_p = np.where(young, p_a[:, 0], 0.0)
    trans[:, :n] += idle_p[:, None] * idle.batch[0, 1:][None, :]
    pre_len += idle_p * (1.0 / rate + float(idle.length[0]))
    pre_area += idle_p * float(idle.area[0])
    # 1 ≤ X < N after a run from (b, 0): the oldest waiting is the run's first arrival
    if n > 1:
        closed = young & (room >= n)
        if closed.any():
            _young_closed(
                np.flatnonzero(closed), tau, pmf, n, rate, delay, trans, pre_len, pre_area
            )
        for s in np.flatnonzero(young & ~closed):
            _young(int(s), int(room[s]), float(tau[s]), n, rate, delay, trans, pre_len, pre_area)
    # 1 ≤ X < N after a full batch with L > 0 left: the oldest is one of those left behind
    _leftover_windows(left, room, p_a, float(tau_of[n]), n, rate, delay, trans, pre_len, pre_area)
    trans = trans / trans.sum(axis=1, keepdims=True)
    system = (trans - np.eye(size)).T
    system[-1, :] = 1.0
    rhs = np.zeros(size)
    rhs[-1] = 1.0
    pi = np.clip(np.linalg.solve(system, rhs), 0.0, None)
    pi /= pi.sum()
    run_area = _areas(batch + left, tau, rate, k)
    return DelayChain(
        n,
        k,
        rate,
        delay,
        tau_of,
        pi,
        batch,
        left,
        tau,
        tau + pre_len,
        run_area + pre_area,
        idle_p,
        p_a,
        room,
    )


def _young_closed(
    states: Idx,
    tau_all: F,
    run_pmf: F,
    n: int,
    rate: float,
    delay: float,
    trans: F,
    pre_len: F,
    pre_area: F,
) -> None:
    """From starts (b, 0) whose run cannot reach K: the windows opened with 1 ≤ X < N waiting,
    the oldest of age a (the run's first arrival, at τ − a), summed over X and a in closed form.

    Write A(t) for the arrivals in t after the first one. X = 1 + A(a), and a window that opens
    with X waiting and horizon D − a closes with min(1 + A(D), N) (the arrivals of disjoint
    intervals add up), so for a ≤ u = min(τ, D) (a window opens) the batch is that of A(D) and the
    density λe^{−λ(τ−a)} of a integrates to c₁ = e^{−λ(τ−u)} − e^{−λτ}; the window's length is
    (min(A(D), N − 1) − min(A(a), N − 1))/λ and its area ∫ₐᴰ E[(1 + A(v))·1{A(v) ≤ N − 2}] dv,
    whose integrals over a are sums of Poisson probabilities at λu and λD. For a > D (the oldest
    has waited D already) the batch of X starts at once: P(X = m, a > D) = P(A(τ) = m) −
    e^{−λ(τ−D)}·P(A(D) = m) (the first-arrival density times P(A(a) = m − 1) is a polynomial in a).
    """
    tau = tau_all[states]
    lam = rate
    m = np.arange(1, n)  # X = 1..N − 1
    if delay > 0:
        u = np.minimum(tau, delay)
        e_u = np.exp(-lam * (tau - u))
        c1 = e_u - np.exp(-lam * tau)
        p_d = _poisson_pmf(n + 1, np.array([lam * delay]))[0]
        s_d = np.clip(1.0 - np.cumsum(p_d), 0.0, 1.0)  # P(A(D) > i)
        p_u = _poisson_pmf(n + 1, lam * u)
        s_u = np.clip(1.0 - np.cumsum(p_u, axis=1), 0.0, 1.0)
        # the batch: b' = 1 + A(D) < N, or N
        trans[np.ix_(states, m - 1)] += c1[:, None] * p_d[None, : n - 1]
        trans[states, n - 1] += c1 * s_d[n - 2] - e_u * s_u[:, n - 1]
        # the length: E[min(A(D), N − 1)] and ∫ e^{−λ(τ−a)}·E[min(A(a), N − 1)] da
        mean_d = float(s_d[: n - 1].sum())
        pre_len[states] += (c1 * mean_d - e_u * s_u[:, 1:n].sum(axis=1)) / lam
        # the area: H(t) = ∫₀ᵗ E[(1 + A(v))·1{A(v) ≤ N − 2}] dv = Σ_{i≤N−2} (1 + i)·P(A(t) > i)/λ
        i = np.arange(n - 1, dtype=np.float64)
        h_d = float(((1.0 + i) * s_d[: n - 1]).sum()) / lam
        h_u = ((1.0 + i)[None, :] * s_u[:, : n - 1]).sum(axis=1) / lam
        head = (m.astype(np.float64)[None, :] * p_u[:, 1:n]).sum(axis=1) / lam
        pre_area[states] += c1 * h_d + e_u * (head - h_u)
    late = tau > delay
    if late.any():
        st = states[late]
        p_d = _poisson_pmf(n, np.array([lam * delay]))[0]
        e_d = np.exp(-lam * (tau[late] - delay))
        trans[np.ix_(st, m - 1)] += run_pmf[np.ix_(st, m)] - e_d[:, None] * p_d[None, 1:n]


def _leftover_windows(
    left: F,
    room: Idx,
    p_a: F,
    tau_n: float,
    n: int,
    rate: float,
    delay: float,
    trans: F,
    pre_len: F,
    pre_area: F,
) -> None:
    """From starts (N, L) with 0 < L < N: a run that ends with X < N waiting opens a window of
    horizon D minus the leftover's age (:func:`_leftover_age`), all such states at once."""
    states = np.flatnonzero((left > 0) & (left < n))
    if states.size == 0:
        return
    ell = left[states]
    theta = np.maximum(delay - _leftover_age(tau_n, n, ell), 0.0)
    xi = np.arange(n)  # X = 0..N − 1 (X < L carries no weight)
    x = xi.astype(np.float64)
    a = x[None, :] - ell[:, None]  # the run's arrivals
    ok = (a >= 0) & (a <= room[states][:, None])
    w = np.where(ok, np.take_along_axis(p_a[states], np.clip(a, 0, None).astype(np.intp), 1), 0.0)
    pmf = _poisson_pmf(n + 1, rate * theta)  # P(A(θ) = i), i = 0..N
    sf = np.clip(1.0 - np.cumsum(pmf[:, :n], axis=1), 0.0, 1.0)  # P(A(θ) > i), i < N
    jj = np.arange(1, n)  # b' = 1..N − 1
    shift = jj[None, :] - xi[:, None]  # (X, j): A(θ) = j − X
    gathered = np.where(shift[None, :, :] >= 0, pmf[:, np.clip(shift, 0, n)], 0.0)  # (S, X, j)
    trans[np.ix_(states, jj - 1)] += np.einsum("sx,sxj->sj", w, gathered)
    cdf = np.cumsum(pmf[:, :n], axis=1)  # P(A(θ) ≤ i)
    need = n - xi  # arrivals that fill the batch
    at_n = np.clip(1.0 - cdf[:, need - 1], 0.0, 1.0)  # P(A(θ) ≥ N − X)
    trans[states, n - 1] += (w * at_n).sum(axis=1)
    cs = np.concatenate([np.zeros((states.size, 1)), np.cumsum(sf, axis=1)], axis=1)
    ci = np.concatenate(
        [np.zeros((states.size, 1)), np.cumsum(np.arange(n)[None, :] * sf, axis=1)], axis=1
    )
    length = cs[:, need] / rate
    area = (x[None, :] * cs[:, need] + ci[:, need]) / rate
    pre_len[states] += (w * length).sum(axis=1)
    pre_area[states] += (w * area).sum(axis=1)


def _young(
    s: int,
    room: int,
    tau: float,
    n: int,
    rate: float,
    delay: float,
    trans: F,
    pre_len: F,
    pre_area: F,
) -> tuple[F, F, F, F]:
    """From a start (b, 0): the run ends with 1 ≤ X < N waiting, the oldest of age a (the run's
    first arrival), integrated over a. Returns the windows it opens (state, x, θ, weight)."""
    top = min(n - 1, room)
    empty = np.zeros(0)
    if top < 1:
        return empty, empty, empty, empty
    m = np.arange(1, top + 1, dtype=np.float64)
    parts = []
    opened = []
    if delay > 0:
        parts.append(_gl(0.0, min(tau, delay)))
    if delay < tau:
        parts.append(_gl(max(delay, 0.0), tau))
    for a, wa in parts:
        # P(first arrival at τ − a, X = m) da; X = room (capped) takes A(a) ≥ m − 1
        dens = rate * np.exp(-rate * (tau - a))  # (Q,)
        pm = _poisson_pmf(top + 1, rate * a)[:, :top]  # P(A(a) = m − 1)
        if top == room:
            pm[:, -1] = np.clip(1.0 - pm[:, :-1].sum(axis=1), 0.0, 1.0)
        w = (wa * dens)[:, None] * pm  # (Q, M)
        theta = np.maximum(delay - a, 0.0)[:, None] * np.ones_like(m)[None, :]
        win = windows(np.broadcast_to(m, theta.shape), theta, n, rate)
        trans[s, :n] += np.einsum("qm,qmj->j", w, win.batch[:, :, 1:])
        pre_len[s] += float((w * win.length).sum())
        pre_area[s] += float((w * win.area).sum())
        opened.append((np.broadcast_to(m, theta.shape).ravel(), theta.ravel(), w.ravel()))
    xs, th, ws = (np.concatenate([o[i] for o in opened]) for i in range(3))
    return np.full(xs.shape, float(s)), xs, th, ws


def delay_metrics(
    alpha: float, beta: float, n: int, k: int, rate: float, delay: float
) -> tuple[BulkMetrics, DelayChain]:
    """Metrics of one instance with batching delay ``delay`` (ms; times already scaled by κ)."""
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"the arrival rate must be > 0, got {rate}")
    ch = delay_chain(alpha, beta, n, k, rate, delay)
    pi = ch.pi
    cycle = float(pi @ ch.cycle)
    served = float(pi @ ch.batch)
    throughput = served / cycle
    in_system = float(pi @ ch.area) / cycle
    response = in_system / throughput
    service = float(pi @ (ch.batch * ch.tau)) / served
    m = BulkMetrics(
        rate=rate,
        throughput=throughput,
        response=response,
        service=service,
        wait=max(response - service, 0.0),
        avg_batch=served,
        utilization=float(pi @ ch.tau) / cycle,
        blocking=max(0.0, 1.0 - throughput / rate),
        in_system=in_system,
    )
    return m, ch
