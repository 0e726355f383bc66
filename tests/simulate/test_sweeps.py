"""Target sweeps of the HPA and queue baselines: expansion, errors, the best of a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferno.errors import InputError
from inferno.simulate import build_report, load_scenario, run_scenario
from inferno.simulate.report import PolicyStat, best_of_sweep
from inferno.simulate.scenario import HpaOptions, QueueOptions
from inferno.simulate.tables import comparison_lines, summary_rows, sweep_lines

from .scenarios import small_scenario, write_scenario


def test_a_sweep_runs_one_instance_per_value(tmp_path: Path) -> None:
    doc = small_scenario(
        policies=[
            {"hpa": {"targets": [0.5, 0.75], "tolerance": 0.2}},
            {"hpa": {"label": "hpa-one", "target": 0.6}},
            {"queue": {"label": "q", "target_factors": [0.5, 2]}},
            {"queue": {"targets_per_replica": [8, 16.5]}},
        ]
    )
    sc = load_scenario(write_scenario(tmp_path, doc))
    got = [(p.name, p.kind, p.sweep) for p in sc.policies]
    assert got == [
        ("hpa@0.5", "hpa", "hpa"),
        ("hpa@0.75", "hpa", "hpa"),
        ("hpa-one", "hpa", ""),  # a single target is one policy, not a sweep
        ("q@0.5x", "queue", "q"),
        ("q@2x", "queue", "q"),
        ("queue@8", "queue", "queue"),
        ("queue@16.5", "queue", "queue"),
    ]
    assert sc.policies[1].options == HpaOptions(target=0.75, tolerance=0.2)  # options shared
    assert sc.policies[2].options == HpaOptions(target=0.6)
    assert sc.policies[4].options == QueueOptions(target_factor=2.0)
    assert sc.policies[6].options == QueueOptions(target_per_replica=16.5)


@pytest.mark.parametrize(
    ("policy", "path", "words"),
    [
        ({"hpa": {"targets": []}}, "$.policies[0].hpa.targets", "non-empty list"),
        ({"hpa": {"targets": 0.5}}, "$.policies[0].hpa.targets", "list"),
        ({"hpa": {"targets": [0.5, "x"]}}, "$.policies[0].hpa.targets[1]", "number"),
        ({"hpa": {"targets": [0.5, 0]}}, "$.policies[0].hpa.targets[1]", "> 0"),
        ({"hpa": {"targets": [1001]}}, "$.policies[0].hpa.targets[0]", "≤ 1000"),
        ({"hpa": {"targets": [0.5, 0.6, 0.5]}}, "$.policies[0].hpa.targets[2]", "already at [0]"),
        ({"hpa": {"targets": [0.5], "target": 0.6}}, "$.policies[0].hpa.targets", "not both"),
        (
            {"queue": {"targets_per_replica": [4], "target_factors": [1]}},
            "$.policies[0].queue.target_factors",
            "one sweep",
        ),
        (
            {"queue": {"targets_per_replica": [4, -2]}},
            "$.policies[0].queue.targets_per_replica[1]",
            "> 0",
        ),
        ({"queue": {"targets": [1, 2]}}, "$.policies[0].queue.targets", "unknown field"),
        ({"static": {"targets": [1, 2]}}, "$.policies[0].static.targets", "unknown field"),
        ({"oracle": {"headroom": 0.1}}, "$.policies[0].oracle.headroom", "unknown field"),
    ],
)
def test_bad_sweeps_name_the_field(
    tmp_path: Path, policy: dict[str, Any], path: str, words: str
) -> None:
    file = write_scenario(tmp_path, small_scenario(policies=[policy]))
    with pytest.raises(InputError) as info:
        load_scenario(file)
    assert info.value.path == path, info.value
    assert words in info.value.problem, info.value


def test_a_sweep_instance_cannot_share_a_name(tmp_path: Path) -> None:
    doc = small_scenario(policies=[{"hpa": {"targets": [0.5, 0.6]}}, {"hpa": {"label": "hpa@0.6"}}])
    with pytest.raises(InputError) as info:
        load_scenario(write_scenario(tmp_path, doc))
    assert info.value.path == "$.policies[1]" and "used twice" in info.value.problem


def stat(name: str, met: int, cost: float, judged: int = 1000) -> PolicyStat:
    return PolicyStat(
        name=name,
        kind="hpa",
        requests=judged,
        judged=judged,
        met=met,
        rejected=0,
        in_flight=0,
        gpu_hours=cost,
        cost=cost,
        changes=0,
        replicas_started=0,
        mean_replicas=1.0,
        wall_s=0.0,
        classes=(),
        sweep="hpa",
    )


def test_best_of_sweep_is_the_cheapest_meeting_99_percent() -> None:
    members = [
        stat("hpa@0.9", met=980, cost=10.0),  # cheapest, but misses for 2%
        stat("hpa@0.7", met=995, cost=12.0),  # the cheapest at ≥ 99%
        stat("hpa@0.6", met=990, cost=12.0),  # as cheap, but a lower attainment
        stat("hpa@0.5", met=999, cost=15.0),
    ]
    best, meets = best_of_sweep(members)
    assert (best.name, meets) == ("hpa@0.7", True)
    assert best_of_sweep(members, attainment=0.999)[0].name == "hpa@0.5"


def test_best_of_sweep_when_none_meets_99_percent() -> None:
    members = [
        stat("hpa@0.9", met=900, cost=10.0),
        stat("hpa@0.7", met=970, cost=12.0),
        stat("hpa@0.6", met=970, cost=11.0),  # the highest attainment, tied: the cheaper
        stat("hpa@0.5", met=0, cost=9.0, judged=0),  # nothing judged: never the best
    ]
    best, meets = best_of_sweep(members)
    assert (best.name, meets) == ("hpa@0.6", False)
    with pytest.raises(ValueError):
        best_of_sweep([])


def test_a_run_reports_the_best_of_each_sweep(tmp_path: Path) -> None:
    """A two-minute run; queue targets far apart (× 0.25 and × 4 the default) scale apart."""
    doc = small_scenario(
        duration=120,
        policies=["inferno", {"queue": {"target_factors": [0.25, 4]}}],
    )
    report = build_report(run_scenario(load_scenario(write_scenario(tmp_path, doc))))
    low, high = report.policy("queue@0.25x"), report.policy("queue@4x")
    assert low.sweep == high.sweep == "queue"
    assert low.mean_replicas > high.mean_replicas  # the factor reaches the scaler
    (sweep,) = report.sweeps
    assert sweep.members == ("queue@0.25x", "queue@4x")
    best, meets = best_of_sweep([low, high])
    assert (sweep.best, sweep.meets) == (best.name, meets)
    assert report.best("queue") is best
    # the table marks it, a line says why, and Inferno is compared with it alone
    names = [row[0] for row in summary_rows(report)[1]]
    assert f"{best.name} *" in names
    (line,) = sweep_lines(report)
    assert line.startswith(f"best queue: {best.name} (")
    assert ("the cheapest of 2 meeting 99%" in line) == meets
    assert [c.baseline for c in report.comparisons] == [best.name]
    assert comparison_lines(report)[0].startswith(f"inferno vs {best.name}:")
