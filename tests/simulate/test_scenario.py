"""Scenario files: defaults, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferno.emulator import (
    Bursts,
    Diurnal,
    Exponential,
    Fixed,
    LogNormal,
    Poisson,
    Replay,
    Steps,
)
from inferno.errors import InputError
from inferno.simulate import load_scenario
from inferno.simulate.scenario import HpaOptions, InfernoOptions, QueueOptions

from .scenarios import DEMO, SAMPLE, small_scenario, write_scenario


def error_of(tmp_path: Path, doc: object, name: str = "scenario.yaml") -> InputError:
    path = write_scenario(tmp_path, doc, name)
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    return info.value


def test_minimal_scenario_gets_the_documented_defaults(tmp_path: Path) -> None:
    sc = load_scenario(write_scenario(tmp_path, {"system": str(SAMPLE), "duration": 60}))
    assert len(sc.servers) == 27
    assert sc.seed == 0 and sc.control_period_s == 30 and sc.startup_delay_s == 60
    assert sc.router == "random" and sc.service == "deterministic" and sc.max_queue is None
    assert sc.metrics.window_s == 30 and sc.metrics.noise == 0.05
    assert [p.name for p in sc.policies] == ["inferno", "static", "hpa", "queue"]
    # Poisson at the server's arrivalRate, Fixed tokens at avgLength (G0: the output length)
    trace = sc.traces["Free-llama_7b"]
    assert isinstance(trace, Poisson) and trace.rate_per_min == 480
    assert sc.output_tokens["Free-llama_7b"] == Fixed(1024)
    assert sc.input_tokens["Free-llama_7b"] == Fixed(0)
    assert sc.period_ends_ms == [30_000.0, 60_000.0]
    assert sc.sizing_quantile is None


def test_relative_paths_options_and_json(tmp_path: Path) -> None:
    doc = small_scenario(
        system="../sys",
        tokens={"default": {"out": {"kind": "exponential"}}, "Premium-llama3_8b": {"out": 64}},
        sizing={"quantile": 0.99},
        policies=[
            {"inferno": {"headroom": 0.2, "stabilization_window": 60}},
            {"hpa": {"target": 0.5, "max_replicas": 4, "metric": "batch"}},
            {"hpa": {"label": "hpa-90", "target": 0.9}},
            {"queue": {"target_per_replica": 8}},
        ],
    )
    (tmp_path / "sys").symlink_to(SAMPLE)
    sub = tmp_path / "scenarios"
    sub.mkdir()
    sc = load_scenario(write_scenario(sub, doc, "s.json"))
    assert sc.system_dir == (tmp_path / "sys").resolve()
    assert sc.servers == ("Premium-llama3_8b", "Bronze-mistral_7b")
    steps = sc.traces["Bronze-mistral_7b"]
    assert isinstance(steps, Steps) and steps.steps == ((0.0, 240.0), (60.0, 360.0))
    assert sc.output_tokens["Bronze-mistral_7b"] == Exponential(1024.0)
    assert sc.output_tokens["Premium-llama3_8b"] == Fixed(64)
    doc["tokens"] = {"default": {"out": {"kind": "lognormal", "cv": 1.5}}}
    sc = load_scenario(write_scenario(sub, doc, "lognormal.json"))
    assert sc.output_tokens["Bronze-mistral_7b"] == LogNormal(1024.0, 1.5)
    doc["tokens"] = {"default": {"out": {"kind": "lognormal", "cv": 1.5, "max": 8192}}}
    sc = load_scenario(write_scenario(sub, doc, "capped.json"))
    assert sc.output_tokens["Bronze-mistral_7b"] == LogNormal(1024.0, 1.5, 8192)
    doc["tokens"] = {"default": {"out": {"kind": "exponential", "max": 4096}}}
    sc = load_scenario(write_scenario(sub, doc, "capped_exp.json"))
    assert sc.output_tokens["Bronze-mistral_7b"] == Exponential(1024.0, 4096)
    for bad, says in (({"kind": "lognormal"}, "cv: required field is missing"),
                      ({"kind": "lognormal", "cv": 0}, "cv: must be > 0"),
                      ({"kind": "lognormal", "cv": 1e9}, "cv"),
                      ({"kind": "lognormal", "cv": 1, "n": 3}, "n"),
                      ({"kind": "lognormal", "cv": 1, "max": 0}, "max: must be ≥ 1"),
                      ({"kind": "exponential", "max": 2.5}, "max: expected an integer"),
                      ({"kind": "exponential", "max": 1e308}, "max: must be ≤")):  # fmt: skip
        doc["tokens"] = {"default": {"out": bad}}
        with pytest.raises(InputError, match=says):
            load_scenario(write_scenario(sub, doc, "bad.json"))
    names = [p.name for p in sc.policies]
    assert names == ["inferno", "hpa", "hpa-90", "queue"]
    assert sc.policies[0].options == InfernoOptions(
        (("headroom", 0.2), ("stabilization_window", 60))
    )
    assert sc.policies[1].options == HpaOptions(target=0.5, max_replicas=4, metric="batch")
    assert sc.policies[3].options == QueueOptions(target_per_replica=8.0)
    # sizing on the 99th percentile: the quantile keys and exactWaitQuantile in the static docs
    classes = sc.static_docs["serviceclass-data.json"]["serviceClasses"]
    assert all(row["slo-ttw-quantile"] == 0.99 for row in classes if "slo-ttw" in row)
    assert sc.static_docs["optimizer-data.json"]["optimizer"]["exactWaitQuantile"] is True


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"policies": ["inferno", "magic"]}, "$.policies[1]", "unknown policy"),
        (
            {"policies": [{"hpa": {"target": 0.7, "speed": 2}}]},
            "$.policies[0].hpa.speed",
            "unknown",
        ),
        ({"policies": [{"hpa": {"target": -1}}]}, "$.policies[0].hpa.target", "> 0"),
        # the inferno policy takes deployed settings only, checked as the services check them
        ({"policies": [{"inferno": {"boost": 2}}]}, "$.policies[0].inferno.boost", "unknown"),
        (
            {"policies": [{"inferno": {"margin_z": -1}}]},
            "$.policies[0].inferno.margin_z",
            "INFERNO_MARGIN_Z",
        ),
        (
            {"policies": [{"inferno": {"forecast": "yes"}}]},
            "$.policies[0].inferno.forecast",
            "true or false",
        ),
        (
            {"policies": [{"inferno": {"startup_time": True}}]},
            "$.policies[0].inferno.startup_time",
            "number",
        ),
        ({"policies": ["hpa", "hpa"]}, "$.policies[1]", "label"),
        ({"duration": -5}, "$.duration", "> 0"),
        ({"duration": "long"}, "$.duration", "number"),
        ({"control_period": 0}, "$.control_period", "> 0"),
        ({"servers": ["Premium-llama3_8b", "Gold-gpt5"]}, "$.servers[1]", "unknown server"),
        ({"traces": {"Gold-gpt5": {"kind": "poisson"}}}, '$.traces["Gold-gpt5"]', "unknown server"),
        (
            {"traces": {"default": {"kind": "sawtooth"}}},
            "$.traces.default.kind",
            "unknown trace kind",
        ),
        ({"traces": {"default": {"rate": 3}}}, "$.traces.default.kind", "missing"),
        (
            {"traces": {"default": {"kind": "steps", "steps": [[0, 1], [0, 2]]}}},
            "$.traces.default.steps[1][0]",
            "increase",
        ),
        (
            {"traces": {"default": {"kind": "diurnal", "amplitude": 2, "period": 60}}},
            "$.traces.default.amplitude",
            "≤ 1",
        ),
        (
            {"traces": {"default": {"kind": "replay", "file": "nowhere.csv"}}},
            "$.traces.default.file",
            "not found",
        ),
        (
            {"tokens": {"default": {"out": {"kind": "gamma"}}}},
            "$.tokens.default.out.kind",
            "one of",
        ),
        ({"tokens": {"default": {"out": 0}}}, "$.tokens.default.out", "output token"),
        ({"metrics": {"noise": -0.1}}, "$.metrics.noise", "≥ 0"),
        ({"router": "fastest"}, "$.router", "one of"),
        ({"sizing": {"quantile": 1.5}}, "$.sizing.quantile", "< 1"),
        ({"colour": "red"}, "$.colour", "unknown field"),
    ],
)
def test_bad_fields_are_named(
    tmp_path: Path, change: dict[str, Any], path: str, words: str
) -> None:
    err = error_of(tmp_path, small_scenario(**change))
    assert err.path == path, str(err)
    assert words in err.problem, str(err)
    assert path in str(err) and "scenario.yaml" in str(err)


def test_missing_system_directory(tmp_path: Path) -> None:
    err = error_of(tmp_path, small_scenario(system="no-such-dir"))
    assert err.path == "$.system" and "not found" in err.problem
    err = error_of(tmp_path, {"duration": 60})
    assert err.path == "$.system" and "missing" in err.problem


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_scenario(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("system: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="malformed YAML at line"):
        load_scenario(bad)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="malformed JSON"):
        load_scenario(bad_json)
    err = error_of(tmp_path, ["not", "a", "mapping"])
    assert err.path == "$"


def test_the_bundled_demo_is_valid() -> None:
    sc = load_scenario(DEMO)
    assert sc.system_dir == SAMPLE.resolve()
    assert len(sc.servers) == 27
    assert sc.startup_delay_s == 60 and 30 <= sc.control_period_s <= 60
    assert 300 <= sc.duration_s <= 600
    assert {p.kind for p in sc.policies} == {"inferno", "oracle", "static", "hpa", "queue"}
    # the Inferno policy runs the deployed defaults: no option at all
    (inferno,) = [p for p in sc.policies if p.kind == "inferno"]
    assert inferno.options.overrides() == {}  # type: ignore[union-attr]


def test_replay_bursts_and_diurnal_traces(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text(
        "timestamp,server,input_tokens,output_tokens\n0.5,a,10,20\n1.5,a,10,30\n2.0,b,5,5\n",
        encoding="utf-8",
    )
    doc = small_scenario(
        traces={
            "Premium-llama3_8b": {"kind": "replay", "file": "log.csv", "server": "a"},
            "default": {"kind": "bursts", "relative": True, "base": 0.5, "burst": 3},
        }
    )
    sc = load_scenario(write_scenario(tmp_path, doc))
    replay = sc.traces["Premium-llama3_8b"]
    assert isinstance(replay, Replay) and replay.times_ms.tolist() == [500.0, 1500.0]
    bursts = sc.traces["Bronze-mistral_7b"]
    assert isinstance(bursts, Bursts) and (bursts.base_per_min, bursts.burst_per_min) == (120, 720)
    doc["traces"] = {"default": {"kind": "diurnal", "period": 600, "amplitude": 0.3}}
    sc = load_scenario(write_scenario(tmp_path, doc))
    assert sc.traces["Bronze-mistral_7b"] == Diurnal(240.0, 0.3, 600.0)
    doc["traces"] = {"Premium-llama3_8b": {"kind": "replay", "file": "log.csv", "server": "c"}}
    err = error_of(tmp_path, doc)
    assert err.path == '$.traces["Premium-llama3_8b"].server' and "a, b" in err.problem
