"""The partition catalogue: profile names per product, fractions, MPS pools, bad names."""

from __future__ import annotations

from fractions import Fraction

import pytest

from inferno.errors import InputError
from inferno.partitions.catalogue import (
    PRODUCTS,
    Partition,
    mps_pool,
    mps_pool_for_shares,
    parse_partition,
    product,
)


def test_profile_memory_follows_the_memory_slices() -> None:
    for prod in PRODUCTS.values():
        for prof in prod.profiles():
            assert prof.memory_gb == pytest.approx(prod.memory_gb * prof.kind.memory / 8)
            # the name's memory is the GB the slices hold, rounded as NVIDIA names them
            named = float(prof.name.split(".")[1].removesuffix("+me").removesuffix("gb"))
            assert abs(named - prof.memory_gb) < 1, prof


def test_names_depend_on_the_product() -> None:
    assert product("A100-40GB").profile("1g.10gb").kind.key == "1g.2m"
    assert product("A100-80GB").profile("1g.10gb").kind.key == "1g"
    assert product("H200-141GB").profile("3g.71gb").kind.compute == 3
    assert product("A100-80GB").profile("mig-3g.40gb").resource == "nvidia.com/mig-3g.40gb"
    assert not product("H200-141GB").placements_verified


def test_partitions_as_accelerators() -> None:
    p = parse_partition("A100-80GB:3g.40gb")
    assert (p.name, p.type, p.multiplicity, p.fraction) == (
        "A100-80GB:3g.40gb",
        "A100-80GB/slice",
        3,
        Fraction(3, 7),
    )
    assert p.cost(700.0) == pytest.approx(300.0)
    q = parse_partition("H100-80GB:mps-4")
    assert (q.type, q.fraction, q.memory_gb, q.mode) == (
        "H100-80GB/mps-4",
        Fraction(1, 4),
        20,
        "mps",
    )
    assert Partition.of_mps(mps_pool("H100-80GB", 4)) == q


@pytest.mark.parametrize(
    ("name", "match"),
    [
        (
            "A100-80GB:3g.20gb",
            r"unknown MIG profile '3g.20gb' for A100-80GB; its profiles are 1g.10gb",
        ),
        ("B200:3g.40gb", "unknown GPU product 'B200'"),
        ("A100-80GB", "a partition name is"),
        ("H100-80GB:mps-x", "needs an integer N"),
        ("H100-80GB:mps-1", r"MPS replicas must be 2\.\.48"),
    ],
)
def test_bad_names_say_what_is_wrong(name: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_partition(name)


def test_equal_shares_map_to_a_stock_pool() -> None:
    assert mps_pool_for_shares("H100-80GB", [0.5, 0.5]).replicas == 2
    assert mps_pool_for_shares("H100-80GB", [0.2]).replicas == 5


def test_a_20_80_pair_is_refused_with_a_reason() -> None:
    with pytest.raises(InputError, match=r"asymmetric MPS shares 20%/80%.*equal 1/N"):
        mps_pool_for_shares("H100-80GB", [0.2, 0.8])
    with pytest.raises(InputError, match="not 1/N"):
        mps_pool_for_shares("H100-80GB", [0.3])
