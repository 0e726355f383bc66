"""The accurate model's distributions: P(W > t) and P(R > t) of a block's points from their
:class:`~inferno.model._accurate_core.BlockState` (``docs/model.md``, "Accurate mode", item 5).

The queued wait is the queue's truncated geometric made continuous (rate κ on [0, K − N]) and
scaled to its mean, per part where the queue is a mixture over the batch's compositions
(:mod:`._accurate_composition`); arrivals that find room wait out the running iteration (uniform
on it); the service is shifted by its length-independent part, and its length part has the
mean and variance the state gives, in the output lengths' family: gamma (exact for exponential
lengths, and the default) or lognormal (``outTokensDist``: at CV 1.5 a lognormal's 95th
percentile is 0.83 of a gamma's of the same mean and variance).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._accurate_core import BlockState
from ._lengths_capped import capped_parameters

F = NDArray[np.float64]

__all__ = ["response_survival", "ttft_survival", "wait_survival"]

_TINY = 1e-300
_NEGLIGIBLE = 1e-15  # a probability below which a term of a survival is left out

_NODES = 256  # nodes of the queued wait in the response-time survival
_WAIT_NODES = 64  # nodes of X in the wait's survival where the places' times vary (N = 1)


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


def _queue_scale(rate: F, room: F, mean: F) -> F:
    """ms per unit of X: the queued wait is X·scale, with the mean ``mean``."""
    mean_x = _trunc_mean(rate, room)
    out: F = np.where(mean_x > 0, mean / np.maximum(mean_x, _TINY), 0.0)
    return out


def _places(kappa: F, m: F, mean: F, v: F, logn: NDArray[np.bool_], count: int) -> tuple[F, F]:
    """A queued request's wait at N = 1, at ``count`` equal-probability nodes: the residual of
    the service in progress, then one whole service per request ahead (⌊X⌋ of them: X's
    truncated exponential floored is the queue's truncated geometric). Services have SCV ``v``
    in the lengths' family (E[S³] = (1 + v)(1 + 2v)·E[S]³ for a gamma, (1 + v)³ for a
    lognormal); the residual has mean (1 + v)/2 and second moment E[S³]/(3·E[S]) in units of a
    service. Returns the (C, count) means and variances, scaled so that their average is the
    queued wait's ``mean``."""
    p = (np.arange(count) + 0.5) / count
    ahead = np.floor(_trunc_ppf(kappa[:, None], m[:, None], p[None, :]))
    third = np.where(logn, (1.0 + v) ** 3, (1.0 + v) * (1.0 + 2.0 * v))
    r_mean = 0.5 * (1.0 + v)
    r_var = third / 3.0 - r_mean**2
    units = r_mean[:, None] + ahead
    per = mean / units.mean(axis=1)
    means: F = units * per[:, None]
    variances: F = (r_var[:, None] + ahead * v[:, None]) * (per * per)[:, None]
    return means, variances


