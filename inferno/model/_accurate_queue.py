"""The accurate model's queue above a full batch (docs/model.md, "Accurate mode" item 3): the
two-moment factor on the chain's mean queue and the geometric queue that carries it.

The chain's mass on n ≥ N is kept; within it the queue length is geometric with the ratio r′
for which r′/(1 − r′) = f·r/(1 − r), f from :func:`queue_factor`, truncated at K − N like the
chain's.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from . import _chain

F = NDArray[np.float64]

__all__ = ["log_geometric", "matched_log_ratio", "queue_factor", "truncated_geometric"]

_TINY = 1e-300


def queue_factor(cs2: F, log_r: F, n: F) -> F:
    """The factor f on the chain's mean queue, W(M/G/N) ≈ f·W(M/M/N), interpolated in c_s²
    between the exponential service (f = 1) and the deterministic one, whose factor is
    Cosmetatos' M/D/c correction of one half: g = ½(1 + φ),
    φ = (1 − ρ)(N − 1)(√(4 + 5N) − 2)/(16ρN) (the queue of fixed-length requests is more than
    half the exponential one's when N is large and ρ moderate).

    For c_s² < 1 the interpolation is Cosmetatos' own, linear: f = c_s² + (1 − c_s²)·g. For
    c_s² > 1 it is Kimura's system interpolation, f = (1 + c_s²)/(2c_s² + (1 − c_s²)/g): at
    N = 1 (g = ½) and as ρ → 1 it is Allen–Cunneen's (1 + c_s²)/2, and below it for N > 1 at
    moderate load, where a long service holds one of the N places and the others go on (with
    lognormal services of SCV 2.25–4 in M/G/8 at ρ = 0.5–0.85, Allen–Cunneen is 21–64% high and
    this 2–8%: ``tests/model/test_accurate_queue.py``). N = 1 gives
    Pollaczek–Khinchine's factor exactly."""
    rho = np.clip(np.exp(np.minimum(log_r, 0.0)), 1e-6, 1.0)
    phi = (1.0 - rho) * (n - 1.0) * (np.sqrt(4.0 + 5.0 * n) - 2.0) / (16.0 * rho * n)
    g = 0.5 * (1.0 + phi)
    low = cs2 + (1.0 - cs2) * g
    # Kimura's over c_s² (2g − 1 = φ): exact at N = 1 and ρ = 1, finite for any c_s² ≥ 1
    inv = 1.0 / np.maximum(cs2, 1.0)
    high = g * (1.0 + inv) / (phi + inv)
    out: F = np.where(cs2 < 1.0, low, high)
    return out


def log_geometric(log_r: F, m: F) -> F:
    """log Σ_{j<M} r^j for M ≥ 1, stable for every r (reflected above 1)."""
    a, _ = _chain._geometric_sums(np.abs(log_r), m)
    out: F = np.log(a) + np.where(log_r > 0, (m - 1.0) * log_r, 0.0)
    return out


def matched_log_ratio(log_r: F, f: F) -> F:
    """log r' with r'/(1 − r') = f·r/(1 − r): the geometric queue whose mean is f times the
    chain's (untruncated); r' = 1 at r = 1, and r' > 1 exactly when r > 1."""
    r = np.exp(np.minimum(log_r, 50.0))
    den = 1.0 - r + f * r
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F = np.where(den > 1e-12, np.log(f) + log_r - np.log(np.maximum(den, _TINY)), 50.0)
    return np.where(np.abs(log_r) < 1e-12, 0.0, out)


def truncated_geometric(log_r: F, m: F) -> tuple[F, F]:
    """For j on 0..M with P(j) ∝ r^j: (E[j], P(j = M)), stable for every r."""
    x = np.abs(log_r)
    a, bsum = _chain._geometric_sums(x, m + 1.0)  # Σ s^k, Σ k s^k, k = 0..M, s = e^{−|log r|}
    mean_low = bsum / a
    up = log_r > 0
    mean = np.where(up, m - mean_low, mean_low)
    top = np.where(up, 1.0 / a, np.exp(-m * x) / a)
    return mean, top
