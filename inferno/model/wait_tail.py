"""The waiting time's survival P(W > t) and density, for many chains at once (the method:
:mod:`.percentiles`, "Waiting time")."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

F = NDArray[np.float64]

__all__ = ["log_factorial", "wait_survival", "wait_survival_density"]

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
    return _wait_tail(t, p_batch, blocking, log_r, mu_n, n_tail, density=False)[0]


def wait_survival_density(
    t: F, p_batch: F, blocking: F, log_r: F, mu_n: F, n_tail: F
) -> tuple[F, F]:
    """:func:`wait_survival` and the wait's density at t > 0, f(t) = −dP(W > t)/dt.

    f(t) = Σ_{i<M} π(N + i)·μ(N)·Pois(i; x) = μ(N)·π(N)·e^{−x(1−r)}·Q(M, x·r): the first term of
    the closed form, so the density costs nothing more where the closed form is used.
    """
    return _wait_tail(t, p_batch, blocking, log_r, mu_n, n_tail, density=True)


def _wait_tail(
    t: F, p_batch: F, blocking: F, log_r: F, mu_n: F, n_tail: F, *, density: bool
) -> tuple[F, F]:
    out = np.zeros_like(t)
    dens = np.zeros_like(t)
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
        if density:
            dens[closed] = mu_n[closed] * np.exp(la) / (1.0 - blocking[closed])
    summed = np.flatnonzero((m > 0) & near)
    if summed.size:
        mmax = int(m[summed].max())
        step = max(1, _WAIT_CELLS // mmax)
        for i in range(0, summed.size, step):
            idx = summed[i : i + step]
            out[idx] = _wait_survival(
                mmax, *(a[idx] for a in (t, p_batch, blocking, log_r, mu_n, n_tail))
            )
        if density:
            x = mu_n[summed] * t[summed]
            with np.errstate(divide="ignore"):
                la = (
                    np.log(p_batch[summed])
                    - x * -np.expm1(log_r[summed])
                    + _log_q(m[summed], x * np.exp(log_r[summed]))
                )
            dens[summed] = mu_n[summed] * np.exp(la) / (1.0 - blocking[summed])
    clipped: F = np.clip(out, 0.0, 1.0)
    return clipped, dens


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
