"""The solution JSON's numbers, rounded to 6 decimals at once (solution_json._rounded), are
Python's round(x, 6) of each, ties and their neighbours included."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import inferno.data.solution_json as solution_json
from inferno.data import load_system
from inferno.solver import solve
from inferno.system import Load, Server

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return type(a) is type(b) and a == b


def test_rounded_is_round_to_six_decimals() -> None:
    rng = np.random.default_rng(2)
    magnitudes = 10.0 ** rng.integers(-12, 13, 20_000)
    values: list[object] = (rng.standard_normal(20_000) * magnitudes).tolist()
    k = rng.integers(-(10**9), 10**9, 20_000)
    ties = (k + 0.5) / 1e6  # x·10⁶ within an ulp of a half-integer
    values += ties.tolist() + np.nextafter(ties, np.inf).tolist()
    values += np.nextafter(ties, -np.inf).tolist()
    values += [j / 2**m for j in range(-64, 65) for m in range(0, 24)]  # exact binary ties
    values += [0.0, -0.0, -1e-7, math.nan, math.inf, -math.inf, 1e300, 5e-324, 2.0**53, 1e9]
    values += [999_999_999.999_999_5, 3, True, np.float64(0.1234567)]  # not floats: as before
    got = solution_json._rounded(values)
    want = [solution_json._num(v) for v in values]  # type: ignore[arg-type]
    bad = [(v, g, w) for v, g, w in zip(values, got, want, strict=True) if not same(g, w)]
    assert bad == []


def test_a_solution_json_is_the_same_rounded_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    base = load_system(SAMPLE)
    rng = np.random.default_rng(4)
    servers = [
        replace(s, name=f"{s.name}-{i}", load=Load(float(rng.uniform(1, 2000)), 0.0, 700.0))
        for i, s in enumerate(base.servers * 20)
    ]
    system = replace(base, servers=tuple(servers))
    solution = solve(system)
    fast = solution_json.solution_to_json(solution, system)
    monkeypatch.setattr(
        solution_json, "_rounded", lambda values: [solution_json._num(v) for v in values]
    )
    assert repr(solution_json.solution_to_json(solution, system)) == repr(fast)


def test_a_partial_grant_and_no_allocation_still_write() -> None:
    base = load_system(SAMPLE)
    one = Server("x", "Premium", "llama3_8b", Load(1e7, 0.0, 1000.0), max_replicas=2)
    system = replace(base, servers=(one,))
    body = solution_json.solution_to_json(solve(system), system)
    assert body["unallocated"] and not body["allocations"]
    assert body["totalCost"] == 0
