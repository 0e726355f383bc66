"""``gpuShare`` from Triton's compute phases (inferno/profiling/gpu_share.py): the differences of
two statistics snapshots, the measurement's split over the fitted levels, and the row and notes
``inferno profile`` writes (with statistics, and with the client-timing fallback)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from inferno.cli import main
from inferno.data import load_system
from inferno.profiling import (
    ComputeSplit,
    Measurement,
    MeasureOptions,
    Shape,
    batch_entry,
    fit_batch,
    measure,
    merge_row,
)
from inferno.triton import BatchStat, ModelStatistics, parse_statistics

from .test_measure import FakeTriton

#: the stand-in's split of each execution: input, infer, output shares of its time
PHASES = (0.15, 0.75, 0.10)


def _snapshot(batches: dict[int, tuple[int, int, int, int]]) -> dict[str, Any]:
    """A ``/stats`` answer as Triton writes it (64-bit counters as strings): per batch size,
    (executions, input ns, infer ns, output ns)."""
    rows = [
        {
            "batch_size": b,
            "compute_input": {"count": str(c), "ns": str(i)},
            "compute_infer": {"count": str(c), "ns": str(n)},
            "compute_output": {"count": str(c), "ns": str(o)},
        }
        for b, (c, i, n, o) in batches.items()
    ]
    return {"model_stats": [{"name": "m", "version": "1", "batch_stats": rows}]}


def test_the_share_is_infer_over_the_phases_of_the_executions_between_two_snapshots() -> None:
    before = parse_statistics(_snapshot({1: (4, 400, 3_000, 100), 8: (1, 90, 900, 10)}), "m")
    after = parse_statistics(
        _snapshot({1: (6, 600, 5_000, 200), 8: (3, 290, 4_900, 60), 16: (1, 50, 800, 150)}), "m"
    )
    split = ComputeSplit().plus(after.minus(before))
    # batch 1: 2 runs (200, 2000, 100); 8: 2 runs (200, 4000, 50); 16: 1 run (50, 800, 150)
    assert (split.input_ns, split.infer_ns, split.output_ns) == (450, 6_800, 300)
    assert split.executions == 5
    assert split.share == pytest.approx(6_800 / 7_550)
    # splits add up over levels; a level with no executions changes nothing
    again = split.plus(after.minus(before)).plus(after.minus(after))
    assert again.share == pytest.approx(split.share) and again.executions == 10
    assert split.to_json()["computeMs"]["infer"] == pytest.approx(6_800 / 1e6)


def test_no_share_without_executions_or_infer_time() -> None:
    empty = ComputeSplit()
    assert empty.share is None and "no executions" in empty.problem()
    host_only = ComputeSplit().plus(ModelStatistics("m", batches={1: BatchStat(1, 3, 50, 0, 5)}))
    assert host_only.share is None and "no compute_infer" in host_only.problem()
    # all infer: the whole batch is the model's work
    pure = ComputeSplit().plus(ModelStatistics("m", batches={2: BatchStat(2, 1, 0, 70, 0)}))
    assert pure.share == 1.0 and pure.problem() == ""


class SplitTriton(FakeTriton):
    """The stand-in batcher whose statistics split each execution's time into the phases."""

    async def statistics(self, model: str) -> ModelStatistics:
        whole = await super().statistics(model)
        batches = {}
        for b, s in whole.batches.items():
            ns = s.compute_ns
            i, o = round(ns * PHASES[0]), round(ns * PHASES[2])
            batches[b] = BatchStat(b, s.count, i, ns - i - o, o)
        return ModelStatistics(model, batches=batches)


class LockedSplitTriton(SplitTriton):
    """The same with its statistics behind a token nobody sends."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, locked=True)


def _measure(options: MeasureOptions, fake: type[FakeTriton] = SplitTriton) -> Measurement:
    async def run() -> Measurement:
        client: Any = fake()  # the part of TritonClient's surface measure uses
        try:
            return await measure(client, "m", options)
        finally:
            client.stop()

    return asyncio.run(run())


@pytest.mark.parametrize("shape", ["single", "batch"])
def test_the_measurement_splits_the_fitted_executions(shape: Shape) -> None:
    options = MeasureOptions(shape=shape, batch_sizes=(1, 8), requests=3, warmup=0)
    m = _measure(options)
    assert m.source == "server" and m.compute is not None
    assert m.compute.share == pytest.approx(PHASES[1], abs=1e-6)
    # the executions of the fitted levels (not the single shape's b-item requests)
    assert m.compute.executions == sum(p.weight for p in m.points)
    assert _measure(options, LockedSplitTriton).compute is None  # client timing: no phases


def test_batch_entry_writes_the_share_only_when_measured() -> None:
    fit = fit_batch(_measure(MeasureOptions(shape="batch", batch_sizes=(1, 8))).points)
    assert "gpuShare" not in batch_entry("m", "CPU", fit, max_batch_size=8)
    assert batch_entry("m", "CPU", fit, max_batch_size=8, gpu_share=0.25)["gpuShare"] == 0.25
    with pytest.raises(ValueError, match="gpuShare"):
        batch_entry("m", "CPU", fit, max_batch_size=8, gpu_share=0.0)


def _system(directory: Path) -> None:
    docs = {
        "accelerator-data.json": {"accelerators": [{"name": "CPU", "cost": 1.0}]},
        "serviceclass-data.json": {
            "serviceClasses": [{"name": "C", "model": "m", "slo-latency": 1000}]
        },
        "server-data.json": {
            "servers": [{"name": "s", "class": "C", "model": "m", "load": {"arrivalRate": 600}}]
        },
    }
    for name, doc in docs.items():
        (directory / name).write_text(json.dumps(doc))


def test_profile_writes_the_share_the_data_reads_back_and_says_when_it_cannot(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr("inferno.triton.TritonClient", SplitTriton)
    _system(tmp_path)
    data = tmp_path / "model-data.json"
    argv = ["profile", "fake:8000", "-m", "m", "--requests", "3", "--warmup", "0"]
    assert main([*argv, "--merge", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"gpuShare {PHASES[1]:.3f}: compute_infer" in out
    (row,) = json.loads(data.read_text())["models"]
    assert row["gpuShare"] == pytest.approx(PHASES[1], abs=1e-5)
    (profile,) = load_system(tmp_path).profiles
    assert profile.gpu_share == pytest.approx(PHASES[1], abs=1e-5)
    # refused statistics: client timing, no share, and the output says so
    monkeypatch.setattr("inferno.triton.TritonClient", LockedSplitTriton)
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["source"] == "client" and "gpuShare" not in result["row"]
    assert result["gpuShare"]["value"] is None and "client" in result["gpuShare"]["note"]
    assert main(argv) == 0
    assert "note: gpuShare not measured (timing from the client" in capsys.readouterr().out


def test_a_run_with_more_instances_keeps_the_one_instance_runs_share() -> None:
    one = {"name": "m", "acc": "CPU", "alpha": 10, "beta": 1, "gpuShare": 0.8}
    one["instanceThroughput"] = {"1": 100.0}
    two = {"name": "m", "acc": "CPU", "alpha": 14, "beta": 2, "gpuShare": 0.6}
    two["instanceThroughput"] = {"2": 150.0}
    merged, replaced, _ = merge_row({"models": [one]}, two)
    assert replaced and merged["models"][0]["gpuShare"] == 0.8
    # a 1-instance run replaces the share (absent: client timing, none measured)
    again, _, _ = merge_row(merged, {k: v for k, v in one.items() if k != "gpuShare"})
    assert "gpuShare" not in again["models"][0]
