"""The MIG geometry per node (inferno.cluster.mig_nodes): the optimizer's packed GPUs cut into
per-node mig-parted configurations, only on nodes an administrator opted in, at most a few
re-partitions per cycle, none while one is in progress, and nodes already right kept."""

from __future__ import annotations

import json
from typing import Any

from inferno.cluster.mig_nodes import (
    GPU_COUNT,
    MIG_CONFIG,
    MIG_CONFIG_STATE,
    MIG_MANAGED,
    MigNode,
    config_document,
    config_name,
    plan_mig_nodes,
)

PRODUCT = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
OTHER = {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def node(name: str, gpus: int | None = 2, labels: dict[str, str] | None = None) -> MigNode:
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "labels": {
                MIG_MANAGED: "true",
                **PRODUCT,
                **({GPU_COUNT: str(gpus)} if gpus is not None else {}),
                **(labels or {}),
            },
        }
    }
    return MigNode.of(obj)


def layout(*geometries: dict[str, int], whole: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "A100-80GB": {
            "migConfig": list(geometries),
            "whole": whole,
            "nodeSelector": PRODUCT,
            "migStrategy": "mixed",
            **extra,
        }
    }


G1 = {"3g.40gb": 2}
G2 = {"4g.40gb": 1, "3g.40gb": 1}
G3 = {"1g.10gb": 7}


def test_geometries_are_cut_per_node_and_unused_gpus_turn_mig_off() -> None:
    plan = plan_mig_nodes(layout(G1, G2, G3), [node("b"), node("a"), node("c")], max_changes=5)
    # canonical order, two GPUs per node: a gets two geometries, b one and a MIG-off device
    assert [(c.node, c.old) for c in plan.changes] == [("a", None), ("b", None)]
    assert not plan.waiting and not plan.kept
    devices = [plan.configs[c.new] for c in plan.changes]
    assert sum(1 for devs in devices for d in devs if d) == 3
    assert devices[1][1] == ()  # b's second GPU: MIG off
    assert all(len(devs) == 2 for devs in devices)
    # c is not needed: left alone
    assert "c" not in {c.node for c in plan.changes}


def test_a_node_already_at_a_wanted_geometry_keeps_it() -> None:
    first = plan_mig_nodes(layout(G1, G2, G3, G3), [node("a"), node("b")], max_changes=5)
    # b already has what a was given: after relabelling b, the plan keeps b and moves only a
    b_config = first.changes[0].new
    nodes = [node("a"), node("b", labels={MIG_CONFIG: b_config})]
    again = plan_mig_nodes(layout(G1, G2, G3, G3), nodes, max_changes=5)
    assert again.kept == ("b",)
    assert [c.node for c in again.changes] == ["a"] and again.changes[0].new != b_config
    # everything in place: nothing to do
    done = [node("a", labels={MIG_CONFIG: again.changes[0].new}), nodes[1]]
    settled = plan_mig_nodes(layout(G1, G2, G3, G3), done)
    assert not settled.changes and not settled.waiting and set(settled.kept) == {"a", "b"}


def test_the_budget_and_a_repartition_in_progress_hold_changes_back() -> None:
    nodes = [node("a"), node("b"), node("c")]
    plan = plan_mig_nodes(layout(G1, G2, G3, G3, G1), nodes, max_changes=1)
    assert [c.node for c in plan.changes] == ["a"]
    assert [c.node for c in plan.waiting] == ["b", "c"]
    assert any("wait for a later cycle" in n for n in plan.notes)
    busy = [*nodes[:2], node("c", labels={MIG_CONFIG_STATE: "pending"})]
    held = plan_mig_nodes(layout(G1, G2, G3, G3, G1), busy, max_changes=3)
    assert not held.changes and len(held.waiting) == 3
    assert any("in progress on c" in n for n in held.notes)


def test_only_opted_in_matching_nodes_with_a_gpu_count_are_used() -> None:
    other = MigNode.of(
        {"metadata": {"name": "h", "labels": {MIG_MANAGED: "true", GPU_COUNT: "8", **OTHER}}}
    )
    plan = plan_mig_nodes(layout(G1), [other, node("x", gpus=None)])
    assert not plan.changes
    assert any("no nvidia.com/gpu.count" in n for n in plan.notes)
    assert any("recommendation only" in n for n in plan.notes)
    # too few GPUs on the managed nodes: said, the rest is a recommendation
    short = plan_mig_nodes(layout(G1, G2, G3), [node("a")])
    assert [c.node for c in short.changes] == ["a"]
    assert any("3 GPUs wanted, 2 on the managed nodes" in n for n in short.notes)


def test_single_strategy_and_a_missing_selector_are_recommendations() -> None:
    single = plan_mig_nodes(layout(G1, migStrategy="single"), [node("a")])
    assert not single.changes and any("single MIG strategy" in n for n in single.notes)
    bare = plan_mig_nodes(layout(G1, nodeSelector={}), [node("a")])
    assert not bare.changes and any("no nodeSelector" in n for n in bare.notes)


def test_whole_gpus_of_the_type_get_mig_disabled_devices() -> None:
    plan = plan_mig_nodes(layout(G1, whole=3), [node("a"), node("b")], max_changes=2)
    devices = [d for c in plan.changes for d in plan.configs[c.new]]
    assert devices.count(()) == 3 and len(devices) == 4


def test_the_config_document_is_mig_parted_and_keeps_configurations_in_use() -> None:
    # canonical order (1g before 3g): a gets the 1g GPU and a 3g one, b two 3g GPUs
    plan = plan_mig_nodes(layout(G1, G1, G3, G1), [node("a"), node("b")], max_changes=2)
    old_name = config_name(((("7g.80gb", 1),),))
    existing = json.dumps(
        {
            "version": "v1",
            "mig-configs": {
                old_name: [{"devices": "all", "mig-enabled": True, "mig-devices": {"7g.80gb": 1}}],
                "inferno-stale00000": [{"devices": "all", "mig-enabled": False}],
            },
        }
    )
    nodes = [node("a", labels={MIG_CONFIG: old_name}), node("b")]
    text, notes = config_document(plan, nodes, existing)
    doc = json.loads(text)
    configs = doc["mig-configs"]
    assert doc["version"] == "v1" and not notes
    assert configs["all-disabled"] == [{"devices": "all", "mig-enabled": False}]
    assert old_name in configs  # node a still carries it until it is relabelled
    assert "inferno-stale00000" not in configs
    assert configs[plan.changes[0].new] == [
        {"devices": [0], "mig-enabled": True, "mig-devices": {"1g.10gb": 7}},
        {"devices": [1], "mig-enabled": True, "mig-devices": {"3g.40gb": 2}},
    ]
    # two identical GPUs share one entry
    assert configs[plan.changes[1].new] == [
        {"devices": [0, 1], "mig-enabled": True, "mig-devices": {"3g.40gb": 2}}
    ]
    # a file Inferno did not write is replaced, and said so
    _, said = config_document(plan, nodes, "version: v1\nmig-configs: {}\n")
    assert any("not one Inferno wrote" in n for n in said)
