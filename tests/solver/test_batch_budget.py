"""A server whose candidates' batch limits sum beyond MAX_SERVER_BATCH_SUM (a memory-scaled
batch from a thousandth of a token per request) is refused with its reason before the model
holds a number for it; the others are decided as without it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from inferno.data import load_system
from inferno.solver import solve
from inferno.solver.batch_budget import MAX_SERVER_BATCH_SUM
from inferno.system import Load

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"


def test_a_server_beyond_the_batch_budget_is_refused_the_others_decided() -> None:
    system = load_system(SAMPLE)
    base = next(s for s in system.servers if s.model == "llama_7b")
    tiny = replace(base, name="tiny", load=Load(60.0, 0.0, 0.001))
    short = replace(base, name="short", load=Load(60.0, 0.0, 100.0))
    before = solve(system)
    solution = solve(replace(system, servers=(*system.servers, tiny, short)))
    reason = solution.unallocated["tiny"].reason
    assert "batch limits sum to" in reason and f"{MAX_SERVER_BATCH_SUM:,}" in reason
    assert "0.001 tokens per request" in reason
    assert "short" in solution.allocations  # 100 tokens: N in the hundreds, decided
    for name, alloc in before.allocations.items():
        got = solution.allocations[name]
        assert (got.accelerator, got.replicas, got.max_batch) == (
            alloc.accelerator,
            alloc.replicas,
            alloc.max_batch,
        )


def test_the_large_samples_servers_are_far_within_the_budget() -> None:
    """What docs/data-format.md says of the sample: each server's candidates' batch limits sum
    to under 1,000, a 250th of the budget."""
    import numpy as np

    from inferno.solver import build_candidates

    table = build_candidates(load_system(SAMPLE))
    sums = np.bincount(table.server, weights=table.lazy.n_batch)
    assert 0 < sums.max() < 1000
    assert MAX_SERVER_BATCH_SUM >= 250 * 1000
