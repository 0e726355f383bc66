"""The sizings a run makes without a measurement (initial, peak, static, oracle) are told the
scenario's lengths as the collector fits them (:mod:`inferno.simulate.loads`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferno.control import optimize as real_optimize
from inferno.simulate import load_scenario, run_scenario
from inferno.simulate import policies as policies_module
from inferno.simulate.loads import ScenarioLoads

from .scenarios import small_scenario, write_scenario

SERVER = "Premium-mixtral_8_7b"


def _scenario(tmp_path: Path, out: Any, policies: list[Any]) -> Any:
    doc = small_scenario(
        duration=60,
        servers=[SERVER],
        metrics={"window": 30, "noise": 0.0},
        tokens={"default": {"in": {"kind": "exponential", "mean": 128}, "out": out}},
        policies=policies,
    )
    return load_scenario(write_scenario(tmp_path, doc))


def test_the_sizings_without_a_measurement_are_told_the_lengths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows: list[dict[str, Any]] = []

    def spy(static: Any, servers: Any, classes: Any, **kw: Any) -> Any:
        if "model" not in kw:  # the initial, peak and oracle sizings (the policy's pass one)
            rows.extend(s for s in servers if s["name"] == SERVER)
        return real_optimize(static, servers, classes, **kw)

    monkeypatch.setattr(policies_module, "optimize", spy)
    out = {"kind": "lognormal", "mean": 512, "cv": 1.5, "max": 2048}
    scenario = _scenario(tmp_path, out, ["static", "oracle"])
    run_scenario(scenario)
    assert len(rows) >= 3
    served = scenario.output_tokens[SERVER]
    for row in rows:
        load = row["currentAlloc"]["load"]
        assert load["avgOutTokens"] == pytest.approx(served.mean)
        assert load["outTokensMax"] == 2048
        assert load["outTokensDist"] == "lognormal"
        # the served (capped) lengths' CV, about 1.05 for these (not the uncapped 1.5)
        assert 0.95 < load["outTokensCOV"] < 1.15
        assert load["inTokensDist"] == "gamma"
        assert load["inTokensCOV"] == pytest.approx(1.0, abs=0.05)


def test_the_accurate_model_sizes_the_told_lengths_otherwise(tmp_path: Path) -> None:
    # what the fields change: the same rate told the lengths, and told the means only
    out = {"kind": "lognormal", "mean": 512, "cv": 1.5}
    scenario = _scenario(tmp_path, out, ["static"])
    rate = 600.0
    told = policies_module.server_rows(
        list(scenario.system.servers), ScenarioLoads(scenario).at({SERVER: rate})
    )
    plain = ("arrivalRate", "avgInTokens", "avgOutTokens")
    means = [
        {**r, "currentAlloc": {"load": {k: r["currentAlloc"]["load"][k] for k in plain}}}
        for r in told
    ]
    assert told != means

    def replicas(rows: list[dict[str, Any]]) -> int:
        result = real_optimize(scenario.static_docs, rows, [], model="accurate")
        (d,) = [d for d in result.decisions if d.server == SERVER]
        return d.replicas

    assert replicas(told) != replicas(means)
