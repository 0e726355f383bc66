"""The request shapes of ``inferno profile`` against an in-process stand-in for Triton's dynamic
batcher (one instance: it takes what waits, up to N items, runs it, then looks again), whose
batch of r requests carrying b items takes α + β·b + o·r: the per-request overhead o is what the
single shape must see and the batch shape cannot."""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from inferno.cli import main
from inferno.profiling import (
    BatchPoint,
    Measurement,
    MeasureOptions,
    ProcessSampler,
    auto_concurrency,
    capacity,
    fit_batch,
    measure,
    request_overhead,
)
from inferno.profiling.measure import item_sizes
from inferno.triton import (
    BatchStat,
    ModelInfo,
    ModelStatistics,
    TensorSpec,
    TritonRequestError,
)

ALPHA, BETA, OVERHEAD, N = 10.0, 1.0, 0.5, 8


class FakeTriton:
    """Triton's batching of one model instance, in asyncio time. Its statistics record each
    execution's nominal time, so the fits from them are exact whatever the timer's jitter."""

    url = "http://fake:8000"

    def __init__(self, *_: object, locked: bool = False, **__: object) -> None:
        self.locked = locked
        self.waiting: list[tuple[int, asyncio.Future[None]]] = []
        self.executed: dict[int, tuple[int, float]] = {}  # items → (count, total ms)
        self.wake = asyncio.Event()
        self.runner: asyncio.Task[None] | None = None

    async def model_info(self, model: str) -> ModelInfo:
        spec = (TensorSpec("x", "FP32", (1,)),)
        return ModelInfo(model, ("1",), spec, spec, N, dynamic_batching=True)

    async def statistics(self, model: str) -> ModelStatistics:
        if self.locked:
            raise TritonRequestError("This API is restricted, expecting header 'token'")
        batches = {
            b: BatchStat(b, n, 0, round(ms * 1e6), 0) for b, (n, ms) in self.executed.items()
        }
        return ModelStatistics(model, batches=batches)

    async def infer(self, model: str, inputs: Mapping[str, NDArray[Any]]) -> None:
        if self.runner is None:
            self.runner = asyncio.create_task(self._run())
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((int(inputs["x"].shape[0]), done))
        self.wake.set()
        await done

    async def _run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.waiting:
                batch: list[asyncio.Future[None]] = []
                items = 0
                while self.waiting and items + self.waiting[0][0] <= N:
                    size, done = self.waiting.pop(0)
                    items += size
                    batch.append(done)
                ms = ALPHA + BETA * items + OVERHEAD * len(batch)
                await asyncio.sleep(ms / 1000.0)
                count, total = self.executed.get(items, (0, 0.0))
                self.executed[items] = (count + 1, total + ms)
                for done in batch:
                    done.set_result(None)

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.cancel()

    async def __aenter__(self) -> FakeTriton:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stop()


def _measure(
    options: MeasureOptions, *, locked: bool = False, sampler: ProcessSampler | None = None
) -> Measurement:
    async def main() -> Measurement:
        fake = FakeTriton(locked=locked)
        try:
            client: Any = fake  # the part of TritonClient's surface measure uses
            return await measure(client, "m", options, sampler)
        finally:
            fake.stop()

    return asyncio.run(main())


def test_auto_concurrency_rises_to_n_then_saturates() -> None:
    assert auto_concurrency(32) == (1, 2, 4, 8, 16, 32, 64)
    assert auto_concurrency(12) == (1, 2, 4, 8, 12, 24)
    assert auto_concurrency(1) == (1, 2)
    assert item_sizes(32) == (1, 16, 32) and item_sizes(1) == (1,)


