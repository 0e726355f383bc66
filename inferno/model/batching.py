"""Batch-size decision: the smallest batch that reaches within 1% of the best SLO-feasible rate.

Inferno sizes every server at the largest batch that fits in memory (``maxBatchSize`` scaled by
``atTokens``/tokens). A larger batch raises throughput per replica but also every latency; past a
knee the gain is marginal while ITL keeps growing. :func:`knee_batches` sizes each point at every
batch n = 1..N_memory and returns, per point, the smallest n whose λ*(n) is at least
(1 − tolerance) × max_n λ*(n): nearly the same replica count, at a lower-latency operating point.

The batches are sized with the model the servers are sized with (``model``: Inferno's chain or
the accurate model of :mod:`.accurate`, with each point's output-length CV ``out_cv``), so the
knee is that model's knee.

Sizing every batch costs O(N²) per point, so above :data:`KNEE_MAX_BATCH` the batches searched
are 1..KNEE_MAX_BATCH and N_memory itself: the knee is the smallest of them within the tolerance
of the best, N_memory (Inferno's choice) when no smaller one is.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .accurate import build_points
from .length_spread import LengthSpread
from .profile_arrays import ProfileArrays
from .sizing import SloArrays, size

F = NDArray[np.float64]

__all__ = ["KNEE_MAX_BATCH", "knee_batches"]

#: the largest batch limit searched batch by batch (measured: 1.05 s and 132 MB for one server at
#: N = 1000; 2.4 s and 264 MB at 2048; 6.5 s and 689 MB at 4096)
KNEE_MAX_BATCH = 1024


def knee_batches(
    prof: ProfileArrays,
    in_tokens: F,
    out_tokens: F,
    slo: SloArrays,
    n_limit: F,
    *,
    max_queue: F | None = None,
    queue_factor: float | None = None,
    tolerance: float = 0.01,
    model: str = "inferno",
    lengths: LengthSpread | None = None,
) -> F:
    """Chosen batch size per point (NaN where no batch size is SLO-feasible), sized with
    ``model`` (``inferno`` or ``accurate``; ``lengths``: the request lengths' spread per point
    the accurate model takes, None: its defaults)."""
    limit = np.minimum(n_limit, KNEE_MAX_BATCH)
    counts = limit.astype(np.intp)
    owner = np.repeat(np.arange(counts.size), counts)
    starts = np.cumsum(counts) - counts
    batch = (np.arange(owner.size) - starts[owner] + 1).astype(np.float64)
    large = np.flatnonzero(n_limit > KNEE_MAX_BATCH)  # ... and N_memory itself
    owner = np.concatenate([owner, large])
    batch = np.concatenate([batch, n_limit[large].astype(np.float64)])
    points = build_points(
        model,
        prof.take(owner),
        in_tokens[owner],
        out_tokens[owner],
        lengths=None if lengths is None else lengths.take(owner),
        batch=batch,
        max_queue=None if max_queue is None else max_queue[owner],
        queue_factor=queue_factor,
    )
    rates = size(points, slo.take(owner)).rate
    filled = np.where(np.isfinite(rates), rates, -np.inf)
    best = np.full(counts.size, -np.inf)
    np.maximum.at(best, owner, filled)
    good = np.isfinite(filled) & (filled >= (1.0 - tolerance) * best[owner])
    chosen = np.full(counts.size, np.inf)
    np.minimum.at(chosen, owner, np.where(good, batch, np.inf))
    out: F = np.where(np.isfinite(chosen), chosen, np.nan)
    return out
