"""Packing MIG slices onto GPUs: the reference packings of docs/gpu-partitions.md, validity of
every layout, the ILP against first-fit decreasing, kept geometries and bad input."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from inferno.errors import InputError
from inferno.partitions.catalogue import product
from inferno.partitions.geometry import Placement, check_placements
from inferno.solver.packing import MigPacking, SliceRequest, pack_mig

A100 = "A100-80GB"


def assert_valid(packing: MigPacking, demand: dict[str, int]) -> None:
    """Every GPU's layout can exist, and the slices placed are exactly those requested."""
    prod = product(packing.product)
    placed: Counter[str] = Counter()
    for gpu in packing.gpus:
        check_placements(Placement(s.start, prod.profile(s.profile).kind.key) for s in gpu.slices)
        used = sum(prod.profile(s.profile).kind.compute for s in gpu.slices)
        assert gpu.free_compute == 7 - used
        covered = {
            m
            for s in gpu.slices
            for m in range(s.start, s.start + prod.profile(s.profile).kind.memory)
        }
        assert set(gpu.free_memory) == set(range(8)) - covered
        placed.update(s.profile for s in gpu.slices)
    assert placed == Counter({k: n for k, n in demand.items() if n})
    assert packing.gpus_used >= packing.lower_bound


@pytest.mark.parametrize("method", ["ilp", "ffd", "auto"])
@pytest.mark.parametrize(
    ("demand", "gpus"),
    [
        ({"4g.40gb": 1, "3g.40gb": 1}, 1),
        ({"3g.40gb": 2, "1g.10gb": 1}, 2),
        ({"1g.20gb": 5}, 2),
        ({"2g.20gb": 3, "1g.10gb": 1}, 1),
    ],
)
def test_reference_packings(demand: dict[str, int], gpus: int, method: str) -> None:
    packing = pack_mig(A100, demand, method=method)  # type: ignore[arg-type]
    assert packing.gpus_used == gpus
    assert_valid(packing, demand)


def test_the_4g_3g_pair_uses_the_only_placement_and_strands_nothing() -> None:
    packing = pack_mig(A100, {"4g.40gb": 1, "3g.40gb": 1})
    (gpu,) = packing.gpus
    assert {(s.profile, s.start) for s in gpu.slices} == {("4g.40gb", 0), ("3g.40gb", 4)}
    assert (gpu.free_compute, gpu.free_memory) == (0, ())


def test_stranded_slices_are_reported() -> None:
    packing = pack_mig(A100, {"3g.40gb": 2, "1g.10gb": 1})
    assert packing.stranded_compute == 7 + 7 - 7  # 3g+3g strands one, the lone 1g six
    assert packing.stranded_memory == 7  # the lone 1g covers one memory slice of eight
    five = pack_mig(A100, {"1g.20gb": 5})
    assert sorted(g.counts()["1g.20gb"] for g in five.gpus) == [1, 4]


def test_the_ilp_beats_first_fit_decreasing_where_ffd_is_not_optimal() -> None:
    demand = {"4g.40gb": 2, "2g.20gb": 4, "3g.40gb": 4}
    ffd = pack_mig(A100, demand, method="ffd")
    ilp = pack_mig(A100, demand, method="ilp")
    auto = pack_mig(A100, demand)
    assert (ffd.gpus_used, ilp.gpus_used, auto.gpus_used) == (5, 4, 4)
    assert ilp.optimal and auto.method == "ilp" and not ffd.optimal
    for p in (ffd, ilp, auto):
        assert_valid(p, demand)


def test_random_demands_are_packed_validly_and_the_ilp_is_never_worse() -> None:
    rng = random.Random(7)
    names = [p.name for p in product("A100-40GB").profiles() if "+me" not in p.name]
    for _ in range(60):
        demand = {n: rng.randint(0, 5) for n in rng.sample(names, rng.randint(1, 4))}
        if not any(demand.values()):
            continue
        ffd = pack_mig("A100-40GB", demand, method="ffd")
        ilp = pack_mig("A100-40GB", demand, method="ilp")
        assert_valid(ffd, demand)
        assert_valid(ilp, demand)
        assert ilp.optimal and ilp.gpus_used <= ffd.gpus_used


def test_owners_are_carried_to_their_slices() -> None:
    requests = [SliceRequest("3g.40gb", "bert"), SliceRequest("4g.40gb", "resnet")]
    requests += [SliceRequest("1g.10gb", f"lenet-{i}") for i in range(3)]
    packing = pack_mig(A100, requests)
    owners = {(s.owner, s.profile) for g in packing.gpus for s in g.slices}
    assert owners == {(r.owner, r.profile) for r in requests}


def test_current_geometries_are_kept_when_it_costs_no_gpu() -> None:
    demand = {"3g.40gb": 2, "2g.20gb": 2, "1g.10gb": 2}
    # both {3g,2g,1g,1g}+{3g,2g} and {3g,3g}+{2g,2g,1g,1g} take 2 GPUs; the current layout wins
    for current in (
        [{"3g.40gb": 2}, {"2g.20gb": 2, "1g.10gb": 2}],
        [{"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}, {"3g.40gb": 1, "2g.20gb": 1}],
    ):
        packing = pack_mig(A100, demand, current=current)
        assert packing.gpus_used == 2 and packing.kept == 2
        assert sorted(sorted(g.counts().items()) for g in packing.gpus) == sorted(
            sorted(c.items()) for c in current
        )
        assert_valid(packing, demand)
    # a kept geometry never costs an extra GPU
    wasteful = pack_mig(A100, {"1g.10gb": 7}, current=[{"1g.10gb": 1}] * 7)
    assert wasteful.gpus_used == 1 and wasteful.kept == 0


def test_a_large_fleet_packs_fast() -> None:
    rng = random.Random(3)
    demand = {n: rng.randint(500, 1500) for n in ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb")}
    assert sum(demand.values()) == 3539  # the size docs/gpu-partitions.md quotes
    start = time.perf_counter()
    packing = pack_mig(A100, demand)
    elapsed = time.perf_counter() - start
    assert_valid(packing, demand)
    assert packing.optimal
    assert elapsed < 10


def test_nothing_to_place() -> None:
    assert pack_mig(A100, {}).gpus_used == 0


@pytest.mark.parametrize(
    ("requests", "match"),
    [
        ({"3g.20gb": 1}, "unknown MIG profile '3g.20gb' for A100-80GB"),
        ({"3g.40gb": -1}, "must be an integer ≥ 0"),
    ],
)
def test_bad_requests_say_what_is_wrong(requests: dict[str, int], match: str) -> None:
    with pytest.raises(InputError, match=match):
        pack_mig(A100, requests)


def test_an_unknown_product_is_refused() -> None:
    with pytest.raises(InputError, match="unknown GPU product 'V100'"):
        pack_mig("V100", {"1g.5gb": 1})
