"""Sizing only the candidates that can win (inferno/solver/lazy_sizing.py).

An unlimited solve with the accurate model sizes each server's candidates whose lower bound on the
transition value (from λ* ≤ 0.999 μ(N)) can still beat the best one sized. Everything here checks
that the answer is the one the full table gives, bit for bit, and that the rest is sized whenever
something needs it (the MILP, capacity limits, ``explain``, a re-solve off a refused MPS pool)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from inferno.data import load_system
from inferno.data.solution_json import solution_to_json
from inferno.model.profiles import G0Profile, G2Profile
from inferno.solver import SizingMemo, build_candidates, lazy_sizing, solve, solve_table
from inferno.solver.explain import explain
from inferno.solver.transition_value import most_replicas, value_floor, values
from inferno.system import (
    CurrentAllocation,
    Load,
    OptimizerSpec,
    PerformanceModel,
    Server,
    System,
    Target,
)

from .test_mps_resolve import make_system, tight_slo

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"
ACCURATE = PerformanceModel.ACCURATE


def _g2(base: System, quantile: float | None = None) -> System:
    """The sample with its G0 profiles made G2 (α, 0.4β, 0.5β/384) and TTFT targets (the mean,
    or the ``quantile``)."""
    profiles = tuple(
        replace(
            mp,
            profile=G2Profile(
                p.alpha, 0.4 * p.beta, 0.5 * p.beta / 384, p.max_batch_size, p.at_tokens
            ),
        )
        for mp in base.profiles
        if isinstance(p := mp.profile, G0Profile)
    )
    ttft = {"Premium": 250.0, "Bronze": 500.0, "Free": 1000.0}
    classes = {
        name: replace(
            cls,
            targets=MappingProxyType(
                {
                    m: Target(m, itl=t.itl, ttft=ttft[name], ttft_quantile=quantile)
                    for m, t in cls.targets.items()
                }
            ),
        )
        for name, cls in base.classes.items()
        if name in ttft
    }
    return replace(base, profiles=profiles, classes=MappingProxyType(classes))


def _servers(
    base: System, n: int, seed: int, *, current: bool = False, shapes: bool = False
) -> tuple[Server, ...]:
    """``n`` servers of the sample's models and classes, of varied loads and lengths; with
    ``current``, most run somewhere already (some with a cost given apart from the replicas),
    and some have replica limits, a kept accelerator or no load at all; with ``shapes``, their
    requests of a few shapes only (candidates that are the same point, sized once)."""
    rng = np.random.default_rng(seed)
    classes = sorted(c for c in base.classes if base.classes[c].targets)
    models = sorted({p.model for p in base.profiles})
    accs = {m: sorted(p.accelerator for p in base.profiles if p.model == m) for m in models}
    out = []
    for i in range(n):
        model = models[int(rng.integers(len(models)))]
        rate = 0.0 if current and i % 17 == 0 else float(rng.uniform(30, 3000))
        tokens = (
            (float(rng.choice([128, 512])), float(rng.choice([256, 1024])))
            if shapes
            else (float(round(rng.uniform(64, 512))), float(round(rng.uniform(128, 1536))))
        )
        load = Load(
            rate,
            *tokens,
            out_tokens_cov=float(rng.choice([1.0] if shapes else [0.0, 0.5, 1.0, 1.5])),
            out_tokens_dist="gamma" if shapes else str(rng.choice(["gamma", "lognormal"])),
        )
        kw: dict[str, Any] = {}
        if current and i % 5:
            acc = accs[model][int(rng.integers(len(accs[model])))]
            replicas = int(rng.integers(1, 8))
            cost = float(rng.uniform(10, 2000)) if i % 3 == 0 else None
            kw["current"] = CurrentAllocation(acc, replicas, 0, cost)
            kw["keep_accelerator"] = i % 11 == 0
        if current and i % 7 == 0:
            kw["min_replicas"] = int(rng.integers(0, 4))
            kw["max_replicas"] = int(rng.integers(4, 12))
        out.append(Server(f"s{i:03d}", classes[i % len(classes)], model, load, **kw))
    return tuple(out)


def _system(kind: str, queue_factor: float, *, current: bool = False, n: int = 80) -> System:
    base = load_system(SAMPLE)
    if kind == "g2":
        base = _g2(base)
    elif kind == "g2-p95":
        base = _g2(base, 0.95)
    elif kind == "g0-latency-p95":  # one class judged on its latency's 95th percentile
        free = base.classes["Free"]
        targets = {
            m: replace(t, latency=60_000.0, latency_quantile=0.95) for m, t in free.targets.items()
        }
        classes = {**base.classes, "Free": replace(free, targets=MappingProxyType(targets))}
        base = replace(base, classes=MappingProxyType(classes))
    elif kind == "g2-shapes":
        base = _g2(base)
    spec = OptimizerSpec(unlimited=True, queue_factor=queue_factor, model=ACCURATE)
    seed = len(kind) + int(queue_factor) + current
    servers = _servers(base, n, seed, current=current, shapes=kind == "g2-shapes")
    return replace(base, servers=servers, optimizer=spec)


def _json(solution: Any, system: System) -> Any:
    return solution_to_json(solution, system)


def _close(a: Any, b: Any, path: str = "$") -> None:
    """``a`` and ``b`` equal, their numbers within the λ* search's precision (1e-8 relative):
    a candidate's λ* is the same root searched among other rows, whose block widths round the
    metrics' last bits differently."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-7, abs=1e-12), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


