"""Output lengths a server caps at its most tokens T (``outTokensMax``): the served length is
min(X, T), X of the told family (gamma or lognormal), and the told mean and CV are the served
lengths' — what a collector measures. So X's parameters are those for which min(X, T) has that
mean and CV (:func:`capped_parameters`), and the nodes of the served lengths put the mass X has
beyond T at T itself (:func:`capped_nodes`).

Everything is relative to the served mean (mean 1, the cap κ = T/mean): the nodes are L/L̄ − 1
as :func:`._accurate_inputs.input_nodes` gives them. Without a cap, or with one so far out that
X (uncapped, with the told mean and CV) passes it less than once in 10¹², the nodes are
:func:`._accurate_inputs.input_nodes`' own.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._accurate_inputs import distinct_rows, input_nodes

F = NDArray[np.float64]
B = NDArray[np.bool_]

__all__ = ["capped_nodes", "capped_parameters", "largest_served_cv", "served_cdf"]

logger = logging.getLogger(__name__)

#: P(X > T) below which a cap is left out (it moves no moment the model uses)
_FAR = 1e-12
#: the served SCV is at most this share of its largest possible, κ − 1 (half the lengths at 0
#: and half at T): beyond it the told CV and cap contradict each other
_MOST_SCV = 0.98
_STEPS = 60  # Newton steps at most (they converge in 5–15)
_warned = False  # whether a row's failure to converge was logged as a warning yet
_KEPT = 256  # distinct inputs of capped_parameters remembered


def _moments(a: F, b: F, kappa: F, logn: B) -> tuple[F, F, F]:
    """(E[min(X, κ)], E[min(X, κ)²], P(X > κ)) of X with parameters (a, b): lognormal
    log-mean a and log-s.d. e^b, or gamma of shape e^a and scale e^b."""
    from scipy import special

    with np.errstate(over="ignore", invalid="ignore"):  # a wild Newton step: inf, rejected
        return _moments_of(a, b, kappa, logn, special)


def _moments_of(a: F, b: F, kappa: F, logn: B, special: Any) -> tuple[F, F, F]:
    out1, out2, tail = np.empty(a.shape), np.empty(a.shape), np.empty(a.shape)
    if logn.any():
        mu, s, k = a[logn], np.exp(b[logn]), kappa[logn]
        z = (np.log(k) - mu) / s
        t = special.ndtr(-z)
        out1[logn] = np.exp(mu + 0.5 * s * s) * special.ndtr(z - s) + k * t
        out2[logn] = np.exp(2.0 * mu + 2.0 * s * s) * special.ndtr(z - 2.0 * s) + k * k * t
        tail[logn] = t
    gam = ~logn
    if gam.any():
        shape, theta, k = np.exp(a[gam]), np.exp(b[gam]), kappa[gam]
        u = k / theta
        t = special.gammaincc(shape, u)
        out1[gam] = shape * theta * special.gammainc(shape + 1.0, u) + k * t
        e2 = shape * (shape + 1.0) * theta * theta * special.gammainc(shape + 2.0, u)
        out2[gam] = e2 + k * k * t
        tail[gam] = t
    return out1, out2, tail


def _start(scv: F, logn: B) -> tuple[F, F]:
    """X's parameters with mean 1 and this SCV, uncapped."""
    s2 = np.log1p(scv)
    a = np.where(logn, -0.5 * s2, -np.log(scv))  # lognormal μ; gamma log shape (k = 1/c²)
    b = np.where(logn, 0.5 * np.log(s2), np.log(scv))  # log s; gamma log scale (θ = c²)
    return a, b


def largest_served_cv(kappa: float) -> float:
    """The largest served CV the model takes at a cap of κ times the mean (:data:`_MOST_SCV`
    of the most possible, half the lengths at 0 and half at the cap)."""
    return math.sqrt(_MOST_SCV * max(kappa - 1.0, 0.0))


