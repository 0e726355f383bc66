"""A solution's allocations held as columns (:class:`inferno.solver.allocation_columns.
AllocationColumns`): read as a mapping they are the allocations the solver built before, and
the solution JSON and the decisions written from the columns are those written from the
objects — byte for byte — for an unlimited solve, a greedy one with partial grants and a
heterogeneous MILP's mixed allocations."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from inferno.cluster.decisions import decisions_from_solution
from inferno.data import load_system
from inferno.data.solution_json import solution_to_json
from inferno.solver import Solution, solve
from inferno.solver.allocation_columns import AllocationColumns
from inferno.system import OptimizerSpec, SaturationPolicy, System

from .test_sizing_memo import mixed

LARGE = Path(__file__).resolve().parents[2] / "samples" / "large"

SPECS = {
    "unlimited": OptimizerSpec(unlimited=True),
    "greedy, partial grants": OptimizerSpec(
        unlimited=False, saturation_policy=SaturationPolicy.PRIORITY_ROUND_ROBIN
    ),
    "heterogeneous MILP": OptimizerSpec(unlimited=False, heterogeneous=True, milp=True),
}


def as_objects(solution: Solution) -> Solution:
    """The same solution with its allocations as built objects (the path before columns)."""
    return replace(solution, allocations=MappingProxyType(dict(solution.allocations)))


@pytest.fixture(scope="module")
def large() -> System:
    return load_system(LARGE)


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_the_columns_write_what_the_objects_write(large: System, spec: str) -> None:
    system = replace(large, optimizer=SPECS[spec])
    solution = solve(system)
    assert isinstance(solution.allocations, AllocationColumns)
    objects = as_objects(solution)
    from_columns = json.dumps(solution_to_json(solution, system))
    assert from_columns == json.dumps(solution_to_json(objects, system))  # key order too
    label = "nvidia.com/gpu.product"
    decided = decisions_from_solution(solution, system, label)
    assert decided == decisions_from_solution(objects, system, label)
    assert sum(d.allocated for d in decided) == len(solution.allocations)


def test_the_cases_are_exercised(large: System) -> None:
    """Each spec above reaches what it is there for: built rows of both kinds."""
    partial = solve(replace(large, optimizer=SPECS["greedy, partial grants"]))
    assert any(a.status == "partial" for a in partial.allocations.values())
    mixed_parts = solve(replace(large, optimizer=SPECS["heterogeneous MILP"]))
    assert isinstance(mixed_parts.allocations, AllocationColumns)
    assert any(len(a.parts) > 1 for a in mixed_parts.allocations.built.values())


def test_the_columns_are_a_mapping_of_allocations() -> None:
    system = mixed()
    solution = solve(system)
    cols = solution.allocations
    assert isinstance(cols, AllocationColumns)
    order = [s.name for s in system.servers if s.name in cols]
    assert list(cols) == order and len(cols) == len(order)
    assert "nobody" not in cols and cols.get("nobody") is None
    with pytest.raises(KeyError):
        cols["nobody"]
    first = cols[order[0]]
    assert cols[order[0]] is first  # built once
    assert first.parts[0].replicas == first.replicas and first.parts[0].cost == first.cost
    assert dict(first.metrics).keys() == cols.metrics.keys()
    assert cols == dict(cols.items())
    assert solution.total_cost == sum(a.cost for a in cols.values())
    for name, a in cols.items():  # the columns hold what each object says
        i = cols.position(name)
        assert (a.accelerator, a.replicas, a.cost, a.bound) == (
            cols.accelerator[i],
            cols.replicas[i],
            cols.cost[i],
            cols.bound[i],
        )
