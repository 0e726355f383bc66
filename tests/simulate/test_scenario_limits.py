"""The bounds of a scenario's numbers and the estimate of a run's size (inferno.simulate.limits)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from inferno.emulator import Bursts, Poisson, Steps
from inferno.errors import InputError
from inferno.simulate import load_scenario
from inferno.simulate.limits import (
    CONTROL_STEP_EVENTS,
    MAX_DURATION_S,
    MAX_EVENTS,
    MIN_CONTROL_PERIOD_S,
    check_run_size,
    estimate_run,
)

from .scenarios import DEMO, small_scenario, write_scenario


def test_the_demo_is_well_under_the_limit() -> None:
    estimate = estimate_run(load_scenario(DEMO))
    assert estimate.policies == 5 and estimate.servers == 27 and estimate.periods == 20
    # the demo has 44,003 requests per policy (README); the estimate is their expectation
    assert estimate.requests == pytest.approx(44_003, rel=0.02)
    assert 300_000 < estimate.events < MAX_EVENTS / 10
    assert check_run_size(load_scenario(DEMO)) == estimate


def test_the_benchmark_hour_runs_without_force() -> None:
    """bench/simulate.py: the demo stretched to an hour, with the same load shape."""
    sc = load_scenario(DEMO)
    d = 3600.0
    shape = [(0.0, 1.0), (d / 6, 0.4), (d / 2, 0.5), (2 * d / 3, 0.625), (5 * d / 6, 1.0)]
    traces = {
        s.name: Steps([(t, f * s.load.arrival_rate) for t, f in shape]) for s in sc.system.servers
    }
    estimate = check_run_size(dataclasses.replace(sc, duration_s=d, traces=traces))
    assert estimate.requests == pytest.approx(296_484, rel=0.02)  # what the benchmark drew
    assert estimate.events < MAX_EVENTS


def test_a_large_run_is_refused_with_the_way_out(tmp_path: Path) -> None:
    path = write_scenario(tmp_path, small_scenario(duration=MAX_DURATION_S))
    sc = load_scenario(path)  # valid: only its size is too large
    with pytest.raises(InputError) as info:
        check_run_size(sc)
    err = info.value
    assert err.source == str(path) and err.path is None
    assert "estimated at" in err.problem and "--force" in err.problem
    assert f"{MAX_EVENTS:,}" in err.problem and "\n" not in err.problem


def test_the_estimate_counts_requests_control_steps_and_trace_segments(tmp_path: Path) -> None:
    doc = small_scenario(duration=600, control_period=60, policies=["static", "hpa"])
    sc = load_scenario(write_scenario(tmp_path, doc))
    names = sc.servers
    poisson = {n: Poisson(60.0) for n in names}  # 1 req/s each
    bursts = {n: Bursts(30.0, 90.0, 240.0, 60.0) for n in names}  # long-run 42 req/min
    steps = {n: Steps([(0.0, 60.0), (300.0, 120.0)]) for n in names}
    est = estimate_run(dataclasses.replace(sc, traces=poisson))
    assert (est.policies, est.servers, est.periods) == (2, 2, 10)
    assert est.requests == pytest.approx(2 * 600.0)
    assert est.trace_steps == 0
    assert est.events == pytest.approx(2 * (1200.0 + 2 * 10 * CONTROL_STEP_EVENTS))
    est = estimate_run(dataclasses.replace(sc, traces=bursts))
    assert est.requests == pytest.approx(2 * 42.0 * 10)
    assert est.trace_steps == pytest.approx(2 * 2 * 600.0 / 300.0)  # two switches a cycle
    est = estimate_run(dataclasses.replace(sc, traces=steps))
    assert est.requests == pytest.approx(2 * (300.0 + 600.0))
    assert est.trace_steps == 2 * 10 * 2  # ten one-minute windows of two steps


@pytest.mark.parametrize(
    ("change", "accepted"),
    [
        ({"duration": MAX_DURATION_S}, True),
        ({"duration": MAX_DURATION_S * 1.000001}, False),
        ({"control_period": MIN_CONTROL_PERIOD_S}, True),
        ({"control_period": MIN_CONTROL_PERIOD_S * 0.999}, False),
        ({"seed": 2**63 - 1}, True),
        ({"seed": 2**63}, False),
        ({"max_queue": 1_000_000}, True),
        ({"max_queue": 1_000_001}, False),
        ({"startup_delay": 1e7}, True),
        ({"startup_delay": 1e7 + 1}, False),
        ({"traces": {"default": {"kind": "poisson", "rate": 1e9}}}, True),
        ({"traces": {"default": {"kind": "poisson", "rate": 1.0000001e9}}}, False),
        ({"traces": {"default": {"kind": "steps", "steps": [[-1e7, 1], [1e7, 2]]}}}, True),
        ({"traces": {"default": {"kind": "steps", "steps": [[-1e7 - 1, 1]]}}}, False),
        ({"tokens": {"default": {"out": 10_000_000}}}, True),
        ({"tokens": {"default": {"out": 10_000_001}}}, False),
        ({"policies": [{"inferno": {"headroom": 10}}]}, True),
        ({"policies": [{"inferno": {"headroom": 10.5}}]}, False),
    ],
)
def test_bounds_are_inclusive(tmp_path: Path, change: dict[str, Any], accepted: bool) -> None:
    path = write_scenario(tmp_path, small_scenario(**change))
    if accepted:
        load_scenario(path)
    else:
        with pytest.raises(InputError) as info:
            load_scenario(path)
        problem = info.value.problem
        assert "≤" in problem or "≥" in problem or "in [0, 10]" in problem, info.value


def test_a_json_scenario_with_a_huge_integer_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"system": "x", "duration": ' + "9" * 5000 + "}", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    assert info.value.problem == "integer with more than 4300 digits"