def test_single_shape_sees_the_per_request_overhead() -> None:
    m = _measure(MeasureOptions(requests=4, warmup=1))
    assert m.shape == "single" and m.source == "server"
    assert [lv.concurrency for lv in m.levels] == list(auto_concurrency(N))
    assert all(lv.batch == 1 for lv in m.levels)
    # Triton formed batches of several sizes, the full one among them (the 2N level)
    assert len(m.points) >= 3 and max(p.batch for p in m.points) == N
    fit = fit_batch(m.points)
    assert fit.fit.value("alpha") == pytest.approx(ALPHA, rel=1e-6)
    assert fit.fit.value("beta") == pytest.approx(BETA + OVERHEAD, rel=1e-6)
    # one request of 1, N/2 and N items at concurrency 1: the per-item cost
    assert [p.batch for p in m.item_points] == [1, N // 2, N]
    items = fit_batch(m.item_points)
    assert items.fit.value("alpha") == pytest.approx(ALPHA + OVERHEAD, rel=1e-6)
    assert items.fit.value("beta") == pytest.approx(BETA, rel=1e-6)
    over = request_overhead(fit, items)
    assert over.ms == pytest.approx(OVERHEAD, rel=1e-6)
    assert over.relative == pytest.approx(OVERHEAD / BETA, rel=1e-6)
    assert over.to_json()["itemBeta"] == pytest.approx(BETA, rel=1e-6)


def test_resources_are_sampled_under_poisson_traffic_at_shares_of_the_top_rate() -> None:
    # the sampler follows this test's own process (the stand-in runs in it)
    options = MeasureOptions(
        requests=3, warmup=0, idle_seconds=0.1, traffic_shares=(0.5, 0.25), traffic_seconds=1.0
    )
    m = _measure(options, sampler=ProcessSampler(os.getpid(), interval=0.05))
    assert m.idle is not None and m.idle.seconds < 0.5
    top = max(lv.request_rate for lv in m.levels)
    assert [lv.concurrency for lv in m.traffic] == [0, 0]  # open loop
    for level, share in zip(m.traffic, (0.25, 0.5), strict=True):
        assert level.seconds == 1.0 and level.batch == 1
        # Poisson counts of ~50 and ~100 requests: within four standard deviations
        expected = share * top
        assert abs(level.request_rate - expected) < 4 * (expected**0.5) + 1
        # 20 samples at 50 ms in the level's second on a quiet machine; a loaded one (2 cores,
        # another job running) was seen to take 14: at least 10, the sampler kept sampling
        assert level.resources is not None and level.resources.samples >= 10
        # each answer waits for a batch of what arrived: at least α + β + o
        assert level.client_mean_ms >= ALPHA + BETA + OVERHEAD - 1e-6
    # the closed-loop levels are not sampled: their even batches are not live traffic
    assert all(lv.resources is None for lv in m.levels)
    assert _measure(options).traffic == ()


def test_batch_shape_measures_the_per_item_cost_only() -> None:
    m = _measure(MeasureOptions(shape="batch", batch_sizes=(1, 4, 8), requests=3, warmup=1))
    assert m.shape == "batch" and not m.item_points
    assert [lv.batch for lv in m.levels] == [1, 4, 8]
    fit = fit_batch(m.points)
    assert fit.fit.value("alpha") == pytest.approx(ALPHA + OVERHEAD, rel=1e-6)
    assert fit.fit.value("beta") == pytest.approx(BETA, rel=1e-6)


def test_single_shape_given_levels_are_used() -> None:
    m = _measure(MeasureOptions(concurrency=(3, 2), requests=3, warmup=0))
    assert [lv.concurrency for lv in m.levels] == [2, 3]
    # no level at concurrency 1 among them: the 1-item request is measured on its own
    assert [(lv.batch, lv.concurrency) for lv in m.item_levels] == [(1, 1), (N // 2, 1), (N, 1)]
    assert [p.batch for p in m.item_points] == [1, N // 2, N]
    assert fit_batch(m.item_points).fit.value("beta") == pytest.approx(BETA, rel=1e-6)


def test_single_shape_without_statistics_times_full_batches_from_the_throughput() -> None:
    m = _measure(MeasureOptions(concurrency=(4,), requests=6, warmup=1), locked=True)
    assert m.source == "client"
    assert [lv.concurrency for lv in m.levels] == [1, 2 * N]
    assert any("refused its statistics" in n for n in m.notes)
    assert any("--concurrency ignored" in n for n in m.notes)
    fit = fit_batch(m.points)
    # the client's clock: τ(1) from the latency at concurrency 1, τ(N) from the throughput at
    # 2N; the event loop and the timer add a little to both (a few ms on a busy machine)
    [p1, pn] = m.points
    assert p1.batch == 1 and ALPHA + BETA + OVERHEAD <= p1.ms < ALPHA + BETA + OVERHEAD + 5
    tau_n = ALPHA + (BETA + OVERHEAD) * N
    assert pn.batch == N and tau_n - 2 < pn.ms < tau_n + 5
    assert abs(fit.fit.value("beta") - (BETA + OVERHEAD)) < 1.0


def test_batch_shape_without_statistics_says_concurrency_is_ignored() -> None:
    options = MeasureOptions(shape="batch", batch_sizes=(1, 8), concurrency=(1, 4), requests=2)
    m = _measure(options, locked=True)
    assert m.source == "client" and [lv.concurrency for lv in m.levels] == [1, 1]
    assert any("--concurrency ignored" in n for n in m.notes)


def test_statistics_required_but_refused_is_an_error() -> None:
    with pytest.raises(TritonRequestError, match="restricted"):
        _measure(MeasureOptions(source="server", requests=1), locked=True)


def test_request_overhead_combines_the_standard_errors() -> None:
    rng = np.random.default_rng(3)

    def points(alpha: float, beta: float) -> list[BatchPoint]:
        return [
            BatchPoint(b, alpha + beta * b + float(rng.normal(0, 0.3)), 20) for b in (1, 4, 8, 16)
        ]

    single, items = fit_batch(points(30.0, 2.9)), fit_batch(points(30.5, 2.5))
    over = request_overhead(single, items)
    se_s, se_i = single.fit.stderr[1], items.fit.stderr[1]
    assert over.stderr == pytest.approx(math.hypot(se_s, se_i))
    assert over.ms == pytest.approx(single.fit.value("beta") - items.fit.value("beta"))
    assert abs(over.ms - 0.4) < 4 * over.stderr


def test_capacity_is_full_batches_back_to_back() -> None:
    assert capacity(30.0, 2.5, 32) == pytest.approx(32 / 110.0 * 1000.0)
    assert math.isnan(capacity(0.0, 0.0, 8)) and math.isnan(capacity(1.0, 1.0, 0))


def test_profile_cli_prints_the_overhead_and_the_capacities(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("inferno.triton.TritonClient", FakeTriton)
    argv = ["profile", "fake:8000", "-m", "m", "--requests", "3", "--warmup", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "single-item requests batched by Triton, timing from the server" in out
    assert f"per-request overhead: {OVERHEAD:.3f}" in out
    single, items = capacity(ALPHA, BETA + OVERHEAD, N), capacity(ALPHA + OVERHEAD, BETA, N)
    assert f"capacity: {single:.1f} req/s per instance" in out
    assert (
        f"would put the capacity at {items:.1f} req/s ({100 * (items / single - 1):+.1f}%)" in out
    )
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["shape"] == "single" and result["row"]["beta"] == pytest.approx(BETA + OVERHEAD)
    assert result["overhead"]["ms"] == pytest.approx(OVERHEAD)
    assert result["capacity"]["rps"] == pytest.approx(single)
    assert [lv["batch"] for lv in result["itemLevels"]] == [1, N // 2, N]
    # the batch shape: no overhead to report, only the capacity
    assert main([*argv, "--shape", "batch", "--batch-sizes", "1,8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["shape"] == "batch" and "overhead" not in result
    assert result["row"]["beta"] == pytest.approx(BETA)
