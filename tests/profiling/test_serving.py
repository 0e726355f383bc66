"""Several model instances and the resources block (inferno.profiling.serving): κ(c) from the
runs' saturated throughput, measured against a stand-in for Triton running c instances whose
batches take κ·τ(b); and how the runs' rows merge."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from inferno.cli import main
from inferno.profiling import (
    FitError,
    MeasureOptions,
    auto_concurrency,
    contention_factors,
    measure,
    merge_row,
    saturated_throughput,
)
from inferno.profiling.serving import combine

from .test_measure import ALPHA, BETA, OVERHEAD, FakeTriton

N = 8


class FakeInstances(FakeTriton):
    """Triton's batching on ``instances`` model instances sharing one queue, each batch taking
    ``kappa`` times as long as on one instance alone."""

    def __init__(self, instances: int, kappa: float) -> None:
        super().__init__()
        self.instances, self.kappa = instances, kappa
        self.runners: list[asyncio.Task[None]] = []

    async def infer(self, model: str, inputs: Any) -> None:
        if not self.runners:
            self.runners = [asyncio.create_task(self._instance()) for _ in range(self.instances)]
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((int(inputs["x"].shape[0]), done))
        self.wake.set()
        await done

    async def _instance(self) -> None:
        while True:
            while not self.waiting:
                self.wake.clear()
                await self.wake.wait()
            batch = []
            items = 0
            while self.waiting and items + self.waiting[0][0] <= N:
                size, done = self.waiting.pop(0)
                items += size
                batch.append(done)
            ms = self.kappa * (ALPHA + BETA * items + OVERHEAD * len(batch))
            await asyncio.sleep(ms / 1000.0)
            count, total = self.executed.get(items, (0, 0.0))
            self.executed[items] = (count + 1, total + ms)
            for done in batch:
                done.set_result(None)

    def stop(self) -> None:
        for task in self.runners:
            task.cancel()


def _throughput(instances: int, kappa: float) -> float:
    async def main() -> float:
        fake = FakeInstances(instances, kappa)
        try:
            client: Any = fake
            options = MeasureOptions(requests=6, warmup=1, instances=instances)
            m = await measure(client, "m", options)
        finally:
            fake.stop()
        assert [lv.concurrency for lv in m.levels] == list(auto_concurrency(N, instances))
        return saturated_throughput(m.levels)

    return asyncio.run(main())


def test_auto_concurrency_saturates_every_instance() -> None:
    assert auto_concurrency(8, 1) == (1, 2, 4, 8, 16)
    assert auto_concurrency(8, 3) == (1, 2, 4, 8, 16, 24, 32)


def test_contention_is_recovered_from_the_runs_throughput() -> None:
    kappa = 1.5
    x1 = _throughput(1, 1.0)
    x2 = _throughput(2, kappa)
    # full batches back to back: one instance N/τ(N), two 2N/(κ·τ(N))
    tau_n = ALPHA + (BETA + OVERHEAD) * N
    assert x1 == pytest.approx(N / tau_n * 1000, rel=0.15)
    kappas, notes = contention_factors({1: x1, 2: x2})
    assert kappas[0] == 1.0 and kappas[1] == pytest.approx(kappa, rel=0.15)
    assert not notes


def test_contention_factors_clamp_interpolate_and_need_one_instance() -> None:
    kappas, notes = contention_factors({1: 100.0, 2: 250.0, 4: 320.0})
    assert kappas[:2] == (1.0, 1.0) and kappas[3] == 1.25
    assert kappas[2] == pytest.approx(1.125)
    assert any("κ set to 1" in n for n in notes) and any("κ(3) interpolated" in n for n in notes)
    with pytest.raises(FitError, match="--instances-run 1"):
        contention_factors({2: 100.0})
    with pytest.raises(FitError, match="> 0"):
        contention_factors({1: 100.0, 2: 0.0})


def _level(instances: int, rps: float, mem: float) -> dict[str, Any]:
    return {"instances": instances, "rps": rps, "cpuMean": 0.1, "cpuP95": 0.2, "memoryPeakMiB": mem}


def test_runs_at_several_instance_counts_merge_into_one_row() -> None:
    one = {
        "name": "m",
        "acc": "CPU",
        "kind": "batch",
        "alpha": 10.0,
        "beta": 1.0,
        "maxBatchSize": 8,
        "instanceThroughput": {"1": 100.0},
        "resources": {"memory": "pss", "levels": [_level(1, 0, 300), _level(1, 90, 310)]},
    }
    two = {
        **one,
        "alpha": 15.0,  # the 2-instance run's fit sees κ·τ(b)
        "beta": 1.5,
        "instanceThroughput": {"2": 160.0},
        "resources": {"memory": "rss", "levels": [_level(2, 0, 500), _level(2, 150, 520)]},
    }
    doc = {"models": [one, {"name": "other", "acc": "CPU"}]}
    merged, replaced, notes = merge_row(doc, two)
    assert replaced and len(merged["models"]) == 2
    row = merged["models"][0]
    assert (row["alpha"], row["beta"]) == (10.0, 1.0)  # the 1-instance run's
    assert row["instanceThroughput"] == {"1": 100.0, "2": 160.0}
    assert row["contention"] == [1.0, 1.25]
    assert [lv["instances"] for lv in row["resources"]["levels"]] == [1, 1, 2, 2]
    assert row["resources"]["memory"] == "rss"
    assert any("kept α, β" in n for n in notes)
    # the 1-instance run again: its α, β and levels replace the old ones, the 2's stay
    again = {**one, "alpha": 11.0, "instanceThroughput": {"1": 120.0}}
    again["resources"] = {"memory": "pss", "levels": [_level(1, 0, 305)]}
    row2, _ = combine(row, again)
    assert row2["alpha"] == 11.0 and row2["contention"] == [1.0, 1.5]
    assert [(lv["instances"], lv["memoryPeakMiB"]) for lv in row2["resources"]["levels"]] == [
        (2, 500),
        (2, 520),
        (1, 305),
    ]
    # a plain re-profile keeps the resources and says so
    plain = {k: v for k, v in one.items() if k not in ("instanceThroughput", "resources")}
    row3, notes3 = combine(row2, plain)
    assert row3["resources"] == row2["resources"] and any("kept the resources" in n for n in notes3)
    # with only c > 1 runs there is no reference: no κ, said so
    lone, notes4 = combine(
        {"name": "m", "acc": "CPU", "instanceThroughput": {"2": 1.0}},
        {"name": "m", "acc": "CPU", "instanceThroughput": {"4": 1.0}},
    )
    assert "contention" not in lone and any("no contention factor" in n for n in notes4)


def test_profile_cli_runs_merge_into_contention_and_resources(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Two ``inferno profile`` runs, one instance then two (κ 1.4), merged into one file; the
    "server" is this process (the stand-in runs in it), sampled with --pid."""
    data = tmp_path / "model-data.json"
    data.write_text(json.dumps({"models": []}))
    argv = ["profile", "fake:8000", "-m", "m", "--requests", "4", "--warmup", "0"]
    argv += ["--pid", str(os.getpid()), "--idle-seconds", "0.3", "--merge", str(data)]
    argv += ["--sample-interval", "0.05", "--level-samples", "6"]  # Poisson levels of 0.3 s
    monkeypatch.setattr("inferno.triton.TritonClient", lambda *a, **k: FakeInstances(1, 1.0))
    assert main([*argv, "--instances-run", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 instance(s):" in out and "resources of process" in out
    monkeypatch.setattr("inferno.triton.TritonClient", lambda *a, **k: FakeInstances(2, 1.4))
    assert main([*argv, "--instances-run", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    row = json.loads(data.read_text())["models"][0]
    assert row == result["merged"]
    assert row["contention"][1] == pytest.approx(1.4, rel=0.15)
    assert row["alpha"] == pytest.approx(ALPHA, rel=1e-6)  # the 1-instance run's fit
    levels = row["resources"]["levels"]
    counts = [lv["instances"] for lv in levels]
    # per run: the idle level and four Poisson levels (25/50/75/90% of the top rate served)
    assert counts == [1] * 5 + [2] * 5
    idle = [lv for lv in levels if lv["rps"] == 0]
    assert len(idle) == 2 and all(lv["memoryPeakMiB"] > 10 for lv in levels)
    assert max(lv["rps"] for lv in levels if lv["instances"] == 2) > max(
        lv["rps"] for lv in levels if lv["instances"] == 1
    )


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--instances-run", "0"], "--instances-run must be from 1 to 16"),
        (["--instances-run", "17"], "--instances-run must be from 1 to 16, got 17"),
        (["--instances-run", "2", "--shape", "batch"], "needs --shape single"),
        (["--pid", "0"], "--pid must be a process id"),
        (["--idle-seconds", "-1"], "--idle-seconds"),
    ],
)
def test_profile_cli_bad_serving_options(
    extra: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profile", "fake:8000", "-m", "m", *extra]) == 2
    assert problem in capsys.readouterr().err
