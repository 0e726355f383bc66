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
transition matrix): the waiting part in closed form for the arrivals whose wait cannot fill the
queue (a negative binomial number of events until the request joins the batch, a multinomial split
of the events before it), the others stepped over their part of the (K − N)(K − N + 1)/2 waiting
states; the K in-service states are stepped one event at a time (a tridiagonal update). See
:class:`ResponseTime` for the truncations, each below 1e-15 of probability. A chain of more than
:data:`MAX_RESPONSE_STATES` states is refused (an :class:`~inferno.errors.InputError` saying how to
shorten the queue) rather than built.

*Quantiles* of all three solve P(X > t) = 1 − q by Newton steps on log P(X > t) with a bisection
guard (:mod:`.quantile_search`): the wait's density is the first term of its closed form, and the
response time's slope Λ·Σ_k Pois(k; Λt)·(s_{k+1} − s_k) comes from the same stepped sums s_k.

The tests check all three against a direct Monte-Carlo simulation of the chain, and the quantiles
against a term-by-term Erlang mixture and a dense uniformisation of the whole chain
(tests/model/test_quantile_paths.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ._waiting import Waiting
from .quantile_search import newton_quantiles
from .wait_tail import log_factorial, wait_survival, wait_survival_density

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = [
    "MAX_RESPONSE_STATES",
    "MAX_RESPONSE_WORK",
    "ResponseTime",
    "quantile",
    "response_states",
    "wait_survival",
    "wait_survival_density",
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


class ResponseTime:
    """The response-time distribution of one chain (exact in the model, by uniformisation).

    ``tau`` = τ(1..N) in ms, ``n_max`` = K, ``p`` = p(0..K) at arrival rate ``lam`` (/ms).

    The uniformised chain is stepped in two parts. The waiting part has a closed form: while a
    request waits the batch is full, so each event is a departure (probability d = μ(N)/Λ), an
    arrival (e = λ/Λ) or nothing, whatever the state, until the queue is full. An arrival that
    sees a ≥ N joins the batch at the event of the D-th departure (D = a − N + 1), a negative
    binomial, with x arrivals among the events before it (a multinomial split, see
    :func:`_entries`); it joins with x behind it. The arrivals whose wait could fill the queue
    (the largest D, above :data:`_MAY_FILL` in all) have their waiting states stepped instead
    (:class:`~._waiting.Waiting`). The K in-service states are stepped one event at a time, a
    tridiagonal update.

    Truncations lose at most a few :data:`NEGLIGIBLE` of probability, so P(R > t) is low by at most
    that much and quantiles move by far less than 1e-9: arrivals that see the top
    :data:`NEGLIGIBLE` of the entry distribution are dropped, so are entries to service after
    the waiting part's remaining mass falls below :data:`NEGLIGIBLE`, and so are the stepped
    waiting states that stop being stepped (:meth:`~._waiting.Waiting._trim`).
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
        self._numeric: Waiting | None = None
        if kept:
            w = accepted[n_b : n_b + kept]
            closed = _entries(w, mu_n / self._rate, lam / self._rate, n_max - n_b - kept)
            rows = 0
            if closed is not None:
                self._entry, self._left, rows = closed
            if rows < kept:  # the rows whose waits may fill the queue are stepped
                self._numeric = Waiting(
                    lam, mu_n, n_b, n_max, kept, self._rate, accepted, NEGLIGIBLE, rows
                )
                self._nnz += 4 * (states - n_max)
        self._s: list[float] = []  # s_k = π0ᵀ P^k 1
        self._s_array: F | None = None  # self._s as an array, until it grows

    def _extend(self, kmax: int) -> None:
        """Step the chain until s_0..s_kmax are known. The in-service vectors of a run of events
        are rows of one array, summed in one call at its end."""
        vs, first, s = self._vs, self._first, self._s
        stay, down, up = self._stay, self._down, self._up
        numeric, entry, left = self._numeric, self._entry, self._left
        n_entry = 0 if entry is None else entry.shape[0]
        tmp = np.empty(max(vs.size - 1, 0))
        run = max(1, min(_RUN, _RUN_CELLS // vs.size))
        while len(s) <= kmax:
            k0 = len(s)
            rows = min(run, kmax + 1 - k0)
            buf = np.empty((rows + 1, vs.size))
            buf[0] = vs
            waiting = np.zeros(rows)
            if k0 < left.size:
                part = left[k0 : k0 + rows]
                waiting[: part.size] = part
            for r in range(rows):
                k = k0 + r
                if numeric is not None:
                    waiting[r] += numeric.mass
                cur, nxt = buf[r], buf[r + 1]
                np.multiply(cur, stay, out=nxt)
                np.multiply(cur[1:], down, out=tmp)
                nxt[:-1] += tmp
                np.multiply(cur[:-1], up, out=tmp)
                nxt[1:] += tmp
                if numeric is not None:
                    numeric.step_into(nxt)
                if k + 1 < n_entry:
                    row = entry[k + 1]  # type: ignore[index]
                    nxt[first : first + row.size] += row
            s.extend((buf[:rows].sum(axis=1) + waiting).tolist())
            vs = buf[rows].copy()
        self._vs = vs
        self._s_array = None

    def _weights(self, t: F) -> tuple[F, F]:
        """(s_0..s_k, the Poisson(Λt) weights of k = 0.. at each t), s stepped far enough."""
        mean_events = self._rate * float(t.max()) if t.size else 0.0
        steps = mean_events + 10.0 * np.sqrt(mean_events + 1.0) + 20
        if not steps * self._nnz <= MAX_RESPONSE_WORK:
            raise InputError(
                f"the exact response-time distribution needs {steps:,.0f} steps over "
                f"{self._nnz:,} non-zeros here, more than the limit of "
                f"{MAX_RESPONSE_WORK:,.0f} steps × non-zeros: the arrival and service rates are "
                "too far apart for it (drop the latency percentile or its quantile target)"
            )
        self._extend(int(steps) + 1)  # one more: the slope takes s_{k+1} − s_k
        if self._s_array is None:
            self._s_array = np.asarray(self._s)
        s_k = self._s_array
        k = np.arange(s_k.size, dtype=np.float64)
        bt = np.maximum(self._rate * t, 1e-300)[:, None]
        weights = np.exp(-bt + k * np.log(bt) - log_factorial(s_k.size - 1))
        return s_k, weights

    def survival(self, times: Sequence[float] | F) -> F:
        """P(R > t) at each t."""
        t = np.asarray(times, dtype=np.float64)
        s_k, weights = self._weights(t)
        # not `weights @ s_k`: a BLAS call whose threads spin for nothing on a busy machine
        out: F = np.clip((weights * s_k).sum(axis=1), 0.0, 1.0)
        return out

    def survival_slope(self, times: F) -> tuple[F, F]:
        """P(R > t) and its derivative at each t: d/dt Σ_k Pois(k; Λt)·s_k is
        Λ·Σ_k Pois(k; Λt)·(s_{k+1} − s_k)."""
        t = np.asarray(times, dtype=np.float64)
        s_k, weights = self._weights(t)
        sf: F = np.clip((weights * s_k).sum(axis=1), 0.0, 1.0)
        slope: F = self._rate * (weights[:, :-1] * np.diff(s_k)).sum(axis=1)
        return sf, slope

    def quantiles(self, qs: Sequence[float], guess: float, *, rtol: float = 1e-12) -> F:
        """The ``qs``-quantiles (ms), by Newton steps on log P(R > t) (:mod:`.quantile_search`)
        from ``guess`` (a time near the largest quantile, e.g. 3 × the mean response time)."""
        target = 1.0 - np.asarray(qs, dtype=np.float64)
        out = np.zeros(target.size)
        s0 = float(self.survival(np.zeros(1))[0])
        search = np.flatnonzero(s0 > target)  # else P(R > 0) ≤ 1 − q: the quantile is 0
        if search.size:

            def evaluate(t: F, rows: Idx) -> tuple[F, F]:
                return self.survival_slope(t)

            start = np.full(search.size, max(guess, 1e-9))
            out[search] = newton_quantiles(evaluate, target[search], start, rtol=rtol)
        return out


#: events stepped into one array before their in-service sums are taken (at most _RUN_CELLS)
_RUN = 256
_RUN_CELLS = 1 << 18

#: the closed form is used for the arrivals whose waits fill the queue with at most this
#: probability in all (the distribution is then off by at most this much): bounded by
#: P(X_D > room) (X_D the arrivals before the D-th departure, negative binomial) and, below
#: capacity, by (λ/μ(N))^(K − N − D), the chance that the queue ever climbs the room to K
_MAY_FILL = 1000 * NEGLIGIBLE
#: the longest waiting part (events) the closed form builds; beyond, the states are stepped
_MAX_CLOSED_EVENTS = 20_000


def _entries(w: F, d: float, e: float, room: int) -> tuple[F, F, int] | None:
    """The waiting part in closed form: (entry[k, x], left[k], rows), or None where it does not
    hold for any row.

    ``w[D − 1]`` is the mass of arrivals that wait for D departures; ``d``, ``e`` the probability
    that an event is a departure, an arrival; ``room`` the arrivals the queue takes behind the
    last kept waiting state before it is full. ``entry[k, x]`` is the mass that joins the batch at
    event k with x requests behind it, ``left[k]`` the mass still waiting after event k, of the
    arrivals that wait for D ≤ ``rows`` departures: the first rows, whose waits fill the queue
    with probability below :data:`_MAY_FILL` in all (the rest are stepped, :class:`Waiting`).
    """
    n_d = w.size
    dd = np.arange(1, n_d + 1, dtype=np.float64)
    di = dd.astype(np.int64)
    log_d, log_nd = math.log(d), math.log1p(-d)
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    # X_D, the arrivals before the D-th departure, is negative binomial (D, d / (d + e)). A
    # request that waits for D departures can only find the queue full if X_D > room + n_d − D.
    more: F | None = None
    if e > 0.0:
        top = room + n_d  # the most arrivals any of them can see before the queue could fill
        lf = log_factorial(top + n_d)
        xs_all = np.arange(top + 2)[None, :]
        dc = di[:, None]
        p_dep = d / (d + e)
        log_x = (
            lf[xs_all + dc - 1]
            - lf[xs_all]
            - lf[dc - 1]
            + dc * math.log(p_dep)
            + xs_all * math.log1p(-p_dep)
            + log_w[:, None]
        )
        more = np.cumsum(np.exp(log_x)[:, ::-1], axis=1)[:, ::-1]  # [D, x]: w_D P(X_D ≥ x)
        fill = more[di - 1, room + n_d - di + 1]
        if e < d:
            # n − n₀ (arrivals − departures) is a walk whose (d/e)^(n − n₀) is a martingale, so
            # it ever climbs the room + n_d − D to K with probability at most (e/d)^that
            fill = np.minimum(fill, np.exp(log_w + (room + n_d - dd) * math.log(e / d)))
        fills = np.cumsum(fill)
        n_rows = int(np.count_nonzero(fills < _MAY_FILL))  # the first rows, in all below
        if n_rows == 0:
            return None
        if n_rows < n_d:  # the rows beyond are stepped
            w = np.where(dd <= n_rows, w, 0.0)
            log_w = np.where(dd <= n_rows, log_w, -np.inf)
            more = more[:n_rows]
    else:
        n_rows = n_d
    # the last event to keep: the negative binomial tail beyond it below NEGLIGIBLE. A first
    # guess from each D's mean and spread (D/d, √(D(1 − d))/d), as far out as its mass needs
    live = w > NEGLIGIBLE * 1e-5
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.sqrt(2.0 * np.maximum(np.log(w / (NEGLIGIBLE * 1e-5)), 0.0)) + 3.0
    reach = (dd + z * np.sqrt(dd * (1.0 - d))) / d + 10.0
    k_end = int(reach[live].max(initial=n_d / d + 10.0))
    jj = di[None, :] - 1  # j = D − 1: the departures before the last one
    while True:
        if k_end > _MAX_CLOSED_EVENTS:
            return None
        lf = log_factorial(k_end)
        ui = np.arange(k_end)[:, None]  # u = k − 1: the events before event k = 1..k_end
        spare = (ui - jj).astype(np.float64)  # u − j: the events before k not departures
        with np.errstate(invalid="ignore"):
            # log of w_D·C(u, j)·d^j, shared by the negative binomial and F below
            base = np.where(
                spare >= 0.0,
                lf[:k_end, None] - lf[jj] - lf[np.maximum(ui - jj, 0)] + jj * log_d + log_w,
                -np.inf,
            )
            nb_all = np.exp(base + log_d + spare * log_nd)  # [k − 1, D]: joins at event k
        total = np.concatenate([np.zeros(1), nb_all.sum(axis=1)])  # mass joining at event k
        # beyond k_end each D's terms fall by at least r_D per event where r_D < 1 (past its
        # mode); where not, all of its mass w_D is counted as beyond
        r = k_end * (1.0 - d) / (k_end - dd + 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            beyond = np.where(r < 1.0, nb_all[-1] * r / (1.0 - r), w)
        if beyond.sum() < NEGLIGIBLE:
            break
        k_end = int(k_end * 1.5) + 1
    left = np.cumsum(total[::-1])[::-1] - total  # still waiting after event k
    stop = np.flatnonzero(left < NEGLIGIBLE)
    k_end = max(int(stop[0]), 1) if stop.size else k_end
    left = left[: k_end + 1]
    # X_D, the arrivals before the D-th departure, is negative binomial (D, d / (d + e)). A
    # request that waits for D departures can only find the queue full if X_D > room + n_d − D.
    x_cap = 0
    if more is not None:
        x_cap = int(np.flatnonzero(more.sum(axis=0) >= NEGLIGIBLE).max(initial=0))
        x_cap = min(x_cap, room + n_d - 1)  # joining with x behind: n = N + x ≤ K − 1
    # entry[k, x]: the k-th event is the D-th departure, and the k − 1 before it hold D − 1
    # departures, x arrivals and k − D − x events that were neither (probability g = 1 − d − e),
    # in any order: d·eˣ·C(k − 1, x)·F(k − 1 − x) with
    # F(u) = Σ_D w_D·C(u, D − 1)·d^(D − 1)·g^(u − D + 1), one sum per u (no sum over D per cell)
    lf = log_factorial(max(k_end, x_cap))
    g = 1.0 - d - e
    log_g = math.log(g) if g > 0.0 else -np.inf
    base, spare = base[:k_end], spare[:k_end]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = base + np.where(spare > 0.0, spare * log_g, 0.0)
        peak = terms.max(axis=1)
        log_f = peak + np.log(
            np.exp(terms - np.where(np.isfinite(peak), peak, 0.0)[:, None]).sum(1)
        )
        k1 = np.arange(k_end + 1)[:, None] - 1  # k − 1
        xs = np.arange(x_cap + 1)[None, :]
        uu = k1 - xs
        log_e = math.log(e) if e > 0.0 else -np.inf
        log_entry = np.where(
            uu >= 0,
            log_d
            + np.where(xs > 0, xs * log_e, 0.0)
            + lf[np.maximum(k1, 0)]
            - lf[xs]
            - lf[np.maximum(uu, 0)]
            + log_f[np.maximum(uu, 0)],
            -np.inf,
        )
    entry = np.exp(log_entry)
    return entry, left, n_rows


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
