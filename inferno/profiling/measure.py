"""Measure a Triton model (like perf_analyzer) and turn the measurements into
:class:`~inferno.profiling.fit.BatchPoint` rows: what executions of each batch size cost.

Two request shapes (``MeasureOptions.shape``):

- ``single`` (the default): requests of one item from ``c`` closed-loop workers at rising
  concurrency (:func:`auto_concurrency`: 1, 2, 4, …, N and 2N, where every batch is full),
  letting Triton's dynamic batcher form the batches, as it does from live traffic. What the
  batches cost then includes each request's own overhead (its tensors, its response). Then one
  request of b items at concurrency 1 for b = 1, N/2, N: the per-item cost without that overhead
  (:attr:`Measurement.item_points`, for :func:`~inferno.profiling.fit.request_overhead`).
- ``batch``: requests of ``b`` items (each of ``batch_sizes``) at each concurrency (default 1):
  one execution per request, the per-item cost.

Each level sends ``requests`` requests per worker after ``warmup`` that are not counted. Two
sources of timing:

- ``server`` (preferred): Triton's statistics before and after the level. Their per-batch-size
  rows say how many executions of each size ran and how long they took (compute input + infer +
  output), whatever batches the dynamic batcher formed; their split into those phases gives the
  row's ``gpuShare`` (:mod:`~inferno.profiling.gpu_share`). Needs the statistics API (with
  restricted APIs: its header, e.g. ``triton-access-token``).
- ``client``: when the statistics are refused. The batch shape times b-item requests at
  concurrency 1 (one execution each). The single shape cannot see the batches Triton forms, so
  it times two levels whose batches are known: concurrency 1 (batches of 1) and 2N (every batch
  full: τ(N) from the throughput). Both include the network and Triton's own overheads (α comes
  out larger), and the notes say so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Literal

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
from .gpu_share import ComputeSplit
from .levels import Level
from .resources import ProcessSampler, ResourceUse
from .traffic import poisson_level

__all__ = [
    "Level",
    "MeasureOptions",
    "Measurement",
    "Shape",
    "auto_concurrency",
    "measure",
    "measure_batch",
    "measure_single",
]

logger = logging.getLogger(__name__)

Source = Literal["auto", "server", "client"]
Shape = Literal["single", "batch"]


@dataclass(frozen=True)
class MeasureOptions:
    shape: Shape = "single"
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)  # the batch shape's request sizes
    concurrency: tuple[int, ...] | None = None  # None: single → auto_concurrency(N), batch → 1
    requests: int = 20  # per worker and level
    warmup: int = 2
    source: Source = "auto"
    seed: int = 0
    instances: int = 1  # model instances the server runs (the single shape's auto levels)
    idle_seconds: float = 2.0  # the idle level's length, when resources are sampled
    #: with a sampler: open-loop Poisson levels at these shares of the highest rate served,
    #: each ``traffic_seconds`` long (see :mod:`~inferno.profiling.traffic`)
    traffic_shares: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9)
    traffic_seconds: float = 5.0


def auto_concurrency(max_batch: int, instances: int = 1) -> tuple[int, ...]:
    """The single shape's levels: powers of two below N, N, and 2N (a full batch waits while
    one runs, so from there on every batch Triton forms is full); with c > 1 instances also
    cN and (c + 1)N (every instance busy with a full batch and one more full batch waiting)."""
    levels: list[int] = []
    c = 1
    while c < max_batch:
        levels.append(c)
        c *= 2
    more = (instances * max_batch, (instances + 1) * max_batch) if instances > 1 else ()
    return tuple(sorted({*levels, max_batch, 2 * max_batch, *more}))


@dataclass(frozen=True)
class Measurement:
    """``points``: what executions of each batch size cost, in the request shape measured.
    ``item_points`` (single shape): executions of one request of b items, for the overhead."""

    model: ModelInfo
    source: Literal["server", "client"]
    levels: tuple[Level, ...]
    points: tuple[BatchPoint, ...]
    notes: tuple[str, ...] = ()
    shape: Shape = "batch"
    item_points: tuple[BatchPoint, ...] = ()
    item_levels: tuple[Level, ...] = ()
    idle: ResourceUse | None = None  # the server process's use with no load, with --pid
    #: with --pid: single-item Poisson levels (concurrency 0: open loop), resources sampled
    traffic: tuple[Level, ...] = ()
    #: Triton's compute time of the fitted executions by phase (the row's ``gpuShare``); None
    #: with client timing
    compute: ComputeSplit | None = None


class _Totals:
    """Executions and their total time per batch size, summed over levels."""

    def __init__(self) -> None:
        self.per_size: dict[int, tuple[float, float]] = {}  # b → (executions, total ms)
        self.split = ComputeSplit()  # Triton's compute by phase (server timing only)

    def add(self, size: int, count: float, total_ms: float) -> None:
        n, t = self.per_size.get(size, (0.0, 0.0))
        self.per_size[size] = (n + count, t + total_ms)

    def add_level(self, level: Level, delta: ModelStatistics | None) -> None:
        """Triton's executions in the level, or (client timing) one execution per request."""
        if delta is not None:
            for size, stat in delta.batches.items():
                self.add(size, stat.count, stat.compute_ns / NS_PER_MS)
            self.split = self.split.plus(delta)
        else:
            self.add(level.batch, level.requests, level.client_mean_ms * level.requests)

    def points(self) -> tuple[BatchPoint, ...]:
        return tuple(
            BatchPoint(float(b), total / count, float(count))
            for b, (count, total) in sorted(self.per_size.items())
            if count > 0
        )


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
    logger.info(
        "%d item(s) × concurrency %d: %.2f ms mean (client), executions %s",
        batch,
        concurrency,
        level.client_mean_ms,
        level.executions,
    )
    return level, delta


