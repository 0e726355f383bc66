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
transition matrix, a sparse matrix-vector product per step, truncated when the remaining Poisson
mass is below 1e-12). It has (K − N)(K − N + 1)/2 + K transient states, so it is meant for reports
and for batch-kind servers, not for sizing thousands of LLM servers; a chain of more than
:data:`MAX_RESPONSE_STATES` states is refused (an :class:`~inferno.errors.InputError` saying how to
shorten the queue) rather than built.

The tests check all three against a direct Monte-Carlo simulation of the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError

if TYPE_CHECKING:  # scipy is imported where it is used: a solve without percentiles needs none
    import scipy.sparse as sp

F = NDArray[np.float64]

__all__ = [
    "MAX_RESPONSE_STATES",
    "MAX_RESPONSE_WORK",
    "ResponseTime",
    "quantile",
    "response_states",
    "wait_survival",
]

#: the largest tagged-request chain built (measured: about 330 bytes per state while it is built;
#: the large sample's largest chain has 235,030 states)
MAX_RESPONSE_STATES = 500_000
#: the most work (uniformisation steps × non-zeros of the step matrix) one distribution may take:
#: the steps grow with (λ + μ)·t, so rates and batch times far apart would take hours (the large
#: sample's largest is 6.6e8, about a second)
MAX_RESPONSE_WORK = 2e9


def response_states(n_batch: int, n_max: int) -> int:
    """The transient states of the tagged-request chain of batch N = ``n_batch``, K = ``n_max``."""
    m = max(n_max - n_batch, 0)
    return m * (m + 1) // 2 + n_max


#: the most (point × queue state) terms :func:`wait_survival` holds at once (32 MB an array)
_WAIT_CELLS = 1 << 22


def wait_survival(t: F, p_batch: F, blocking: F, log_r: F, mu_n: F, n_tail: F) -> F:
    """P(W > t) for C chains at once (arrays of shape (C,)).

    ``p_batch`` = p(N), ``blocking`` = p(K), ``log_r`` = log λ/μ(N), ``n_tail`` = M = K − N.
    The points are taken a few at a time, so that memory stays bounded whatever C and M are.
    """
    mmax = int(n_tail.max()) if n_tail.size else 0
    if mmax == 0:
        return np.zeros_like(t)
    step = max(1, _WAIT_CELLS // mmax)
    parts = [
        _wait_survival(
            mmax, *(a[i : i + step] for a in (t, p_batch, blocking, log_r, mu_n, n_tail))
        )
        for i in range(0, t.size, step)
    ]
    out: F = np.concatenate(parts)
    return out


def _wait_survival(mmax: int, t: F, p_batch: F, blocking: F, log_r: F, mu_n: F, n_tail: F) -> F:
    """:func:`wait_survival` of a few points, summed over ``mmax`` terms (the same for all)."""
    i = np.arange(mmax, dtype=np.float64)
    x = np.maximum(mu_n * t, 1e-300)[:, None]
    from scipy.special import gammaln

    log_pois = -x + i * np.log(x) - gammaln(i + 1.0)
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


def _generator(lam: float, tau: F, n_max: int) -> tuple[sp.csr_matrix, F, NDArray[np.int64]]:
    """Sub-generator Q of the tagged-request chain, its exit rates, and the entry states.

    Returns (Q, exit_rate, start) where ``start[n]`` is the state an arrival seeing n enters.
    States: in service with n = 1..K in the system -> index n − 1; waiting (a, n), N ≤ a < n ≤ K,
    a-major (:func:`_wait_index`). Built with array operations (no per-state Python loop).
    """
    n_b = tau.size
    mu_n = n_b / tau[-1]
    m = max(n_max - n_b, 0)
    size = response_states(n_b, n_max)
    # in service: n = 1..K, b = min(n, N)
    n = np.arange(1, n_max + 1)
    b = np.minimum(n, n_b)
    own = 1.0 / tau[b - 1]
    others = (b - 1) / tau[b - 1]
    s = n - 1
    has_others = others > 0
    can_arrive = n < n_max
    rows = [s[has_others], s[can_arrive]]
    cols = [(n - 2)[has_others], n[can_arrive]]
    vals = [others[has_others], np.full(int(can_arrive.sum()), lam)]
    out_rate = np.zeros(size)
    out_rate[:n_max] = own + others + np.where(can_arrive, lam, 0.0)
    exit_rate = np.zeros(size)
    exit_rate[:n_max] = own
    if m > 0:
        # waiting: for a = N + i (i = 0..M−1), n = a + 1..K
        i = np.repeat(np.arange(m), m - np.arange(m))
        a = n_b + i
        nn = a + 1 + (np.arange(i.size) - _offset(i, m, 0))
        w = _wait_index(a, nn, n_b, n_max)
        dep = np.where(a - 1 >= n_b, _wait_index(a - 1, nn - 1, n_b, n_max), nn - 2)
        arrive = nn < n_max
        rows += [w, w[arrive]]
        cols += [dep, _wait_index(a[arrive], nn[arrive] + 1, n_b, n_max)]
        vals += [np.full(w.size, mu_n), np.full(int(arrive.sum()), lam)]
        out_rate[w] = mu_n + np.where(arrive, lam, 0.0)
    import scipy.sparse as sp

    q = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size)
    )
    q = q - sp.diags(out_rate)
    start = np.arange(n_max, dtype=np.int64)
    queued = start >= n_b
    start[queued] = _wait_index(start[queued], start[queued] + 1, n_b, n_max)
    return q.tocsr(), exit_rate, start


