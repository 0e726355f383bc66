"""The sizing memo (:class:`inferno.solver.SizingMemo`): a solve with a warm memo gives the same
answer as one without, to the last bit (the solution's JSON values compared exactly); the memo
is bounded; a changed profile, target or request shape is not found in it; servers sized in
other company differ from a memo-less solve by rounding at most."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from _systems import ACCELERATORS, make_system, server

from inferno.data.solution_json import solution_to_json
from inferno.model.profiles import BatchProfile, G0Profile, G2Profile
from inferno.solver import SizingMemo, build_candidates, solve
from inferno.system import ModelProfile, OptimizerSpec, ServiceClass, System, Target

PROFILES = (
    ModelProfile("g0", "A", 1, G0Profile(alpha=7.77, beta=0.15, max_batch_size=76, at_tokens=512)),
    ModelProfile("g0", "B", 1, G0Profile(alpha=5.1, beta=0.09, max_batch_size=96, at_tokens=512)),
    ModelProfile("g2", "A", 1, G2Profile(alpha=9.0, beta=0.2, gamma=0.0004, max_batch_size=64)),
    ModelProfile("g2", "B", 1, G2Profile(alpha=6.0, beta=0.12, gamma=0.0002, max_batch_size=64)),
    ModelProfile("img", "A", 1, BatchProfile(30.0, 2.5, 32)),
    ModelProfile("img", "B", 1, BatchProfile(12.0, 9.0, 8)),
)


def classes(itl: float = 40.0) -> dict[str, ServiceClass]:
    gold = {
        "g0": Target("g0", itl=itl, ttw=500.0),
        "g2": Target("g2", itl=itl, ttft=900.0),
        "img": Target("img", latency=400.0),
    }
    bronze = {
        "g0": Target("g0", itl=80.0, ttw=2000.0),
        "g2": Target("g2", itl=80.0, ttft=3000.0, ttft_quantile=0.95),
        "img": Target("img", latency=1500.0),
    }
    free = {"g2": Target("g2", tps=200.0)}
    return {
        "gold": ServiceClass("gold", 1, MappingProxyType(gold)),
        "bronze": ServiceClass("bronze", 2, MappingProxyType(bronze)),
        "free": ServiceClass("free", 3, MappingProxyType(free)),
    }


def mixed(seed: int = 1, n: int = 36, itl: float = 40.0) -> System:
    """G0, G2 and batch-kind servers in three classes; some with a queue of 0, a batch limit or
    an idle load, and two with the same request shape."""
    rng = np.random.default_rng(seed)
    servers = []
    for i in range(n):
        model = ("g0", "g2", "img")[i % 3]
        cls = "free" if model == "g2" and i % 4 == 0 else ("gold", "bronze")[i % 2]
        extra: dict[str, Any] = {}
        if i % 5 == 0:
            extra["max_queue_size"] = 0
        if i % 7 == 0:
            extra["max_batch_size"] = 16
        rate = 0.0 if i == 6 else float(rng.uniform(30, 3000))
        tokens = (
            (128.0, 512.0) if i in (1, 4) else tuple(float(x) for x in rng.integers(64, 2048, 2))
        )
        servers.append(
            server(
                f"s{i:02d}",
                rate,
                model=model,
                cls=cls,
                in_tokens=tokens[0],
                out_tokens=tokens[1],
                **extra,
            )
        )
    return make_system(
        servers,
        optimizer=OptimizerSpec(unlimited=True),
        accelerators=ACCELERATORS,
        profiles=PROFILES,
        classes=classes(itl),
    )


def answer(system: System, memo: SizingMemo | None = None) -> dict[str, Any]:
    return solution_to_json(solve(system, memo=memo), system)


def rates_changed(system: System, seed: int) -> System:
    """Every server's rate × U(0.7, 1.3), tokens unchanged: the next control period."""
    rng = np.random.default_rng(seed)
    servers = tuple(
        replace(
            s, load=replace(s.load, arrival_rate=s.load.arrival_rate * float(rng.uniform(0.7, 1.3)))
        )
        for s in system.servers
    )
    return replace(system, servers=servers)


def test_the_mixed_system_has_every_kind_and_binding_targets() -> None:
    system = mixed()
    solution = solve(system)
    assert {p.profile.kind for p in system.profiles} == {
        PROFILES[0].profile.kind,
        PROFILES[2].profile.kind,
        PROFILES[4].profile.kind,
    }
    assert len(solution.allocations) >= 30
    bounds = {a.bound for a in solution.allocations.values()}
    assert len(bounds - {"max-rate"}) >= 2  # the targets bind λ*, not only the top of the range


def test_a_warm_memo_gives_the_cold_answer_to_the_last_bit() -> None:
    system = mixed()
    memo = SizingMemo(10_000)
    cold = answer(system, memo)
    filled = memo.stats()
    assert filled.entries > 0 and filled.hits == 0
    warm = answer(system, memo)
    after = memo.stats()
    assert after.hits > 0 and after.misses == filled.misses  # nothing sized again
    assert warm == cold  # the JSON values, floats compared exactly
    assert answer(system) == cold  # and the same as a solve without a memo


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_new_rates_find_every_sizing_and_answer_as_without_a_memo(seed: int) -> None:
    system = mixed()
    memo = SizingMemo(10_000)
    answer(system, memo)
    misses = memo.stats().misses
    moved = rates_changed(system, seed)
    warm = answer(moved, memo)
    assert memo.stats().misses == misses  # λ* does not depend on the load
    assert warm == answer(moved)
    assert warm != answer(system)  # the rates did change the answer


