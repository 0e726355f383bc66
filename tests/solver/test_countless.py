"""A candidate whose λ* per replica is too small to count its replicas (a profile tuned or
written absurdly) is infeasible with its reason: never a replica count cast from inf or NaN."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from inferno.data import load_system
from inferno.solver import solve
from inferno.system import Load
from inferno.tuning.apply import with_tuned_profiles

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"


def test_a_rate_too_small_to_count_replicas_is_infeasible_with_the_reason() -> None:
    system = load_system(SAMPLE)
    model = "llama_7b"
    pairs = {(p.model, p.accelerator) for p in system.profiles if p.model == model}
    absurd = with_tuned_profiles(system, {pair: (1e308, 1e308) for pair in pairs})
    with np.errstate(all="ignore"):  # the model overflows on such a profile (to inf, NaN)
        solution = solve(absurd)
    servers = [s.name for s in system.servers if s.model == model]
    assert servers
    for name in servers:
        assert name not in solution.allocations
        assert "too small to count the replicas" in solution.unallocated[name].reason
    for name, alloc in solution.allocations.items():  # the others as before
        assert 0 < alloc.replicas < 10**6, name
    assert len(solution.allocations) == len(system.servers) - len(servers)


def test_a_server_of_no_tokens_is_sized_without_a_warning() -> None:
    """A G0 server whose requests carry no tokens (avgLength 0: no inter-token latency to
    meet) is sized as before, and the model says nothing on stderr (pytest turns a warning
    into an error here; before, a divide-by-zero RuntimeWarning reached the CLI's user)."""
    system = load_system(SAMPLE)
    zero = replace(system.servers[0], load=Load(system.servers[0].load.arrival_rate, 0.0, 0.0))
    solution = solve(replace(system, servers=(zero, *system.servers[1:])))
    assert zero.name in solution.allocations
