"""The input lengths' spread in the accurate model: nodes of the input-length distribution.

A request's own prompt is part of its first-token time (G1: δ per input token in its prefill
iteration; G2: β + γ; G3: the chunks its prompt needs), so with varying input lengths the
first-token time, and the latency, are mixtures over the request's own input length: the model
shifts the own-prefill part of the first-token time (``pre_part``) by L/L̄ − 1 at each node.

The nodes are the conditional means of the distribution (mean L̄, coefficient of variation c,
gamma or lognormal) on fixed bins of probability, finer in the upper tail where the 95th and
99th percentiles fall. Conditional means keep the mean exactly: Σ wⱼ·(Lⱼ/L̄ − 1) = 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import special

F = NDArray[np.float64]

__all__ = ["BIN_EDGES", "input_nodes"]

#: the bins' edges in probability: tenths, then finer towards the 99.5th percentile
BIN_EDGES = np.array(
    [
        0.0,
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.85,
        0.9,
        0.93,
        0.95,
        0.97,
        0.98,
        0.99,
        0.995,
        1.0,
    ]
)


def input_nodes(scv: F, lognormal: NDArray[np.bool_]) -> tuple[F, F]:
    """(nodes, weights), each (C, J): per point, L/L̄ − 1 at the conditional mean of each bin
    and the bin's probability, for input lengths of squared coefficient of variation ``scv``
    (0: fixed) and family gamma (else lognormal). J is 1 (the node 0) when no point varies."""
    scv = np.where(np.isfinite(scv), np.maximum(scv, 0.0), 0.0)
    c = scv.size
    varies = scv > 1e-12
    if not varies.any():
        return np.zeros((c, 1)), np.ones((c, 1))
    lo, hi = BIN_EDGES[:-1], BIN_EDGES[1:]
    w = np.broadcast_to(hi - lo, (c, lo.size)).copy()
    share = np.zeros((c, lo.size))  # Σ over the bin of x / L̄
    gam = np.flatnonzero(varies & ~lognormal)
    if gam.size:
        k = 1.0 / scv[gam, None]  # shape; x / L̄ = X / (k θ) with θ = L̄ / k
        q = special.gammaincinv(k, np.broadcast_to(BIN_EDGES, (gam.size, BIN_EDGES.size)))
        cdf1 = special.gammainc(k + 1.0, q)  # E[X; X < q] / E[X]
        cdf1[:, -1] = 1.0
        share[gam] = np.diff(cdf1, axis=1)
    logn = np.flatnonzero(varies & lognormal)
    if logn.size:
        sigma = np.sqrt(np.log1p(scv[logn, None]))
        with np.errstate(divide="ignore"):
            z = special.ndtri(BIN_EDGES)  # −inf, …, +inf
        share[logn] = np.diff(special.ndtr(z[None, :] - sigma), axis=1)
    nodes = np.where(varies[:, None], share / w - 1.0, 0.0)
    return nodes, w
