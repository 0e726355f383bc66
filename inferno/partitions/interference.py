"""Interference between MPS co-runners: GPU-let's linear model (pure).

Two processes sharing one GPU through MPS slow each other down through the L2 cache and DRAM
bandwidth they share; MIG slices have their own L2 and memory slices and do not interfere (α = 1).
GPU-let (USENIX ATC'22) predicts the slowdown α of "me" next to "you" from each one's L2 and DRAM
utilisation (measured at the whole GPU with Nsight Compute, per model and batch) scaled by its
share p of the GPU, all as fractions::

    α = c0·l2_me·p_me + c1·l2_you·p_you + c2·dram_me·p_me + c3·dram_you·p_you + c4

with five constants per GPU type, fitted on pairwise runs. Next to several co-runners α is the
largest over them; it is clamped to at least 1 and multiplies only the GPU part of a batch's time:
τ'(b) = α·τ_gpu(b) + τ_host(b).

Utilisation at batch b is interpolated linearly between the rows at 2^⌊log2 b⌋ and
min(largest row, 2^(⌊log2 b⌋+1)) (rows at other batches are not used); beyond the largest row the
largest row's value is used. A model or batch the table lacks gives no prediction (None): the
caller must then refuse the co-location and say so.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import InputError

__all__ = [
    "GPULET_2080TI",
    "GPULET_3080",
    "CoRunner",
    "Constants",
    "UtilisationTable",
    "alpha",
    "batch_factor",
    "inflate",
    "interference_factor",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Constants:
    """The five regression constants of one GPU type."""

    l2_me: float
    l2_you: float
    dram_me: float
    dram_you: float
    constant: float


#: GPU-let's shipped constants (``resource/<type>/INT_MODEL_CONSTANT.CSV``), the examples
GPULET_2080TI = Constants(
    0.11290838746224496,
    0.7159598718755424,
    0.35486591956022895,
    0.0882038259888065,
    0.8953693917277343,
)
GPULET_3080 = Constants(
    -0.17988746088090934,
    0.038409119934405545,
    0.12551833308063143,
    -0.05648205937173589,
    1.018427067906819,
)


@dataclass(frozen=True, slots=True)
class CoRunner:
    """A process on a shared GPU: its model, the batch it runs and its share of the GPU (0, 1]."""

    model: str
    batch: int
    share: float

    def __post_init__(self) -> None:
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise InputError(f"co-runner {self.model!r}: batch must be an integer ≥ 1")
        if not 0 < self.share <= 1:
            raise InputError(f"co-runner {self.model!r}: share must be in (0, 1], not {self.share}")


class UtilisationTable:
    """Per model, per batch: the L2 and DRAM utilisation (percent) at the whole GPU."""

    __slots__ = ("_gpu_share", "_rows")

    def __init__(
        self,
        rows: Mapping[str, Mapping[int, tuple[float, float]]],
        gpu_share: Mapping[str, float] | None = None,
    ) -> None:
        self._gpu_share: dict[str, float] = {}
        for model, share in (gpu_share or {}).items():
            if not (math.isfinite(share) and 0 < share <= 1):
                raise InputError(f"GPU share of {model!r}: {share!r} is not in (0, 1]")
            self._gpu_share[model] = share
        self._rows: dict[str, dict[int, tuple[float, float]]] = {}
        for model, by_batch in rows.items():
            checked: dict[int, tuple[float, float]] = {}
            for b, (l2, dram) in by_batch.items():
                if b < 1:
                    raise InputError(f"utilisation of {model!r}: batch {b} is not ≥ 1")
                for what, v in (("L2", l2), ("DRAM", dram)):
                    if not (math.isfinite(v) and 0 <= v <= 100):
                        raise InputError(
                            f"utilisation of {model!r} at batch {b}: {what} {v!r} is not a "
                            "percentage in [0, 100]"
                        )
                checked[b] = (l2, dram)
            self._rows[model] = checked

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self._rows)

    def gpu_share(self, model: str) -> float:
        """The share of ``model``'s batch time on the GPU (1 when not given)."""
        return self._gpu_share.get(model, 1.0)

    def at(self, model: str, batch: int) -> tuple[float, float] | None:
        """(L2, DRAM) utilisation as fractions at ``batch``, or None if the table cannot tell."""
        rows = self._rows.get(model)
        if not rows:
            return None
        powers = [b for b in rows if b & (b - 1) == 0]
        if not powers:
            return None
        top = max(powers)
        lo = 1 << (batch.bit_length() - 1)
        if lo >= top:
            l2, dram = rows[top]
        else:
            hi = min(2 * lo, top)
            if lo not in rows or hi not in rows:
                return None
            w = (batch - lo) / (hi - lo)
            (l2a, da), (l2b, db) = rows[lo], rows[hi]
            l2, dram = l2a + w * (l2b - l2a), da + w * (db - da)
        return l2 / 100, dram / 100


def alpha(
    constants: Constants, table: UtilisationTable, me: CoRunner, you: CoRunner
) -> float | None:
    """The raw (unclamped) slowdown of ``me`` next to ``you``; None if the table lacks either."""
    u_me = table.at(me.model, me.batch)
    u_you = table.at(you.model, you.batch)
    if u_me is None or u_you is None:
        return None
    c = constants
    return (
        c.l2_me * u_me[0] * me.share
        + c.l2_you * u_you[0] * you.share
        + c.dram_me * u_me[1] * me.share
        + c.dram_you * u_you[1] * you.share
        + c.constant
    )


def interference_factor(
    constants: Constants, table: UtilisationTable, me: CoRunner, others: Iterable[CoRunner]
) -> float | None:
    """The factor on ``me``'s GPU time: max α over its co-runners, at least 1 (1 when alone).

    None when the utilisation of ``me`` or of a co-runner is unknown: no prediction, so the
    co-location should not be made.
    """
    worst = 1.0
    for you in others:
        a = alpha(constants, table, me, you)
        if a is None:
            logger.debug("no utilisation for %s or %s: no interference prediction", me, you)
            return None
        worst = max(worst, a)
    return worst


def batch_factor(
    constants: Constants, table: UtilisationTable, me: CoRunner, others: Iterable[CoRunner]
) -> float | None:
    """The factor on ``me``'s whole batch time: only its GPU part (the table's
    :meth:`~UtilisationTable.gpu_share`) is slowed, by :func:`interference_factor`; the host part
    is not (:func:`inflate` with the batch split by that share). None as there."""
    factor = interference_factor(constants, table, me, others)
    if factor is None:
        return None
    share = table.gpu_share(me.model)
    return inflate(share, 1.0 - share, factor)


def inflate(gpu_ms: float, host_ms: float, factor: float) -> float:
    """A batch's time under interference: only the GPU part is slowed, ``factor`` ≥ 1."""
    if factor < 1:
        raise InputError(f"an interference factor is at least 1, not {factor}")
    return factor * gpu_ms + host_ms
