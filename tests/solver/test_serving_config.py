"""The decision of model instances and batching delay (inferno/solver/serving_config.py):
who opts in, what the grid holds, that the winner needs the fewest replicas, that the fast
comparison agrees with the full-precision sizing, and that servers without contention data
solve exactly as before (samples/large and samples/gpulets: the same solution JSON)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from _systems import one_model_system, server

from inferno.data import load_system
from inferno.data.solution_json import solution_to_json
from inferno.model.points import OperatingPoints
from inferno.model.profiles import BatchProfile, Tokens
from inferno.model.sizing import SloArrays, size
from inferno.solver import build_candidates, serving_config, solve_table
from inferno.solver.explain import explain
from inferno.system import Target

ROOT = Path(__file__).resolve().parents[2]
KAPPA = (1.0, 1.2, 1.35)


def _system(rate: float, latency: float = 80.0, *, quantile: float | None = None, opt: bool = True):  # type: ignore[no-untyped-def]
    p = BatchProfile(20.0, 2.0, 8, contention=KAPPA if opt else (1.0,), decide_serving=opt)
    target = Target("r", latency=latency, latency_quantile=quantile)
    system = one_model_system("r", {"A": p}, [server("s", rate, model="r")], {"gold": target})
    # the optimizer data asks for the decision (decideServing): off by default
    return dataclasses.replace(
        system, optimizer=dataclasses.replace(system.optimizer, decide_serving=True)
    )


def _profile(instances: int, delay_us: int) -> BatchProfile:
    """The test row (α 20 ms, β 2 ms, N 8) run as an option: c instances and a delay."""
    return BatchProfile(
        20.0, 2.0, 8, queue_delay_ms=delay_us / 1000.0, instances=instances, contention=KAPPA
    )


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    serving_config.clear_cache()


def test_high_load_takes_more_instances_with_a_delay_and_fewer_replicas() -> None:
    table = build_candidates(_system(60_000.0))
    sol = solve_table(table)
    a = sol.allocations["s"]
    dec = a.serving
    assert dec is not None and dec.instances > 1 and dec.delay_us > 0
    base = next(o for o in dec.options if o.instances == 1)
    assert base.delay_us == 0 and a.replicas < base.replicas
    sized = [o for o in dec.options if o.feasible]
    # the options are screened on the virtual instance; the allocation is sized on the chain,
    # which is less pessimistic here: never more replicas than the screen said
    assert a.replicas <= min(o.replicas for o in sized)
    chosen = next(
        o for o in dec.options if (o.instances, o.delay_us) == (dec.instances, dec.delay_us)
    )
    p = _profile(dec.instances, dec.delay_us)
    pts = OperatingPoints.of([p], [Tokens(0, 1)])
    slo = SloArrays.empty(1)
    slo.latency[:] = 80.0
    chain = float(size(pts, slo).rate[0]) * 60_000.0
    virtual = float(size(pts.virtual_instances(), slo).rate[0]) * 60_000.0
    assert math.isclose(a.max_rate_per_replica, chain, rel_tol=1e-5)
    assert math.isclose(chosen.max_rate, virtual, rel_tol=2e-4)
    assert chain > virtual  # the chain's λ* is the higher: the screen was pessimistic
    doc = solution_to_json(sol, table.system)["allocations"]["s"]
    assert doc["instances"] == dec.instances and doc["maxQueueDelayUs"] == dec.delay_us
    why = explain(table, sol, "s").verdict
    assert f"{dec.instances} instance(s), delay {dec.delay_us} µs" in why
    assert "c=1 D=0 µs needs" in why
    assert "screened on the virtual instance" in why


def test_low_load_keeps_one_instance_and_no_delay() -> None:
    sol = solve_table(build_candidates(_system(600.0)))
    dec = sol.allocations["s"].serving
    assert dec is not None and (dec.instances, dec.delay_us) == (1, 0)
    # the others cannot need fewer than one replica: not even sized
    assert all(o.at_least == 1 for o in dec.options if o.instances > 1)


def test_the_options_fast_sizing_agrees_with_the_full_precision_one() -> None:
    table = build_candidates(_system(60_000.0))
    dec = table.serving[0]
    profiles, slos = [], SloArrays.empty(0)
    sized = [o for o in dec.options if o.feasible]
    assert len(sized) >= 2
    for o in sized:
        profiles.append(_profile(o.instances, o.delay_us))
    pts = OperatingPoints.of(profiles, [Tokens(0, 1)] * len(profiles))
    slos = SloArrays.empty(len(profiles))
    slos.latency[:] = 80.0
    # c > 1 with a delay is screened on the virtual instance (the allocation on the chain)
    exact = size(pts.virtual_instances(), slos).rate * 60_000.0
    got = np.array([o.max_rate for o in sized])
    np.testing.assert_allclose(got, exact, rtol=2e-4)


def test_grid_offers_no_instances_without_delay_and_caps_the_delay() -> None:
    assert serving_config.delay_grid(20.0, 2.0, 8, 1.0, 80.0, 0.0, True) == [0.0]
    grid = serving_config.delay_grid(20.0, 2.0, 8, 1.2, 80.0, 0.0, False)
    assert grid == [21.6]  # ½ × κ·τ(N) = ½ × 43.2 ms
    capped = serving_config.delay_grid(20.0, 2.0, 8, 1.2, 40.0, 0.0, False)
    assert capped == [round(40.0 - 1.2 * 22.0, 3)]  # L − κ·τ(1)
    assert serving_config.delay_grid(20.0, 2.0, 8, 1.2, 26.45, 0.0, False) == []  # < 0.1 ms
    assert serving_config.delay_grid(20.0, 2.0, 8, 1.2, 20.0, 0.0, False) == []


def test_no_delay_with_instances_is_offered_only_when_switched_on() -> None:
    assert serving_config.delay_grid(20.0, 2.0, 8, 1.2, 80.0, 0.0, False, True) == [0.0, 21.6]
    assert serving_config.delay_grid(20.0, 2.0, 8, 1.0, 80.0, 0.5, True, True) == [0.5]


def test_a_quantile_target_is_decided_on_the_distribution() -> None:
    """A p95 latency target: the options are sized on the response-time distribution (c > 1 with
    a delay on the chain's, bulk_multi_delay_time), and the allocation meets the p95 at the rate
    each replica takes, where one replica fewer would miss it."""
    from inferno.model.bulk_instances import serving_time

    sol = solve_table(build_candidates(_system(60_000.0, 120.0, quantile=0.95)))
    a = sol.allocations["s"]
    dec = a.serving
    assert dec is not None and len(dec.options) == 3  # decided: every option compared
    assert dec.instances > 1 and dec.delay_us > 0
    base = next(o for o in dec.options if o.instances == 1)
    assert a.replicas < base.replicas
    kw = {"delay": dec.delay_us / 1000.0, "instances": dec.instances}
    kappa = KAPPA[dec.instances - 1]
    lam = 60_000.0 / 60_000.0  # req/ms

    def p95_sf(replicas: int) -> float:
        rt = serving_time(20.0, 2.0, 8, 72, lam / replicas, kappa=kappa, **kw)  # type: ignore[arg-type]
        return float(rt.survival([120.0])[0])

    assert p95_sf(a.replicas) <= 0.05
    assert p95_sf(a.replicas - 1) > 0.05


def test_without_contention_or_without_being_asked_nothing_is_decided() -> None:
    unasked = _system(60_000.0)
    unasked = dataclasses.replace(
        unasked, optimizer=dataclasses.replace(unasked.optimizer, decide_serving=False)
    )
    assert build_candidates(unasked).serving == {}
    table = build_candidates(_system(60_000.0, opt=False))
    assert table.serving == {}
    sol = solve_table(table)
    assert sol.allocations["s"].serving is None
    assert "instances" not in solution_to_json(sol, table.system)["allocations"]["s"]


@pytest.mark.parametrize("sample", ["large", "gpulets"])
def test_samples_solve_exactly_as_without_the_decision(
    sample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = load_system(ROOT / "samples" / sample)
    table = build_candidates(system)
    assert table.serving == {}
    with_hook = solution_to_json(solve_table(table), system)
    monkeypatch.setattr(
        "inferno.solver.candidates.decide_serving", lambda _profiles, prof, *a: (prof, {})
    )
    without = solution_to_json(solve_table(build_candidates(system)), system)
    assert with_hook == without


@pytest.mark.parametrize(("rate", "latency"), [(30_000.0, 60.0), (120_000.0, 80.0)])
def test_the_shortcuts_never_drop_a_cheaper_option(rate: float, latency: float) -> None:
    """Every option — sized, or cut short by its capacity or by one evaluation — against its
    own full-precision λ*: the decision needs the fewest replicas any option needs."""
    table = build_candidates(_system(rate, latency))
    dec = table.serving[0]
    profiles = [
        BatchProfile(
            20.0,
            2.0,
            8,
            queue_delay_ms=o.delay_us / 1000.0,
            instances=o.instances,
            contention=KAPPA,
        )
        for o in dec.options
    ]
    slos = SloArrays.empty(len(profiles))
    slos.latency[:] = latency
    exact = size(OperatingPoints.of(profiles, [Tokens(0, 1)] * len(profiles)), slos).rate
    need = [math.ceil(rate / 60_000.0 / lam) if lam > 0 else math.inf for lam in exact]
    for o, n in zip(dec.options, need, strict=True):
        if o.feasible:
            assert o.replicas == n
        elif o.at_least:
            assert n >= o.at_least
    chosen = next(
        o for o in dec.options if (o.instances, o.delay_us) == (dec.instances, dec.delay_us)
    )
    assert chosen.replicas == min(need)
    assert any(o.at_least for o in dec.options) or len(dec.options) == sum(
        o.feasible for o in dec.options
    )


def test_the_prefetch_note_flags_one_instance_with_a_delay_shorter_than_a_batch() -> None:
    """docs/triton.md: a real Triton closes the next batch while one runs; the model is
    optimistic for one instance with D < α + β (here 12 ms), and only there."""
    from inferno.solver.serving_config import ServingDecision, prefetch_note

    replace = dataclasses.replace
    row = BatchProfile(10.0, 2.0, 16, queue_delay_ms=5.0)
    assert "delay 5 ms < a batch's 12.0 ms on one instance" in prefetch_note(row)
    assert prefetch_note(replace(row, queue_delay_ms=12.0)) == ""  # the shortest batch's own
    assert prefetch_note(replace(row, queue_delay_ms=0.0)) == ""  # no delay: nothing closes early
    assert prefetch_note(replace(row, instances=2, contention=(1.0, 1.1))) == ""
    assert prefetch_note(replace(row, batching="chain")) == ""  # not Triton's batcher
    # the optimizer's decision, not the row's, is what runs
    assert prefetch_note(row, ServingDecision(2, 5000)) == ""
    assert "delay 3 ms" in prefetch_note(replace(row, queue_delay_ms=0.0), ServingDecision(1, 3000))
    assert prefetch_note(row, ServingDecision(1, 0)) == ""
    assert prefetch_note(object()) == ""


def _offering(system, no_delay: bool):  # type: ignore[no-untyped-def]
    spec = dataclasses.replace(system.optimizer, offer_no_delay=no_delay)
    return dataclasses.replace(system, optimizer=spec)


@pytest.mark.parametrize("rate", [6_000.0, 60_000.0])
def test_offer_no_delay_adds_instances_without_a_delay_and_never_costs_more(rate: float) -> None:
    """offerNoDelay: every c > 1 is also offered with D = 0, sized on the exact residual-time
    chain; the decision can only get cheaper, and the table's λ* is the chosen option's."""
    plain = solve_table(build_candidates(_offering(_system(rate), False))).allocations["s"]
    serving_config.clear_cache()
    table = build_candidates(_offering(_system(rate), True))
    offered = solve_table(table).allocations["s"]
    assert plain.serving is not None and offered.serving is not None
    assert not any(o.instances > 1 and o.delay_us == 0 for o in plain.serving.options)
    no_delay = [o for o in offered.serving.options if o.instances > 1 and o.delay_us == 0]
    assert [o.instances for o in no_delay] == [2, 3]
    assert all(o.feasible or o.at_least for o in no_delay)
    assert offered.replicas <= plain.replicas
    chosen = next(
        o
        for o in offered.serving.options
        if (o.instances, o.delay_us) == (offered.serving.instances, offered.serving.delay_us)
    )
    assert math.isclose(chosen.max_rate, offered.max_rate_per_replica, rel_tol=2e-4)
