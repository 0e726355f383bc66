"""Solving with GPU partitions, then packing them onto whole GPUs (inferno/solver/gpulets.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from inferno.data import load_system
from inferno.partitions.catalogue import product
from inferno.partitions.geometry import Placement, check_placements
from inferno.solver import build_candidates, solve_table
from inferno.solver.result import Solution
from inferno.system import System

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "gpulets"


def solve(system: System) -> Solution:
    return solve_table(build_candidates(system), None)


def whole_only(system: System) -> System:
    accs = {k: a for k, a in system.accelerators.items() if not a.partition}
    profiles = tuple(p for p in system.profiles if p.accelerator in accs)
    return dataclasses.replace(system, accelerators=MappingProxyType(accs), profiles=profiles)


def test_the_sample_is_what_its_generator_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_gpulets", ROOT / "bench" / "make_gpulets.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_gpulets"] = module
    spec.loader.exec_module(module)
    for name, content in module.files().items():
        assert json.loads((SAMPLE / name).read_text()) == content, name
    for name, content in module.whole_files().items():
        assert json.loads((SAMPLE / "whole" / name).read_text()) == content, name
    for name, content in module.mps_files().items():
        assert json.loads((SAMPLE / "mps" / name).read_text()) == content, name
    whole = load_system(SAMPLE / "whole")
    assert not any(a.partition for a in whole.accelerators.values())


def test_partitions_halve_the_gpus_of_the_sample_at_the_same_slos() -> None:
    system = load_system(SAMPLE)
    whole = solve(whole_only(system))
    parts = solve(system)
    assert set(parts.allocations) == set(whole.allocations) == {s.name for s in system.servers}
    on_slices = [a for a in parts.allocations.values() if ":" in a.accelerator]
    assert len(on_slices) >= len(parts.allocations) // 2
    # every allocation meets its class's latency target (the sizing's bound)
    for name, alloc in parts.allocations.items():
        srv = next(s for s in system.servers if s.name == name)
        target = system.classes[srv.service_class].targets[srv.model].latency
        assert target is not None and alloc.metrics["response"] <= target * (1 + 1e-9)
    used, used_whole = sum(parts.units_used.values()), sum(whole.units_used.values())
    assert used <= 0.6 * used_whole, (parts.units_used, whole.units_used)


def test_packing_reports_gpus_layouts_and_the_cost_of_whole_gpus() -> None:
    system = load_system(SAMPLE)
    sol = solve(system)
    assert sol.gpus, "the sample's slices are packed"
    for kind, use in sol.gpus.items():
        assert sol.units_used[kind] == use.whole + use.packed
        assert len(use.layout) == use.packed
        assert use.packed >= use.relaxed - 1e-9  # never fewer GPUs than the shares sum to
        for gpu in use.layout:
            prod = product(gpu["product"])
            placements = [
                Placement(s["start"], prod.profile(s["profile"]).kind.key) for s in gpu["slices"]
            ]
            check_placements(placements)  # raises if the layout cannot exist
    slices = sum(len(g["slices"]) for u in sol.gpus.values() for g in u.layout)
    replicas_on_slices = sum(a.replicas for a in sol.allocations.values() if ":" in a.accelerator)
    assert slices == replicas_on_slices
    whole_cost = sum(a.cost for a in sol.allocations.values() if ":" not in a.accelerator)
    packed_cost = sum(u.packed * u.gpu_cost for u in sol.gpus.values())
    assert sol.total_cost == pytest.approx(whole_cost + packed_cost)
    assert sol.total_cost >= sum(a.cost for a in sol.allocations.values()) - 1e-9


def test_whole_gpu_systems_are_unchanged() -> None:
    sol = solve(load_system(ROOT / "samples" / "large"))
    assert not sol.gpus


def test_when_packing_needs_more_gpus_than_exist_the_solve_is_redone(tmp_path: Path) -> None:
    system = load_system(SAMPLE)
    free = solve(
        dataclasses.replace(system, optimizer=dataclasses.replace(system.optimizer, unlimited=True))
    )
    a100 = free.units_used.get("A100-80GB", 0) + free.units_used.get("H100-80GB", 0)
    # capacity just at what the unlimited solve packed: it must fit without over-commit
    capacity = {k: int(v) for k, v in free.units_used.items()}
    limited = dataclasses.replace(
        system,
        capacity=MappingProxyType(capacity),
        optimizer=dataclasses.replace(system.optimizer, unlimited=False),
    )
    sol = solve(limited)
    for kind, n in sol.units_used.items():
        assert n <= capacity[kind] or "exceed the capacity" in sol.message
    assert a100 > 0


def mps_system(
    tmp_path: Path,
    servers: int,
    *,
    constants: Any = None,
    utilization: dict[str, list[float]] | None = None,
    slo: float = 30,
) -> System:
    partitions: dict[str, Any] = {"mps": [4]}
    if constants is not None:
        partitions["interference"] = constants
    extra = {} if utilization is None else {"utilization": utilization}
    docs: dict[str, Any] = {
        "accelerator-data.json": {
            "accelerators": [{"name": "H100-80GB", "cost": 60, "partitions": partitions}]
        },
        "model-data.json": {
            "models": [
                {
                    "name": "m",
                    "acc": "H100-80GB",
                    "kind": "batch",
                    "alpha": 2.0,
                    "beta": 0.2,
                    "maxBatchSize": 8,
                    "serialFraction": 0.9,
                    "memSize": 2,
                    **extra,
                }
            ]
        },
        "serviceclass-data.json": {
            "serviceClasses": [{"name": "P", "model": "m", "slo-latency": slo}]
        },
        "server-data.json": {
            "servers": [
                {"name": f"s{i}", "class": "P", "model": "m", "load": {"arrivalRate": 600}}
                for i in range(servers)
            ]
        },
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    return load_system(tmp_path)


def test_mps_shares_without_interference_data_stay_with_one_server(tmp_path: Path) -> None:
    sol = solve(mps_system(tmp_path, 3))
    assert all(a.accelerator == "H100-80GB:mps-4" for a in sol.allocations.values())
    use = sol.gpus["H100-80GB"]
    assert use.packed == 3  # one GPU per server: no co-location of different models
    for gpu in use.layout:
        assert len(set(gpu["servers"])) == 1
    assert any("no interference constants" in n for n in use.notes)


def test_optimize_and_explain_show_partitions(capsys: pytest.CaptureFixture[str]) -> None:
    from inferno.cli import main

    assert main(["optimize", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "A100-80GB GPUs after packing:" in out and "H100-80GB GPUs after packing:" in out
    assert "derived profile" in out
    assert main(["explain", str(SAMPLE), "Premium-mobilenet_v2"]) == 0
    out = capsys.readouterr().out
    assert "packed onto whole GPUs" in out and "derived from the whole GPU's" in out
    assert "the cheapest whole GPU" in out


def test_the_json_carries_gpus_used_layouts_and_mig_configs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from inferno.cli import main

    assert main(["optimize", str(SAMPLE), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["gpusUsed"] == doc["unitsUsed"]
    for kind, layout in doc["layout"].items():
        assert layout["whole"] + layout["partitioned"] == doc["gpusUsed"][kind]
        assert len(layout["gpus"]) == layout["partitioned"] == len(layout["migConfig"])
        for gpu, config in zip(layout["gpus"], layout["migConfig"], strict=True):
            assert sum(config.values()) == len(gpu["slices"])
    derived = [a for a in doc["allocations"].values() if a.get("derived")]
    assert derived and all(":" in a["accelerator"] for a in derived)


#: GPU-let's 2080 Ti utilisation of bert (L2 %, DRAM % at b = 1, 2, 4, 8), docs/gpu-partitions.md
BERT = {"1": [9.24, 29.03], "2": [10.66, 29.28], "4": [14.01, 30.32], "8": [16.25, 30.20]}


def test_mps_co_location_follows_the_interference_model(tmp_path: Path) -> None:
    loose = solve(
        mps_system(tmp_path / "a", 3, constants="gpulet-2080ti", utilization=BERT, slo=200)
    )
    use = loose.gpus["H100-80GB"]
    assert use.packed == 1  # three servers' shares on one GPU: the predicted slowdown is small
    assert len(set(use.layout[0]["servers"])) == 3
    # a target the slowdown would break (the 3080's constants predict at least 1.018×): the
    # servers keep to their own GPUs
    sized = loose.allocations["s0"].metrics["response"]
    tight = solve(
        mps_system(tmp_path / "b", 3, constants="gpulet-3080", utilization=BERT, slo=sized * 1.01)
    )
    assert tight.allocations["s0"].metrics["response"] == pytest.approx(sized)
    assert tight.gpus["H100-80GB"].packed == 3
    # constants but no utilisation for the model: no prediction, no co-location
    unknown = solve(mps_system(tmp_path / "c", 3, constants="gpulet-2080ti"))
    assert unknown.gpus["H100-80GB"].packed == 3


def test_bad_interference_data_names_the_field(tmp_path: Path) -> None:
    from inferno.errors import InputError

    with pytest.raises(InputError, match="interference constants"):
        mps_system(tmp_path / "a", 1, constants="gpulet-a100")
    with pytest.raises(InputError, match="five interference constants"):
        mps_system(tmp_path / "b", 1, constants=[1, 2, 3])
    with pytest.raises(InputError, match=r"utilization.*\[L2 %, DRAM %\]"):
        mps_system(tmp_path / "c", 1, utilization={"1": [9.0]})


def test_the_gpulet_scenarios_differ_only_in_their_system() -> None:
    from inferno.simulate import load_scenario

    scenarios = ROOT / "samples" / "scenarios"
    parts = load_scenario(scenarios / "gpulets.yaml")
    whole = load_scenario(scenarios / "gpulets-whole.yaml")
    assert any(a.partition for a in parts.system.accelerators.values())
    assert not any(a.partition for a in whole.system.accelerators.values())
    same = ("duration_s", "seed", "control_period_s", "startup_delay_s", "servers", "traces")
    for field in (*same, "metrics", "policies", "sizing_quantile"):
        assert getattr(parts, field) == getattr(whole, field), field
