"""Packing MPS processes onto GPUs shared into N equal shares (pure).

With the stock NVIDIA device plugin an MPS GPU serves N replicas, each with an equal 1/N of the
compute and of the memory (the MPS daemon enforces both). A process is admitted into the pool
only if its model memory plus its CUDA context (GPU-let measured 1,230 MB per process) fits its
1/N of the device memory; a GPU holds at most N processes whose memory sums to at most 90 % of the
device (GPU-let's admission, headroom for the driver). An optional ``compatible`` predicate refuses
co-location of pairs (e.g. when the interference model predicts a broken SLO, or cannot predict).

Processes are placed first-fit decreasing by memory; the GPU count is compared with the lower
bound max(⌈n/N⌉, ⌈Σ memory / (0.9 × device)⌉).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import InputError
from ..partitions.catalogue import MpsPool

__all__ = ["CONTEXT_MB", "HEADROOM", "MpsGpu", "MpsPacking", "MpsProcess", "pack_mps"]

logger = logging.getLogger(__name__)

#: memory of one process's CUDA context, MB (GPU-let's admission constant)
CONTEXT_MB = 1230.0
#: the share of a GPU's memory its processes may use together (GPU-let's admission)
HEADROOM = 0.9
MB_PER_GB = 1024


@dataclass(frozen=True, slots=True)
class MpsProcess:
    """One replica on an MPS share: who it is and the memory its model needs (MB)."""

    owner: str
    model_mb: float
    context_mb: float = CONTEXT_MB

    def __post_init__(self) -> None:
        for what, v in (("model memory", self.model_mb), ("context memory", self.context_mb)):
            if not (math.isfinite(v) and v >= 0):
                raise InputError(f"MPS process {self.owner!r}: {what} must be ≥ 0 MB, not {v!r}")

    @property
    def memory_mb(self) -> float:
        return self.model_mb + self.context_mb


@dataclass(frozen=True, slots=True)
class MpsGpu:
    processes: tuple[MpsProcess, ...]
    free_shares: int

    @property
    def memory_mb(self) -> float:
        return sum(p.memory_mb for p in self.processes)


@dataclass(frozen=True, slots=True)
class MpsPacking:
    pool: MpsPool
    gpus: tuple[MpsGpu, ...]
    refused: tuple[tuple[MpsProcess, str], ...]  # processes not admitted, with the reason
    lower_bound: int

    @property
    def gpus_used(self) -> int:
        return len(self.gpus)

    @property
    def stranded_shares(self) -> int:
        return sum(g.free_shares for g in self.gpus)


def pack_mps(
    pool: MpsPool,
    processes: Iterable[MpsProcess],
    *,
    headroom: float = HEADROOM,
    compatible: Callable[[MpsProcess, MpsProcess], bool] | None = None,
) -> MpsPacking:
    """Place ``processes`` on GPUs of ``pool`` (N equal shares each) under memory admission."""
    if not 0 < headroom <= 1:
        raise InputError(f"the MPS memory headroom must be in (0, 1], not {headroom}")
    device_mb = pool.gpu_memory_gb * MB_PER_GB
    share_mb = device_mb / pool.replicas
    gpu_cap = headroom * device_mb
    admitted: list[MpsProcess] = []
    refused: list[tuple[MpsProcess, str]] = []
    for p in processes:
        if p.memory_mb > share_mb:
            refused.append(
                (
                    p,
                    f"needs {p.memory_mb:g} MB (model {p.model_mb:g} + context {p.context_mb:g})"
                    f" but a share of {pool.product}:mps-{pool.replicas} has 1/{pool.replicas} of "
                    f"the memory, {share_mb:g} MB",
                )
            )
        elif p.memory_mb > gpu_cap:
            refused.append(
                (p, f"needs {p.memory_mb:g} MB, more than {headroom:g} of the GPU ({gpu_cap:g} MB)")
            )
        else:
            admitted.append(p)
    admitted.sort(key=lambda p: -p.memory_mb)
    bins: list[list[MpsProcess]] = []
    used: list[float] = []
    for p in admitted:
        for i, b in enumerate(bins):
            if (
                len(b) < pool.replicas
                and used[i] + p.memory_mb <= gpu_cap
                and (compatible is None or all(compatible(p, q) and compatible(q, p) for q in b))
            ):
                b.append(p)
                used[i] += p.memory_mb
                break
        else:
            bins.append([p])
            used.append(p.memory_mb)
    lb = max(
        math.ceil(len(admitted) / pool.replicas),
        math.ceil(sum(p.memory_mb for p in admitted) / gpu_cap),
    )
    gpus = tuple(MpsGpu(tuple(b), pool.replicas - len(b)) for b in bins)
    if refused:
        logger.info(
            "%d MPS processes refused admission to %s:mps-%d",
            len(refused),
            pool.product,
            pool.replicas,
        )
    return MpsPacking(pool, gpus, tuple(refused), lb)
