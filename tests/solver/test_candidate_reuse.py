"""Reusing a candidate table's rate-free columns (:mod:`inferno.solver.candidate_reuse`): a
solve of the same servers at new rates (or new current allocations) reuses them, and its table
is bit-equal to one built without a memo; any change to what those columns depend on (request
shape, limits, class, the servers, profiles) builds them again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from inferno.solver import CandidateTable, SizingMemo, build_candidates
from inferno.system import CurrentAllocation, Server, System

from .test_sizing_memo import answer, mixed, rates_changed

#: the columns compared (every one the solvers read)
COLUMNS = (
    "server",
    "accelerator",
    "acc_type",
    "unit_cost",
    "n_memory",
    "rate",
    "feasible",
    "bound",
    "replicas",
    "cost",
    "value",
    "rate_each",
    "demand",
    "units_per_replica",
    "_ranked",
    "_starts",
)


def assert_bit_equal(a: CandidateTable, b: CandidateTable) -> None:
    for name in COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        if x.dtype == np.float64:  # NaN where the other has NaN, the same bits elsewhere
            assert (x.view(np.uint64) == y.view(np.uint64)).all(), name
        else:
            assert np.array_equal(x, y), name
    assert a.reason == b.reason and a.priority == b.priority
    assert np.array_equal(a.lazy.mu_1.view(np.uint64), b.lazy.mu_1.view(np.uint64))


def test_the_same_servers_at_new_rates_reuse_the_table_bit_for_bit() -> None:
    system = mixed()
    memo = SizingMemo(10_000)
    first = build_candidates(system, memo)
    for seed in (3, 4):
        moved = rates_changed(system, seed)
        again = build_candidates(moved, memo)
        assert again.lazy is first.lazy  # reused, not built again
        assert again.system is moved
        assert_bit_equal(again, build_candidates(moved))
        assert answer(moved, memo) == answer(moved)


def test_the_current_allocation_changes_only_the_rate_part() -> None:
    system = mixed()
    memo = SizingMemo(10_000)
    first = build_candidates(system, memo)
    running = tuple(
        replace(s, current=CurrentAllocation("A", 2, 8)) if i % 3 == 0 else s
        for i, s in enumerate(system.servers)
    )
    moved = replace(system, servers=running)
    again = build_candidates(moved, memo)
    assert again.lazy is first.lazy
    fresh = build_candidates(moved)
    assert not np.array_equal(fresh.value, first.value)  # the transition value did change
    assert_bit_equal(again, fresh)


def _server(i: int, change: Callable[[Server], Server]) -> Callable[[System], System]:
    def changed(system: System) -> System:
        servers = list(system.servers)
        servers[i] = change(servers[i])
        return replace(system, servers=tuple(servers))

    return changed


CHANGES: dict[str, Callable[[System], System]] = {
    "input tokens": _server(2, lambda s: replace(s, load=replace(s.load, in_tokens=99.0))),
    "output tokens": _server(3, lambda s: replace(s, load=replace(s.load, out_tokens=77.0))),
    "output CV": _server(1, lambda s: replace(s, load=replace(s.load, out_tokens_cov=0.5))),
    "output family": _server(
        1, lambda s: replace(s, load=replace(s.load, out_tokens_dist="lognormal"))
    ),
    "batch limit": _server(4, lambda s: replace(s, max_batch_size=4)),
    "queue": _server(5, lambda s: replace(s, max_queue_size=3)),
    "max replicas": _server(7, lambda s: replace(s, max_replicas=1)),
    "min replicas": _server(8, lambda s: replace(s, min_replicas=3)),
    "class": _server(9, lambda s: replace(s, service_class="gold")),
    "kept accelerator": _server(
        10, lambda s: replace(s, keep_accelerator=True, current=CurrentAllocation("B", 1, 8))
    ),
    "a server fewer": lambda system: replace(system, servers=system.servers[1:]),
    "a profile": lambda system: replace(
        system,
        profiles=(
            replace(system.profiles[0], profile=replace(system.profiles[0].profile, alpha=7.5)),
            *system.profiles[1:],
        ),
    ),
}


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_a_change_to_what_the_columns_depend_on_builds_them_again(what: str) -> None:
    system = mixed()
    memo = SizingMemo(10_000)
    first = build_candidates(system, memo)
    changed = CHANGES[what](system)
    again = build_candidates(changed, memo)
    assert again.lazy is not first.lazy
    # what the memo alone gives after the same solve (rows sized in other company may differ
    # from a memo-less solve's in the last bits: tests/solver/test_sizing_memo.py)
    alone = SizingMemo(10_000)
    build_candidates(system, alone)
    alone.tables.clear()
    assert_bit_equal(again, build_candidates(changed, alone))


def test_a_memo_too_small_for_the_request_keeps_no_table() -> None:
    system = mixed()
    memo = SizingMemo(5)
    first = build_candidates(system, memo)
    assert build_candidates(rates_changed(system, 3), memo).lazy is not first.lazy


def test_without_a_memo_nothing_is_reused() -> None:
    system = mixed()
    assert build_candidates(system).lazy is not build_candidates(system).lazy
