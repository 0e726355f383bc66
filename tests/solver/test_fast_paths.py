"""The solver's fast paths give what the plain code gave: equal candidate rows found by their hash
as by a dict on their bytes; allocations assembled from columns taken at once equal to the
table's own values, candidate by candidate."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import inferno.solver.sized_points as sized_points
from inferno.data import load_system
from inferno.solver import build_candidates, solve_table
from inferno.system import Load, OptimizerSpec, SaturationPolicy, Server, System
from inferno.units import MS_PER_MIN

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"


def rows_with_repeats(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    values = np.array([0.0, -0.0, 1.0, 2.5, 1e-300, np.inf, -np.inf, 7.0, 128.0, 1024.0])
    pool = rng.choice(values, size=(max(n // 4, 1), width))
    return pool[rng.integers(0, pool.shape[0], size=n)]


@pytest.mark.parametrize("seed", range(40))
def test_equal_rows_by_hash_are_equal_rows_by_bytes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, width = int(rng.integers(0, 600)), int(rng.integers(1, 24))
    key = rows_with_repeats(rng, n, width) if seed % 2 else rng.random((n, width))
    if seed % 5 == 0 and n > 3:
        key[1] = key[3]  # one repeat among distinct rows
    first, inverse = sized_points._first_of_equal_rows(key)
    want_first, want_inverse = sized_points._first_of_equal_rows_dict(key)
    assert first.dtype == want_first.dtype == inverse.dtype == np.intp
    assert np.array_equal(first, want_first)
    assert np.array_equal(inverse, want_inverse)


def test_a_hash_collision_falls_back_to_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every row hashed alike the check finds the distinct rows and the dict groups them."""
    monkeypatch.setattr(sized_points, "_HASH_MULTIPLIERS", np.zeros(64, dtype=np.uint64))
    key = rows_with_repeats(np.random.default_rng(1), 300, 6)
    first, inverse = sized_points._first_of_equal_rows(key)
    want_first, want_inverse = sized_points._first_of_equal_rows_dict(key)
    assert np.array_equal(first, want_first) and np.array_equal(inverse, want_inverse)
    assert want_first.size > 1  # the rows were not all equal


def synthetic(base: System, n: int, seed: int, spec: OptimizerSpec) -> System:
    rng = np.random.default_rng(seed)
    models = sorted({p.model for p in base.profiles})
    classes = ["Premium", "Bronze", "Free"]
    servers = []
    for i in range(n):
        rate = float(rng.choice([0.0, *rng.uniform(10, 3000, size=9)]))
        out = float(rng.choice([128.0, 512.0, 1024.0, float(rng.integers(64, 2048))]))
        servers.append(
            Server(
                f"s{i:04d}",
                classes[i % 3],
                models[int(rng.integers(0, len(models)))],
                Load(rate, 0.0, out),
                max_replicas=int(rng.integers(1, 4)) if rng.random() < 0.1 else None,
            )
        )
    return replace(base, servers=tuple(servers), optimizer=spec)


@pytest.mark.parametrize(
    "spec",
    [
        OptimizerSpec(unlimited=True, queue_factor=0.0),
        OptimizerSpec(unlimited=True),
        OptimizerSpec(unlimited=False, saturation_policy=SaturationPolicy.PRIORITY_EXHAUSTIVE),
    ],
)
def test_allocations_carry_their_candidates_values(spec: OptimizerSpec) -> None:
    base = load_system(SAMPLE)
    system = synthetic(base, 400, 3, spec)
    if not spec.unlimited:  # a third of the sample's capacity: partial grants
        system = replace(system, capacity={k: max(v // 3, 1) for k, v in base.capacity.items()})
    table = build_candidates(system)
    solution = solve_table(table)
    assert solution.allocations
    partial = 0
    for s, srv in enumerate(system.servers):
        a = solution.allocations.get(srv.name)
        if a is None:
            continue
        (c,) = [int(c) for c in table.all_of_server(s) if table.accelerator[c] == a.accelerator]
        required = int(table.replicas[c])
        assert a.max_batch == int(table.points.n_batch[c])
        assert a.max_batch_memory == int(table.n_memory[c])
        assert a.max_rate_per_replica == float(table.rate[c]) * MS_PER_MIN
        assert a.bound == str(table.bound[c])
        assert a.required_replicas == required
        assert a.cost == float(table.unit_cost[c]) * a.replicas
        assert a.demand == float(table.demand[s]) * MS_PER_MIN
        want = table.metrics.take(c) if a.replicas == required else table.metrics_at(c, a.replicas)
        assert list(a.metrics) == list(want)
        # the solver computes only its chosen candidates' metrics (CandidateTable.metrics_of):
        # the same sums over fewer rows may round differently in the last bit (BLAS), and a
        # wait is a difference of two such means (hence 1e-9 ms absolute)
        assert all(
            (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-12, abs=1e-9)
            for x, y in zip(a.metrics.values(), want.values(), strict=True)
        )
        (part,) = a.parts
        per = float(table.demand[s]) / a.replicas * MS_PER_MIN if a.replicas else 0.0
        assert (part.accelerator, part.replicas, part.cost) == (a.accelerator, a.replicas, a.cost)
        assert part.rate_per_replica == per
        partial += a.replicas < required
    assert (partial > 0) == (not spec.unlimited)
    assert solution.total_cost == sum(a.cost for a in solution.allocations.values())
