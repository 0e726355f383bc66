"""``inferno simulate``'s inferno policy sizes with the deployed ``INFERNO_MODEL`` (inferno), or
the model its scenario sets under the setting's name, ``model``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferno.control import optimize as real_optimize
from inferno.errors import InputError
from inferno.simulate import load_scenario, run_scenario
from inferno.simulate import policies as policies_module
from inferno.simulate.scenario import InfernoOptions

from .scenarios import small_scenario, write_scenario

#: a server of the large sample the two models size differently (14 vs 12 replicas at its load)
SERVER = "Premium-mixtral_8_7b"


def _replicas(result: Any) -> dict[str, int]:
    return {d.server: d.replicas for d in result.decisions if d.allocated}


def test_the_inferno_policy_runs_the_default_model_or_the_scenarios(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, dict[str, int], dict[str, int]]] = []

    def spy(static: Any, servers: Any, classes: Any, **kw: Any) -> Any:
        result = real_optimize(static, servers, classes, **kw)
        if "model" in kw:  # the inferno policy's cycle (the initial sizing passes none)
            other = "accurate" if kw["model"] == "inferno" else "inferno"
            alt = real_optimize(static, servers, classes, **{**kw, "model": other})
            calls.append((kw["model"], _replicas(result), _replicas(alt)))
        return result

    monkeypatch.setattr(policies_module, "optimize", spy)
    doc = small_scenario(
        duration=90,
        servers=[SERVER],
        metrics={"window": 30, "noise": 0.0},
        policies=["inferno", {"inferno": {"label": "accurate", "model": "accurate"}}],
    )
    scenario = load_scenario(write_scenario(tmp_path, doc))
    options = [p.options for p in scenario.policies]
    assert all(isinstance(o, InfernoOptions) for o in options)
    assert [o.overrides() for o in options if isinstance(o, InfernoOptions)] == [
        {},
        {"model": "accurate"},
    ]
    result = run_scenario(scenario)
    steps = len(calls) // 2  # each policy's cycles, one after the other
    assert steps >= 2
    assert [model for model, _, _ in calls] == ["inferno"] * steps + ["accurate"] * steps
    # the model decides: on the same collected loads the other one decides otherwise
    assert all(mine[SERVER] != other[SERVER] for _, mine, other in calls)
    # and what the accurate policy decided last is what its cluster runs
    assert result.runs[1].cluster.replicas(SERVER) == calls[-1][1][SERVER]


@pytest.mark.parametrize(
    ("value", "words"), [("exact", "INFERNO_MODEL='exact'"), (2, "expected a name")]
)
def test_a_bad_model_in_a_scenario_names_the_field(
    tmp_path: Path, value: object, words: str
) -> None:
    doc = small_scenario(policies=[{"inferno": {"model": value}}])
    with pytest.raises(InputError) as err:
        load_scenario(write_scenario(tmp_path, doc))
    assert "$.policies[0].inferno.model" in str(err.value)
    assert words in str(err.value)


def test_the_policy_is_told_the_measured_spread_and_the_annotated_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as the deployed collector: the lengths' CV and family fitted from the window's
    # histograms, and the cap from the Deployment's inferno.server/max-output-tokens, which a
    # scenario's out.max sets
    rows: list[dict[str, Any]] = []

    def spy(static: Any, servers: Any, classes: Any, **kw: Any) -> Any:
        if "model" in kw:  # the inferno policy's cycle
            rows.extend(s for s in servers if s["name"] == SERVER)
        return real_optimize(static, servers, classes, **kw)

    monkeypatch.setattr(policies_module, "optimize", spy)
    doc = small_scenario(
        duration=150,
        servers=[SERVER],
        metrics={"window": 30, "noise": 0.0},
        # enough completions in a window for a fit (inferno.prom.lengths.MIN_REQUESTS)
        traces={"default": {"kind": "poisson", "relative": True, "rate": 5.0}},
        tokens={"default": {"in": 128, "out": {"kind": "lognormal", "cv": 1.5, "max": 2048}}},
        policies=[{"inferno": {"model": "accurate"}}],
    )
    result = run_scenario(load_scenario(write_scenario(tmp_path, doc)))
    deployment = next(iter(result.runs[0].cluster.deployments.values()))
    assert deployment["metadata"]["annotations"]["inferno.server/max-output-tokens"] == "2048"
    assert len(rows) >= 3
    loads = [row["currentAlloc"]["load"] for row in rows]
    # the fit knows the cap, so its CV is one the cap allows and the model keeps the cap (fitted
    # uncapped, the served lengths' histogram gave a CV of 1.35 at a mean of 788, more than
    # 2048 tokens allow, and the cap was left out)
    for load in loads:
        assert load["outTokensMax"] == 2048
        most = (2048 / load["avgOutTokens"] - 1.0) ** 0.5
        assert load.get("outTokensCOV", 0.0) <= most
    # the first window sees the short requests only (the long ones have not finished yet); the
    # last ones, the served lengths
    assert loads[-1]["outTokensDist"] == "lognormal"
    assert 0.6 < loads[-1]["outTokensCOV"] < 1.2
