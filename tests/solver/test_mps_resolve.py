"""Re-solving servers whose MPS co-location was refused (inferno/solver/mps_resolve.py).

The system: on H100-80GB (70 a GPU) with MIG slices 1g.10gb and 3g.40gb and MPS pools of 2 shares,
GPU-let's 2080 Ti interference constants:

- ``v`` (vgg16, loose SLO) takes one mps-2 share (35);
- ``w`` (bert, loose SLO) takes one 3g.40gb slice (30): a MIG GPU with four 1g slots left;
- ``a`` (lenet, a target 2 % above its predicted latency on an mps-2 share) takes an mps-2 share
  (35) rather than the four 1g.10gb slices (40) its load needs there.

Next to vgg16, GPU-let's model slows lenet's GPU time by ~6 %: more than its slack, so the
packing refuses the pair and pays three GPUs. Re-solved without mps-2, lenet moves onto the
1g slices beside the 3g: two GPUs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inferno.data import load_system
from inferno.partitions.interference import (
    GPULET_2080TI,
    CoRunner,
    UtilisationTable,
    interference_factor,
)
from inferno.solver import build_candidates, mps_resolve, solve_table
from inferno.solver.result import Solution
from inferno.system import System

GPU_COST = 70.0

#: GPU-let's 2080 Ti utilisation (inferno/partitions/gpulet_2080ti.py): L2 % then DRAM % at b = 1…32
BATCHES = (1, 2, 4, 8, 16, 32)
L2_DRAM = {
    "lenet": ((2.41, 2.52, 4.45, 4.35, 5.37, 6.97), (11.28, 11.22, 17.75, 14.98, 18.10, 25.40)),
    "vgg16": (
        (31.01, 33.76, 34.99, 32.06, 30.52, 30.22),
        (55.95, 55.93, 54.19, 56.68, 60.84, 61.15),
    ),
}


def util(model: str) -> dict[str, list[float]]:
    l2, dram = L2_DRAM[model]
    return {str(b): [x, y] for b, x, y in zip(BATCHES, l2, dram, strict=True)}


def make_system(tmp_path: Path, lenet_slo: float, *, one_g_alpha: float = 0.6) -> System:
    def row(model: str, acc: str, alpha: float, beta: float, batch: int, **extra: Any) -> Any:
        return {
            "name": model,
            "acc": f"H100-80GB:{acc}",
            "kind": "batch",
            "alpha": alpha,
            "beta": beta,
            "maxBatchSize": batch,
            "memSize": 1,
            **extra,
        }

    docs: dict[str, Any] = {
        "accelerator-data.json": {
            "accelerators": [
                {
                    "name": "H100-80GB",
                    "cost": GPU_COST,
                    "partitions": {
                        "mig": ["1g.10gb", "3g.40gb"],
                        "mps": [2],
                        "interference": "gpulet-2080ti",
                    },
                }
            ]
        },
        "model-data.json": {
            "models": [
                row("vgg16", "mps-2", 4.0, 1.0, 8, utilization=util("vgg16")),
                row("lenet", "mps-2", 1.0, 0.1, 8, utilization=util("lenet")),
                row("lenet", "1g.10gb", one_g_alpha, 0.2, 1),
                row("bert", "3g.40gb", 3.0, 0.5, 8),
            ]
        },
        "serviceclass-data.json": {
            "serviceClasses": [
                {"name": "Loose", "model": "vgg16", "slo-latency": 200},
                {"name": "Loose", "model": "bert", "slo-latency": 200},
                {"name": "Tight", "model": "lenet", "slo-latency": lenet_slo},
            ]
        },
        "server-data.json": {
            "servers": [
                {"name": "v", "class": "Loose", "model": "vgg16", "load": {"arrivalRate": 600}},
                {"name": "w", "class": "Loose", "model": "bert", "load": {"arrivalRate": 600}},
                {"name": "a", "class": "Tight", "model": "lenet", "load": {"arrivalRate": 230000}},
            ]
        },
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    return load_system(tmp_path)


def solve(system: System) -> Solution:
    return solve_table(build_candidates(system), None)


def fallback(system: System, monkeypatch: pytest.MonkeyPatch) -> Solution:
    """The solution without re-solves: refused pairs on one server per GPU."""
    with monkeypatch.context() as m:
        m.setattr(mps_resolve, "ROUNDS", 0)
        return solve(system)


def tight_slo(tmp_path: Path) -> tuple[float, float]:
    """lenet's predicted latency on an mps-2 share (alone), and a target 2 % above it."""
    loose = solve(make_system(tmp_path / "loose", 100.0))
    assert loose.allocations["a"].accelerator == "H100-80GB:mps-2"
    sized = loose.allocations["a"].metrics["response"]
    return sized, sized * 1.02


