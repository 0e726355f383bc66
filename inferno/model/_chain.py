"""The birth-death chain of one replica, solved for many replicas at once.

State n = requests held (0..K); with n present, b = min(n, N) are served together and requests
leave at rate μ(b) = b/τ(b). The stationary distribution is p(n) ∝ Π_{i≤n} λ/μ(min(i, N)).

Above N the death rate is the constant μ(N), so the tail n = N..K is geometric with ratio
r = λ/μ(N). The head (n ≤ N) is summed term by term in log space; the tail in closed form, so the
cost of one evaluation is O(N) whatever the queue length K − N. The closed forms are written with
``expm1``/``log1p`` and a series near r = 1, so they keep full precision there; r > 1 (offered load
above capacity) is handled by reflecting the geometric sums, which keeps every exponent ≤ 0.

Arrays: ``logmu_cum`` has shape (C, Nmax+1): Σ_{i≤n} log μ(i) for n ≤ N and +inf beyond a
point's own N (which makes the padded terms vanish). Everything else has shape (C,).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]

_SERIES_BELOW = 1e-3  # use the series for B(s, M) when M·|log s| is below this


@dataclass(frozen=True, slots=True)
class ChainStats:
    """Stationary summaries of C chains (all arrays of shape (C,))."""

    p0: F  # P(empty)
    p_batch: F  # P(n = N)
    log_ratio: F  # log r = log λ/μ(N), the tail's ratio
    p_full: F  # P(n = K): blocking probability
    held: F  # L = Σ n p(n)
    in_service: F  # Ls = Σ min(n, N) p(n)
    throughput: F  # X = λ (1 − p(K))


def _geometric_sums(x: F, m: F) -> tuple[F, F]:
    """A = Σ_{k<M} s^k and B = Σ_{k<M} k s^k for s = e^{−x}, x ≥ 0, M ≥ 0 (elementwise)."""
    eps = -np.expm1(-x)  # 1 − s, exact to the last bit
    u = -np.expm1(-m * x)  # 1 − s^M
    safe_eps = np.where(eps > 0, eps, 1.0)
    a = np.where(eps > 0, u / safe_eps, m)
    s = 1.0 - eps
    s_m1 = np.exp(-(m - 1.0) * x)  # s^(M−1)
    closed = s * (u - m * s_m1 * eps) / (safe_eps * safe_eps)
    # series in x: Σk − x Σk² + x²/2 Σk³, relative error < (Mx)³ when Mx < 1e-3
    sk1 = m * (m - 1.0) / 2.0
    sk2 = (m - 1.0) * m * (2.0 * m - 1.0) / 6.0
    series = sk1 - x * sk2 + 0.5 * x * x * sk1 * sk1
    b = np.where(m * x < _SERIES_BELOW, series, closed)
    return a, b


def solve(lam: F, logmu_cum: F, n_batch: F, n_tail: F, log_mu_n: F) -> ChainStats:
    """Stationary summaries at arrival rates ``lam`` (> 0).

    ``n_batch`` is N, ``n_tail`` is K − N (≥ 0), ``log_mu_n`` is log μ(N).
    """
    log_lam = np.log(lam)
    idx = np.arange(logmu_cum.shape[1], dtype=np.float64)
    a = idx * log_lam[:, None] - logmu_cum  # log p̃(n), −inf past N
    a_n = a[np.arange(a.shape[0]), n_batch.astype(np.intp)]
    log_r = log_lam - log_mu_n
    if not n_tail.any():  # K = N: no queue beyond the batch, the head is everything
        shift = a.max(axis=1)
        e = np.exp(a - shift[:, None])
        z = e.sum(axis=1)
        p_n = np.exp(a_n - shift) / z
        held = (e @ idx) / z
        return ChainStats(
            p0=np.exp(-shift) / z,
            p_batch=p_n,
            log_ratio=log_r,
            p_full=p_n,
            held=held,
            in_service=held,
            throughput=lam * (1.0 - p_n),
        )
    up = log_r > 0
    # the largest tail term: n = N+1 when r ≤ 1, n = K when r > 1
    tail_top = a_n + np.where(up, n_tail * log_r, log_r)
    shift = np.maximum(a.max(axis=1), np.where(n_tail > 0, tail_top, -np.inf))
    e = np.exp(a - shift[:, None])
    h0 = e.sum(axis=1)
    h1 = e @ idx
    big_a, big_b = _geometric_sums(np.abs(log_r), n_tail)
    # g0 = Σ_{j=1..M} r^j, g1 = Σ j r^j, both scaled by exp(a_N − shift)
    # r ≤ 1: g0 = r A(r), g1 = r (A + B);  r > 1: g0 = r^M A(1/r), g1 = r^M (M A − B)
    scale = np.exp(tail_top - shift)
    g0 = scale * big_a
    g1 = scale * np.where(up, n_tail * big_a - big_b, big_a + big_b)
    z = h0 + g0
    p_full = np.exp(a_n + n_tail * log_r - shift) / z  # p̃(K); = p̃(N) when M = 0
    in_service = (h1 + n_batch * g0) / z
    return ChainStats(
        p0=np.exp(-shift) / z,
        p_batch=np.exp(a_n - shift) / z,
        log_ratio=log_r,
        p_full=p_full,
        held=in_service + g1 / z,
        in_service=in_service,
        throughput=lam * (1.0 - p_full),
    )


def distribution(lam: float, logmu_cum: F, n_batch: int, n_tail: int, log_mu_n: float) -> F:
    """The full stationary distribution p(0..K) of one chain (for percentiles and tests)."""
    head = np.arange(n_batch + 1) * np.log(lam) - logmu_cum[: n_batch + 1]
    tail = head[n_batch] + np.arange(1, n_tail + 1) * (np.log(lam) - log_mu_n)
    logp = np.concatenate([head, tail])
    logp -= logp.max()
    p = np.exp(logp)
    out: F = p / p.sum()
    return out
