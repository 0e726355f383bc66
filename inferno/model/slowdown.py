"""Whether operating points still meet their SLOs when every batch runs slower by a factor.

An MPS co-runner slows a server's batches (docs/gpu-partitions.md, "Interference"): the time of
each batch is multiplied by a factor a ≥ 1. Multiplying every time of the queue by a — the batch
times τ(b), hence every service rate μ(b) divided by a — is the same queue as the unslowed one
seen at the arrival rate a·λ with its clock running a times slower: the state probabilities are
those of the unslowed point at a·λ, and every time (wait, TTFT, ITL, latency) is a times the
unslowed one's there, so its survival P(X_slowed > t) at λ is P(X > t / a) at a·λ. The slowed
point's targets are therefore checked with the solver's own model and sizing rule
(:mod:`.sizing`: means, exact wait and TTFT quantiles, the exact latency quantile) on the
unslowed point at a·λ against its targets divided by a, without building new points. A point
must also stay below the top of the sizing range at a·λ (λ < 0.999 μ(N) / a; 0.9 of that for a
throughput class), where the solver stops sizing.

The identity is exact for every kind whose times all come from the profile's time parameters
(α, β, γ, δ). Two approximations: a batch kind's batching delay (Triton's queue delay) is scaled
with them although co-runners do not lengthen it, and the model's floor on the service time
(:data:`~inferno.model.bounds.MIN_SERVICE_MS`) scales too.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from .points import OperatingPoints
from .sizing import HIGH_FRACTION, TPS_FRACTION, SloArrays, _ratios

F = NDArray[np.float64]

__all__ = ["meets_slowed"]

logger = logging.getLogger(__name__)

#: the ratios metric / target a point may reach and still meet (the sizing stops on the met side)
_SLACK = 1e-9


def meets_slowed(points: OperatingPoints, rate: F, slo: SloArrays, factor: F) -> NDArray[np.bool_]:
    """Per point: whether it meets every target of ``slo`` at arrival rate ``rate`` (/ms, > 0)
    with its batch times × ``factor`` (≥ 1; 1 = as sized). Vectorised over points, except latency
    quantile targets, which solve the point's response-time chain (one point at a time, as the
    sizing does)."""
    rate = np.asarray(rate, dtype=np.float64)
    factor = np.asarray(factor, dtype=np.float64)
    if np.any(~np.isfinite(factor) | (factor < 1.0)):
        raise ValueError(f"slowdown factors must be finite and ≥ 1, got {factor}")
    lam = rate * factor
    top = HIGH_FRACTION * points.mu_n * np.where(np.isfinite(slo.tps), TPS_FRACTION, 1.0)
    ok = lam <= top
    scaled = SloArrays(
        itl=slo.itl / factor,
        ttft=slo.ttft / factor,
        ttw=slo.ttw / factor,
        latency=slo.latency / factor,
        tps=slo.tps,
        ttft_quantile=slo.ttft_quantile,
        latency_quantile=slo.latency_quantile,
        ttw_quantile=slo.ttw_quantile,
        exact_wait_quantile=slo.exact_wait_quantile,
    )
    safe = np.where(ok, lam, rate)  # beyond the top the queue may have no answer: not evaluated
    for ratio in _ratios(points, safe, scaled).values():
        ok &= ~(ratio > 1.0 + _SLACK)  # NaN: no such target
    quant = np.flatnonzero(ok & np.isfinite(slo.latency_quantile) & np.isfinite(slo.latency))
    for i in quant.tolist():
        sf = points.response_time(i, float(lam[i])).survival(np.array([scaled.latency[i]]))[0]
        ok[i] = bool(sf <= 1.0 - float(slo.latency_quantile[i]) + _SLACK)
    return ok
