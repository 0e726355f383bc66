"""Packing MPS processes into GPUs of N equal shares, with memory admission."""

from __future__ import annotations

import pytest

from inferno.errors import InputError
from inferno.partitions.catalogue import mps_pool
from inferno.solver.packing_mps import CONTEXT_MB, MpsProcess, pack_mps

H100_MB = 80 * 1024


def test_small_processes_fill_n_shares_per_gpu() -> None:
    pool = mps_pool("H100-80GB", 4)
    procs = [MpsProcess(f"bert-{i}", 500) for i in range(9)]
    packing = pack_mps(pool, procs)
    assert packing.gpus_used == 3 == packing.lower_bound
    assert [len(g.processes) for g in packing.gpus] == [4, 4, 1]
    assert packing.stranded_shares == 3
    assert not packing.refused


def test_a_process_larger_than_its_share_is_refused_with_a_reason() -> None:
    pool = mps_pool("H100-80GB", 4)  # 20,480 MB per share
    too_big = MpsProcess("llm", 20_000)  # + 1,230 MB context = 21,230 MB
    packing = pack_mps(pool, [too_big, MpsProcess("cnn", 1820)])
    assert [p.owner for p, _ in packing.refused] == ["llm"]
    reason = packing.refused[0][1]
    assert "21230 MB" in reason and "1/4" in reason and "20480 MB" in reason
    assert packing.gpus_used == 1
    # the same model fits a share of an N=2 pool
    assert not pack_mps(mps_pool("H100-80GB", 2), [too_big]).refused


def test_the_gpu_keeps_ten_percent_headroom() -> None:
    pool = mps_pool("H100-80GB", 4)
    # each fits its 1/4 share, but four of them exceed 90 % of the GPU: 3 + 1
    model_mb = 0.24 * H100_MB - CONTEXT_MB
    procs = [MpsProcess(f"m{i}", model_mb) for i in range(4)]
    assert 4 * procs[0].memory_mb > 0.9 * H100_MB > 3 * procs[0].memory_mb
    packing = pack_mps(pool, procs)
    assert sorted(len(g.processes) for g in packing.gpus) == [1, 3]
    assert all(g.memory_mb <= 0.9 * H100_MB for g in packing.gpus)
    # with no headroom asked, they share one GPU
    assert pack_mps(pool, procs, headroom=1.0).gpus_used == 1


def test_incompatible_pairs_are_not_co_located() -> None:
    pool = mps_pool("A100-80GB", 2)
    procs = [MpsProcess("vgg16", 2920), MpsProcess("resnet50", 1820), MpsProcess("lenet", 50)]

    def compatible(a: MpsProcess, b: MpsProcess) -> bool:
        return {a.owner, b.owner} != {"vgg16", "resnet50"}

    packing = pack_mps(pool, procs, compatible=compatible)
    groups = [{p.owner for p in g.processes} for g in packing.gpus]
    assert all(not {"vgg16", "resnet50"} <= g for g in groups)
    assert packing.gpus_used == 2
    assert pack_mps(pool, procs).gpus_used == 2  # without the check, vgg16+resnet50 pair up
    assert {"vgg16", "resnet50"} in [
        {p.owner for p in g.processes} for g in pack_mps(pool, procs).gpus
    ]


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="model memory must be ≥ 0 MB"):
        MpsProcess("x", -1)
    with pytest.raises(InputError, match="headroom"):
        pack_mps(mps_pool("H100-80GB", 2), [], headroom=0)
