"""MIG geometries: the counts of docs/gpu-partitions.md and the placement rules."""

from __future__ import annotations

import itertools

import pytest

from inferno.errors import InputError
from inferno.partitions.catalogue import COMPUTE_SLICES, KINDS, MEMORY_SLICES
from inferno.partitions.geometry import (
    STANDARD_KINDS,
    Placement,
    check_placements,
    feasible_configurations,
    maximal_configurations,
    place,
)

WITHOUT_TWO_SLICE_1G = [k for k in STANDARD_KINDS if k != "1g.2m"]


def test_counts_over_the_six_standard_kinds() -> None:
    assert STANDARD_KINDS == ("1g", "1g.2m", "2g", "3g", "4g", "7g")
    assert len(feasible_configurations()) == 77
    assert len(maximal_configurations()) == 28


def test_counts_without_the_two_memory_slice_1g() -> None:
    assert len(feasible_configurations(WITHOUT_TWO_SLICE_1G)) == 37
    maximal = {c.counts for c in maximal_configurations(WITHOUT_TWO_SLICE_1G)}
    expected = {
        (("7g", 1),),
        (("3g", 1), ("4g", 1)),
        (("1g", 1), ("2g", 1), ("4g", 1)),
        (("1g", 3), ("4g", 1)),
        (("3g", 2),),
        (("2g", 2), ("3g", 1)),
        (("1g", 2), ("2g", 1), ("3g", 1)),
        (("1g", 4), ("3g", 1)),
        (("1g", 1), ("2g", 3)),
        (("1g", 3), ("2g", 2)),
        (("1g", 5), ("2g", 1)),
        (("1g", 7),),
    }
    assert maximal == expected


def test_every_configuration_has_a_valid_placement() -> None:
    for config in feasible_configurations(KINDS):
        check_placements(config.placements)
        assert config.compute <= COMPUTE_SLICES and config.memory <= MEMORY_SLICES
        assert sorted(p.kind for p in config.placements) == sorted(
            k for k, n in config.counts for _ in range(n)
        )


def test_feasibility_agrees_with_a_brute_force_over_placements() -> None:
    """Every set of placements of up to 4 instances: valid iff its multiset is listed."""
    listed = {c.counts for c in feasible_configurations()}
    options = [Placement(s, k) for k in STANDARD_KINDS for s in KINDS[k].starts]
    for size in range(1, 5):
        for combo in itertools.combinations(options, size):
            try:
                check_placements(combo)
            except InputError:
                continue
            counts = tuple((k, n) for k in KINDS if (n := sum(p.kind == k for p in combo)))
            assert counts in listed, combo


def test_documented_facts() -> None:
    # 3g+3g strands a compute slice; 1g×7 strands memory slice 7; 4g+3g only as 4g@0 + 3g@4
    two_3g = place({"3g": 2})
    assert two_3g is not None and sum(KINDS[p.kind].compute for p in two_3g) == 6
    seven = place({"1g": 7})
    assert seven is not None and {s for p in seven for s in p.slices} == set(range(7))
    assert place({"4g": 1, "3g": 1}) == (Placement(0, "4g"), Placement(4, "3g"))
    assert place({"4g": 1, "3g": 1, "1g": 1}) is None
    assert place({"1g": 1, "2g": 1, "3g": 1, "1g.2m": 0}) is not None  # all-balanced minus one 1g
    assert place({"1g": 2, "2g": 1, "3g": 1}) is not None  # mig-parted all-balanced
    assert place({}) == ()


@pytest.mark.parametrize(
    ("placements", "match"),
    [
        ([Placement(1, "3g")], "cannot start at memory slice 1"),
        ([Placement(0, "3g"), Placement(2, "2g")], "overlaps 3g@0 on memory slice 2"),
        ([Placement(0, "4g"), Placement(4, "3g"), Placement(4, "1g")], "overlaps"),
        ([Placement(0, "1g+me"), Placement(1, "1g+me")], "more than its limit 1"),
        ([Placement(0, "5g")], "unknown MIG kind"),
    ],
)
def test_impossible_placements_say_why(placements: list[Placement], match: str) -> None:
    with pytest.raises(InputError, match=match):
        check_placements(placements)


def test_unknown_kind_in_a_query() -> None:
    with pytest.raises(InputError, match="unknown MIG kind '9g'"):
        feasible_configurations(["9g"])