def wait_survival(st: BlockState, t: F) -> F:
    """P(W > t) per point (t of shape (C,)): the boundary wait, uniform on one iteration, for
    arrivals that find room; for those that queue, :func:`_queued_sf`."""
    tt = np.maximum(t, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        passed = np.divide(tt[:, None], st.iteration)  # of the iteration an arrival waits out
        np.minimum(passed, 1.0, out=passed)
    room = st.p_room - np.einsum("ij,ij->i", st.room, passed)
    out: F = np.maximum(room, 0.0) + _queued_sf(st, tt)
    return np.where(t < 0, 1.0, out)


def ttft_survival(st: BlockState, t: F) -> F:
    """P(TTFT > t) per point (t of shape (C,)): an arrival that finds n requests gets its first
    token the first-token time of joining n after its wait (``first_at``, column n): at once on
    the empty replica, after the boundary wait (uniform on the running iteration) with room in
    the batch, and after its queued wait (:func:`_queued_sf`) when it joins a full batch
    (``first_full``). With varying lengths, the mixture over the request's own prompt and
    (G3) output length (nodes ``in_nodes``, weights ``in_w``): its prompt's part of the
    first-token time (``pre_part``) scales with it (G3: with its chunks, linear in the batch
    from b = 1 to N), and G3's own cost adds ``in_first``."""
    out = np.zeros(t.size)
    nodes = st.in_w.shape[1]
    cols = np.arange(st.first_at.shape[1], dtype=np.float64)
    if nodes > 1:  # column n joins b = n + 1: the share of the way from b = 1 to b = N
        frac = np.clip(cols[None, :] / np.maximum(st.n_batch - 1.0, 1.0)[:, None], 0.0, 1.0)
    for j in range(nodes):
        hi = st.in_nodes[:, j]
        x = hi[:, None]
        if nodes > 1:
            x = st.in_nodes_1[:, j, None] * (1.0 - frac) + x * frac
        more = st.in_first[:, j]
        first_at = st.first_at + st.pre_part * x + more[:, None]
        full = st.first_full + st.pre_full * hi + more
        out += st.in_w[:, j] * _ttft_given(st, t, first_at, full)
    return np.clip(out, 0.0, 1.0)


def _ttft_given(st: BlockState, t: F, first_at: F, first_full: F) -> F:
    """:func:`ttft_survival` at given first-token times (one input length)."""
    out: F = st.p_empty * (first_at[:, 0] > t)
    with np.errstate(divide="ignore", invalid="ignore"):
        passed = np.divide(t[:, None] - first_at, st.iteration)
    np.clip(np.nan_to_num(passed, nan=1.0), 0.0, 1.0, out=passed)
    out = out + np.einsum("ij,ij->i", st.room, 1.0 - passed)  # room's column 0 is 0
    tq = t - first_full
    return out + np.where(tq < 0, st.p_queue, _queued_sf(st, np.maximum(tq, 0.0)))


def _queued_sf(st: BlockState, tt: F) -> F:
    """Σ over the queue's parts of P(queue in part k, queued wait > tt) (tt ≥ 0): in each part
    (one, or one per composition of the batch) the queue's truncated geometric made continuous
    (rate κ on [0, K − N]) and scaled to the part's mean queued wait — except at N = 1
    (``slot_scv`` finite), where a queued request waits for the residual of the service in
    progress and one whole service per request ahead (:func:`_places`)."""
    out = np.zeros(tt.size)
    # the queued parts, where arrivals queue at all (P(queue) below 1e-15 adds nothing)
    for k in range(st.part_p.shape[1]):
        pk = st.part_p[:, k]
        q = np.flatnonzero(pk > _NEGLIGIBLE)
        if not q.size:
            continue
        kappa, m = st.part_rate[q, k], st.queue_room[q]
        scale = _queue_scale(kappa, m, st.part_mean[q, k])
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(scale > 0, tt[q] / np.maximum(scale, _TINY), np.inf)
        sf = np.where(scale > 0, _trunc_sf(kappa, m, x), 0.0)
        v = st.slot_scv[q]
        one = np.flatnonzero(np.isfinite(v))
        if one.size:
            i, logn = one, st.lognormal[q[one]]
            means, variances = _places(
                kappa[i], m[i], st.part_mean[q[i], k], v[i], logn, _WAIT_NODES
            )
            sf[i] = _summed_sf(logn, v[i] == 0, means, variances, tt[q[i]])
        out[q] += pk[q] * sf
    return out


def _summed_sf(logn: NDArray[np.bool_], fixed: NDArray[np.bool_], mean: F, var: F, t: F) -> F:
    """P(W > t) averaged over the nodes of :func:`_places` (their means and variances, (C, X)),
    in the lengths' family (:func:`_places_sf`)."""
    u = np.broadcast_to(t[:, None], mean.shape)
    out: F = _places_sf(logn, fixed, mean, var, u).mean(axis=1)
    return np.where(t > 0, out, 1.0)


def _places_sf(logn: NDArray[np.bool_], fixed: NDArray[np.bool_], mean: F, var: F, u: F) -> F:
    """P(G > u) at the nodes of :func:`_places` ((C, X), ``logn`` and ``fixed`` (C,)): with fixed
    lengths (``fixed``) a place's wait is the residual of one fixed service, uniform, after whole
    services, so G is uniform of that mean and variance; otherwise :func:`_family_sf`."""
    out = _family_sf(logn, mean, var, u)
    if fixed.any():
        rows = np.flatnonzero(fixed)
        width = np.sqrt(12.0 * var[rows])
        top = mean[rows] + 0.5 * width
        with np.errstate(divide="ignore", invalid="ignore"):
            flat = np.clip((top - u[rows]) / width, 0.0, 1.0)
        out[rows] = np.where(width > 0, flat, (mean[rows] > u[rows]).astype(np.float64))
    return out


def _gamma_sf(k: F, theta: F, u: F) -> F:
    from scipy import special  # here: a plain solve with mean targets needs no scipy

    out: F = np.where(u > 0, special.gammaincc(k, np.maximum(u, 0.0) / theta), 1.0)
    return out


def _lognormal_sf(m: F, s: F, u: F) -> F:
    """P(X > u) for X lognormal with log-mean ``m`` and log-s.d. ``s``."""
    from scipy import special

    with np.errstate(divide="ignore"):
        z = (np.log(np.maximum(u, _TINY)) - m) / (s * np.sqrt(2.0))
    out: F = np.where(u > 0, 0.5 * special.erfc(z), 1.0)
    return out


def _family_sf(logn: NDArray[np.bool_], mean: F, var: F, u: F, cap: F | None = None) -> F:
    """P(G > u), G gamma or (``logn``, per row) lognormal of ``mean`` and ``var`` (all of one
    shape, or (C, X) with ``logn`` (C,)); with ``cap`` ((C,), NaN: none) the rows' G is
    min(X, cap·mean), X of the family with which it has that mean and variance
    (:func:`._lengths_capped.capped_parameters`): the service's length part ends where the
    output's cap does."""
    k = mean**2 / var
    theta = var / mean
    rows = logn if logn.ndim == mean.ndim else logn[:, None]
    gam = _gamma_sf(k, theta, u)
    out: F = gam
    if logn.any():
        s2 = np.log1p(var / mean**2)
        m = np.log(mean) - 0.5 * s2
        out = np.where(rows, _lognormal_sf(m, np.sqrt(s2), u), gam)
    if cap is None or not np.isfinite(cap).any():
        return out
    return _capped_sf(logn, mean, var, u, cap, out)


def _capped_sf(logn: NDArray[np.bool_], mean: F, var: F, u: F, cap: F, out: F) -> F:
    """:func:`_family_sf` of the rows with a cap (``out``: the uncapped, for the others)."""
    col = mean.ndim > logn.ndim
    idx = np.flatnonzero(np.isfinite(cap))
    mean_i, var_i, u_i = mean[idx], var[idx], u[idx]
    rel = u_i / mean_i  # G/mean: X's units (mean 1 served)
    scv = var_i / mean_i**2
    kappa = cap[idx, None] if col else cap[idx]
    logn_i = np.broadcast_to(logn[idx, None] if col else logn[idx], scv.shape)
    shape = scv.shape
    a, b, _ = capped_parameters(scv.ravel(), np.broadcast_to(kappa, shape).ravel(), logn_i.ravel())
    a, b = a.reshape(shape), b.reshape(shape)
    sf = np.where(
        logn_i,
        _lognormal_sf(a, np.exp(b), rel),
        _gamma_sf(np.exp(a), np.exp(b), rel),
    )
    res = out.copy()
    res[idx] = np.where(rel >= kappa, 0.0, sf)
    return res


def response_survival(st: BlockState, t: F) -> F:
    """P(R > t) per point, R = W + S: S = s₀ + G (G the service's length part, gamma or
    lognormal of the state's mean and variance — the request's own prompt's included), W the
    mixture of :func:`wait_survival` with the boundary wait at its mean."""
    mean_g = np.maximum(st.decode_part, 1e-12)
    var_g = np.maximum(st.service_var, (1e-4 * mean_g) ** 2)
    logn, mean_c, var_c = st.lognormal, mean_g[:, None], var_g[:, None]
    s0 = st.service - mean_g
    u = t - s0
    cap = st.out_cap
    out = st.p_empty * _family_sf(logn, mean_g, var_g, u, cap)
    half = 0.5 * st.iteration
    room = (st.room * _family_sf(logn, mean_c, var_c, u[:, None] - half, cap)).sum(axis=1)
    # each part's queued wait at equal-probability nodes of its distribution
    parts = st.part_p.shape[1]
    nodes = -(-_NODES // parts)
    p = (np.arange(nodes) + 0.5) / nodes
    queued = np.zeros_like(out)
    v = st.slot_scv
    one = np.flatnonzero(np.isfinite(v))
    for j in range(parts):
        rate, room_q = st.part_rate[:, j, None], st.queue_room[:, None]
        scale = _queue_scale(st.part_rate[:, j], st.queue_room, st.part_mean[:, j])
        wq = scale[:, None] * _trunc_ppf(rate, room_q, p[None, :])
        part = _family_sf(logn, mean_c, var_c, u[:, None] - wq, cap).mean(axis=1)
        if one.size:  # N = 1: the wait's places and the service summed by moments
            i = one
            means, variances = _places(
                st.part_rate[i, j],
                st.queue_room[i],
                st.part_mean[i, j],
                v[i],
                st.lognormal[i],
                nodes,
            )
            mean = mean_g[i, None] + means
            var = var_g[i, None] + variances
            part[i] = _places_sf(st.lognormal[i], v[i] == 0, mean, var, u[i, None]).mean(axis=1)
        queued += st.part_p[:, j] * part
    res: F = np.clip(out + room + queued, 0.0, 1.0)
    return res
