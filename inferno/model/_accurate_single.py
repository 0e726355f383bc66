"""One request at a time (N = 1): the accurate model's queue as the exact M/G/1/K.

With N = 1 the replica is a single server whose service time S has the mean τ(1) and the SCV
c_s² the block gives, in the output lengths' family (gamma, or lognormal with ``outTokensDist``).
The geometric queue of :mod:`._accurate_queue` matches Pollaczek–Khinchine's mean of the
*infinite* queue and then truncates it at K; with heavy-tailed services the infinite queue's
mass sits in a long tail that the truncation cuts, so the truncated geometric is high (M/G/1/K
with lognormal services of SCV 2.25, K = 11: mean wait +7% to +10% at ρ = 0.5–0.85, blocking
0.3–0.75 of the true one). Here the queue is the embedded Markov chain at departures, solved
exactly (``tests/model/test_accurate_single.py`` against a simulated M/G/1/K):

- a_k = E[e^{−λS}(λS)^k/k!], the chance of k arrivals during a service, over S at the
  conditional means of fine bins of its distribution (:func:`._accurate_inputs.input_nodes`);
- the departures' chain on 0..M (M = K − 1) is upper Hessenberg, so its stationary vector
  follows from π₀ by the balance of each state j < M:
  π_{j+1} = (π_j − π₀·a_j − Σ_{i=1..j} π_i·a_{j−i+1})/a₀, then normalised; a₀ ≥ e^{−ρ}, so the
  recursion does not lose precision below overload;
- the time averages: p_n = π_n/(π₀ + ρ) for n ≤ M, p_K = 1 − 1/(π₀ + ρ) (ρ = λ·E[S]).

Rows with a queue room M above :data:`MAX_ROOM`, or deep in overload (ρ > :data:`MAX_RHO`),
keep the geometric queue: there the truncation is far from the mass, or the queue is full. The
caller (:func:`._accurate_core.evaluate`) also keeps it for exponential services, where it is
M/M/1/K itself, and for services not of the lengths' family (G2's, quadratic in the length).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from ._accurate_inputs import input_nodes
from ._lengths_capped import capped_nodes

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["MAX_RHO", "MAX_ROOM", "single_queue"]

logger = logging.getLogger(__name__)

#: the largest queue room M solved exactly (the recursion is O(M²) per row)
MAX_ROOM = 64
#: beyond this load the queue sits at K and the geometric's truncation is exact enough
MAX_RHO = 4.0
#: the service time's bins in probability: fine everywhere (a_k for small k lives in the bulk),
#: finer in the upper tail (the long services that fill the queue)
EDGES = np.concatenate(
    [
        np.linspace(0.0, 0.95, 39)[:-1],
        np.linspace(0.95, 0.995, 10)[:-1],
        1.0 - np.logspace(np.log10(0.005), -8, 12),
        [1.0],
    ]
)


def single_queue(
    lam: F, tau: F, cs2: F, lognormal: NDArray[np.bool_], room: F, cap: F | None = None
) -> tuple[Idx, F, F, F]:
    """The exact M/G/1/K of the rows it applies to: (their indices, p₀ the time-average chance
    the replica is empty, p_K the blocking, L_q the time-average number queued). ``lam`` (/ms),
    ``tau`` the mean service (ms), ``cs2`` its SCV, ``room`` M = K − 1, all (C,); ``cap``: the
    most output tokens over their mean (NaN or None: no cap), the service capped alike."""
    rho = lam * tau
    ok = (room >= 1) & (room <= MAX_ROOM) & (rho > 0) & (rho <= MAX_RHO) & np.isfinite(cs2)
    idx = np.flatnonzero(ok)
    if not idx.size:
        empty = np.zeros(0)
        return idx, empty, empty, empty
    m = room[idx].astype(np.intp)
    width = int(m.max())
    scv = np.maximum(cs2[idx], 0.0)
    if cap is None:
        nodes, w = input_nodes(scv, lognormal[idx], EDGES)
    else:
        nodes, w = capped_nodes(scv, lognormal[idx], cap[idx], EDGES)
    x = np.maximum(rho[idx, None] * (1.0 + nodes), 1e-300)  # λ·S at each node, (R, J)
    k = np.arange(width + 1, dtype=np.float64)
    # Poisson(k; x) in logs, summed over the nodes: (R, width + 1)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(k[1:]))])  # log k!
    log_pmf = k[None, None, :] * np.log(x)[:, :, None] - x[:, :, None] - log_fact
    a = np.einsum("rj,rjk->rk", w, np.exp(log_pmf))
    pi = np.zeros((idx.size, width + 1))
    pi[:, 0] = 1.0
    a0 = np.maximum(a[:, 0], 1e-300)
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(width):
            # Σ_{i=1..j} π_i·a_{j−i+1}: π_1..π_j against a_j..a_1
            inner = np.einsum("ri,ri->r", pi[:, 1 : j + 1], a[:, j:0:-1]) if j else 0.0
            nxt = (pi[:, j] - pi[:, 0] * a[:, j] - inner) / a0
            pi[:, j + 1] = np.where(j < m, nxt, 0.0)
    pi = np.maximum(pi, 0.0)
    total = pi.sum(axis=1)
    good = np.isfinite(total) & (total > 0)
    pi = np.where(good[:, None], pi / np.where(good, total, 1.0)[:, None], 0.0)
    r = rho[idx]
    denom = pi[:, 0] + r
    p = pi / denom[:, None]  # time averages, n = 0..M
    p_k = np.clip(1.0 - 1.0 / denom, 0.0, 1.0)
    n = np.arange(width + 1, dtype=np.float64)
    in_system = p @ n + (m + 1.0) * p_k
    p0 = p[:, 0]
    lq = np.maximum(in_system - (1.0 - p0), 0.0)
    keep = good & np.isfinite(lq)
    if not keep.all():
        logger.debug("M/G/1/K: %d rows left to the geometric queue", int((~keep).sum()))
    return idx[keep], p0[keep], p_k[keep], lq[keep]