def test_the_memo_is_bounded_and_evicts_the_least_recently_used() -> None:
    system = mixed(n=60)
    big = SizingMemo(10_000)
    answer(system, big)
    distinct = len(big)
    small = SizingMemo(distinct // 3)
    for seed in range(3):
        other = mixed(seed=10 + seed, n=60)
        assert answer(other, small) == answer(other)
        assert len(small) <= small.max_entries
    assert small.stats().evictions > 0
    # the last system's rows are the most recently used: they are the ones kept
    last = mixed(seed=12, n=60)
    before = small.stats().misses
    answer(last, small)
    assert small.stats().misses - before < distinct  # some of it was found


def test_a_changed_profile_or_target_misses_the_memo() -> None:
    system = mixed()
    memo = SizingMemo(10_000)
    answer(system, memo)
    base = memo.stats()
    # one profile's α changed: that model's candidates are sized again, the others found
    faster = G2Profile(alpha=8.0, beta=0.2, gamma=0.0004, max_batch_size=64)
    profiles = tuple(
        replace(p, profile=faster) if (p.model, p.accelerator) == ("g2", "A") else p
        for p in system.profiles
    )
    changed = replace(system, profiles=profiles)
    got = answer(changed, memo)
    after = memo.stats()
    assert after.misses > base.misses and after.hits > base.hits
    assert got == answer(changed)
    # a class's target changed: missed too
    tighter = replace(system, classes=MappingProxyType(classes(itl=30.0)))
    misses = memo.stats().misses
    assert answer(tighter, memo) == answer(tighter)
    assert memo.stats().misses > misses
    # the request shape (tokens) of one server changed: its candidates missed
    servers = list(system.servers)
    servers[2] = replace(servers[2], load=replace(servers[2].load, out_tokens=777.0))
    reshaped = replace(system, servers=tuple(servers))
    misses = memo.stats().misses
    assert answer(reshaped, memo) == answer(reshaped)
    assert memo.stats().misses > misses


def test_the_queue_factor_and_the_wait_rule_are_part_of_the_key() -> None:
    system = mixed()
    memo = SizingMemo(10_000)
    answer(system, memo)
    for spec in (
        OptimizerSpec(unlimited=True, queue_factor=0.0),
        OptimizerSpec(unlimited=True, exact_wait_quantile=True),
    ):
        other = replace(system, optimizer=spec)
        misses = memo.stats().misses
        assert answer(other, memo) == answer(other)
        assert memo.stats().misses > misses


def test_a_memo_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        SizingMemo(0)


def test_candidates_sized_in_other_company_differ_by_rounding_at_most() -> None:
    """Half the servers' request shapes changed: their candidates are sized without the others
    (BLAS's matrix-vector product rounds by a row's position in its block), the rest found."""
    system = mixed(n=90)
    memo = SizingMemo(100_000)
    answer(system, memo)
    rng = np.random.default_rng(5)
    servers = list(system.servers)
    for i in rng.choice(len(servers), len(servers) // 2, replace=False).tolist():
        s = servers[i]
        servers[i] = replace(s, load=replace(s.load, out_tokens=float(rng.integers(64, 2048))))
    changed = replace(system, servers=tuple(servers))
    hits = memo.stats().hits
    got, want = build_candidates(changed, memo), build_candidates(changed)
    assert memo.stats().hits > hits  # the unchanged half was found
    assert np.array_equal(got.feasible, want.feasible)
    assert np.array_equal(got.bound, want.bound)
    assert np.array_equal(got.replicas, want.replicas)
    ok = got.feasible
    assert np.allclose(got.rate[ok], want.rate[ok], rtol=1e-12, atol=0.0)
    a, b = solve(changed, memo=memo), solve(changed)
    assert {k: (v.accelerator, v.replicas) for k, v in a.allocations.items()} == {
        k: (v.accelerator, v.replicas) for k, v in b.allocations.items()
    }


class CountingMemo(SizingMemo):
    """A memo counting its row-by-row lookups."""

    def __init__(self, max_entries: int) -> None:
        super().__init__(max_entries)
        self.lookups = 0

    def lookup(self, keys: Any, hashes: Any) -> Any:
        self.lookups += 1
        return super().lookup(keys, hashes)


def test_the_same_candidates_again_are_recalled_without_a_lookup() -> None:
    system = mixed()
    memo = CountingMemo(10_000)
    cold = answer(system, memo)
    assert memo.lookups == 1
    moved = rates_changed(system, 9)
    assert answer(moved, memo) == answer(moved)
    assert answer(system, memo) == cold
    assert memo.lookups == 1  # both recalled: every row bit-equal to the slots remembered
    # one server's tokens changed: the same number of rows, but not the same bits
    servers = list(system.servers)
    servers[0] = replace(servers[0], load=replace(servers[0].load, in_tokens=99.0))
    changed = replace(system, servers=tuple(servers))
    assert answer(changed, memo) == answer(changed)
    assert memo.lookups == 2
    # a memo too small to hold the request remembers nothing to recall, and still answers
    tiny = CountingMemo(5)
    assert answer(system, tiny) == cold and answer(system, tiny) == cold
    assert tiny.lookups == 2 and len(tiny) == 5
