"""Observations from the collector's measurement, the tuned profiles in a system, and the
optimizer's feasibility guard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inferno.control.optimize import optimize, prepare, read_static_data
from inferno.model.profiles import BatchProfile, G0Profile, Tokens
from inferno.settings import Settings, SettingsError
from inferno.tuning import observations_from, with_tuned_profiles
from inferno.units import MS_PER_MIN

SAMPLE = Path(__file__).resolve().parent.parent.parent / "samples" / "large"


def sample_rows(*names: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((SAMPLE / "server-data.json").read_text())["servers"]
    return [r for r in rows if r["name"] in names]


def test_observations_join_the_measurement_and_the_rows_by_server_name() -> None:
    measurement = {
        "window": 120,
        "servers": [
            {
                "server": "a",
                "computeMs": 40.0,
                "avgBatch": 6.0,
                "completionsRpm": 600.0,
                "load": {"arrivalRate": 610.0, "avgInTokens": 100.0, "avgOutTokens": 50.0},
            },
            {"server": "gone", "computeMs": 1.0, "load": None},
            {"server": "b", "computeMs": None, "avgBatch": None, "completionsRpm": None},
        ],
        "problems": [],
    }
    rows = [
        {
            "name": "a",
            "model": "m",
            "currentAlloc": {"accelerator": "A100", "numReplicas": 2},
        },
        {
            "name": "b",
            "model": "n",
            "currentAlloc": {"load": {"arrivalRate": 1, "avgLength": 512}},
        },
    ]
    found, notes = observations_from(measurement, rows)
    a, b = found
    assert (a.server, a.model, a.accelerator) == ("a", "m", "A100")
    assert (a.compute_ms, a.avg_batch) == (40.0, 6.0)
    assert a.requests == pytest.approx(1200.0)  # 600/min over 120 s
    assert a.occupancy == pytest.approx(600 / MS_PER_MIN * 40 / 2)  # Little's law per replica
    assert a.tokens == Tokens(100.0, 50.0)
    assert (b.accelerator, b.compute_ms, b.requests, b.occupancy) == ("", None, None, None)
    assert b.tokens == Tokens(0.0, 512.0)  # G0's avgLength, from the row
    assert notes == ["server gone: observed but not optimized (no load): not used"]


def test_observations_from_junk_are_empty() -> None:
    assert observations_from({"servers": "x"}, []) == ([], [])
    assert observations_from({}, [{"name": "a"}]) == ([], [])


def test_tuned_profiles_replace_alpha_and_beta_only() -> None:
    static = read_static_data(SAMPLE)
    system = prepare(static, sample_rows("Premium-llama_7b"), []).system
    tuned = with_tuned_profiles(system, {("llama_7b", "G2"): (1.0, 2.0)})
    before = {(p.model, p.accelerator): p for p in system.profiles}
    after = {(p.model, p.accelerator): p for p in tuned.profiles}
    assert set(before) == set(after)
    changed = [k for k in before if before[k] != after[k]]
    assert changed == [("llama_7b", "G2")]
    p = after[("llama_7b", "G2")].profile
    old = before[("llama_7b", "G2")].profile
    assert isinstance(p, G0Profile) and isinstance(old, G0Profile)
    assert (p.alpha, p.beta) == (1.0, 2.0)
    assert (p.max_batch_size, p.at_tokens) == (old.max_batch_size, old.at_tokens)
    assert with_tuned_profiles(system, {}) is system


def _profiles_of(model: str) -> dict[tuple[str, str], tuple[float, float]]:
    static = read_static_data(SAMPLE)
    return {
        (m["name"], m["acc"]): (float(m["alpha"]), float(m["beta"]))
        for m in static["model-data.json"]["models"]
        if m["name"] == model
    }


def test_a_tuned_profile_that_makes_a_server_infeasible_falls_back_to_the_base() -> None:
    static = read_static_data(SAMPLE)
    rows = sample_rows("Premium-llama_7b", "Premium-llama_13b")
    base = optimize(static, rows, [])
    assert set(base.solution["allocations"]) == {"Premium-llama_7b", "Premium-llama_13b"}
    # a bad fit: every llama_7b profile 20x slower, so no accelerator meets its ITL target
    bad = {k: (20 * a, 20 * b) for k, (a, b) in _profiles_of("llama_7b").items()}
    a13, b13 = _profiles_of("llama_13b")[("llama_13b", "G2")]
    good = {("llama_13b", "G2"): (1.3 * a13, 1.3 * b13)}
    result = optimize(static, rows, [], tuned={**bad, **good})
    allocations = result.solution["allocations"]
    assert set(allocations) == {"Premium-llama_7b", "Premium-llama_13b"}
    assert result.solution["unallocated"] == {}
    assert allocations["Premium-llama_7b"] == base.solution["allocations"]["Premium-llama_7b"]
    assert set(result.fallbacks) == set(bad)
    assert all("Premium-llama_7b" in why for why in result.fallbacks.values())
    assert result.applied == good  # the other model keeps its tuning
    assert allocations["Premium-llama_13b"] != base.solution["allocations"]["Premium-llama_13b"]
    assert any("base profile used for llama_7b" in n for n in result.notes)


def test_a_tuned_profile_that_only_moves_a_server_is_kept() -> None:
    static = read_static_data(SAMPLE)
    rows = sample_rows("Premium-llama_7b")
    slower = {k: (3 * a, 3 * b) for k, (a, b) in _profiles_of("llama_7b").items()}
    result = optimize(static, rows, [], tuned=slower)
    assert result.fallbacks == {}
    assert result.applied == slower
    assert result.solution["allocations"]["Premium-llama_7b"]["cost"] > 46.0


def test_tuned_pairs_without_a_profile_are_ignored() -> None:
    static = read_static_data(SAMPLE)
    result = optimize(static, sample_rows("Premium-llama_7b"), [], tuned={("x", "y"): (1, 1)})
    assert result.applied == {} and result.fallbacks == {}


def test_without_tuning_the_answer_has_no_tuning_section() -> None:
    static = read_static_data(SAMPLE)
    assert "tuning" not in optimize(static, sample_rows("Premium-llama_7b"), []).to_json()


def test_tuning_settings() -> None:
    s = Settings.from_env({})
    assert (s.tuning.enabled, s.tuning.bounds, s.tuning.gate, s.tuning.reset_after) == (
        True,
        4.0,
        0.999,
        3,
    )
    s = Settings.from_env(
        {
            "INFERNO_TUNING_ENABLED": "false",
            "INFERNO_TUNING_BOUNDS": "2",
            "INFERNO_TUNING_GATE": "0.99",
            "INFERNO_TUNING_PROCESS_NOISE": "0",
            "INFERNO_TUNING_MEASUREMENT_NOISE": "0.1",
            "INFERNO_TUNING_INITIAL_UNCERTAINTY": "0.25",
            "INFERNO_TUNING_MIN_REQUESTS": "100",
            "INFERNO_TUNING_RESET_AFTER": "5",
        }
    )
    assert not s.tuning.enabled
    assert (s.tuning.bounds, s.tuning.gate, s.tuning.process_noise) == (2.0, 0.99, 0.0)
    assert (s.tuning.measurement_noise, s.tuning.initial_uncertainty) == (0.1, 0.25)
    assert (s.tuning.min_requests, s.tuning.reset_after) == (100.0, 5)
    assert Settings.from_env({"INFERNO_TUNING_ENABLED": "ON"}).tuning.enabled


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("INFERNO_TUNING_ENABLED", "maybe", "true or false"),
        ("INFERNO_TUNING_BOUNDS", "1", "> 1"),
        ("INFERNO_TUNING_BOUNDS", "inf", "finite"),
        ("INFERNO_TUNING_GATE", "1.5", "(0, 1)"),
        ("INFERNO_TUNING_GATE", "nan", "(0, 1)"),
        ("INFERNO_TUNING_PROCESS_NOISE", "-0.1", ">= 0"),
        ("INFERNO_TUNING_MEASUREMENT_NOISE", "0", "> 0"),
        ("INFERNO_TUNING_INITIAL_UNCERTAINTY", "x", "number"),
        ("INFERNO_TUNING_MIN_REQUESTS", "-1", ">= 0"),
        ("INFERNO_TUNING_RESET_AFTER", "0", ">= 1"),
        ("INFERNO_TUNING_RESET_AFTER", "2.5", "integer"),
    ],
)
def test_bad_tuning_settings_name_the_variable(env: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({env: value})
    assert env in str(err.value)
    assert expected in str(err.value)


def test_batch_profiles_keep_their_other_fields() -> None:
    from inferno.tuning import with_theta

    p = BatchProfile(1.0, 2.0, 8, queue_delay_ms=3.0)
    q = with_theta(p, (4.0, 5.0))
    assert isinstance(q, BatchProfile)
    assert (q.alpha, q.beta, q.max_batch_size, q.queue_delay_ms) == (4.0, 5.0, 8, 3.0)