def test_the_co_location_is_refused_because_it_breaks_the_neighbours_slo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sized, slo = tight_slo(tmp_path)
    table = UtilisationTable(
        {m: dict(zip(BATCHES, zip(*L2_DRAM[m], strict=True), strict=True)) for m in L2_DRAM}
    )
    plain = fallback(make_system(tmp_path / "tight", slo), monkeypatch)
    assert {plain.allocations[n].accelerator for n in "av"} == {"H100-80GB:mps-2"}
    batch = {n: a.max_batch for n, a in plain.allocations.items()}
    lenet = CoRunner("lenet", batch["a"], 0.5)
    vgg = CoRunner("vgg16", batch["v"], 0.5)
    slowdown = interference_factor(GPULET_2080TI, table, lenet, [vgg])
    assert slowdown is not None and slowdown > slo / sized  # lenet next to vgg16 misses
    vgg_slowdown = interference_factor(GPULET_2080TI, table, vgg, [lenet])
    assert vgg_slowdown is not None
    assert vgg_slowdown < 200 / plain.allocations["v"].metrics["response"]  # vgg16 would not


def test_a_refused_server_is_re_solved_onto_something_cheaper_that_meets_its_slo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, slo = tight_slo(tmp_path)
    system = make_system(tmp_path / "tight", slo)
    before = fallback(system, monkeypatch)
    assert before.allocations["a"].accelerator == "H100-80GB:mps-2"
    use = before.gpus["H100-80GB"]
    assert use.refused == (("a", "H100-80GB:mps-2"),)  # a's SLO breaks, not v's
    assert use.used == 3 and before.total_cost == pytest.approx(3 * GPU_COST)
    assert all(len(set(g.get("servers", ()))) <= 1 for g in use.layout)  # never together

    after = solve(system)
    alloc = after.allocations["a"]
    assert alloc.accelerator == "H100-80GB:1g.10gb"
    assert alloc.metrics["response"] <= slo * (1 + 1e-9)  # MIG: isolated, no interference
    assert "re-solved off H100-80GB:mps-2" in alloc.note
    assert after.total_cost < before.total_cost
    use = after.gpus["H100-80GB"]
    assert after.total_cost == pytest.approx(use.used * GPU_COST)
    mig = [g for g in use.layout if g["mode"] == "mig"]
    assert len(mig) == 1  # the four 1g slices sit beside bert's 3g
    owners = sorted(s["server"] for s in mig[0]["slices"])
    assert owners == ["a"] * alloc.replicas + ["w"]
    assert any("a moved to H100-80GB:1g.10gb" in n for n in use.notes)
    # the other servers did not move
    for name in ("v", "w"):
        assert after.allocations[name].accelerator == before.allocations[name].accelerator


def test_a_re_solve_that_costs_more_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # slower 1g slices: lenet needs five, which do not fit beside the 3g; the fallback stays
    _, slo = tight_slo(tmp_path)
    system = make_system(tmp_path / "tight", slo, one_g_alpha=0.7)
    before = fallback(system, monkeypatch)
    after = solve(system)
    assert after.gpus["H100-80GB"].refused == (("a", "H100-80GB:mps-2"),)
    assert after.allocations["a"].accelerator == "H100-80GB:mps-2"
    assert after.total_cost == pytest.approx(before.total_cost)
    assert not after.allocations["a"].note


def test_without_keeps_the_table_consistent(tmp_path: Path) -> None:
    _, slo = tight_slo(tmp_path)
    table = build_candidates(make_system(tmp_path / "tight", slo))
    a = next(s for s, srv in enumerate(table.system.servers) if srv.name == "a")
    v = next(s for s, srv in enumerate(table.system.servers) if srv.name == "v")
    masked = mps_resolve.without(table, {(a, "H100-80GB:mps-2"), (v, "H100-80GB:mps-2")})
    assert [str(masked.accelerator[c]) for c in masked.of_server(a)] == ["H100-80GB:1g.10gb"]
    assert masked.of_server(v).size == 0
    assert "MPS co-location on H100-80GB:mps-2 was refused" in masked.reason[v]
    assert table.of_server(v).size == 1  # the original is untouched
    sol = solve_table(masked, None)
    assert "v" in sol.unallocated and "refused" in sol.unallocated["v"].reason