async def _model(client: TritonClient, model: str) -> ModelInfo:
    info = await client.model_info(model)
    if info.max_batch_size == 0:
        raise TritonRequestError(
            f"model {model!r} does not batch (max_batch_size 0): there is no β to measure",
            url=client.url,
            model=model,
        )
    return info


async def _statistics_allowed(
    client: TritonClient, model: str, options: MeasureOptions, notes: list[str], instead: str
) -> bool:
    """Whether Triton gives its statistics; a refusal is a note (``instead``: what is done)
    unless ``source`` is ``server``."""
    if options.source == "client":
        return False
    try:
        await client.statistics(model)
    except TritonRequestError as exc:
        if options.source == "server":
            raise
        notes.append(f"Triton refused its statistics ({exc}); {instead}")
        return False
    return True


async def measure(
    client: TritonClient,
    model: str,
    options: MeasureOptions | None = None,
    sampler: ProcessSampler | None = None,
) -> Measurement:
    """Measure ``model`` in the request shape of ``options`` (default: single-item requests);
    with ``sampler``, the server process's resources with no load first, then under Poisson
    traffic at shares of the highest rate the levels served (the CPU of a server depends on
    how its requests arrive: closed-loop levels batch more evenly than live traffic does)."""
    options = options or MeasureOptions()
    idle = None
    if sampler is not None:
        sampler.start()
        try:
            await asyncio.sleep(options.idle_seconds)
        finally:
            idle = sampler.stop()
    if options.shape == "batch":
        m = await measure_batch(client, model, options)
    else:
        m = await measure_single(client, model, options)
    if sampler is None:
        return m
    top = max(lv.throughput for lv in m.levels)
    traffic = []
    for k, share in enumerate(sorted(options.traffic_shares)):
        traffic.append(
            await poisson_level(
                client,
                m.model,
                share * top,
                options.traffic_seconds,
                sampler,
                seed=options.seed + k,
            )
        )
    return replace(m, idle=idle, traffic=tuple(traffic))


