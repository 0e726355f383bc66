"""The limited solvers (greedy with saturation policies, MILP single and mixed) on small systems.

Expectations are derived by hand from the default world of :mod:`_systems`: with no binding target
λ* = 0.999 μ(1), i.e. 999 req/min on A and 1998 req/min on B and 2xA, so a server of ``r`` req/min
needs ⌈r / λ*⌉ replicas (2900 -> 3 on A, 2 on B; 3900 -> 4 on A; 1900 -> 2 on A, 1 on B).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pytest
from _systems import (
    CLASSES,
    LAMBDA,
    PROFILES,
    g0_profile,
    limited,
    make_system,
    one_model_system,
    server,
)

from inferno.model.points import OperatingPoints
from inferno.model.profile_arrays import ProfileArrays
from inferno.model.profiles import BatchProfile, G0Profile, Profile, Tokens
from inferno.model.sizing import SloArrays, size
from inferno.solver import Allocation, ServerStatus, Solution, Status, build_candidates, solve
from inferno.system import (
    Accelerator,
    BatchPolicy,
    ModelProfile,
    OptimizerSpec,
    SaturationPolicy,
    ServiceClass,
    System,
    Target,
)
from inferno.units import MS_PER_MIN

PE = SaturationPolicy.PRIORITY_EXHAUSTIVE
RR = SaturationPolicy.ROUND_ROBIN
PRR = SaturationPolicy.PRIORITY_ROUND_ROBIN
NONE = SaturationPolicy.NONE

PROFILE_OF: dict[str, Profile] = {mp.accelerator: mp.profile for mp in PROFILES if mp.model == "m"}


def _independent_metrics(profile: Profile, rate_per_min: float) -> dict[str, float]:
    """Metrics of one replica of ``profile`` offered ``rate_per_min``, straight from the model."""
    pts = OperatingPoints.of([profile], [Tokens()])
    return pts.metrics(np.array([rate_per_min / MS_PER_MIN])).take(0)


def _check_consistent(system: System, sol: Solution) -> None:
    """Invariants of any solution: capacity, statuses, reasons, partial metrics."""
    names = {s.name for s in system.servers}
    assert set(sol.allocations) | set(sol.unallocated) == names
    assert not set(sol.allocations) & set(sol.unallocated)
    for u in sol.unallocated.values():
        assert u.reason.strip(), u
    if not system.optimizer.unlimited:
        for kind, used in sol.units_used.items():
            assert used <= system.capacity.get(kind, 0), (kind, used)
    assert sol.total_cost == pytest.approx(sum(a.cost for a in sol.allocations.values()))
    partial = False
    for a in sol.allocations.values():
        assert a.replicas == sum(p.replicas for p in a.parts)
        if a.status is ServerStatus.PARTIAL:
            partial = True
            assert 0 < a.replicas < a.required_replicas
        elif len(a.parts) > 1:  # mixed: the parts together carry the demand (checked by callers)
            assert a.status is ServerStatus.ALLOCATED
        else:
            assert a.status is ServerStatus.ALLOCATED
            assert a.replicas >= a.required_replicas
    if not sol.allocations:
        assert sol.status is Status.INFEASIBLE
    elif sol.unallocated or partial:
        assert sol.status is Status.PARTIAL
    else:
        assert sol.status in (Status.OPTIMAL, Status.FEASIBLE)


def _units(system: System, accelerator: str, model: str, replicas: int) -> int:
    acc = system.accelerators[accelerator]
    (mp,) = [p for p in system.profiles if p.model == model and p.accelerator == accelerator]
    return replicas * mp.acc_count * acc.multiplicity


# --- greedy: capacity per type, priorities, next candidate --------------------------------------


@pytest.mark.parametrize(("capacity", "fits"), [(3, False), (4, True)])
def test_units_are_replicas_times_acc_count_times_multiplicity(capacity: int, fits: bool) -> None:
    # model d runs on 2xA (multiplicity 2) with acc_count 2: 1 replica (1900 <= 1998) = 4 TA units
    system = make_system([server("d1", 1900, model="d")], {"TA": capacity})
    sol = solve(system)
    _check_consistent(system, sol)
    if fits:
        a = sol.allocations["d1"]
        assert (a.accelerator, a.replicas) == ("2xA", 1)
        assert a.cost == pytest.approx(20.0 * 2)
        assert dict(sol.units_used) == {"TA": 4}
        assert sol.status is Status.FEASIBLE
    else:
        assert "capacity" in sol.unallocated["d1"].reason
        assert sol.status is Status.INFEASIBLE


@pytest.mark.parametrize(
    ("capacity", "x_class", "y_class", "expected"),
    [
        (6, "gold", "bronze", {"x", "y"}),
        (6, "bronze", "gold", {"x", "y"}),
        # 5 TA units: x (model a, 2 replicas on A = 2 units) or y (model d, 4 units), not both;
        # the higher priority wins whichever is larger or more valuable
        (5, "gold", "bronze", {"x"}),
        (5, "bronze", "gold", {"y"}),
    ],
)
def test_capacity_is_pooled_per_type_and_priority_first(
    capacity: int, x_class: str, y_class: str, expected: set[str]
) -> None:
    system = make_system(
        [
            server("x", 1900, model="a", cls=x_class),  # A, TA: 2 replicas, 2 units, cost 20
            server("y", 1900, model="d", cls=y_class),  # 2xA, TA: 1 replica, 4 units, cost 40
        ],
        {"TA": capacity},
    )
    sol = solve(system)
    _check_consistent(system, sol)
    assert set(sol.allocations) == expected
    used = sum(
        _units(system, a.accelerator, "a" if n == "x" else "d", a.replicas)
        for n, a in sol.allocations.items()
    )
    assert sol.units_used.get("TA", 0) == used <= capacity
    for name in {"x", "y"} - expected:
        assert "capacity" in sol.unallocated[name].reason


@pytest.mark.parametrize(
    ("capacity", "expected"),
    [
        ({"TA": 3, "TB": 0}, ("A", 3, 30.0)),  # the cheaper A fits
        ({"TA": 2, "TB": 2}, ("B", 2, 50.0)),  # A needs 3 TA units: move on to B (2 replicas)
        ({"TA": 2, "TB": 1}, None),  # neither fits
    ],
)
def test_server_moves_to_its_next_candidate(
    capacity: dict[str, int], expected: tuple[str, int, float] | None
) -> None:
    system = make_system([server("s", 2900)], capacity)
    sol = solve(system)
    _check_consistent(system, sol)
    if expected is None:
        reason = sol.unallocated["s"].reason
        assert "capacity" in reason
        assert sol.status is Status.INFEASIBLE
        return
    a = sol.allocations["s"]
    assert (a.accelerator, a.replicas, a.cost) == expected
    assert a.required_replicas == a.replicas
    assert sol.status is Status.FEASIBLE
    assert sol.solver == "greedy"


# --- saturation policies ---------------------------------------------------------------------

# Each instance: servers (name, req/min, class) of model "a" (A only, λ* = 999/min) unless noted,
# and the TA capacity. Expected grants are (accelerator, granted, required) or None, derived by
# following docs/model.md by hand (comments).
Grant = tuple[str, int, int] | None

INSTANCES: dict[str, tuple[list[tuple[str, float, str, str]], dict[str, int]]] = {
    # g1 needs 4, g2 3, b1 3; 6 units. Gold group: g1 (larger value) takes 4, 2 left, g2 fails.
    "I4": (
        [("g1", 3900, "gold", "a"), ("g2", 2900, "gold", "a"), ("b1", 2900, "bronze", "a")],
        {"TA": 6},
    ),
    # g1 3, g2 3, b1 2; 5 units. Gold: g1 (name breaks the tie) takes 3, 2 left, g2 fails.
    "I2": (
        [("g1", 2900, "gold", "a"), ("g2", 2900, "gold", "a"), ("b1", 1900, "bronze", "a")],
        {"TA": 5},
    ),
    # one group: g1 4, g2 3, g3 3; 6 units: g1 takes 4, g2 and g3 fail with 2 left.
    "I3": (
        [("g1", 3900, "gold", "a"), ("g2", 2900, "gold", "a"), ("g3", 2900, "gold", "a")],
        {"TA": 6},
    ),
    # model m: A needs 5 (none free), B needs 3 (2 free): saturation binds s to B.
    "I5": ([("s", 4900, "gold", "m")], {"TA": 0, "TB": 2}),
    # g1 takes 4 of 5 TA; g2 (3 on A) and b1 (model m: 3 on A, 2 on B with 1 TB) fail.
    # Saturation: g2 gets the last TA unit, b1 binds to B (no TA left) and gets 1 of 2.
    "I6": (
        [("g1", 3900, "gold", "a"), ("g2", 2900, "gold", "a"), ("b1", 2900, "bronze", "m")],
        {"TA": 5, "TB": 1},
    ),
}

EXPECTED: dict[tuple[str, SaturationPolicy, bool], dict[str, Grant]] = {}


def _expect(
    instance: str, policies: list[SaturationPolicy], delayed: list[bool], **grants: Grant
) -> None:
    for p in policies:
        for d in delayed:
            EXPECTED[(instance, p, d)] = dict(grants)


BOTH = [False, True]
# I4 — None: nobody saturates; b1 needs 3 of the 2 left.
_expect("I4", [NONE], BOTH, g1=("A", 4, 4), g2=None, b1=None)
# PE: g2 takes min(2, 3) = 2 (after gold, or with delayed after all, g2 failing first).
_expect("I4", [PE], BOTH, g1=("A", 4, 4), g2=("A", 2, 3), b1=None)
# RR without delay: gold saturates alone, g2 is dealt both units; b1 then finds nothing.
_expect("I4", [RR, PRR], [False], g1=("A", 4, 4), g2=("A", 2, 3), b1=None)
# RR delayed: g2 and b1 are dealt one unit each in turn.
_expect("I4", [RR], [True], g1=("A", 4, 4), g2=("A", 1, 3), b1=("A", 1, 3))
# PRR delayed: round robin inside priority 1 first: g2 gets both.
_expect("I4", [PRR], [True], g1=("A", 4, 4), g2=("A", 2, 3), b1=None)
# I2 — None: b1 (2 units) fits in full after gold; with delay too.
_expect("I2", [NONE], BOTH, g1=("A", 3, 3), g2=None, b1=("A", 2, 2))
# any policy without delay: g2 saturates on the 2 left before bronze runs; b1 starves.
_expect("I2", [PE, RR, PRR], [False], g1=("A", 3, 3), g2=("A", 2, 3), b1=None)
# delayed: b1 is allocated in full first, nothing is left for g2.
_expect("I2", [PE, RR, PRR], [True], g1=("A", 3, 3), g2=None, b1=("A", 2, 2))
# I3 — PE: the first failed (g2, same value as g3, name first) takes both units.
_expect("I3", [NONE], BOTH, g1=("A", 4, 4), g2=None, g3=None)
_expect("I3", [PE], BOTH, g1=("A", 4, 4), g2=("A", 2, 3), g3=None)
_expect("I3", [RR, PRR], BOTH, g1=("A", 4, 4), g2=("A", 1, 3), g3=("A", 1, 3))
# I5 — the first candidate type with units (B) is used by every policy.
_expect("I5", [NONE], BOTH, s=None)
_expect("I5", [PE, RR, PRR], BOTH, s=("B", 2, 3))
# I6 — every policy ends the same; PRR must also serve the lower priority level.
_expect("I6", [NONE], BOTH, g1=("A", 4, 4), g2=None, b1=None)
_expect("I6", [PE, RR, PRR], BOTH, g1=("A", 4, 4), g2=("A", 1, 3), b1=("B", 1, 2))


def _case_key(case: tuple[str, SaturationPolicy, bool]) -> tuple[str, str, bool]:
    return (case[0], str(case[1]), case[2])


def _instance_system(instance: str, policy: SaturationPolicy, delayed: bool) -> System:
    rows, capacity = INSTANCES[instance]
    return make_system(
        [server(n, r, cls=c, model=m) for n, r, c, m in rows],
        capacity,
        limited(saturation_policy=policy, delayed_best_effort=delayed),
    )


CASES = sorted(EXPECTED, key=_case_key)


@pytest.mark.parametrize(
    ("instance", "policy", "delayed"),
    CASES,
    ids=str,
)
def test_saturation_policy_grants(instance: str, policy: SaturationPolicy, delayed: bool) -> None:
    system = _instance_system(instance, policy, delayed)
    sol = solve(system)
    _check_consistent(system, sol)
    expected = EXPECTED[(instance, policy, delayed)]
    got = {
        name: (a.accelerator, a.replicas, a.required_replicas)
        for name, a in sol.allocations.items()
    }
    assert got == {k: v for k, v in expected.items() if v is not None}
    assert set(sol.unallocated) == {k for k, v in expected.items() if v is None}
    any_short = any(v is None or v[1] < v[2] for v in expected.values())
    if not sol.allocations:
        assert sol.status is Status.INFEASIBLE
    else:
        assert sol.status is (Status.PARTIAL if any_short else Status.FEASIBLE)

    servers = {s.name: s for s in system.servers}
    for name, a in sol.allocations.items():
        demand = servers[name].load.arrival_rate
        profile = PROFILE_OF[a.accelerator]
        assert a.demand == pytest.approx(demand)
        assert a.cost == pytest.approx(system.accelerators[a.accelerator].cost * a.replicas)
        (part,) = a.parts
        assert part.replicas == a.replicas
        assert part.rate_per_replica == pytest.approx(demand / a.replicas)
        # metrics at the granted count, computed independently of the solver
        ref = _independent_metrics(profile, demand / a.replicas)
        assert a.metrics["rate"] == pytest.approx(demand / MS_PER_MIN / a.replicas, rel=1e-12)
        for key in ("response", "wait", "throughput", "utilization", "blocking"):
            assert a.metrics[key] == pytest.approx(ref[key], rel=1e-9), key
        if a.replicas < a.required_replicas:
            assert a.status is ServerStatus.PARTIAL
            assert policy.value in a.note
            full = _independent_metrics(profile, demand / a.required_replicas)
            # not Inferno's full-count numbers: the granted replicas are busier
            assert a.metrics["response"] > full["response"] * 1.01
            assert a.metrics["utilization"] > full["utilization"]
            assert a.metrics["rate"] > full["rate"]
        else:
            assert a.status is ServerStatus.ALLOCATED


# --- the solution's status and reasons -------------------------------------------------------


def _strict_classes() -> dict[str, ServiceClass]:
    classes = dict(CLASSES)
    classes["strict"] = ServiceClass("strict", 1, MappingProxyType({"m": Target("m", latency=1.0)}))
    return classes


def test_unlimited_is_optimal() -> None:
    system = make_system([server("s1", 2900), server("s2", 900, model="a")])
    sol = solve(system)
    _check_consistent(system, sol)
    assert sol.status is Status.OPTIMAL
    # unlimited: cheapest per server (A: 10 per 999 req/min beats B: 25 per 1998)
    assert {n: (a.accelerator, a.replicas) for n, a in sol.allocations.items()} == {
        "s1": ("A", 3),
        "s2": ("A", 1),
    }


def test_greedy_status_feasible_partial_infeasible() -> None:
    servers = [server("s1", 2900), server("s2", 1900)]  # A: 3 + 2 units
    feasible = make_system(servers, {"TA": 5})
    sol = solve(feasible)
    assert sol.status is Status.FEASIBLE
    assert not sol.unallocated

    partial = make_system(servers, {"TA": 3})
    sol = solve(partial)
    _check_consistent(partial, sol)
    assert sol.status is Status.PARTIAL
    assert set(sol.allocations) == {"s1"}
    assert "capacity" in sol.unallocated["s2"].reason

    # only partial grants, nobody unallocated: still partial
    short = make_system([server("s1", 2900)], {"TA": 2}, limited(saturation_policy=PE))
    sol = solve(short)
    assert not sol.unallocated
    assert sol.allocations["s1"].status is ServerStatus.PARTIAL
    assert sol.status is Status.PARTIAL

    none = make_system(servers, {})
    sol = solve(none)
    _check_consistent(none, sol)
    assert sol.status is Status.INFEASIBLE
    assert not sol.allocations
    for u in sol.unallocated.values():
        assert "capacity" in u.reason


@pytest.mark.parametrize("solver", [None, "greedy", "milp"])
@pytest.mark.parametrize("capacity", [None, {"TA": 100, "TB": 100}])
def test_reasons_for_unallocated_servers(
    solver: str | None, capacity: dict[str, int] | None
) -> None:
    system = make_system(
        [
            server("ok", 900),
            server("ghost", 900, model="no-such-model"),
            server("strict", 900, cls="strict"),
        ],
        capacity,
        classes=_strict_classes(),
    )
    sol = solve(system, solver)  # type: ignore[arg-type]
    _check_consistent(system, sol)
    assert set(sol.allocations) == {"ok"}
    assert "no-such-model" in sol.unallocated["ghost"].reason
    assert "latency" in sol.unallocated["strict"].reason
    assert sol.status is Status.PARTIAL


def test_milp_status_and_capacity_reason() -> None:
    system = make_system([server("s1", 2900), server("s2", 1900)], {"TA": 5}, limited())
    sol = solve(system, "milp")
    _check_consistent(system, sol)
    assert sol.status is Status.OPTIMAL
    system = make_system([server("s1", 2900), server("s2", 1900, cls="bronze")], {"TA": 3})
    sol = solve(system, "milp")
    _check_consistent(system, sol)
    assert sol.status is Status.PARTIAL
    assert set(sol.allocations) == {"s1"}
    assert "capacity" in sol.unallocated["s2"].reason
    sol = solve(make_system([server("s1", 2900)], {"TA": 1, "TB": 1}), "milp")
    assert sol.status is Status.INFEASIBLE
    assert "capacity" in sol.unallocated["s1"].reason


# --- MILP ------------------------------------------------------------------------------------


def test_milp_single_picks_one_accelerator_within_capacity() -> None:
    # each server: A (3 TA units, cost 30) or B (2 TB units, cost 50).
    # Both on A: 6 > 3 TA. Both on B: 4 TB, cost 100. One each: cost 80 (the minimum).
    system = make_system([server("s1", 2900), server("s2", 2900)], {"TA": 3, "TB": 4})
    sol = solve(system, "milp")
    _check_consistent(system, sol)
    assert sol.solver == "milp"
    assert sol.status is Status.OPTIMAL
    assert sorted(a.accelerator for a in sol.allocations.values()) == ["A", "B"]
    for a in sol.allocations.values():
        assert len(a.parts) == 1
        assert a.parts[0].accelerator == a.accelerator
        assert a.replicas == a.required_replicas == {"A": 3, "B": 2}[a.accelerator]
    assert sol.total_cost == pytest.approx(80.0)
    assert dict(sol.units_used) == {"TA": 3, "TB": 2}


def test_milp_mixed_serves_a_server_no_single_type_can_hold() -> None:
    # 3900 req/min: 4 replicas on A (TA: 2 free) or 2 on B (TB: 1 free): neither alone.
    # Mixed: 2 A + 1 B = 2·999 + 1998 = 3996 >= 3900 (1 A + 1 B = 2997 is short), cost 20 + 25.
    servers = [server("s", 3900)]
    capacity = {"TA": 2, "TB": 1}
    single = make_system(servers, capacity)
    assert set(solve(single, "milp").unallocated) == {"s"}
    assert set(solve(single, "greedy").unallocated) == {"s"}

    mixed = make_system(servers, capacity, limited(heterogeneous=True))
    sol = solve(mixed, "milp")
    _check_consistent(mixed, sol)
    assert sol.solver == "milp-mixed"
    a = sol.allocations["s"]
    parts = {p.accelerator: p for p in a.parts}
    assert {k: p.replicas for k, p in parts.items()} == {"A": 2, "B": 1}
    served = sum(LAMBDA[("m", k)] * p.replicas for k, p in parts.items())
    assert served >= 3900
    assert a.replicas == 3
    assert a.status is ServerStatus.ALLOCATED
    assert a.cost == pytest.approx(2 * 10 + 1 * 25)
    assert sum(p.cost for p in a.parts) == pytest.approx(a.cost)
    assert dict(sol.units_used) == {"TA": 2, "TB": 1}
    # the demand is shared in proportion to λ*: all of it is offered, each replica below its λ*
    assert sum(p.replicas * p.rate_per_replica for p in a.parts) == pytest.approx(3900)
    for k, p in parts.items():
        assert p.rate_per_replica == pytest.approx(3900 * LAMBDA[("m", k)] / served)
        assert p.rate_per_replica <= LAMBDA[("m", k)]


def test_milp_mixed_is_not_dearer_than_single_when_unlimited_capacity_suffices() -> None:
    # with room everywhere the mixed optimum can still use one type; it never costs more
    servers = [server("s1", 2900), server("s2", 4900, cls="bronze")]
    capacity = {"TA": 100, "TB": 100}
    single = solve(make_system(servers, capacity), "milp")
    mixed = solve(make_system(servers, capacity, limited(heterogeneous=True)), "milp")
    assert mixed.total_cost <= single.total_cost + 1e-9
    for a in mixed.allocations.values():
        rate = sum(LAMBDA[("m", p.accelerator)] * p.replicas for p in a.parts)
        assert rate >= a.demand


@pytest.mark.parametrize(("capacity", "bronze"), [(2, 0), (3, 1), (4, 2)])
def test_milp_keeps_higher_priority_first(capacity: int, bronze: int) -> None:
    # p (gold) needs 2 TA units, q1/q2 (bronze) 1 each. With 2 units, allocating q1 and q2 would
    # serve more servers, but priority 1 comes first.
    system = make_system(
        [
            server("p", 1900, model="a"),
            server("q1", 900, model="a", cls="bronze"),
            server("q2", 900, model="a", cls="bronze"),
        ],
        {"TA": capacity},
    )
    sol = solve(system, "milp")
    _check_consistent(system, sol)
    assert "p" in sol.allocations
    assert sol.allocations["p"].replicas == 2
    assert len(set(sol.allocations) & {"q1", "q2"}) == bronze
    for u in sol.unallocated.values():
        assert "capacity" in u.reason


# --- determinism and ties ---------------------------------------------------------------------


def _mixed_bag(spec: OptimizerSpec) -> list[System]:
    servers = [
        server("g1", 3900, model="a"),
        server("g2", 2900),
        server("b1", 2900, cls="bronze"),
        server("b2", 1900, model="d", cls="bronze"),
        server("b3", 900, cls="bronze"),
    ]
    shuffled = list(servers)
    random.Random(3).shuffle(shuffled)
    reversed_ = servers[::-1]
    capacity = {"TA": 9, "TB": 3}
    return [make_system(s, capacity, spec) for s in (servers, servers, shuffled, reversed_)]


def _comparable(sol: Solution) -> tuple[object, ...]:
    """The solution as plain values, NaN metrics (ITL/TTFT of batch models) made comparable."""

    def alloc(a: Allocation) -> tuple[object, ...]:
        metrics = {k: ("nan" if math.isnan(v) else round(v, 9)) for k, v in a.metrics.items()}
        fields = {f: getattr(a, f) for f in a.__slots__ if f != "metrics"}
        return (sorted(fields.items(), key=str), sorted(metrics.items()))

    return (
        sol.status,
        sol.solver,
        round(sol.total_cost, 9),
        sorted((n, alloc(a)) for n, a in sol.allocations.items()),
        sorted(sol.unallocated.items()),
        sorted(sol.units_used.items()),
    )


@pytest.mark.parametrize(
    ("spec", "solver"),
    [
        (OptimizerSpec(), None),
        (limited(), "greedy"),
        (limited(saturation_policy=RR, delayed_best_effort=True), "greedy"),
        (limited(saturation_policy=PE), "greedy"),
        (limited(), "milp"),
        (limited(heterogeneous=True), "milp"),
    ],
)
def test_deterministic_and_independent_of_server_order(
    spec: OptimizerSpec, solver: str | None
) -> None:
    systems = _mixed_bag(spec)
    solutions = [solve(s, solver) for s in systems]  # type: ignore[arg-type]
    for system, sol in zip(systems, solutions, strict=True):
        _check_consistent(system, sol)
    first = _comparable(solutions[0])
    assert _comparable(solutions[1]) == first
    for other in solutions[2:]:
        assert _comparable(other) == first


def _tie_system(capacity: Mapping[str, int] | None, spec: OptimizerSpec | None = None) -> System:
    # identical accelerators but for their names and types, listed Zeta first
    accs = {
        "Zeta": Accelerator("Zeta", type="TZ", cost=10.0),
        "Alpha": Accelerator("Alpha", type="TY", cost=10.0),
    }
    profiles = [
        ModelProfile("m", "Zeta", 1, BatchProfile(60.0, 0.0, 1)),
        ModelProfile("m", "Alpha", 1, BatchProfile(60.0, 0.0, 1)),
    ]
    return make_system(
        [server("s", 1900), server("t", 900, cls="bronze")],
        capacity,
        spec,
        accelerators=accs,
        profiles=profiles,
    )


@pytest.mark.parametrize("solver", [None, "greedy", "milp"])
def test_equal_cost_ties_break_by_accelerator_name(solver: str | None) -> None:
    capacity = None if solver is None else {"TZ": 10, "TY": 10}
    sol = solve(_tie_system(capacity), solver)  # type: ignore[arg-type]
    assert {n: a.accelerator for n, a in sol.allocations.items()} == {"s": "Alpha", "t": "Alpha"}


def test_tie_loser_used_when_the_winner_is_full() -> None:
    # s (gold, 2 replicas) takes Alpha's 2 units; t falls back to Zeta
    sol = solve(_tie_system({"TZ": 10, "TY": 2}))
    assert {n: a.accelerator for n, a in sol.allocations.items()} == {"s": "Alpha", "t": "Zeta"}


# --- batch policy: knee ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        Target("g", itl=10.0),
        Target("g", itl=12.0, ttw=2000.0),
        Target("g", ttft=800.0),
        Target("g", itl=30.0),  # loose: the memory batch is (nearly) the best
    ],
)
def test_knee_batch_is_within_one_percent_of_the_best(target: Target) -> None:
    prof = g0_profile()
    out_tokens = 1024.0
    system = one_model_system(
        "g",
        {"G": prof},
        [server("s", 600, model="g", out_tokens=out_tokens)],
        {"gold": target},
        accelerators={"G": Accelerator("G", type="G", cost=1.0)},
        optimizer=OptimizerSpec(batch_policy=BatchPolicy.KNEE),
    )
    sol = solve(system)
    a = sol.allocations["s"]
    n_memory = math.floor(76 * 512 / out_tokens)
    assert a.max_batch_memory == n_memory
    assert a.batch_policy == "knee"
    assert 1 <= a.max_batch <= a.max_batch_memory

    # independently: λ* at every batch size 1..N_memory
    batches = np.arange(1, n_memory + 1, dtype=np.float64)
    arrays = ProfileArrays.of([prof] * n_memory)
    pts = OperatingPoints.build(
        arrays, np.zeros(n_memory), np.full(n_memory, out_tokens), batch=batches
    )
    col = [
        target.itl,
        target.ttft,
        target.ttw,
        target.latency,
        target.tps,
        target.ttft_quantile,
        target.latency_quantile,
        target.ttw_quantile,
    ]
    slo = SloArrays.of_columns(
        [np.full(n_memory, math.nan if v is None else float(v)) for v in col]
    )
    rates = size(pts, slo).rate * MS_PER_MIN
    best = float(np.nanmax(rates))
    assert a.max_rate_per_replica >= 0.99 * best
    assert a.max_rate_per_replica == pytest.approx(rates[a.max_batch - 1], rel=1e-9)
    # and the smallest such batch
    good = np.flatnonzero(np.nan_to_num(rates, nan=-1.0) >= 0.99 * best)
    assert a.max_batch == int(good[0]) + 1
    # the memory policy runs at the memory batch
    mem = solve(
        one_model_system(
            "g",
            {"G": prof},
            [server("s", 600, model="g", out_tokens=out_tokens)],
            {"gold": target},
            accelerators={"G": Accelerator("G", type="G", cost=1.0)},
        )
    ).allocations["s"]
    assert mem.max_batch == n_memory
    assert mem.max_rate_per_replica == pytest.approx(rates[-1], rel=1e-9)


# --- replica bounds --------------------------------------------------------------------------


@pytest.mark.parametrize("min_replicas", [1, 2, 3])
@pytest.mark.parametrize("solver", [None, "greedy", "milp"])
def test_zero_arrival_rate_gives_min_replicas(min_replicas: int, solver: str | None) -> None:
    capacity = None if solver is None else {"TA": 10, "TB": 10}
    system = make_system([server("idle", 0.0, min_replicas=min_replicas)], capacity)
    sol = solve(system, solver)  # type: ignore[arg-type]
    a = sol.allocations["idle"]
    assert a.replicas == a.required_replicas == min_replicas
    assert a.accelerator == "A"
    assert a.cost == pytest.approx(10.0 * min_replicas)
    assert a.metrics["rate"] == 0.0
    assert a.metrics["throughput"] == 0.0


@pytest.mark.parametrize(
    ("max_replicas", "expected"),
    [(None, ("A", 3)), (3, ("A", 3)), (2, ("B", 2)), (1, None)],
)
def test_max_replicas_excludes_candidates(
    max_replicas: int | None, expected: tuple[str, int] | None
) -> None:
    # 2900 req/min: 3 replicas on A (cost 30), 2 on B (cost 50)
    system = make_system([server("s", 2900, max_replicas=max_replicas)])
    sol = solve(system)
    table = build_candidates(system)
    if expected is None:
        assert "maxNumReplicas=1" in sol.unallocated["s"].reason
        assert table.of_server(0).size == 0
        return
    a = sol.allocations["s"]
    assert (a.accelerator, a.replicas) == expected
    assert all(table.replicas[c] <= (max_replicas or math.inf) for c in table.of_server(0))


def test_wait_target_with_no_wait_at_the_bottom_of_the_range() -> None:
    # G0 at 8 tokens: N = ⌊4·256/8⌋ = 128, so at 0.001 μ(1) nobody waits and the mean wait is
    # exactly 0; the ttw target (Inferno's rule: mean wait ≤ 2.8 / −ln 0.05) binds much higher.
    profile = G0Profile(3.0, 0.5, 4, 256.0)
    target = Target("g", ttw=2.8)
    pts = OperatingPoints.of([profile], [Tokens(0.0, 8.0)])

    def meets(lam: float) -> bool:
        wait = float(pts.metrics(np.array([lam])).wait[0])
        return wait * -math.log(0.05) <= 2.8

    a, b = 0.001 * float(pts.mu_1[0]), 0.999 * float(pts.mu_n[0])
    assert meets(a) and not meets(b)
    for _ in range(200):
        mid = 0.5 * (a + b)
        a, b = (mid, b) if meets(mid) else (a, mid)
    lam_star = a * MS_PER_MIN  # req/min
    system = one_model_system(
        "g",
        {"G": profile},
        [server("s", 30_000, model="g", out_tokens=8.0)],
        {"gold": target},
        accelerators={"G": Accelerator("G", type="G", cost=1.0)},
    )
    alloc = solve(system).allocations["s"]
    assert alloc.bound == "ttw"
    assert alloc.max_rate_per_replica == pytest.approx(lam_star, rel=1e-6)
    assert alloc.replicas == math.ceil(30_000 / lam_star)
