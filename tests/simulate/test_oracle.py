"""The oracle policy: the true peak of each coming period, replicas ready at once; × oracle."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inferno.cli import main
from inferno.emulator import (
    Bursts,
    Diurnal,
    Fixed,
    Poisson,
    Replay,
    ServerSpec,
    Simulation,
    Steps,
    rate_path,
)
from inferno.model.profiles import BatchProfile
from inferno.simulate import (
    Report,
    RunResult,
    build_report,
    load_scenario,
    run_scenario,
    write_summary,
)
from inferno.simulate.oracle import Foresight, peak_between
from inferno.simulate.tables import server_bar, server_lines, summary_rows

from .scenarios import SMALL_SERVERS, small_scenario, write_scenario

MIN = 60_000.0


def test_peak_between_each_trace_kind() -> None:
    assert peak_between(Poisson(90.0), 0.0, 30_000.0) == 90.0
    steps = Steps([(10.0, 100.0), (60.0, 300.0), (120.0, 50.0)])
    assert peak_between(steps, 0.0, 5_000.0) == 0.0  # before the first step
    assert peak_between(steps, 30_000.0, 60_000.0) == 100.0  # the next step starts at the end
    assert peak_between(steps, 45_000.0, 75_000.0) == 300.0
    assert peak_between(steps, 120_000.0, 150_000.0) == 50.0
    # diurnal: 100 × (1 + 0.5 sin(2πt/3600 s)), crest at 900 s, trough at 2700 s
    wave = Diurnal(100.0, 0.5, 3600.0)
    assert peak_between(wave, 885_000.0, 915_000.0) == pytest.approx(150.0)
    rising = 100.0 * (1.0 + 0.5 * math.sin(2.0 * math.pi * 30.0 / 3600.0))
    assert peak_between(wave, 0.0, 30_000.0) == pytest.approx(rising)  # at the period's end
    falling = 100.0 * (1.0 + 0.5 * math.sin(2.0 * math.pi * 1800.0 / 3600.0))
    assert peak_between(wave, 1_800_000.0, 1_830_000.0) == pytest.approx(falling)  # at its start
    assert peak_between(wave, 0.0, 7_200_000.0) == pytest.approx(150.0)
    # replay: the requests that arrive in the period / its length
    times = np.array([1_000.0, 2_000.0, 40_000.0, 41_000.0, 42_000.0])
    replay = Replay(times, np.zeros(5, dtype=np.int64), np.ones(5, dtype=np.int64))
    assert peak_between(replay, 30_000.0, 60_000.0) == pytest.approx(6.0)  # 3 in 30 s
    assert peak_between(replay, 0.0, 30_000.0) == pytest.approx(4.0)
    # bursts not realised: the burst rate throughout
    assert peak_between(Bursts(50.0, 400.0, 300.0, 60.0), 0.0, 30_000.0) == 400.0


def test_the_bursts_path_is_the_one_the_simulation_follows() -> None:
    """With a base rate of 0, every simulated arrival falls in a burst of the realised path."""
    trace = Bursts(0.0, 600.0, 120.0, 30.0)
    spec = ServerSpec(BatchProfile(5.0, 1.0, 8), trace, replicas=4, output_tokens=Fixed(1))
    sim = Simulation({"s": spec}, seed=3)
    sim.run_until(30 * MIN)
    path = sim.rate_path("s", 30 * MIN)
    assert isinstance(path, Steps) and path == rate_path(trace, 3, "s", 30 * MIN)
    rates = {r for _, r in path.steps}
    assert rates == {0.0, 600.0} and len(path.steps) > 10  # the chain switched many times
    arrivals = sim.records("s").arrival
    assert arrivals.size > 1000
    assert all(path.rate_at(float(t)) > 0 for t in arrivals)
    # and the time in bursts explains the count (600/min while bursting)
    bursting = path.mean_rate(0.0, 30 * MIN) * 30 * MIN
    assert arrivals.size == pytest.approx(bursting, rel=0.1)
    # other traces are their own rate
    assert rate_path(Poisson(5.0), 3, "s", MIN) == Poisson(5.0)


@pytest.fixture(scope="module")
def stepped(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Report]:
    """Two servers, the load steps up by half at 60 s; oracle, inferno and static."""
    tmp = tmp_path_factory.mktemp("oracle")
    doc = small_scenario(
        duration=180,
        sizing={"quantile": 0.99},
        policies=["oracle", "inferno", "static"],
    )
    result = run_scenario(load_scenario(write_scenario(tmp, doc)))
    return result, build_report(result)


def test_the_oracle_scales_at_the_step_with_no_start_up_delay(
    stepped: tuple[RunResult, Report],
) -> None:
    result, report = stepped
    oracle, inferno, static = result.runs
    assert oracle.spec.kind == "oracle"
    # its first period is sized for the load of [0, 30 s), the same as every other policy's start
    for name in SMALL_SERVERS:
        assert oracle.cluster.configs[name][0].accelerator == result.initial[name].accelerator
    # it acts at the step (60 s), not before (the load is flat until then), on every server,
    # and buys capacity (fewer replicas of a larger accelerator, maybe: compare costs)
    cluster = oracle.cluster
    assert {c.t_ms for c in cluster.changes} == {MIN}
    assert {c.server for c in cluster.changes} == set(SMALL_SERVERS)

    def rate(n: str, accelerator: str, replicas: int) -> float:
        return replicas * cluster.cost_per_replica_hour(cluster.model(n), accelerator)

    before = sum(rate(n, d.accelerator, d.replicas) for n, d in result.initial.items())
    after = sum(rate(n, cluster.config(n).accelerator, cluster.replicas(n)) for n in SMALL_SERVERS)
    assert after > before
    new = [r for n in SMALL_SERVERS for r in oracle.sim.replicas(n) if r.created_at > 0]
    assert new and all(r.created_at == MIN and r.ready_at == MIN for r in new)
    # the other policies keep the scenario's 60 s start-up
    late = [r for n in SMALL_SERVERS for r in inferno.sim.replicas(n) if r.created_at > 0]
    assert late and all(r.ready_at >= r.created_at + MIN for r in late)  # inf: still starting
    assert any(r.ready_at == r.created_at + MIN for r in late)
    # sized for the coming period only, it costs no more than the peak allocation all along
    assert report.policy("oracle").cost <= report.policy("static").cost
    assert report.policy("oracle").attainment >= 0.99
    assert static.cluster.changes == []


def test_times_oracle_column_and_summary_csv(
    stepped: tuple[RunResult, Report], tmp_path: Path
) -> None:
    _, report = stepped
    headers, rows = summary_rows(report)
    col = headers.index("× oracle")
    assert headers[col - 1] == "cost"
    by = {r[0]: r for r in rows}
    oracle, static = report.policy("oracle"), report.policy("static")
    assert by["oracle"][col] == "1.00×"
    assert by["static"][col] == f"{static.cost / oracle.cost:.2f}×"
    assert by["static"][col] != "1.00×"  # the step makes the peak allocation dearer
    # without an oracle, no column
    plain = Report(report.result, [p for p in report.policies if p.kind != "oracle"], [], [])
    assert "× oracle" not in summary_rows(plain)[0]
    # the summary file carries it too
    with open(write_summary(report, tmp_path), newline="") as f:
        got = {r["policy"]: r for r in csv.DictReader(f)}
    assert set(got) == {"oracle", "inferno", "static"}
    assert float(got["oracle"]["cost_x_oracle"]) == 1.0
    assert float(got["static"]["cost_x_oracle"]) == pytest.approx(
        static.cost / oracle.cost, rel=1e-5
    )
    assert int(got["oracle"]["rollouts"]) == report.policy("oracle").rollouts


def test_servers_meeting_their_slo_add_up_to_the_policy(
    stepped: tuple[RunResult, Report], tmp_path: Path
) -> None:
    result, report = stepped
    for p in report.policies:
        assert [s.server for s in p.servers] == list(result.runs[0].cluster.server_names())
        # the servers' requests are the policy's, judged and met
        assert sum(s.judged for s in p.servers) == p.judged
        assert sum(s.met for s in p.servers) == p.met
        worst = p.worst_server
        assert worst is not None and worst.attainment == min(s.attainment for s in p.servers)
        assert p.servers_meeting() == sum(s.attainment >= 0.99 for s in p.servers)
        # a bar above the worst server's share leaves it out; one at it keeps it
        assert p.servers_meeting(worst.attainment) == len(p.servers)
        if worst.attainment < 1.0:
            above = math.nextafter(worst.attainment, 2.0)
            assert p.servers_meeting(above) < len(p.servers)
    # the bar is the scenario's sizing quantile (0.99 here), or 99% without one
    assert server_bar(report) == 0.99
    p95 = replace(result, scenario=replace(result.scenario, sizing_quantile=0.95))
    assert server_bar(replace(report, result=p95)) == 0.95
    assert "≥ 95% of their requests" in server_lines(replace(report, result=p95))[0]
    mean = replace(result, scenario=replace(result.scenario, sizing_quantile=None))
    assert server_bar(replace(report, result=mean)) == 0.99
    lines = server_lines(report)
    assert len(lines) == len(report.policies)
    oracle = report.policy("oracle")
    assert lines[0].startswith(f"oracle: {oracle.servers_meeting()}/2 servers meet their SLO")
    with open(write_summary(report, tmp_path), newline="") as f:
        got = {r["policy"]: r for r in csv.DictReader(f)}
    for p in report.policies:
        assert int(got[p.name]["servers_meeting_slo"]) == p.servers_meeting()
        assert got[p.name]["worst_server"] == p.worst_server.server  # type: ignore[union-attr]


def test_foresight_sizes_each_period_for_its_own_peak(tmp_path: Path) -> None:
    doc = small_scenario(duration=120, policies=["oracle"])
    sc = load_scenario(write_scenario(tmp_path, doc))
    seer = Foresight(sc)
    assert seer.period(90_000.0) == (90_000.0, 120_000.0)  # clipped at the end of the run
    before, after = seer.loads(30_000.0), seer.loads(60_000.0)
    for name in SMALL_SERVERS:
        base = sc.server(name).load.arrival_rate
        assert before[name].arrival_rate == pytest.approx(base)
        assert after[name].arrival_rate == pytest.approx(1.5 * base)
        assert after[name].out_tokens == sc.output_tokens[name].mean


def test_cli_prints_the_oracle_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = small_scenario(duration=60, policies=["oracle", "static"])
    out = tmp_path / "out"
    path = write_scenario(tmp_path, doc)
    assert main(["simulate", str(path), "--out", str(out), "--quiet", "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert "× oracle" in text and "1.00×" in text
    assert "servers meet their SLO for ≥ 99% of their requests (worst: " in text
    assert (out / "summary.csv").is_file()
