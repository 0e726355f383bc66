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
  da, integrated over a by Gauss–Legendre. If a ≥ D the batch of X starts at once; otherwise a
  window of D − a opens with X waiting. With L > 0 the oldest is a request left behind by the
  previous full batch: its age is taken as τ(N)·(1 + L/(N + L + 1)) (it waited through this run
  and, on average, that share of the previous one) — the one approximation, used only when
  D > τ(N) and a full batch with leftovers is followed by fewer than N waiting.

A window from x waiting with horizon θ ends at min(θ, S_{N−x}) (S_k the time to k arrivals), so
E[length] = Σ_{i<N−x} P(A(θ) > i)/λ, the time-integral of the number waiting is
Σ_{i<N−x} (x + i)·P(A(θ) > i)/λ, and b' = min(x + A(θ), N). With the run's integral
(:func:`inferno.model.bulk._areas`), renewal-reward over the cycle from one start to the next
gives the time-average number in the system L̄, the throughput E[b]/E[cycle] and, by Little's
law, the mean response time.

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
    win_state: F  # windows opened after the run of each state: its index,
    win_x: F  # ... the requests waiting when it opens (the idle case: 1, the first arrival),
    win_theta: F  # ... its horizon,
    win_weight: F  # ... and its probability given the state
    idle: F  # P(the instance idles after the run of each state)


def _leftover_age(tau_n: float, n: int, left: F) -> F:
    """The approximate age at a run's end of the oldest request a full batch left behind."""
    out: F = tau_n * (1.0 + left / (n + left + 1.0))
    return out


def delay_chain(alpha: float, beta: float, n: int, k: int, rate: float, delay: float) -> DelayChain:
    """Solve the chain at batch starts (times already scaled by κ)."""
    if k < n:
        raise ValueError(f"need K ≥ N, got N={n}, K={k}")
    size = k  # states: b = 1..N with L = 0, then L = 1..K − N
    tau_of = alpha + beta * np.arange(n + 1, dtype=np.float64)
    batch = np.concatenate([np.arange(1, n + 1), np.full(k - n, n)]).astype(np.float64)
    left = np.concatenate([np.zeros(n), np.arange(1, k - n + 1)]).astype(np.float64)
    tau = tau_of[batch.astype(np.intp)]
    trans = np.zeros((size, size))
    pre_len = np.zeros(size)
    pre_area = np.zeros(size)
    wins: list[tuple[F, F, F, F]] = []
    idle_p = np.zeros(size)

    def to_batch(row: int, dist: F) -> None:  # a window's b' = 1..N, L' = 0
        trans[row, :n] += dist[1:]

    # from X = 0 (idle, then a full window)
    idle = windows(np.array([1.0]), np.array([delay]), n, rate)
    # arrivals during each run: A ~ Poisson(λτ), capped so that b + L + A ≤ K
    width = k + 1
    pmf = _poisson_pmf(width, rate * tau)
    for s in range(size):
        b, ell = int(batch[s]), int(left[s])
        room = k - b - ell  # arrivals that still fit
        p_a = pmf[s, : room + 1].copy()
        p_a[room] = max(0.0, 1.0 - float(pmf[s, :room].sum()))  # A ≥ room: capped
        xs = ell + np.arange(room + 1)  # X at the run's end
        # X ≥ N: the next full batch at once
        full = xs >= n
        trans[s, (n - 1) + (xs[full] - n).astype(np.intp)] += p_a[full]
        if ell == 0:
            # X = 0: idle then a window
            p0 = float(p_a[0])
            idle_p[s] = p0
            wins.append((np.array([s]), np.array([1.0]), np.array([delay]), np.array([p0])))
            to_batch(s, p0 * idle.batch[0])
            pre_len[s] += p0 * (1.0 / rate + float(idle.length[0]))
            pre_area[s] += p0 * float(idle.area[0])
            wins.append(_young(s, room, float(tau[s]), n, rate, delay, trans, pre_len, pre_area))
        else:
            age = float(_leftover_age(float(tau_of[n]), n, np.array([float(ell)]))[0])
            part = ~full
            xm = xs[part].astype(np.float64)
            if xm.size:
                theta = np.full(xm.shape, max(delay - age, 0.0))
                win = windows(xm, theta, n, rate)
                w = p_a[part]
                trans[s, :n] += (w[:, None] * win.batch[:, 1:]).sum(axis=0)
                pre_len[s] += float(w @ win.length)
                pre_area[s] += float(w @ win.area)
                wins.append((np.full(xm.shape, float(s)), xm, theta, w))
    trans = trans / trans.sum(axis=1, keepdims=True)
    system = (trans - np.eye(size)).T
    system[-1, :] = 1.0
    rhs = np.zeros(size)
    rhs[-1] = 1.0
    pi = np.clip(np.linalg.solve(system, rhs), 0.0, None)
    pi /= pi.sum()
    run_area = _areas(batch + left, tau, rate, k)
    ws, wx, wt, ww = (np.concatenate([w[i] for w in wins]) for i in range(4))
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
        ws,
        wx,
        wt,
        ww,
        idle_p,
    )


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
