"""The bundled demo (``make demo``): Inferno, with the deployed defaults, meets its SLOs for at
least 99% of the requests, uses fewer GPU-hours than the static deployment sized for the peak,
and costs at most 1.35× the oracle (which knows the coming load and starts replicas at once)."""

from __future__ import annotations

import time

import pytest

from inferno.simulate import build_report, load_scenario, run_scenario

from .scenarios import DEMO


@pytest.mark.slow
def test_demo_inferno_meets_slos_with_fewer_gpu_hours_than_static() -> None:
    scenario = load_scenario(DEMO)
    started = time.perf_counter()
    report = build_report(run_scenario(scenario))
    wall = time.perf_counter() - started
    inferno = report.policy("inferno")
    static = report.policy("static")
    assert inferno.attainment >= 0.99, inferno
    assert inferno.gpu_hours < static.gpu_hours, (inferno.gpu_hours, static.gpu_hours)
    assert inferno.rejected == 0
    # the table states the difference against every baseline
    vs = {c.baseline: c for c in report.comparisons if c.policy == "inferno"}
    assert set(vs) == {"oracle", "static", "hpa", "queue"}
    assert vs["static"].gpu_hours < 0
    oracle = report.policy("oracle")
    assert inferno.cost <= 1.35 * oracle.cost, (inferno.cost, oracle.cost)
    assert wall < 60.0