async def measure_batch(
    client: TritonClient,
    model: str,
    options: MeasureOptions | None = None,
) -> Measurement:
    """b-item requests at every (batch size, concurrency) of ``options``."""
    options = options or MeasureOptions(shape="batch")
    info = await _model(client, model)
    notes: list[str] = []
    sizes = tuple(sorted(set(options.batch_sizes)))
    too_big = [b for b in sizes if b > info.max_batch_size]
    if too_big:
        notes.append(
            f"batch sizes {too_big} exceed the model's max_batch_size {info.max_batch_size}: "
            "skipped"
        )
        sizes = tuple(b for b in sizes if b <= info.max_batch_size)
    use_stats = await _statistics_allowed(
        client,
        model,
        options,
        notes,
        "timing from the client at concurrency 1 instead (α includes the network and Triton's "
        "overheads)",
    )
    concurrencies = tuple(sorted(set(options.concurrency or (1,)))) if use_stats else (1,)
    if not use_stats and options.concurrency and set(options.concurrency) != {1}:
        notes.append("--concurrency ignored: without Triton's statistics only concurrency 1")
    levels: list[Level] = []
    totals = _Totals()
    for c in concurrencies:
        for b in sizes:
            level, delta = await _level(client, info, b, c, options, use_stats)
            levels.append(level)
            totals.add_level(level, delta)
    return Measurement(
        info,
        "server" if use_stats else "client",
        tuple(levels),
        totals.points(),
        tuple(notes),
        compute=totals.split if use_stats else None,
    )


def item_sizes(max_batch: int) -> tuple[int, ...]:
    """The b-item requests the single shape compares with: 1, N/2 and N items."""
    return tuple(sorted({1, max(1, max_batch // 2), max_batch}))


async def measure_single(
    client: TritonClient,
    model: str,
    options: MeasureOptions | None = None,
) -> Measurement:
    """Single-item requests at rising concurrency, batched by Triton; then one b-item request
    at a time for the per-item cost (see the module's docstring)."""
    options = options or MeasureOptions()
    info = await _model(client, model)
    n = info.max_batch_size
    notes: list[str] = []
    # every instance busy with a full batch, and one more full batch waiting
    saturated = (options.instances + 1) * n
    use_stats = await _statistics_allowed(
        client,
        model,
        options,
        notes,
        "without them the batch sizes Triton forms are unknown: timing from the client at "
        f"concurrency 1 (batches of 1) and {saturated} (every batch full: τ({n}) from the "
        "throughput) instead; α includes the network and Triton's overheads",
    )
    if use_stats:
        auto = auto_concurrency(n, options.instances)
        concurrencies = tuple(sorted(set(options.concurrency or auto)))
    else:
        concurrencies = (1, saturated)
        if options.concurrency and set(options.concurrency) != set(concurrencies):
            notes.append(
                f"--concurrency ignored: without Triton's statistics only 1 and {saturated}"
            )
    levels: list[Level] = []
    totals = _Totals()
    items = _Totals()
    item_levels: list[Level] = []
    for c in concurrencies:
        level, delta = await _level(client, info, 1, c, options, use_stats)
        levels.append(level)
        if use_stats:
            totals.add_level(level, delta)
        elif c == 1:
            totals.add_level(level, None)
        else:
            # every batch full after the first (of one request): seconds ≈ τ(1) + (R − 1)/N·τ(N)
            # (c instances: each runs 1/c of the batches, so a batch takes c times the share)
            tau_1 = levels[0].client_mean_ms
            executions = max(level.requests - 1, 1) / n
            busy_ms = max(level.seconds * MS_PER_S - tau_1, 1e-9)
            totals.add(n, executions, busy_ms * options.instances)
        if c == 1:
            item_levels.append(level)
            items.add_level(level, delta)
    for b in item_sizes(n):
        if b == 1 and item_levels:
            continue  # the single shape's concurrency-1 level is this one
        level, delta = await _level(client, info, b, 1, options, use_stats)
        item_levels.append(level)
        items.add_level(level, delta)
    return Measurement(
        info,
        "server" if use_stats else "client",
        tuple(levels),
        totals.points(),
        tuple(notes),
        shape="single",
        item_points=items.points(),
        item_levels=tuple(item_levels),
        compute=totals.split if use_stats else None,
    )
