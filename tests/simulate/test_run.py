"""Runs, reports and files on a small scenario (two servers, three minutes, every policy)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferno.cli import main
from inferno.emulator import RequestRecords
from inferno.simulate import (
    Progress,
    Report,
    RunResult,
    build_report,
    load_scenario,
    run_scenario,
    write_csv,
    write_plots,
)
from inferno.simulate.report import judge
from inferno.system import Target

from .scenarios import SMALL_SERVERS, small_scenario, write_scenario


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Report, list[Progress]]:
    tmp = tmp_path_factory.mktemp("run")
    scenario = load_scenario(write_scenario(tmp, small_scenario()))
    seen: list[Progress] = []
    result = run_scenario(scenario, seen.append)
    return result, build_report(result), seen


def test_every_policy_sees_the_same_arrivals(
    ran: tuple[RunResult, Report, list[Progress]],
) -> None:
    result, _, _ = ran
    assert [r.spec.name for r in result.runs] == ["inferno", "static", "hpa", "queue"]
    for server in SMALL_SERVERS:
        first = result.runs[0].sim.records(server)
        assert len(first) > 100
        for run in result.runs[1:]:
            other = run.sim.records(server)
            np.testing.assert_array_equal(other.arrival, first.arrival)
            np.testing.assert_array_equal(other.output_tokens, first.output_tokens)
    # but not the same replicas: the load steps up by half at 60 s and only some policies follow
    replicas = {r.spec.name: sum(r.cluster.replicas(s) for s in SMALL_SERVERS) for r in result.runs}
    assert replicas["inferno"] > sum(result.initial[s].replicas for s in SMALL_SERVERS)
    assert result.runs[1].cluster.changes == []  # static never changes


def test_progress_reaches_the_end(ran: tuple[RunResult, Report, list[Progress]]) -> None:
    result, _, seen = ran
    periods = len(result.scenario.period_ends_ms)
    assert len(seen) == periods * len(result.runs) == seen[-1].total
    assert [p.done for p in seen] == list(range(1, seen[-1].total + 1))


def test_static_gpu_hours_are_replicas_times_gpus_times_time(
    ran: tuple[RunResult, Report, list[Progress]],
) -> None:
    result, report, _ = ran
    static = report.policy("static")
    run = result.runs[1]
    hours = result.scenario.duration_s / 3600.0
    gpus = cost = 0.0
    for name, d in result.peak.items():
        model = result.scenario.server(name).model
        gpus += d.replicas * run.cluster.gpus_per_replica(model, d.accelerator) * hours
        cost += d.replicas * run.cluster.cost_per_replica_hour(model, d.accelerator) * hours
    assert static.gpu_hours == pytest.approx(gpus)
    assert static.cost == pytest.approx(cost)
    assert static.changes == 0 and static.replicas_started == 0
    for p in report.policies:
        assert p.requests == report.policies[0].requests
        assert 0.0 <= p.attainment <= 1.0
        assert p.rejected <= p.judged <= p.requests
    assert {c.policy for c in report.comparisons} == {"inferno"}
    assert {c.baseline for c in report.comparisons} == {"static", "hpa", "queue"}


def test_csv_has_one_row_per_period_per_policy(
    ran: tuple[RunResult, Report, list[Progress]], tmp_path: Path
) -> None:
    result, report, _ = ran
    series, servers = write_csv(report, tmp_path / "out")
    periods = len(result.scenario.period_ends_ms)
    with open(series, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == periods * len(result.runs)
    assert [(r["policy"], int(r["period"])) for r in rows] == [
        (p.spec.name, k) for p in result.runs for k in range(periods)
    ]
    assert {f"replicas_{a}" for a in report.accelerators} <= set(rows[0])
    with open(servers, newline="") as f:
        per_server = list(csv.DictReader(f))
    assert len(per_server) == periods * len(result.runs) * len(SMALL_SERVERS)


def test_plots_are_written(
    ran: tuple[RunResult, Report, list[Progress]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inferno.simulate import plots

    _, report, _ = ran
    labels: dict[str, list[str]] = {}
    save = plots._save

    def keep_labels(fig: Any, path: Path) -> Path:
        labels[path.name] = [ax.get_ylabel() for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep_labels)
    files = write_plots(report, tmp_path / "plots")
    assert sorted(f.name for f in files) == ["cost.png", "latency.png", "load.png", "replicas.png"]
    for f in files:
        data = f.read_bytes()
        assert len(data) > 10_000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    # every axis says what it shows; the cost in the data's own units (issue 13)
    assert all(all(label for label in axes) for axes in labels.values()), labels
    assert labels["cost.png"][0] == "cost per hour (accelerator-data.json's cost units)"


def test_judging_requests() -> None:
    """Wait and ITL targets per request; rejected and overrun in-flight requests are misses."""
    nan = np.nan
    rec = RequestRecords(
        arrival=np.array([0.0, 0.0, 0.0, 0.0, 9_000.0, 9_500.0]),
        input_tokens=np.zeros(6, dtype=np.int32),
        output_tokens=np.array([11, 11, 11, 11, 11, 11], dtype=np.int32),
        start=np.array([100.0, 900.0, 100.0, nan, nan, nan]),
        first_token=np.array([120.0, 920.0, 120.0, nan, nan, nan]),
        completion=np.array([520.0, 1_320.0, 1_120.0, nan, nan, nan]),
        replica=np.zeros(6, dtype=np.int32),
        reason=np.array([0, 0, 0, 1, 0, 0], dtype=np.int8),
    )
    # ITLs: 40, 40, 100 ms; waits 100, 900, 100 ms; #3 rejected; #4 waited 1000 ms so far; #5 500
    j = judge(rec, Target("m", itl=50.0, ttw=500.0), now_ms=10_000.0)
    assert j.met.tolist() == [True, False, False, False, False, False]
    assert j.judged.tolist() == [True, True, True, True, True, False]
    assert j.ratios["itl"][:3] == pytest.approx([0.8, 0.8, 2.0])
    assert j.ratios["wait"][:3] == pytest.approx([0.2, 1.8, 0.2])
    assert np.isinf(j.score[3]) and np.isinf(j.score[4]) and np.isnan(j.score[5])
    # a throughput class has no per-request target: served requests meet it
    j = judge(rec, Target("m", tps=1000.0), now_ms=10_000.0)
    assert j.met.tolist() == [True, True, True, False, False, False]


def test_cli_prints_the_table_and_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = small_scenario(duration=60, policies=["inferno", "static"])
    path = write_scenario(tmp_path, doc)
    out = tmp_path / "out"
    assert main(["simulate", str(path), "--out", str(out), "--quiet", "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "SLO met" in text and "GPU-hours" in text
    assert "inferno vs static:" in text and "GPU-hours" in text
    assert (out / "timeseries.csv").is_file() and not (out / "load.png").exists()


def test_cli_bad_scenario_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_scenario(tmp_path, small_scenario(policies=["inferno", "autoscale"]))
    assert main(["simulate", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "$.policies[1]" in err and "unknown policy" in err and str(path) in err


def test_scenario_options_reach_the_emulator(tmp_path: Path) -> None:
    """initial: peak, a bounded queue, exponential service and another router."""
    doc = small_scenario(
        duration=60,
        initial="peak",
        max_queue=0,
        service="exponential",
        router="least-loaded",
        traces={
            "default": {"kind": "poisson"},
            "Bronze-mistral_7b": {"kind": "steps", "steps": [[0, 240], [30, 6000]]},
        },
        policies=["hpa"],
    )
    result = run_scenario(load_scenario(write_scenario(tmp_path, doc)))
    (run,) = result.runs
    for name, d in result.peak.items():
        first = [r for r in run.sim.replicas(name) if r.created_at == 0.0]
        assert len(first) == d.replicas  # started at the peak allocation
    assert result.peak["Bronze-mistral_7b"].replicas > result.initial["Bronze-mistral_7b"].replicas
    # started small, a 25-fold step with no waiting room: rejections
    doc["initial"] = "inferno"
    result = run_scenario(load_scenario(write_scenario(tmp_path, doc)))
    report = build_report(result)
    assert report.policies[0].rejected == result.runs[0].sim.totals().rejected > 0


def test_progress_bar_on_a_terminal() -> None:
    import io

    from inferno.cli.simulate import ProgressBar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    bar = ProgressBar(out, width=10)
    for k in range(1, 5):
        bar(Progress("inferno", 0, 2, k, 4))
    for k in range(1, 5):
        bar(Progress("static", 1, 2, k, 4))
    text = out.getvalue()
    assert text.startswith("\r[") and "100.0%" in text and text.endswith("\n")
    plain = io.StringIO()
    bar = ProgressBar(plain)
    for k in range(1, 5):
        bar(Progress("inferno", 0, 1, k, 4))
    assert plain.getvalue().startswith("simulated inferno (1/1): 4 periods")


def test_the_latency_plot_marks_unanswered_periods_and_draws_misses_on_a_log_axis() -> None:
    """A period whose p95 is the report's no-answer sentinel is marked, not drawn as a latency
    of 10³ × the SLO; the share missing is drawn as such (99.9% met → 0.1% missing, none missing
    at the floor), so 99.0 and 99.9% do not look the same."""
    import numpy as np

    from inferno.simulate.plots import MISS_FLOOR, latency_panels

    ratio = np.array([0.5, 1e9, 2.0, 0.8])
    met = np.array([1.0, 0.0, 0.99, 0.999])
    drawn, unserved, missed = latency_panels(ratio, met)
    assert unserved.tolist() == [False, True, False, False]
    assert np.isnan(drawn[1]) and drawn[[0, 2, 3]].tolist() == [0.5, 2.0, 0.8]
    assert missed.tolist() == pytest.approx([MISS_FLOOR, 100.0, 1.0, 0.1])
