"""Profiles as arrays: the columns the solver builds candidates from and
:class:`~inferno.model.points.OperatingPoints` are built from, and the batch limit N of each point
(Inferno's memory-scaled rule, or a given batch) and the block width it would be cut into.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
from numpy.typing import NDArray

from ._blocks import blocks_of
from ._kinds import KindArrays
from .bounds import MAX_BATCH
from .profiles import (
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Kind,
    Profile,
    Tokens,
)

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = [
    "MEMORY_SLACK",
    "ProfileArrays",
    "arrays_of",
    "batch_limit",
    "batch_size",
    "block_widths",
    "optional_array",
]

_KINDS = list(Kind)


@dataclass(frozen=True, slots=True)
class ProfileArrays:
    """Profiles as arrays (P,), the form the solver builds candidates from."""

    kind: NDArray[np.int8]  # index into list(Kind)
    alpha: F
    beta: F
    gamma: F
    delta: F
    max_batch_size: F
    at_tokens: F  # NaN: use max_batch_size as the batch limit as is
    max_num_tokens: F
    bulk: F  # 1: Triton's batching (batch kind, batching="triton"), solved by the bulk model
    delay: F  # the batching delay D (ms; batch kind, else 0)
    instances: F  # model instances c sharing the queue (batch kind, else 1)
    kappa: F  # κ(c): each instance's batch-time factor at c instances (1 at c = 1)

    @classmethod
    def of(cls, profiles: Sequence[Profile]) -> ProfileArrays:
        rows = [_row(p) for p in profiles]
        cols = list(zip(*rows, strict=True)) if rows else [()] * 12
        return cls(
            np.asarray(cols[0], dtype=np.int8),
            *(np.asarray(c, dtype=np.float64) for c in cols[1:]),
        )

    def take(self, idx: Idx) -> ProfileArrays:
        return ProfileArrays(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    def kind_arrays(self, kind: Kind, in_tokens: F, out_tokens: F) -> KindArrays:
        """These rows' parameters as one kind's formulas take them (:mod:`._kinds`)."""
        return KindArrays(
            kind,
            self.alpha,
            self.beta,
            self.gamma,
            self.delta,
            self.max_num_tokens,
            in_tokens,
            out_tokens,
        )


_PLAIN = (0.0, 1.0, 1.0)  # no delay, one instance, κ = 1


def _row(p: Profile) -> tuple[float, ...]:
    nan = float("nan")
    k = float(_KINDS.index(p.kind))
    if isinstance(p, G0Profile):
        return (k, p.alpha, p.beta, 0.0, 0.0, p.max_batch_size, p.at_tokens, 0.0, 0.0, *_PLAIN)
    if isinstance(p, G1Profile):
        return (
            k,
            p.alpha,
            p.beta,
            p.gamma,
            p.delta,
            p.max_batch_size,
            p.at_tokens,
            0.0,
            0.0,
            *_PLAIN,
        )
    if isinstance(p, G2Profile):
        at = nan if p.at_tokens is None else p.at_tokens
        return (k, p.alpha, p.beta, p.gamma, 0.0, p.max_batch_size, at, 0.0, 0.0, *_PLAIN)
    if isinstance(p, G3Profile):
        at = nan if p.at_tokens is None else p.at_tokens
        return (
            k,
            p.alpha,
            p.beta,
            p.gamma,
            0.0,
            p.max_batch_size,
            at,
            p.max_num_tokens,
            0.0,
            *_PLAIN,
        )
    if isinstance(p, BatchProfile):
        bulk_flag = 1.0 if p.batching == "triton" else 0.0
        serving = (p.queue_delay_ms, float(p.instances), p.kappa)
        return (k, p.alpha, p.beta, 0.0, 0.0, p.max_batch_size, nan, 0.0, bulk_flag, *serving)
    raise TypeError(f"not a profile: {p!r}")


def arrays_of(profiles: Sequence[Profile], tokens: Sequence[Tokens]) -> tuple[ProfileArrays, F, F]:
    """Profile objects and request shapes as the arrays points are built from."""
    return (
        ProfileArrays.of(profiles),
        np.array([t.in_tokens for t in tokens], dtype=np.float64),
        np.array([t.out_tokens for t in tokens], dtype=np.float64),
    )


@overload
def optional_array(values: Sequence[float | None]) -> F: ...
@overload
def optional_array(values: None) -> None: ...
def optional_array(values: Sequence[float | None] | None) -> F | None:
    """Per-point values with None (the default) as NaN; None for no values at all."""
    if values is None:
        return None
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


#: how far the measured tokens per request may exceed a *running* batch's memory fit before the
#: batch is no longer kept (a server's ``batchTolerance``): about twice the noise of the
#: controller's smoothed mean — 5% per window, averaged with weight w = 1 − 2^(−30/300) per 30 s
#: cycle (the 300 s token half-life), leaves 5%·√(w/(2 − w)) ≈ 0.9% — so a length sitting at a
#: batch's edge does not drop the batch by one every other cycle
MEMORY_SLACK = 0.02


def batch_limit(prof: ProfileArrays, out_tokens: F) -> F:
    """Inferno's memory-scaled batch limit N = max(⌊maxBatchSize·atTokens/out⌋, 1), at most
    :data:`MAX_BATCH`."""
    scaled = np.isfinite(prof.at_tokens) & (out_tokens > 0)
    safe_out = np.where(scaled, out_tokens, 1.0)
    with np.errstate(over="ignore"):
        n = np.where(
            scaled, np.floor(prof.max_batch_size * prof.at_tokens / safe_out), prof.max_batch_size
        )
    return np.clip(n, 1.0, MAX_BATCH)


def batch_size(prof: ProfileArrays, out_tokens: F, batch: F | None = None) -> F:
    """N of each point: :func:`batch_limit`, or ``batch`` where finite (within 1..MAX_BATCH)."""
    n = batch_limit(prof, out_tokens)
    if batch is not None:
        n = np.where(np.isfinite(batch), np.clip(batch, 1.0, MAX_BATCH), n)
    return n


def block_widths(prof: ProfileArrays, out_tokens: F, batch: F | None = None) -> F:
    """The block width of each point as :meth:`OperatingPoints.build` of these points would
    cut them (without building them)."""
    n = batch_size(prof, out_tokens, batch)
    out = np.empty(n.shape[0])
    for _, idx, width in blocks_of(prof.kind, n):
        out[idx] = width
    return out