CASES = [
    ("g0", 10.0, False),
    ("g2", 10.0, False),
    ("g2", 0.0, False),
    ("g2", 10.0, True),
    ("g2-p95", 10.0, False),
    ("g2-shapes", 10.0, True),
]


@pytest.mark.parametrize(("kind", "queue_factor", "current"), CASES)
def test_the_lazy_solve_is_the_full_ones(kind: str, queue_factor: float, current: bool) -> None:
    system = _system(kind, queue_factor, current=current)
    table = build_candidates(system)
    assert not table.complete  # something was left unsized: the test is of the pruning
    static = table.static
    assert static is not None and static.sizing is not None
    sized = int(static.sizing.sized.sum())
    assert sized < 0.7 * table.server.size
    lazy = solve_table(table)
    full_table = table.completed()
    assert full_table.complete and int(static.sizing.sized.sum()) == table.server.size
    full = solve_table(full_table)
    assert _json(lazy, system) == _json(full, system)
    # and both are the solve of a table sized whole from the start (the MILP's spec: not lazy)
    eager = build_candidates(replace(system, optimizer=replace(system.optimizer, milp=True)))
    assert eager.complete
    np.testing.assert_array_equal(eager.feasible, full_table.feasible)
    np.testing.assert_allclose(eager.rate, full_table.rate, rtol=1e-8)
    _close(_json(solve_table(eager, "greedy"), system), _json(full, system))


def test_only_the_accurate_unlimited_solve_is_lazy() -> None:
    system = _system("g2", 10.0, n=20)
    inferno = replace(system, optimizer=replace(system.optimizer, model=PerformanceModel.INFERNO))
    assert build_candidates(inferno).complete
    assert build_candidates(
        replace(system, optimizer=replace(system.optimizer, unlimited=False))
    ).complete
    assert not build_candidates(system).complete


def test_the_milp_asked_of_a_lazy_table_completes_it() -> None:
    system = _system("g2", 10.0, n=30)
    table = build_candidates(system)
    assert not table.complete
    milp = solve_table(table, "milp")
    assert table.static is not None and table.static.sizing is not None
    assert table.static.sizing.complete
    eager = build_candidates(replace(system, optimizer=replace(system.optimizer, milp=True)))
    _close(_json(milp, system), _json(solve_table(eager, "milp"), system))


def test_explain_shows_every_candidate_sized() -> None:
    system = _system("g2", 10.0, n=12)
    table = build_candidates(system)
    solution = solve_table(table)
    eager = build_candidates(replace(system, optimizer=replace(system.optimizer, milp=True)))
    for srv in system.servers:
        got = explain(table, solution, srv.name)
        want = explain(eager, solve_table(eager, "greedy"), srv.name)
        assert (got.server, got.verdict) == (want.server, want.verdict)
        assert len(got.rows) == len(want.rows)
        for r, w in zip(got.rows, want.rows, strict=True):
            assert replace(r, max_rate=0.0) == replace(w, max_rate=0.0)
            assert r.max_rate == pytest.approx(w.max_rate, rel=1e-8, nan_ok=True)
    assert any(r.max_rate == r.max_rate and not r.chosen for r in got.rows)  # sized, not chosen


def test_a_memo_reused_at_other_rates_sizes_what_the_new_rates_need() -> None:
    """The optimizer service keeps the rate-free columns across solves: a later solve at other
    rates may need candidates the first left unsized, and sizes them."""
    system = _system("g2", 10.0, n=40)
    memo = SizingMemo(100_000)
    first = build_candidates(system, memo)
    assert first.static is not None and first.static.sizing is not None
    sized_first = int(first.static.sizing.sized.sum())
    rng = np.random.default_rng(7)
    later = replace(
        system,
        servers=tuple(
            replace(
                s,
                load=replace(
                    s.load, arrival_rate=s.load.arrival_rate * float(rng.uniform(0.05, 20))
                ),
            )
            for s in system.servers
        ),
    )
    again = build_candidates(later, memo)
    assert again.static is first.static  # the columns were reused …
    assert int(first.static.sizing.sized.sum()) > sized_first  # … and more of them sized
    _close(_json(solve_table(again), later), _json(solve(later), later))
    _close(_json(solve_table(first), system), _json(solve(system), system))


