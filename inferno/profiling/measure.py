"""Measure a Triton model at several batch sizes and concurrencies (like perf_analyzer) and turn
the measurements into :class:`~inferno.profiling.fit.BatchPoint` rows.

Each level sends ``requests`` requests of ``batch`` items from ``concurrency`` closed-loop
workers, after ``warmup`` requests that are not counted. Two sources of timing:

- ``server`` (preferred): Triton's statistics before and after the level. Their per-batch-size
  rows say how many executions of each size ran and how long they took (compute input + infer +
  output), whatever batches the dynamic batcher formed from concurrent requests. Needs the
  statistics API (with restricted APIs: its header, e.g. ``triton-access-token``).
- ``client``: the client's latency at concurrency 1, one execution per request. It includes
  the network and Triton's own overhead, so α comes out larger; used when the statistics are
  refused, and said so in the notes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..triton import (
    ModelInfo,
    ModelStatistics,
    TritonClient,
    TritonRequestError,
    make_inputs,
)
from ..units import MS_PER_S, NS_PER_MS
from .fit import BatchPoint

__all__ = ["Level", "MeasureOptions", "Measurement", "measure_batch"]

logger = logging.getLogger(__name__)

Source = Literal["auto", "server", "client"]


@dataclass(frozen=True)
class MeasureOptions:
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    concurrency: tuple[int, ...] = (1,)
    requests: int = 20  # per worker and level
    warmup: int = 2
    source: Source = "auto"
    seed: int = 0


@dataclass(frozen=True)
class Level:
    """One (batch, concurrency) level: what the client saw and what the server executed."""

    batch: int
    concurrency: int
    requests: int
    seconds: float
    client_mean_ms: float
    client_p95_ms: float
    executions: dict[int, tuple[int, float]] = field(default_factory=dict)  # b → (count, mean ms)

    @property
    def throughput(self) -> float:
        """Items per second."""
        return self.requests * self.batch / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "seconds": self.seconds,
            "clientMeanMs": self.client_mean_ms,
            "clientP95Ms": self.client_p95_ms,
            "itemsPerSecond": self.throughput,
            "executions": {
                str(b): {"count": c, "meanMs": m} for b, (c, m) in self.executions.items()
            },
        }


@dataclass(frozen=True)
class Measurement:
    model: ModelInfo
    source: Literal["server", "client"]
    levels: tuple[Level, ...]
    points: tuple[BatchPoint, ...]
    notes: tuple[str, ...] = ()


async def _level(
    client: TritonClient,
    info: ModelInfo,
    batch: int,
    concurrency: int,
    options: MeasureOptions,
    use_stats: bool,
) -> tuple[Level, ModelStatistics | None]:
    body = make_inputs(info, batch=batch, seed=options.seed)
    for _ in range(options.warmup):
        await client.infer(info.name, body)
    before = await client.statistics(info.name) if use_stats else None
    latencies: list[float] = []

    async def worker() -> None:
        for _ in range(options.requests):
            t0 = time.perf_counter()
            await client.infer(info.name, body)
            latencies.append((time.perf_counter() - t0) * MS_PER_S)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    delta = None
    executions: dict[int, tuple[int, float]] = {}
    if before is not None:
        after = await client.statistics(info.name)
        delta = after.minus(before)
        executions = {
            b: (s.count, s.mean_ms()) for b, s in sorted(delta.batches.items()) if s.count > 0
        }
    lat = np.array(latencies)
    level = Level(
        batch,
        concurrency,
        len(latencies),
        seconds,
        float(lat.mean()),
        float(np.percentile(lat, 95)),
        executions,
    )
    return level, delta


async def measure_batch(
    client: TritonClient, model: str, options: MeasureOptions | None = None
) -> Measurement:
    """Measure ``model`` at every (batch size, concurrency) of ``options``."""
    options = options or MeasureOptions()
    info = await client.model_info(model)
    notes: list[str] = []
    sizes = tuple(sorted(set(options.batch_sizes)))
    if info.max_batch_size == 0:
        raise TritonRequestError(
            f"model {model!r} does not batch (max_batch_size 0): there is no β to measure",
            url=client.url,
            model=model,
        )
    too_big = [b for b in sizes if b > info.max_batch_size]
    if too_big:
        notes.append(
            f"batch sizes {too_big} exceed the model's max_batch_size {info.max_batch_size}: "
            "skipped"
        )
        sizes = tuple(b for b in sizes if b <= info.max_batch_size)
    use_stats = options.source != "client"
    if use_stats:
        try:
            await client.statistics(model)
        except TritonRequestError as exc:
            if options.source == "server":
                raise
            use_stats = False
            notes.append(
                f"Triton refused its statistics ({exc}); timing from the client at "
                "concurrency 1 instead (α includes the network and Triton's overheads)"
            )
    concurrencies = tuple(sorted(set(options.concurrency))) if use_stats else (1,)
    levels: list[Level] = []
    per_size: dict[int, tuple[int, float]] = {}  # b → (executions, total ms)
    for c in concurrencies:
        for b in sizes:
            level, delta = await _level(client, info, b, c, options, use_stats)
            levels.append(level)
            logger.info(
                "batch %d × concurrency %d: %.2f ms mean (client), executions %s",
                b,
                c,
                level.client_mean_ms,
                level.executions,
            )
            if delta is not None:
                for size, stat in delta.batches.items():
                    count, total = per_size.get(size, (0, 0.0))
                    per_size[size] = (count + stat.count, total + stat.compute_ns / NS_PER_MS)
            else:
                count, total = per_size.get(b, (0, 0.0))
                per_size[b] = (
                    count + level.requests,
                    total + level.client_mean_ms * level.requests,
                )
    points = tuple(
        BatchPoint(float(b), total / count, float(count))
        for b, (count, total) in sorted(per_size.items())
        if count > 0
    )
    return Measurement(
        info, "server" if use_stats else "client", tuple(levels), points, tuple(notes)
    )