def served_cdf(x: F, scv: float, kappa: float, lognormal: bool) -> F:
    """P(min(X, κ) ≤ x) at ``x`` (in units of the served mean) for lengths of the family
    (gamma, or lognormal) served capped at κ times their mean with the served SCV ``scv`` (κ
    inf: no cap): X's distribution function below κ, 1 from κ on. What a collector fits a
    histogram of capped lengths with (:func:`inferno.prom.lengths.fit_lengths`)."""
    from scipy import special

    x = np.asarray(x, dtype=np.float64)
    if not math.isfinite(kappa):
        a, b = _start(np.array([scv]), np.array([lognormal]))
    else:
        a, b, _ = capped_parameters(np.array([scv]), np.array([kappa]), np.array([lognormal]))
    if lognormal:
        with np.errstate(divide="ignore"):
            below: F = special.ndtr((np.log(x) - a[0]) / np.exp(b[0]))
    else:
        below = special.gammainc(np.exp(a[0]), np.maximum(x, 0.0) / np.exp(b[0]))
    out: F = np.where(x >= kappa, 1.0, below)
    return out


def capped_parameters(scv: F, kappa: F, logn: B) -> tuple[F, F, B]:
    """:func:`_solve`, remembered for the last :data:`_KEPT` distinct inputs (read-only arrays):
    the latency's quantile search evaluates one state's tail many times, and each would solve
    the same rows again."""
    return _remembered(
        np.ascontiguousarray(scv, dtype=np.float64).tobytes(),
        np.ascontiguousarray(kappa, dtype=np.float64).tobytes(),
        np.ascontiguousarray(logn, dtype=bool).tobytes(),
    )


@functools.lru_cache(maxsize=_KEPT)
def _remembered(scv: bytes, kappa: bytes, logn: bytes) -> tuple[F, F, B]:
    out = _solve(np.frombuffer(scv), np.frombuffer(kappa), np.frombuffer(logn, dtype=bool))
    for v in out:
        v.flags.writeable = False
    return out


