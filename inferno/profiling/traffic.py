"""An open-loop level of single-item requests with Poisson arrivals, the server process sampled
meanwhile: the resources a server uses as live traffic reaches it.

Why not the closed-loop levels: ``c`` workers that each wait for their answer keep the batcher
fed evenly, so batches form at a steady size and pace. Poisson arrivals at the same mean rate
come in clumps and gaps: more, smaller batches, more wake-ups, and a CPU that varies more from
one sampling interval to the next. A CPU request read off closed-loop levels fell 15-25% short
of the p95 the same server showed under Poisson traffic at the same rate (pytriton on CPU,
``tests/live/test_recipe_live.py``).

The requests are sent at their scheduled times whatever the answers (the sampler covers exactly
that window); the answers still in flight are awaited afterwards, outside the sample.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import numpy as np

from ..triton import ModelInfo, TritonClient, make_inputs
from ..units import MS_PER_S
from .levels import Level
from .resources import ProcessSampler

__all__ = ["poisson_level"]

logger = logging.getLogger(__name__)


async def poisson_level(
    client: TritonClient,
    info: ModelInfo,
    rps: float,
    seconds: float,
    sampler: ProcessSampler,
    *,
    seed: int = 0,
) -> Level:
    """Single-item requests to ``info`` at ``rps`` (Poisson) for ``seconds``, ``sampler``
    running over the sending window. The level's ``concurrency`` is 0 (open loop) and its
    ``requests`` those sent, so ``request_rate`` is the rate offered."""
    if not (math.isfinite(rps) and rps > 0):
        raise ValueError(f"a traffic level needs a rate > 0 requests/s, got {rps!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"a traffic level needs a duration > 0 s, got {seconds!r}")
    rng = np.random.default_rng(seed)
    count = max(1, int(rng.poisson(rps * seconds)))
    times = np.sort(rng.uniform(0.0, seconds, count))
    body = make_inputs(info, batch=1, seed=seed)
    latencies: list[float] = []

    async def one() -> None:
        t0 = time.perf_counter()
        await client.infer(info.name, body)
        latencies.append((time.perf_counter() - t0) * MS_PER_S)

    tasks: list[asyncio.Task[None]] = []
    sampler.start()
    start = time.perf_counter()
    try:
        for due in times:
            wait = start + float(due) - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one()))
        rest = start + seconds - time.perf_counter()
        if rest > 0:
            await asyncio.sleep(rest)
    finally:
        use = sampler.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - start
    for result in results:
        if isinstance(result, BaseException):
            raise result
    lat = np.array(latencies)
    level = Level(
        1,
        0,
        count,
        seconds,
        float(lat.mean()),
        float(np.percentile(lat, 95)),
        resources=use,
    )
    logger.info(
        "Poisson %.1f req/s for %.1f s: %d sent, %.2f ms mean (client), answered after %.1f s",
        rps,
        seconds,
        count,
        level.client_mean_ms,
        elapsed,
    )
    return level
