"""How much a G2 batch's speed depends on which requests are in it: λ-independent numbers per
point for :mod:`._accurate_composition` and the queue factor (``docs/model.md``, "Accurate mode",
item 3). :func:`composition` takes output lengths from the gamma family of their mean and SCV
(fixed for c² = 0, exponential for c² = 1) for the moments it needs beyond the second (the
spread with no window, which says whether a row has one, and the work factor);
:func:`episodes` and :func:`window_cumulants`, the spread the queue feels, take them in their
told family (gamma or lognormal) at nodes of their distribution.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from ._accurate_inputs import input_nodes
from ._kinds import KindArrays
from ._lengths_capped import capped_nodes

F = NDArray[np.float64]

__all__ = ["composition", "episodes", "length_moments", "window_cumulants"]

logger = logging.getLogger(__name__)


def length_moments(m: F, scv: F, k: int) -> F:
    """E[o^k] of output lengths of mean m and SCV c² in the gamma family (fixed for c² = 0,
    exponential for c² = 1): m^k·Π_{i<k} (1 + i·c²)."""
    out = m**k
    for i in range(1, k):
        out = out * (1.0 + i * scv)
    return out


def input_moments(mean: F, scv: F, lognormal: NDArray[np.bool_]) -> tuple[F, F]:
    """(variance, third central moment) of input lengths of ``mean`` and SCV in their family
    (gamma, else lognormal)."""
    var = scv * mean * mean
    cv = np.sqrt(scv)
    skew = np.where(lognormal, (scv + 3.0) * cv, 2.0 * cv)  # lognormal: (e^{σ²} + 2)·√(e^{σ²} − 1)
    return var, skew * var**1.5


def composition(
    p: KindArrays,
    n: F,
    scv: F,
    d_full: F,
    in_scv: F | None = None,
    in_lognormal: NDArray[np.bool_] | None = None,
) -> tuple[F, F, F, F]:
    """G2: how the full batch's speed depends on which requests are in it (``docs/model.md``,
    "Accurate mode", item 3): (σ, skewness, κ, work factor).

    Each member adds γ·(in + o/2) to every iteration for its o + 1 iterations, and members are
    length-biased (E_b[o^k] = E[o^(k+1)]/E[o]). Over the N − 1 others (a request's own length is
    its service's variance) the iteration D(N) has the relative s.d. σ = ½γ·√((N − 1)·Var_b(o))/D(N)
    and the skewness of Var_b's distribution over √(N − 1). The sum's autocorrelation decays as
    its members leave: T = E[w²·I²] / (2·E[w²·I]) iterations, w = in + o/2, I = o + 1;
    κ = I / (2·N·T). The work factor: a member's KV slows each of the N members' iterations
    for as long as it stays, so the queue above a full batch, which empties as the batch's work
    is done, sees a request bring the work S(o) = (o + 1)·(a + N·½γ·o),
    a = D(N) − N·½γ·E_b[o] (N times its share of each iteration, D(N)/N + ½γ·(o − E_b[o]),
    over its o + 1 iterations; the mean is (o + 1)·D(N)'s): the factor is SCV(S) over
    SCV(o + 1). At N = 1 it is the request's own KV alone.

    Input lengths that vary (``in_scv``, independent of the output's) add their variance and
    third moment to each member's w (members are not biased in their input).

    The queue uses σ (whether a row has a spread at all) and the work factor; the spread it
    feels is :func:`window_cumulants`'. The skewness and κ are the one-correlation-time form it
    used before, which ``tests/model/test_accurate_nodes.py``'s pinned values still take."""
    m, big_l, gamma = p.out_tokens, p.in_tokens, p.gamma
    zero = np.zeros_like(m)
    var_in, mu3_in = (
        (zero, zero)
        if in_scv is None
        else input_moments(
            big_l, in_scv, np.zeros(m.shape, dtype=bool) if in_lognormal is None else in_lognormal
        )
    )
    e = [np.ones_like(m)] + [length_moments(m, scv, k) for k in range(1, 5)]
    safe = np.maximum(e[1], 1e-12)
    b1, b2, b3 = e[2] / safe, e[3] / safe, e[4] / safe  # length-biased E_b[o], E_b[o²], E_b[o³]
    var_o = np.maximum(b2 - b1 * b1, 0.0)
    var_w = var_in + 0.25 * var_o  # a member's w = in + o/2
    others = np.maximum(n - 1.0, 0.0)
    sigma = gamma * np.sqrt(others * var_w) / d_full
    with np.errstate(divide="ignore", invalid="ignore"):
        mu3_w = mu3_in + 0.125 * (b3 - 3.0 * b1 * b2 + 2.0 * b1**3)
        skew_one = mu3_w / var_w**1.5
        skew = np.where((var_w > 0) & (others > 0), skew_one / np.sqrt(others), 0.0)
    # w²·I and w²·I² as polynomials in o, integrated against the length moments (in²: its
    # second moment)
    l2 = big_l * big_l + var_in
    w2i = l2 + (l2 + big_l) * e[1] + (big_l + 0.25) * e[2] + 0.25 * e[3]
    w2i2 = l2 + (2.0 * l2 + big_l) * e[1] + (l2 + 2.0 * big_l + 0.25) * e[2]
    w2i2 = w2i2 + (big_l + 0.5) * e[3] + 0.25 * e[4]
    t_corr = w2i2 / np.maximum(2.0 * w2i, 1e-300)
    kappa = (m + 1.0) / np.maximum(2.0 * n * t_corr, 1e-300)
    # the work a request brings to the full batch, S = c0 + c1·o + c2·o²
    kv = 0.5 * gamma * np.maximum(n, 1.0)
    a = np.maximum(d_full - kv * b1, 1e-12)
    c = (a, a + kv, kv)
    mean_s = sum(ci * e[i] for i, ci in enumerate(c))
    second = sum(ci * cj * e[i + j] for i, ci in enumerate(c) for j, cj in enumerate(c))
    scv_s = np.maximum(second / mean_s**2 - 1.0, 0.0)
    scv_i = scv * (m / (m + 1.0)) ** 2  # SCV of o + 1
    work = np.where(scv_i > 1e-12, scv_s / np.maximum(scv_i, 1e-300), 1.0)
    sigma = np.where(np.isfinite(sigma), sigma, 0.0)
    return sigma, np.nan_to_num(skew), kappa, np.maximum(np.nan_to_num(work, nan=1.0), 1.0)


#: the output lengths' bins for :func:`episodes`, in probability: the long requests whose
#: episodes outlast the queue's window sit in the upper tail. The fine bins end at the
#: 1 − 10⁻⁷ quantile and the last bin holds every rarer length at its conditional mean (its
#: mass and mean, not its spread): a lognormal's cumulants are dominated by its far tail, and
#: lengths rarer than one request in 10⁷ are not part of the steady state an SLO is measured
#: over (docs/model.md)
EPISODE_EDGES = np.concatenate(
    [
        np.linspace(0.0, 0.9, 10)[:-1],
        np.linspace(0.9, 0.99, 10)[:-1],
        1.0 - np.logspace(-2, -7, 16),
        [1.0],
    ]
)


def episodes(
    p: KindArrays,
    n: F,
    scv: F,
    lognormal: NDArray[np.bool_],
    d_full: F,
    in_scv: F,
    in_lognormal: NDArray[np.bool_],
    cap: F | None = None,
) -> tuple[F, F, F, F, F]:
    """G2: the batch's composition as shot noise, per output-length node j:
    (y_j, I_j, r_j, v, μ₃) with y_j = γ·(o_j/2 − E_b[o]/2)/D(N) a member's relative extra cost
    per iteration, I_j = o_j + 1 its stay in iterations, r_j = (N − 1)/E[I]·P_j the rate at which
    such members join the N − 1 others per iteration, and the input lengths' relative variance
    v = γ²·Var(in)/D² and third moment μ₃ (independent of the output's; a member's input stays
    as long as its output). ``cap``: the most output tokens over their mean (NaN or None: no
    cap), the lengths then served capped with the told mean and SCV (:mod:`._lengths_capped`)."""
    m, gamma = p.out_tokens, p.gamma
    if cap is None:
        x, w = input_nodes(scv, lognormal, EPISODE_EDGES)
    else:
        x, w = capped_nodes(scv, lognormal, cap, EPISODE_EDGES)
    o = m[:, None] * (1.0 + x)
    stay = o + 1.0
    biased = w * stay / (m + 1.0)[:, None]
    half = 0.5 * o
    half_b = np.einsum("ij,ij->i", biased, half)
    d = np.maximum(d_full, 1e-12)
    y = (gamma / d)[:, None] * (half - half_b[:, None])
    rate = (np.maximum(n - 1.0, 0.0) / (m + 1.0))[:, None] * w
    var_in, mu3_in = input_moments(p.in_tokens, in_scv, in_lognormal)
    rel = gamma / d
    return y, stay, rate, rel**2 * var_in, rel**3 * mu3_in


def window_cumulants(y: F, stay: F, rate: F, v: F, mu3: F, window: F) -> tuple[F, F]:
    """(variance, third cumulant) of the composition averaged over a window of W iterations
    (W: (C,), may be inf): a member present for I iterations is averaged in by
    H_k(I, W) = ∫ (overlap/W)^k over its start: I − W/3, I − W/2 for I ≥ W;
    I²/W − I³/(3W²), I³/W² − I⁴/(2W³) for I ≤ W (H_k → I as W → 0)."""
    big_w = window[:, None]
    long = stay >= big_w
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r1 = np.where(long, 1.0, stay / big_w)  # I/W ≤ 1 where short
        h2 = np.where(long, stay - big_w / 3.0, stay * r1 * (1.0 - r1 / 3.0))
        h3 = np.where(long, stay - big_w / 2.0, stay * r1 * r1 * (1.0 - r1 / 2.0))
    h2 = np.nan_to_num(np.maximum(h2, 0.0))
    h3 = np.nan_to_num(np.maximum(h3, 0.0))
    var = np.einsum("ij,ij->i", rate * h2, y * y + v[:, None])
    k3 = np.einsum("ij,ij->i", rate * h3, y**3 + 3.0 * v[:, None] * y + mu3[:, None])
    return var, k3