def _solve(scv: F, kappa: F, logn: B) -> tuple[F, F, B]:
    """(a, b, capped): X's parameters (as :func:`_moments`) for which min(X, κ) has mean 1 and
    SCV ``scv``, for rows with c² > 0 and κ > 1; ``capped`` is False where the cap is left out
    (beyond X's 1 − 10⁻¹² quantile uncapped), and there (a, b) are the uncapped ones. The served
    SCV is taken at most 98% of κ − 1, its largest possible. Solved by Newton's method on the
    log-moments (a finite-difference Jacobian, rows at once, a step halved until it helps); a
    row that does not converge (a CV so near the largest that X's spread runs away) keeps the
    uncapped parameters, capped (its served mean and CV then a little below the told), with a
    warning."""
    scv = np.minimum(scv, _MOST_SCV * (kappa - 1.0))
    a, b = _start(scv, logn)
    _, _, tail = _moments(a, b, kappa, logn)
    capped = tail > _FAR
    if not capped.any():
        return a, b, capped
    rows = np.flatnonzero(capped)
    x = np.stack([a[rows], b[rows]])
    k, ln, target = kappa[rows], logn[rows], np.log1p(scv[rows])
    h = 1e-6

    def resid(p: F) -> F:
        e1, e2, _ = _moments(p[0], p[1], k, ln)
        with np.errstate(divide="ignore", invalid="ignore"):
            out: F = np.stack([np.log(e1), np.log(e2) - 2.0 * np.log(e1) - target])
        return out

    r = resid(x)
    done = np.all(np.abs(r) < 1e-10, axis=0)
    for _ in range(_STEPS):
        if done.all():
            break
        ja = (resid(x + np.array([[h], [0.0]])) - r) / h
        jb = (resid(x + np.array([[0.0], [h]])) - r) / h
        det = ja[0] * jb[1] - jb[0] * ja[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            da = (r[0] * jb[1] - jb[0] * r[1]) / det
            db = (ja[0] * r[1] - r[0] * ja[1]) / det
        step = np.stack([da, db])
        step = np.where(np.isfinite(step), np.clip(step, -1.0, 1.0), 0.0)  # damped
        size = np.abs(r).sum(axis=0)
        for _ in range(20):  # halved while it does not bring the residual down
            trial = np.where(done, x, x - step)
            worse = ~(np.abs(resid(trial)).sum(axis=0) < size) & ~done
            if not worse.any():
                break
            step = np.where(worse, 0.5 * step, step)
        x = trial
        # judged after every step, the last one too
        r = resid(x)
        done = np.all(np.abs(r) < 1e-10, axis=0)
    bad = ~done | ~np.all(np.isfinite(x), axis=0)
    if bad.any():
        global _warned
        log = logger.debug if _warned else logger.warning  # once a process: evaluations repeat
        _warned = True
        log(
            "%d capped length distributions did not converge (a CV near the most the cap allows):"
            " those rows take the uncapped family of their mean and CV, capped",
            int(bad.sum()),
        )
        x[:, bad] = np.stack([a[rows[bad]], b[rows[bad]]])
    a, b = a.copy(), b.copy()
    a[rows], b[rows] = x[0], x[1]
    return a, b, capped


def capped_nodes(scv: F, lognormal: B, cap: F, edges: F) -> tuple[F, F]:
    """(nodes, weights), each (C, J): :func:`._accurate_inputs.input_nodes` of lengths served
    capped at ``cap`` times their mean (NaN or inf: no cap), X's mass beyond the cap put at the
    cap. J is the edges' bins (1 where no row varies). Computed once per distinct row."""
    scv = np.where(np.isfinite(scv), np.maximum(scv, 0.0), 0.0)
    kappa = np.where(np.isfinite(cap), np.maximum(cap, 1.0), np.inf)
    lognormal = np.broadcast_to(np.asarray(lognormal, bool), scv.shape)
    first, inverse = distinct_rows(scv, lognormal, kappa)
    if first.size < scv.size:
        nodes, w = _capped_nodes(scv[first], lognormal[first], kappa[first], edges)
        return nodes[inverse], w[inverse]
    return _capped_nodes(scv, lognormal, kappa, edges)


def _capped_nodes(scv: F, lognormal: B, kappa: F, edges: F) -> tuple[F, F]:
    """:func:`capped_nodes` of every row (``kappa`` the cap over the mean, inf: none)."""
    nodes, w = input_nodes(scv, lognormal, edges)
    rows = np.flatnonzero((scv > 1e-12) & np.isfinite(kappa) & (kappa > 1.0))
    if not rows.size:
        return nodes, w
    from scipy import special

    logn = np.asarray(lognormal, bool)[rows]
    k = kappa[rows]
    a, b, capped = capped_parameters(scv[rows], k, logn)
    if not capped.any():
        return nodes, w
    rows, a, b, k, logn = rows[capped], a[capped], b[capped], k[capped], logn[capped]
    share = np.empty((rows.size, edges.size - 1))
    if logn.any():
        mu, s = a[logn, None], np.exp(b[logn, None])
        with np.errstate(divide="ignore"):
            z = special.ndtri(edges)[None, :]  # X's quantiles' z, −inf … +inf
        zk = (np.log(k[logn, None]) - mu) / s
        below = np.exp(mu + 0.5 * s * s) * np.diff(special.ndtr(np.minimum(z, zk) - s), axis=1)
        share[logn] = below + k[logn, None] * np.diff(np.maximum(edges, special.ndtr(zk)), axis=1)
    gam = ~logn
    if gam.any():
        shape, theta = np.exp(a[gam, None]), np.exp(b[gam, None])
        q = special.gammaincinv(shape, np.broadcast_to(edges, (shape.shape[0], edges.size)))
        qk = k[gam, None] / theta
        part = shape * theta * np.diff(special.gammainc(shape + 1.0, np.minimum(q, qk)), axis=1)
        at_cap = np.diff(np.maximum(edges, special.gammainc(shape, qk)), axis=1)
        share[gam] = part + k[gam, None] * at_cap
    width = np.diff(edges)
    nodes, w = nodes.copy(), w.copy()  # a row varies, so every row has the edges' bins
    nodes[rows] = share / width - 1.0
    w[rows] = width
    return nodes, w
