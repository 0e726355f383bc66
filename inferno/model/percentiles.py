"""Percentiles of waiting time, TTFT and response time, from the chain's state distribution.

Method
------
Arrivals are Poisson, so an accepted arrival sees state n with probability
π(n) = p(n) / (1 − p(K)), n < K (PASTA; arrivals finding K are lost).

*Waiting time* (exact in the model). An arrival that finds n < N starts at once. One that finds
n ≥ N waits for n − N + 1 departures; while it waits the batch is full, so departures form a Poisson
stream of rate μ(N) whatever else happens, and its wait is Erlang(n − N + 1, μ(N)). Hence

    P(W > t) = Σ_{n=N}^{K−1} π(n) · P(Poisson(μ(N) t) ≤ n − N).

Above N the states are geometric (π(N+j) = π(N) r^j), which turns the double sum into one over the
Poisson terms: Σ_i Pois(i; μ(N)t) · r^i · (1 − r^{M−i}) / (1 − r) with M = K − N.

*TTFT*. TTFT = W + (prefill time at the mean batch, + one ITL for G2/G3): the model treats the
prefill part as deterministic at the mean occupancy, so TTFT's percentiles are the wait's shifted
by that constant. This is exact for the wait part and ignores the spread of the prefill time.

*Response time* (exact in the model). The tagged request is followed through an absorbing Markov
chain. While it waits its state is (a, n): a ≥ N requests ahead, n in the system; a departure
(rate μ(N)) takes (a, n) to (a − 1, n − 1), an arrival (rate λ, n < K) takes n to n + 1; when
a falls below N it joins the batch. In service its state is n; with b = min(n, N) it leaves at rate
1/τ(b), another request leaves at rate (b − 1)/τ(b), and arrivals join at rate λ. Later arrivals
matter because they grow the batch and slow every member. The survival function
P(R > t) = π₀ᵀ exp(Qt) 1 is computed by uniformisation (Poisson-weighted powers of the uniformised
transition matrix): the waiting part in closed form where the queue cannot fill (a negative
binomial number of events until the request joins the batch, a binomial number of arrivals behind
it), else stepped over its (K − N)(K − N + 1)/2 states; the K in-service states are stepped one
event at a time (a tridiagonal update). See :class:`ResponseTime` for the truncations, each below
1e-15 of probability. A chain of more than :data:`MAX_RESPONSE_STATES` states is refused (an
:class:`~inferno.errors.InputError` saying how to shorten the queue) rather than built.

The tests check all three against a direct Monte-Carlo simulation of the chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError

F = NDArray[np.float64]

__all__ = [
    "MAX_RESPONSE_STATES",
    "MAX_RESPONSE_WORK",
    "ResponseTime",
    "quantile",
    "response_states",
    "wait_survival",
]

#: the most tagged-request states one distribution may need: the K in-service states and the
#: waiting states an arrival reaches with probability above NEGLIGIBLE (a waiting state is 8 bytes
#: of the stepped array, but the refusal keeps the steps' work bounded too)
MAX_RESPONSE_STATES = 500_000
#: the most work (uniformisation steps × states touched per step) one distribution may take: the
#: steps grow with (λ + μ)·t, so rates and batch times far apart would take hours
MAX_RESPONSE_WORK = 2e9
#: the probability the response-time distribution may drop to stay small (see ResponseTime)
NEGLIGIBLE = 1e-15


def response_states(n_batch: int, n_max: int) -> int:
    """The transient states of the tagged-request chain of batch N = ``n_batch``, K = ``n_max``."""
    m = max(n_max - n_batch, 0)
    return m * (m + 1) // 2 + n_max


#: the most (point × queue state) terms :func:`wait_survival` holds at once (32 MB an array)
_WAIT_CELLS = 1 << 22


def wait_survival(t: F, p_batch: F, blocking: F, log_r: F, mu_n: F, n_tail: F) -> F:
    """P(W > t) for C chains at once (arrays of shape (C,)).

    ``p_batch`` = p(N), ``blocking`` = p(K), ``log_r`` = log λ/μ(N), ``n_tail`` = M = K − N.

    Closed form: with x = μ(N)·t, Σ_{i<M} Pois(i; x)·(r^i − r^M)/(1 − r) is
    [e^{−x(1−r)}·Q(M, x·r) − r^M·Q(M, x)] / (1 − r), Q the regularised upper incomplete gamma
    function (Q(M, y) = P(Poisson(y) < M)), evaluated in log space. Where r is within 1e-3 of 1
    the difference would cancel, and the Poisson terms are summed instead (a few at a time, so
    that memory stays bounded whatever C and M are).
    """
    out = np.zeros_like(t)
    m = n_tail.astype(np.float64)
    near = np.abs(np.expm1(log_r)) < 1e-3
    closed = (m > 0) & ~near
    if closed.any():
        x = mu_n[closed] * t[closed]
        lr, mc = log_r[closed], m[closed]
        one_minus_r = -np.expm1(lr)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_p = np.log(p_batch[closed])
            la = log_p - x * one_minus_r + _log_q(mc, x * np.exp(lr))
            lb = log_p + mc * lr + _log_q(mc, x)
            hi = np.maximum(la, lb)
            s = np.exp(hi) * -np.expm1(np.minimum(la, lb) - hi) / np.abs(one_minus_r)
        out[closed] = np.where(np.isfinite(hi), s, 0.0) / (1.0 - blocking[closed])
    summed = np.flatnonzero((m > 0) & near)
    if summed.size:
        mmax = int(m[summed].max())
        step = max(1, _WAIT_CELLS // mmax)
        for i in range(0, summed.size, step):
            idx = summed[i : i + step]
            out[idx] = _wait_survival(
                mmax, *(a[idx] for a in (t, p_batch, blocking, log_r, mu_n, n_tail))
            )
    clipped: F = np.clip(out, 0.0, 1.0)
    return clipped


def _log_q(m: F, y: F) -> F:
    """log Q(m, y) = log P(Poisson(y) < m) for whole m ≥ 1, also where Q underflows.

    The Poisson terms summed in log space (no scipy: importing scipy.special costs a percentile
    run more than the sums), over the window that holds all but e^−50 of the sum: around the
    largest term, min(m − 1, ⌊y⌋), ±(10√y + 30) terms.
    """
    out = np.zeros_like(y)
    rows = np.flatnonzero(y > 0)  # Q(m, 0) = 1
    if rows.size == 0:
        return out
    mm, yy = m[rows], y[rows]
    top = mm - 1.0
    centre = np.minimum(top, np.floor(yy))
    half = np.ceil(10.0 * np.sqrt(yy) + 30.0)
    lo = np.maximum(0.0, centre - half)
    hi = np.minimum(top, centre + half)
    width = int((hi - lo).max()) + 1
    lf = log_factorial(int(hi.max()))
    step = max(1, _WAIT_CELLS // width)
    offsets = np.arange(width, dtype=np.float64)[None, :]
    for s in range(0, rows.size, step):
        part = slice(s, s + step)
        i = lo[part, None] + offsets
        valid = i <= hi[part, None]
        with np.errstate(invalid="ignore"):
            terms = np.where(
                valid,
                -yy[part, None]
                + i * np.log(yy[part, None])
                - lf[np.minimum(i, hi[part, None]).astype(np.int64)],
                -np.inf,
            )
        peak = terms.max(axis=1)
        out[rows[part]] = peak + np.log(np.exp(terms - peak[:, None]).sum(axis=1))
    return out


_LOG_FACTORIAL: list[F] = [np.zeros(1)]


def log_factorial(n: int) -> F:
    """log i! for i = 0..n (math.lgamma's, kept: scipy.special costs an import for this alone)."""
    table = _LOG_FACTORIAL[0]
    if table.size <= n:
        size = max(n + 1, 2 * table.size)
        table = np.array([math.lgamma(i + 1.0) for i in range(size)])
        _LOG_FACTORIAL[0] = table
    return table[: n + 1]


def _wait_survival(mmax: int, t: F, p_batch: F, blocking: F, log_r: F, mu_n: F, n_tail: F) -> F:
    """:func:`wait_survival` of a few points, summed over ``mmax`` terms (the same for all)."""
    i = np.arange(mmax, dtype=np.float64)
    x = np.maximum(mu_n * t, 1e-300)[:, None]
    log_pois = -x + i * np.log(x) - log_factorial(mmax - 1)
    # r^i (1 − r^{M−i}) / (1 − r) = Σ_{j=i}^{M−1} r^j, in log space
    lr = log_r[:, None]
    left = n_tail[:, None] - i  # M − i ≥ 1 on the valid part
    valid = left >= 1
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # log Σ_{j=0}^{left−1} r^j
        geo = np.where(
            np.abs(lr) < 1e-12,
            np.log(np.maximum(left, 1.0)),
            np.log(np.abs(np.expm1(left * lr))) - np.log(np.abs(np.expm1(lr))),
        )
    terms = np.where(valid, np.exp(log_pois + i * lr + geo), 0.0)
    total = p_batch * terms.sum(axis=1) / (1.0 - blocking)
    out: F = np.clip(total, 0.0, 1.0)
    return out


class ResponseTime:
    """The response-time distribution of one chain (exact in the model, by uniformisation).

    ``tau`` = τ(1..N) in ms, ``n_max`` = K, ``p`` = p(0..K) at arrival rate ``lam`` (/ms).

    The uniformised chain is stepped in two parts. The waiting part has a closed form: while a
    request waits the batch is full, so each event is a departure (probability d = μ(N)/Λ), an
    arrival (e = λ/Λ) or nothing, whatever the state, until the queue is full. An arrival that
    sees a ≥ N joins the batch at the event of the (a − N + 1)-th departure, a negative binomial,
    with the arrivals among the m events before it binomial (m, e / (1 − d)); it joins with that
    many behind it. Where the waiting requests could fill the queue (probability above
    :data:`NEGLIGIBLE`) the waiting states are stepped instead (:class:`_Waiting`).
    The K in-service states are stepped one event at a time, a tridiagonal update.

    Truncations lose at most a few :data:`NEGLIGIBLE` of probability, so P(R > t) is low by at most
    that much and quantiles move by far less than 1e-9: arrivals that see the top
    :data:`NEGLIGIBLE` of the entry distribution are dropped, and so are entries to service after
    the waiting part's remaining mass falls below :data:`NEGLIGIBLE`.
    """

    def __init__(self, lam: float, tau: F, n_max: int, p: F) -> None:
        n_b = tau.size
        accepted = p[:n_max] / p[:n_max].sum()
        tail = np.cumsum(accepted[::-1])[::-1]  # tail[n] = P(an arrival sees ≥ n)
        a_max = int(np.flatnonzero(tail > NEGLIGIBLE).max(initial=0))
        m_tail = max(n_max - n_b, 0)
        kept = min(max(a_max - n_b + 1, 0), m_tail)  # waiting rows a = N .. N + kept − 1
        states = n_max + kept * m_tail - kept * (kept - 1) // 2
        if states > MAX_RESPONSE_STATES:
            raise InputError(
                f"the exact response-time distribution of a batch of {n_b} with a queue of "
                f"{n_max - n_b} (K − N) needs {states:,} states, more than "
                f"{MAX_RESPONSE_STATES:,}: give the server a smaller maxQueueSize (or the "
                "optimizer a smaller queueFactor)"
            )
        # in service, n = 1..K in the system (index n − 1), b = min(n, N) in the batch
        b = np.minimum(np.arange(1, n_max + 1), n_b)
        own = 1.0 / tau[b - 1]
        others = (b - 1) / tau[b - 1]
        arrive = np.where(np.arange(1, n_max + 1) < n_max, lam, 0.0)
        mu_n = n_b / tau[-1]
        waiting_out = (mu_n + (lam if m_tail >= 2 else 0.0)) if kept else 0.0
        self._rate = max(float((own + others + arrive).max()), waiting_out) * 1.0001
        self._stay = 1.0 - (own + others + arrive) / self._rate
        self._down = others[1:] / self._rate  # n + 1 → n (another request leaves)
        self._up = arrive[:-1] / self._rate  # n → n + 1 (an arrival)
        self._vs = np.zeros(n_max)
        self._vs[: min(n_b, n_max)] = accepted[: min(n_b, n_max)]  # seeing n < N: in service
        self._nnz = 3 * n_max
        self._first = n_b - 1  # the index of n = N: a request joining with x behind is at N + x
        self._entry: F | None = None  # mass joining state n = N + x at event k: [k, x]
        self._left = np.zeros(1)  # mass still waiting after event k
        self._numeric: _Waiting | None = None
        if kept:
            w = accepted[n_b : n_b + kept]
            closed = _entries(w, mu_n / self._rate, lam / self._rate, n_max - n_b - kept)
            if closed is not None:
                self._entry, self._left = closed
            else:
                self._numeric = _Waiting(lam, mu_n, n_b, n_max, kept, self._rate, accepted)
                self._nnz += 4 * (states - n_max)
        self._s: list[float] = []  # s_k = π0ᵀ P^k 1

    def _extend(self, kmax: int) -> None:
        vs, first = self._vs, self._first
        while len(self._s) <= kmax:
            k = len(self._s)
            if self._numeric is not None:
                waiting = self._numeric.mass
            else:
                waiting = float(self._left[k]) if k < self._left.size else 0.0
            self._s.append(float(vs.sum()) + waiting)
            nxt = vs * self._stay
            nxt[:-1] += vs[1:] * self._down
            nxt[1:] += vs[:-1] * self._up
            if self._numeric is not None:
                self._numeric.step_into(nxt)
            elif self._entry is not None and k + 1 < self._entry.shape[0]:
                row = self._entry[k + 1]
                nxt[first : first + row.size] += row
            vs = nxt
        self._vs = vs

    def survival(self, times: Sequence[float] | F) -> F:
        """P(R > t) at each t."""
        t = np.asarray(times, dtype=np.float64)
        mean_events = self._rate * float(t.max()) if t.size else 0.0
        steps = mean_events + 10.0 * np.sqrt(mean_events + 1.0) + 20
        if not steps * self._nnz <= MAX_RESPONSE_WORK:
            raise InputError(
                f"the exact response-time distribution needs {steps:,.0f} steps over "
                f"{self._nnz:,} non-zeros here, more than the limit of "
                f"{MAX_RESPONSE_WORK:,.0f} steps × non-zeros: the arrival and service rates are "
                "too far apart for it (drop the latency percentile or its quantile target)"
            )
        self._extend(int(steps))
        s_k = np.asarray(self._s)
        k = np.arange(s_k.size, dtype=np.float64)
        bt = np.maximum(self._rate * t, 1e-300)[:, None]
        weights = np.exp(-bt + k * np.log(bt) - log_factorial(s_k.size - 1))
        # not `weights @ s_k`: a BLAS call whose threads spin for nothing on a busy machine
        out: F = np.clip((weights * s_k).sum(axis=1), 0.0, 1.0)
        return out


#: the closed form is used when the queue fills during a wait with at most this probability (the
#: distribution is then off by at most this much)
_MAY_FILL = 1000 * NEGLIGIBLE
#: the longest waiting part (events) the closed form builds; beyond, the states are stepped
_MAX_CLOSED_EVENTS = 20_000
#: rows of the entry matrix built at once (memory: rows × (rows + waiting rows) doubles)
_CHUNK = 512


def _entries(w: F, d: float, e: float, room: int) -> tuple[F, F] | None:
    """The waiting part in closed form: (entry[k, x], left[k]), or None where it does not hold.

    ``w[D − 1]`` is the mass of arrivals that wait for D departures; ``d``, ``e`` the probability
    that an event is a departure, an arrival; ``room`` the arrivals the queue takes behind the
    last kept waiting state before it is full. ``entry[k, x]`` is the mass that joins the batch at
    event k with x requests behind it, ``left[k]`` the mass still waiting after event k.
    """
    n_d = w.size
    dd = np.arange(1, n_d + 1, dtype=np.float64)
    log_d, log_nd = math.log(d), math.log1p(-d)
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    # the last event to keep: the negative binomial tail beyond it below NEGLIGIBLE
    k_end = int((n_d + 12.0 * math.sqrt(n_d) + 40.0) / d)
    while True:
        if k_end > _MAX_CLOSED_EVENTS:
            return None
        lf = log_factorial(k_end)
        k = np.arange(k_end + 1, dtype=np.float64)[:, None]
        kk = k.astype(np.int64)
        di = dd.astype(np.int64)
        ok = kk >= di
        with np.errstate(invalid="ignore"):
            log_nb = np.where(
                ok,
                lf[np.maximum(kk - 1, 0)]
                - lf[di - 1]
                - lf[np.maximum(kk - di, 0)]
                + dd * log_d
                + (k - dd) * log_nd
                + log_w,
                -np.inf,
            )
        total = np.exp(log_nb).sum(axis=1)  # mass joining at event k
        # beyond k_end each term falls by at least r per event (r < 1 past the mode)
        r = k_end * (1.0 - d) / (k_end - n_d + 1.0)
        if r < 1.0 and total[-1] * r / (1.0 - r) < NEGLIGIBLE:
            break
        k_end *= 2
    left = np.cumsum(total[::-1])[::-1] - total  # still waiting after event k
    stop = np.flatnonzero(left < NEGLIGIBLE)
    k_end = int(stop[0]) if stop.size else k_end
    left, log_nb = left[: k_end + 1], log_nb[: k_end + 1]
    # X_D, the arrivals before the D-th departure, is negative binomial (D, d / (d + e)). A
    # request that waits for D departures can only find the queue full if X_D > room + n_d − D.
    x_cap = 0
    if e > 0.0:
        top = room + n_d  # the most arrivals any of them can see before the queue could fill
        lf = log_factorial(max(k_end, top + n_d))
        xs_all = np.arange(top + 2)[None, :]
        di = np.arange(1, n_d + 1)[:, None]
        p_dep = d / (d + e)
        log_x = (
            lf[xs_all + di - 1]
            - lf[xs_all]
            - lf[di - 1]
            + di * math.log(p_dep)
            + xs_all * math.log1p(-p_dep)
            + log_w[:, None]
        )
        more = np.cumsum(np.exp(log_x)[:, ::-1], axis=1)[:, ::-1]  # [D, x]: w_D P(X_D ≥ x)
        if more[di[:, 0] - 1, room + n_d - di[:, 0] + 1].sum() >= _MAY_FILL:
            return None
        x_cap = int(np.flatnonzero(more.sum(axis=0) >= NEGLIGIBLE).max(initial=0))
        x_cap = min(x_cap, room + n_d - 1)  # joining with x behind: n = N + x ≤ K − 1
    # entry[k, x] = Σ_D nb[k, D] · Binomial(x; k − D, pe): the arrivals among the k − D events
    # that were not departures, each an arrival with probability pe
    pe = e / (1.0 - d)
    m = np.arange(k_end + 1)[:, None]
    xs = np.arange(x_cap + 1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pe = math.log(pe) if pe > 0 else -np.inf
        log_binom = np.where(
            xs <= m,
            lf[m]
            - lf[np.minimum(xs, m)]
            - lf[np.maximum(m - xs, 0)]
            + np.where(xs > 0, xs * log_pe, 0.0)
            + (m - xs) * math.log1p(-pe),
            -np.inf,
        )
    binom = np.exp(log_binom)  # [m, x]
    nb = np.exp(log_nb)  # [k, D]
    entry = np.zeros((k_end + 1, x_cap + 1))
    for start in range(0, k_end + 1, _CHUNK):
        rows = np.arange(start, min(start + _CHUNK, k_end + 1))
        lo = max(start - n_d, 0)
        # h[k, m] = nb[k, D = k − m]
        mm = np.arange(lo, rows[-1] + 1)
        dk = rows[:, None] - mm[None, :]
        h = np.where((dk >= 1) & (dk <= n_d), nb[rows[:, None], np.clip(dk - 1, 0, n_d - 1)], 0.0)
        entry[rows] = h @ binom[lo : rows[-1] + 1]
    return entry, left


class _Waiting:
    """The waiting states stepped one event at a time, for chains whose queue may fill.

    ``w[i, j]``: the mass waiting with a = N + i requests ahead and j behind (n = a + 1 + j ≤ K).
    Only the columns j < ``cols`` can hold mass (one arrival per event), so only they are stepped.
    """

    def __init__(
        self, lam: float, mu_n: float, n_b: int, n_max: int, kept: int, rate: float, accepted: F
    ) -> None:
        m = n_max - n_b
        i = np.arange(kept)[:, None]
        j = np.arange(m)[None, :]
        can_arrive = i + j + 1 <= m - 1
        self._stay = np.where(i + j <= m - 1, 1.0 - (mu_n + lam * can_arrive) / rate, 0.0)
        self._arrive = np.where(can_arrive, lam / rate, 0.0)
        self._depart = mu_n / rate
        self._first = n_b - 1  # joining with j behind: n = N + j in the system
        self._w: F | None = np.zeros((kept, m))
        self._w[:, 0] = accepted[n_b : n_b + kept]  # an arrival seeing a ≥ N waits behind a
        self._cols = 1
        self.mass = float(self._w.sum())

    def step_into(self, in_service: F) -> None:
        """One event: add the requests joining the batch to ``in_service``."""
        if self._w is None:
            return
        if self.mass < NEGLIGIBLE:
            self._w, self.mass = None, 0.0
            return
        c, c1 = self._cols, min(self._cols + 1, self._w.shape[1])
        w = self._w[:, :c]
        in_service[self._first : self._first + c] += w[0] * self._depart
        new = self._w[:, :c1] * self._stay[:, :c1]
        new[:-1, :c] += w[1:] * self._depart
        new[:, 1:c1] += self._w[:, : c1 - 1] * self._arrive[:, : c1 - 1]
        self._w[:, :c1] = new
        self._cols = c1
        self.mass = float(new.sum())


def quantile(survival: Callable[[F], F], q: float, hi: float, *, rtol: float = 1e-7) -> float:
    """The q-quantile of a distribution given its survival function (vectorised over times).

    ``hi`` is a first guess of a time where the survival is below 1 − q; it is doubled until it is.
    """
    target = 1.0 - q
    if float(survival(np.array([0.0]))[0]) <= target:
        return 0.0
    hi = max(hi, 1e-9)
    while float(survival(np.array([hi]))[0]) > target:
        hi *= 1.25  # not 2: the last guess sets how far a chain is stepped
    lo = 0.0
    while hi - lo > rtol * hi:
        grid = np.linspace(lo, hi, 33)
        above = np.flatnonzero(survival(grid) > target)
        j = int(above.max()) if above.size else 0
        lo, hi = float(grid[j]), float(grid[min(j + 1, 32)])
    return hi