def _offset(i: NDArray[np.int64], m: int, base: int) -> NDArray[np.int64]:
    """``base`` + the waiting states before row i (rows of m, m − 1, ... states)."""
    out: NDArray[np.int64] = base + i * m - i * (i - 1) // 2
    return out


def _wait_index(
    a: NDArray[np.int64], n: NDArray[np.int64], n_b: int, n_max: int
) -> NDArray[np.int64]:
    """The index of waiting state (a, n): after the K in-service states, a-major."""
    m = n_max - n_b
    return _offset(a - n_b, m, n_max) + (n - a - 1)


class ResponseTime:
    """The response-time distribution of one chain (exact in the model, by uniformisation).

    ``tau`` = τ(1..N) in ms, ``n_max`` = K, ``p`` = p(0..K) at arrival rate ``lam`` (/ms).
    """

    def __init__(self, lam: float, tau: F, n_max: int, p: F) -> None:
        states = response_states(tau.size, n_max)
        if states > MAX_RESPONSE_STATES:
            raise InputError(
                f"the exact response-time distribution of a batch of {tau.size} with a queue of "
                f"{n_max - tau.size} (K − N) needs {states:,} states, more than "
                f"{MAX_RESPONSE_STATES:,}: give the server a smaller maxQueueSize (or the "
                "optimizer a smaller queueFactor)"
            )
        q, _, start = _generator(lam, tau, n_max)
        size = q.shape[0]
        pi0 = np.zeros(size)
        accepted = p[:n_max] / p[:n_max].sum()
        np.add.at(pi0, start, accepted)
        self._rate = float(-q.diagonal().min()) * 1.0001
        import scipy.sparse as sp

        self._step = (sp.identity(size, format="csr") + q / self._rate).T.tocsr()
        self._v = pi0
        self._s: list[float] = []  # s_k = π0ᵀ P^k 1

    def _extend(self, kmax: int) -> None:
        while len(self._s) <= kmax:
            self._s.append(float(self._v.sum()))
            self._v = self._step @ self._v

    def survival(self, times: Sequence[float] | F) -> F:
        """P(R > t) at each t."""
        t = np.asarray(times, dtype=np.float64)
        mean_events = self._rate * float(t.max()) if t.size else 0.0
        steps = mean_events + 10.0 * np.sqrt(mean_events + 1.0) + 20
        if not steps * self._step.nnz <= MAX_RESPONSE_WORK:
            raise InputError(
                f"the exact response-time distribution needs {steps:,.0f} steps over "
                f"{self._step.shape[0]:,} states here, more than the limit of "
                f"{MAX_RESPONSE_WORK:,.0f} steps × non-zeros: the arrival and service rates are "
                "too far apart for it (drop the latency percentile or its quantile target)"
            )
        self._extend(int(steps))
        s_k = np.asarray(self._s)
        k = np.arange(s_k.size, dtype=np.float64)
        bt = np.maximum(self._rate * t, 1e-300)[:, None]
        from scipy.special import gammaln

        weights = np.exp(-bt + k * np.log(bt) - gammaln(k + 1.0))
        out: F = np.clip(weights @ s_k, 0.0, 1.0)
        return out


def quantile(survival: Callable[[F], F], q: float, hi: float, *, rtol: float = 1e-7) -> float:
    """The q-quantile of a distribution given its survival function (vectorised over times).

    ``hi`` is a first guess of a time where the survival is below 1 − q; it is doubled until it is.
    """
    target = 1.0 - q
    if float(survival(np.array([0.0]))[0]) <= target:
        return 0.0
    hi = max(hi, 1e-9)
    while float(survival(np.array([hi]))[0]) > target:
        hi *= 2.0
    lo = 0.0
    while hi - lo > rtol * hi:
        grid = np.linspace(lo, hi, 33)
        above = np.flatnonzero(survival(grid) > target)
        j = int(above.max()) if above.size else 0
        lo, hi = float(grid[j]), float(grid[min(j + 1, 32)])
    return hi
