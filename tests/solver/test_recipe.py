"""The resources recipe's maths (inferno.solver.recipe): interpolation of the measured levels at a
replica's rate, requests at the p95/peak, limits with headroom, HPA bounds, bad input."""

from __future__ import annotations

import math

import pytest

from inferno.errors import InputError
from inferno.solver.recipe import RecipeOptions, ResourceLevel, interpolate, recipe

# idle, then three load levels: CPU grows with the rate, memory a little
LEVELS = (
    ResourceLevel(0.0, 0.02, 0.04, 500.0),
    ResourceLevel(20.0, 0.20, 0.30, 520.0),
    ResourceLevel(60.0, 0.50, 0.80, 560.0),
    ResourceLevel(100.0, 0.90, 1.20, 540.0),  # a lower peak than the level below
    ResourceLevel(100.0, 5.0, 5.0, 9000.0, instances=2),  # another instance count: ignored
)


def test_interpolate_is_linear_between_points_flat_below_and_extrapolated_above() -> None:
    pts = [(10.0, 1.0), (20.0, 3.0), (20.0, 2.0), (40.0, 4.0)]
    assert interpolate(pts, 15.0) == pytest.approx(2.0)
    assert interpolate(pts, 30.0) == pytest.approx(3.5)  # equal x merged by the largest y: 3
    assert interpolate(pts, 0.0) == 1.0
    notes: list[str] = []
    assert interpolate(pts, 60.0, notes) == pytest.approx(5.0)  # slope 1/20 past (40, 4)
    assert notes and "extrapolated" in notes[0]
    # a falling tail is not extrapolated below the last value
    assert interpolate([(0.0, 5.0), (10.0, 4.0)], 50.0) == 4.0
    with pytest.raises(ValueError):
        interpolate([], 1.0)


def test_requests_are_the_p95_and_peak_at_the_rate_limits_cover_lambda_star() -> None:
    r = recipe(LEVELS, rate=40.0, max_rate=80.0, replicas=4)
    cpu_p95_at_40 = 0.30 + 0.5 * (0.80 - 0.30)  # 0.55
    assert r.cpu_request_m == math.ceil(cpu_p95_at_40 * 1000)
    assert r.memory_request_mib == math.ceil(520 + 0.5 * 40)  # 540
    cpu_p95_at_80 = 0.80 + 0.5 * (1.20 - 0.80)  # 1.0
    assert r.cpu_limit_m == math.ceil(cpu_p95_at_80 * 1.5 * 1000)
    # the memory limit covers every peak up to λ* (560 at 60 req/s, above the 80's 550)
    assert r.memory_limit_mib == math.ceil(560 * 1.25)
    assert r.memory_limit_mib >= max(lv.memory_peak_mib for lv in LEVELS[:4])
    assert (r.hpa_min, r.hpa_max) == (4, 5)
    mean_at_80 = 0.50 + 0.5 * (0.90 - 0.50)
    assert r.hpa_cpu_utilization == round(100 * mean_at_80 / (r.cpu_request_m / 1000))
    assert r.use["cpuP95"] == pytest.approx(cpu_p95_at_40)
    assert not r.notes


def test_the_instance_count_selects_its_levels_and_a_missing_one_is_an_error() -> None:
    r = recipe(LEVELS, rate=100.0, max_rate=100.0, replicas=1, instances=2)
    assert r.cpu_request_m == 5000 and r.memory_request_mib == 9000
    with pytest.raises(InputError, match="measured with 1, 2 instance"):
        recipe(LEVELS, rate=1.0, max_rate=2.0, replicas=1, instances=4)
    with pytest.raises(InputError, match="no resources were measured"):
        recipe((), rate=1.0, max_rate=2.0, replicas=1)


def test_a_rate_above_the_levels_is_extrapolated_and_said() -> None:
    r = recipe(LEVELS, rate=140.0, max_rate=140.0, replicas=2)
    assert r.cpu_request_m == math.ceil((1.20 + 40 * (0.40 / 40)) * 1000)  # 1.6 cores
    assert any("above the highest level" in n for n in r.notes)
    assert len(r.notes) == len(set(r.notes))


def test_node_allocatable_is_an_error_for_requests_and_a_cap_for_limits() -> None:
    with pytest.raises(InputError, match="exceeds the node's allocatable 512 MiB"):
        recipe(
            LEVELS, rate=40.0, max_rate=80.0, replicas=1, options=RecipeOptions(node_memory_mib=512)
        )
    capped = recipe(
        LEVELS, rate=40.0, max_rate=80.0, replicas=1, options=RecipeOptions(node_memory_mib=600)
    )
    assert capped.memory_limit_mib == 600 and capped.memory_request_mib == 540
    assert any("memory limit cut" in n for n in capped.notes)
    with pytest.raises(InputError, match="CPU request 550m"):
        recipe(LEVELS, rate=40.0, max_rate=80.0, replicas=1, options=RecipeOptions(node_cpu=0.5))
    cpu = recipe(LEVELS, rate=40.0, max_rate=80.0, replicas=1, options=RecipeOptions(node_cpu=1))
    assert cpu.cpu_limit_m == 1000 and any("CPU limit cut" in n for n in cpu.notes)


def test_flat_cpu_says_a_cpu_hpa_cannot_see_the_load() -> None:
    flat = (ResourceLevel(0.0, 0.10, 0.12, 100.0), ResourceLevel(50.0, 0.105, 0.13, 100.0))
    r = recipe(flat, rate=25.0, max_rate=50.0, replicas=0)
    assert any("cannot see the load" in n for n in r.notes)
    assert (r.hpa_min, r.hpa_max) == (1, 1)  # an HPA's minReplicas is at least 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cpu_headroom": -0.1}, "cpu-headroom"),
        ({"memory_headroom": math.inf}, "memory-headroom"),
        ({"node_cpu": 0.0}, "node-cpu"),
        ({"node_memory_mib": -1.0}, "node-memory-mib"),
    ],
)
def test_bad_options_are_named(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(InputError, match=match):
        RecipeOptions(**kwargs)


def test_bad_rates_and_levels() -> None:
    with pytest.raises(InputError, match="rates must be finite"):
        recipe(LEVELS, rate=math.nan, max_rate=1.0, replicas=1)
    with pytest.raises(ValueError, match="cpu_p95"):
        ResourceLevel(1.0, 0.1, -1.0, 1.0)
