"""Applying the optimizer's MIG geometries to opted-in nodes (inferno.control.mig): the solution
of samples/gpulets, an in-memory cluster with GPU nodes; the ConfigMap first, then the labels,
each tested against the value the plan read; nothing on a hold or when the ConfigMap fails; and
through run_cycle only when asked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inferno.cluster.mig_nodes import GPU_COUNT, MIG_CONFIG, MIG_MANAGED
from inferno.control.cycle import run_cycle
from inferno.control.mig import CONFIG_KEY, MigOptions, apply_mig
from inferno.data import load_system
from inferno.data.solution_json import solution_to_json
from inferno.k8s import ClusterError
from inferno.services.messages import report_json
from inferno.solver import solve

from .fakes import ROOT, FakeCluster
from .test_cycle import COLLECTION, recording_phases

A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"


@pytest.fixture(scope="module")
def solution() -> dict[str, Any]:
    system = load_system(ROOT / "samples" / "gpulets")
    return solution_to_json(solve(system), system)


def gpu_node(
    name: str, product: str, *, managed: bool = True, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    all_labels = {"nvidia.com/gpu.product": product, GPU_COUNT: "8", **(labels or {})}
    if managed:
        all_labels[MIG_MANAGED] = "true"
    return {"metadata": {"name": name, "labels": all_labels}}


def cluster(*nodes: dict[str, Any]) -> FakeCluster:
    fake = FakeCluster()
    fake.nodes = {n["metadata"]["name"]: n for n in nodes}
    return fake


def test_the_configmap_is_written_then_the_node_relabelled(solution: dict[str, Any]) -> None:
    fake = cluster(
        gpu_node("a100-1", A100),
        gpu_node("h100-1", H100, labels={MIG_CONFIG: "all-disabled"}),
        gpu_node("h100-2", H100, managed=False),
    )
    report = apply_mig(fake, solution, MigOptions(max_nodes=5))
    assert report is not None and not report["errors"], report
    applied = {c["node"]: c for c in report["applied"]}
    assert set(applied) == {"a100-1", "h100-1"}  # h100-2 is not opted in
    assert applied["h100-1"]["from"] == "all-disabled"
    # the ConfigMap was written before any label, and names every configuration applied
    order = [c for c in fake.calls if c in ("put_config_map", "patch_node")]
    assert order == ["put_config_map", "patch_node", "patch_node"]
    doc = json.loads(
        fake.config_maps[("gpu-operator", "inferno-mig-parted-config")]["data"][CONFIG_KEY]
    )
    for change in applied.values():
        assert fake.nodes[change["node"]]["metadata"]["labels"][MIG_CONFIG] == change["to"]
        assert change["to"] in doc["mig-configs"]
    # each packed GPU's geometry is on the nodes: the solution's migConfig, device by device
    wanted = sorted(
        json.dumps(g, sort_keys=True)
        for entry in solution["layout"].values()
        for g in entry["migConfig"]
    )
    given = sorted(
        json.dumps(e["mig-devices"], sort_keys=True)
        for change in applied.values()
        for e in doc["mig-configs"][change["to"]]
        if e["mig-enabled"]
        for _ in e["devices"]
    )
    assert given == wanted
    # h100-2's label was never touched
    assert MIG_CONFIG not in fake.nodes["h100-2"]["metadata"]["labels"]
    # a second cycle finds every node right: nothing to do
    again = apply_mig(fake, solution, MigOptions(max_nodes=5))
    assert again is not None and not again["applied"]
    assert set(again["plan"]["kept"]) == {"a100-1", "h100-1"}


def test_a_hold_or_a_failed_configmap_relabels_nothing(solution: dict[str, Any]) -> None:
    fake = cluster(gpu_node("a100-1", A100))
    held = apply_mig(fake, solution, MigOptions(), hold="the cycle had errors")
    assert held is not None and held["held"] == "the cycle had errors" and not held["applied"]
    assert held["plan"]["changes"] and "patch_node" not in fake.calls
    fake.fail[("put_config_map",)] = ClusterError("configmaps is forbidden", 403)
    failed = apply_mig(fake, solution, MigOptions())
    assert failed is not None and not failed["applied"]
    assert failed["errors"] == [
        "ConfigMap gpu-operator/inferno-mig-parted-config: configmaps is forbidden: "
        "no node relabelled"
    ]
    assert "patch_node" not in fake.calls


def test_a_label_changed_meanwhile_is_not_overwritten(solution: dict[str, Any]) -> None:
    fake = cluster(gpu_node("a100-1", A100, labels={MIG_CONFIG: "all-1g.10gb"}))
    real_list = fake.list_nodes

    def stale(selector: str) -> list[dict[str, Any]]:
        nodes = real_list(selector)
        # someone relabels the node between the plan's read and the patch
        fake.nodes["a100-1"]["metadata"]["labels"][MIG_CONFIG] = "all-balanced"
        return nodes

    fake.list_nodes = stale  # type: ignore[method-assign]
    report = apply_mig(fake, solution, MigOptions())
    assert report is not None and not report["applied"]
    assert report["errors"] and report["errors"][0].startswith("node a100-1:")
    assert fake.nodes["a100-1"]["metadata"]["labels"][MIG_CONFIG] == "all-balanced"


def test_without_mig_geometries_or_nodes_readable(solution: dict[str, Any]) -> None:
    fake = cluster()
    assert apply_mig(fake, {"status": "optimal", "layout": {}}, MigOptions()) is None
    fake.fail[("list_nodes",)] = ClusterError("nodes is forbidden", 403)
    report = apply_mig(fake, solution, MigOptions())
    assert report == {"applied": [], "errors": ["list nodes: nodes is forbidden"], "plan": None}


async def test_the_cycle_applies_only_when_asked(solution: dict[str, Any]) -> None:
    optimized = {"solution": solution, "decisions": []}
    phases, _ = recording_phases(COLLECTION, optimized)
    fake = cluster(gpu_node("a100-1", A100))
    report = await run_cycle(phases, api=fake)
    assert report.ok and report.mig is None and "list_nodes" not in fake.calls
    phases, _ = recording_phases(COLLECTION, optimized)
    report = await run_cycle(phases, api=fake, mig=MigOptions())
    assert report.ok, report.errors
    assert report.mig is not None and [c["node"] for c in report.mig["applied"]] == ["a100-1"]
    assert report_json(report)["mig"]["applied"][0]["node"] == "a100-1"