def test_threads_sharing_the_columns_get_the_answers_of_their_own() -> None:
    system = _system("g2", 0.0, n=40)
    memo = SizingMemo(100_000)
    solve(system, memo=memo)  # the rate-free columns kept, most candidates unsized
    scaled = [
        replace(
            system,
            servers=tuple(
                replace(s, load=replace(s.load, arrival_rate=s.load.arrival_rate * k))
                for s in system.servers
            ),
        )
        for k in (0.1, 0.5, 2.0, 8.0)
    ]
    got: dict[int, Any] = {}

    def run(i: int) -> None:
        got[i] = _json(solve(scaled[i], memo=memo), scaled[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(scaled))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, s in enumerate(scaled):
        _close(got[i], _json(solve(s), s))


def test_the_value_floor_is_below_every_value_it_bounds() -> None:
    """For every candidate and every count of replicas at least its floor's, the transition
    value is at least the floor: no current allocation, one on the same accelerator (with a
    cost given apart from its replicas, which makes staying worth 0 below a change in cost
    that is negative), and one elsewhere."""
    system = _system("g2", 10.0, current=True, n=60)
    table = build_candidates(system).completed()
    rng = np.random.default_rng(3)
    least = rng.integers(0, 9, size=table.server.size).astype(np.float64)
    floor = value_floor(system, table.server, table.accelerator, least, table.unit_cost)
    for extra in range(12):
        r = least + extra
        v = values(system, table.server, table.accelerator, r, table.unit_cost * r)
        assert (v >= floor).all(), extra
    # the floor is reached: it is the value of some count of replicas, not just a bound
    stays = [
        c
        for c, s in enumerate(table.server)
        if system.servers[s].current.accelerator == table.accelerator[c]
        and system.servers[s].current.cost is not None
    ]
    assert stays


def test_a_refused_mps_pool_is_re_solved_from_the_completed_table(tmp_path: Path) -> None:
    """The accurate model keeps the batch kind's own model, and sizes it lazily too: lenet's
    1g.10gb slices cost more than its mps-2 share, so they are left unsized, until the
    co-location is refused and the re-solve needs them."""
    _, slo = tight_slo(tmp_path)
    system = make_system(tmp_path / "tight", slo)
    system = replace(system, optimizer=replace(system.optimizer, model=ACCURATE))
    table = build_candidates(system)
    assert not table.complete
    after = solve_table(table)
    assert after.allocations["a"].accelerator == "H100-80GB:1g.10gb"
    assert "re-solved off H100-80GB:mps-2" in after.allocations["a"].note


def test_a_latency_quantile_target_is_never_ruled_out_by_one_evaluation() -> None:
    """A latency quantile is searched on the exact response-time distribution, which one
    evaluation of the means does not judge: such candidates are sized whole when they may win."""
    system = _system("g0-latency-p95", 10.0, n=24)
    table = build_candidates(system)
    assert not table.complete
    eager = build_candidates(replace(system, optimizer=replace(system.optimizer, milp=True)))
    _close(_json(solve_table(table), system), _json(solve_table(eager, "greedy"), system))
    bounds = {str(table.bound[c]) for c in range(table.server.size) if table.feasible[c]}
    assert "latency" in bounds  # the quantile binds somewhere: the case is tested


def test_most_replicas_bounds_every_count_within_the_best() -> None:
    """Every count of replicas whose value is within ``best`` is at most ``most_replicas``
    (what lets one evaluation rule a candidate out), and it is tight: one more replica is
    beyond ``best`` unless staying is what keeps it within."""
    system = _system("g2", 10.0, current=True, n=60)
    table = build_candidates(system).completed()
    server, names, unit = table.server, table.accelerator, table.unit_cost
    rng = np.random.default_rng(11)
    best = rng.uniform(-500, 3000, size=server.size)
    most = most_replicas(system, server, names, unit, best)
    within = np.zeros(server.size, dtype=bool)
    for r in range(0, 60):
        count = np.full(server.size, float(r))
        v = values(system, server, names, count, unit * count)
        assert ((v > best) | (count <= most)).all(), r
        within |= (v <= best) & (count == most)
    finite = np.isfinite(most) & (most >= 0) & (most < 59)
    assert within[finite].all()  # the most is itself within: tight, not just a bound
    assert (most == -1).any() and (most > 0).any()


@pytest.mark.parametrize("queue_factor", [10.0, 0.0])
def test_one_evaluation_leaves_most_of_round_two_unsized(
    queue_factor: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A candidate of round 2 that could beat its server's best only at a rate where it misses
    a target is left unsized: fewer are sized than without that evaluation, for the same
    solution."""
    system = _system("g2", queue_factor)
    screened = build_candidates(system)
    assert screened.static is not None and screened.static.sizing is not None
    sized = int(screened.static.sizing.sized.sum())
    lazy = _json(solve_table(screened), system)

    def never(points: Any, slo: Any, rate: Any) -> Any:
        return np.zeros(len(points), dtype=bool)

    monkeypatch.setattr(lazy_sizing, "below", never)
    whole = build_candidates(system)
    assert whole.static is not None and whole.static.sizing is not None
    assert sized < int(whole.static.sizing.sized.sum())
    _close(lazy, _json(solve_table(whole), system))


def _g1_itl_hump(tmp_path: Path) -> System:
    """One llama_13b server on the sample's accelerators as G1 profiles (prefill γ = 2α,
    δ = 0.002β), ITL 20 ms and TTFT 2 s: on 2xMI300X its ITL rises above 20 ms and falls below it
    again as the rate grows (joins stall the batch at middling loads; a full batch admits only
    as many as leave), so a target missed at one rate says nothing about a higher one."""
    models = json.loads((SAMPLE / "model-data.json").read_text())["models"]
    rows = [
        {
            "name": m["name"],
            "acc": m["acc"],
            "accCount": m.get("accCount", 1),
            "maxBatchSize": m["maxBatchSize"],
            "atTokens": m["atTokens"],
            "decodeParms": {"alpha": m["alpha"], "beta": m["beta"]},
            "prefillParms": {"gamma": 2 * m["alpha"], "delta": 0.002 * m["beta"]},
        }
        for m in models
        if m["name"] == "llama_13b"
    ]
    accs = json.loads((SAMPLE / "accelerator-data.json").read_text())
    for a in accs["accelerators"]:
        a["cost"] = {"2xMI300X": 10.0, "2xA100": 0.3}.get(a["name"], 1000.0)
    load = {
        "arrivalRate": 22626.69,
        "avgInTokens": 1826,
        "avgOutTokens": 80,
        "outTokensCOV": 0.5,
        "outTokensDist": "gamma",
        "outTokensMax": 203,
    }
    docs = {
        "model-data.json": {"models": rows},
        "accelerator-data.json": accs,
        "serviceclass-data.json": {
            "serviceClasses": [
                {"name": "C", "model": "llama_13b", "priority": 1, "slo-itl": 20, "slo-ttft": 2000}
            ]
        },
        "server-data.json": {
            "servers": [
                {"name": "s", "class": "C", "model": "llama_13b", "currentAlloc": {"load": load}}
            ]
        },
        "optimizer-data.json": {
            "optimizer": {"unlimited": True, "model": "accurate", "queueFactor": 2.0}
        },
    }
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    return load_system(tmp_path)


def test_a_target_missed_midway_does_not_rule_a_candidate_out(tmp_path: Path) -> None:
    """The case that once withdrew the one-evaluation screen: an evaluation at the rate a
    candidate would need to win said no to 2xMI300X here, whose λ* is the top of its range, and
    the lazy solve chose 2xA100 at 27 where the full table's choice costs 10. The screen now
    leaves a point whose metrics may fall unjudged (``tests/model/test_below.py``), and the
    joins of a prefill no longer put this ITL over its target at that rate."""
    system = _g1_itl_hump(tmp_path)
    table = build_candidates(system)
    assert not table.complete
    lazy = solve_table(table)
    eager = build_candidates(replace(system, optimizer=replace(system.optimizer, milp=True)))
    _close(_json(lazy, system), _json(solve_table(eager, "greedy"), system))
    assert lazy.allocations["s"].accelerator == "2xMI300X"
    assert lazy.total_cost == pytest.approx(10.0)


def test_the_chosen_points_are_their_own_where_request_shapes_repeat() -> None:
    """A server whose request shape repeats an earlier server's, kept on an accelerator the
    earlier one does not choose: its point is that earlier row's, out of the candidates' order.
    Its metrics (and every other's) are its own, as in the full table."""
    system = _system("g2", 10.0, n=30)
    first = system.servers[3]
    twin = replace(
        first, name="twin", current=CurrentAllocation("2xMI300X", 2, 0, None), keep_accelerator=True
    )
    system = replace(system, servers=(*system.servers, twin))
    lazy = solve_table(build_candidates(system))
    assert lazy.allocations[first.name].accelerator != "2xMI300X"
    assert lazy.allocations["twin"].accelerator == "2xMI300X"
    eager = build_candidates(replace(system, optimizer=replace(system.optimizer, milp=True)))
    _close(_json(lazy, system), _json(solve_table(eager, "greedy"), system))
