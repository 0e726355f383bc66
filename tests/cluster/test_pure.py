"""Pure cluster logic: Deployments as managed servers, ServiceClass resources, decisions."""

from __future__ import annotations

from typing import Any

import pytest

from inferno.cluster import labels as L
from inferno.cluster.decisions import decision_from_json, decision_to_json, decisions_from_solution
from inferno.cluster.inventory import (
    InventoryError,
    parse_deployment,
    server_row,
)
from inferno.cluster.serviceclass import class_row, problems
from inferno.data import load_system
from inferno.solver import solve


def deployment(
    labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    base = {
        L.MANAGED: "true",
        L.SERVER_NAME: "premium-granite",
        L.MODEL: "granite_13b",
        L.SERVICE_CLASS: "Premium",
        L.LOAD_RPM: "120",
        L.LOAD_IN_TOKENS: "128",
        L.LOAD_OUT_TOKENS: "1024",
    }
    return {
        "metadata": {
            "name": "dep1",
            "namespace": "servers",
            "labels": {**base, **(labels or {})},
            "annotations": annotations or {},
        },
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "nodeSelector": {"zone": "a"},
                    "containers": [
                        {"name": "sidecar", "image": "busybox"},
                        {
                            "name": "triton",
                            "image": "tritonserver",
                            "env": [{"name": "X", "value": "1"}],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        },
                    ],
                }
            },
        },
        "status": {"readyReplicas": 1},
    }


def test_parse_deployment_reads_labels_annotations_and_load() -> None:
    d = parse_deployment(
        deployment(
            annotations={
                L.CONTAINER: "triton",
                L.MIN_REPLICAS: "2",
                L.MAX_REPLICAS: "5",
                L.MODE: "recommend",
            }
        )
    )
    assert (d.namespace, d.name, d.server, d.model, d.service_class) == (
        "servers",
        "dep1",
        "premium-granite",
        "granite_13b",
        "Premium",
    )
    assert (d.replicas, d.ready_replicas) == (2, 1)
    assert (d.container, d.container_name) == (1, "triton")
    assert (d.min_replicas, d.max_replicas, d.mode) == (2, 5, "recommend")
    assert d.load is not None
    assert (d.load.arrival_rate, d.load.in_tokens, d.load.out_tokens) == (120.0, 128.0, 1024.0)
    assert dict(d.node_selector) == {"zone": "a"}


def test_defaults_server_name_and_class() -> None:
    raw = deployment()
    del raw["metadata"]["labels"][L.SERVER_NAME]
    del raw["metadata"]["labels"][L.SERVICE_CLASS]
    d = parse_deployment(raw)
    assert d.server == "dep1"
    assert d.service_class == L.DEFAULT_CLASS


@pytest.mark.parametrize(
    ("labels", "annotations", "fragment"),
    [
        ({L.MODEL: ""}, {}, L.MODEL),
        ({L.LOAD_RPM: "lots"}, {}, L.LOAD_RPM),
        ({L.LOAD_RPM: "-3"}, {}, L.LOAD_RPM),
        ({}, {L.MIN_REPLICAS: "two"}, L.MIN_REPLICAS),
        ({}, {L.MIN_REPLICAS: "3", L.MAX_REPLICAS: "2"}, L.MAX_REPLICAS),
        ({}, {L.MODE: "yolo"}, L.MODE),
        ({}, {L.CONTAINER: "nope"}, L.CONTAINER),
        ({L.ALLOC_MAX_BATCH: "x"}, {}, L.ALLOC_MAX_BATCH),
        ({}, {L.MAX_OUTPUT_TOKENS: "0"}, L.MAX_OUTPUT_TOKENS),
        ({}, {L.MAX_OUTPUT_TOKENS: "1e308"}, L.MAX_OUTPUT_TOKENS),
        ({}, {L.MAX_OUTPUT_TOKENS: "10000001"}, L.MAX_OUTPUT_TOKENS),
    ],
)
def test_bad_labels_name_the_deployment_and_the_key(
    labels: dict[str, str], annotations: dict[str, str], fragment: str
) -> None:
    with pytest.raises(InventoryError) as err:
        parse_deployment(deployment(labels, annotations))
    assert "servers/dep1" in str(err.value)
    assert fragment in str(err.value)


def test_server_row_prefers_measured_load() -> None:
    from inferno.system import Load

    d = parse_deployment(deployment())
    assert server_row(d, None)["currentAlloc"]["load"]["arrivalRate"] == 120.0
    assert server_row(d, Load(300.0, 10, 20))["currentAlloc"]["load"] == {
        "arrivalRate": 300.0,
        "avgInTokens": 10,
        "avgOutTokens": 20,
    }


def test_the_max_output_tokens_annotation_caps_the_rows_lengths(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from inferno.system import Load

    d = parse_deployment(deployment(annotations={L.MAX_OUTPUT_TOKENS: "8192"}))
    assert d.max_output_tokens == 8192
    assert server_row(d, None)["currentAlloc"]["load"]["outTokensMax"] == 8192
    assert "outTokensMax" not in server_row(parse_deployment(deployment()), None)["currentAlloc"]
    # measured lengths longer on average than the cap, or more varied than it allows, contradict
    # it: left out, with a warning
    for load in (Load(300.0, 10, 9000.0), Load(300.0, 10, 2048.0, out_tokens_cov=2.0)):
        caplog.clear()
        row = server_row(d, load)
        assert "outTokensMax" not in row["currentAlloc"]["load"]
        assert L.MAX_OUTPUT_TOKENS in caplog.text and "servers/dep1" in caplog.text
    row = server_row(d, Load(300.0, 10, 2048.0, out_tokens_cov=1.5))
    assert row["currentAlloc"]["load"]["outTokensMax"] == 8192


def test_the_annotations_bound_is_the_datas() -> None:
    from inferno.data.limits import MAX_TOKENS

    assert L.MAX_OUTPUT_TOKENS_LIMIT == MAX_TOKENS


GOOD = {"priority": 1, "models": [{"model": "llama_7b", "itlMs": 40, "ttwMs": 500}]}


def test_service_class_row() -> None:
    row = class_row({"metadata": {"name": "premium"}, "spec": GOOD})
    assert row == {
        "name": "premium",
        "priority": 1,
        "modelTargets": [{"model": "llama_7b", "slo-itl": 40, "slo-ttw": 500}],
    }
    assert problems(GOOD) == []


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"priority": 0, "models": GOOD["models"]}, "priority"),
        ({"priority": 1, "models": []}, "at least one model"),
        (
            {"priority": 1, "models": [{"model": "a", "itlMs": 1}, {"model": "a", "itlMs": 2}]},
            "twice",
        ),
        ({"priority": 1, "models": [{"model": "a"}]}, "no target"),
        ({"priority": 1, "models": [{"model": "a", "itlMs": -1}]}, "itlMs"),
        ({"priority": 1, "models": [{"model": "a", "latencyQuantile": 0.95}]}, "without latencyMs"),
        (
            {"priority": 1, "models": [{"model": "a", "latencyMs": 9, "latencyQuantile": 2}]},
            "(0, 1)",
        ),
        (
            {"priority": 1, "models": [{"model": "a", "tokensPerSecond": 9, "itlMs": 3}]},
            "throughput",
        ),
    ],
)
def test_service_class_problems(spec: dict[str, Any], fragment: str) -> None:
    found = problems(spec)
    assert any(fragment in p for p in found), found


def test_decisions_cover_every_server_and_round_trip(sample_dir: Any) -> None:
    system = load_system(sample_dir)
    solution = solve(system)
    decisions = decisions_from_solution(solution, system, "nvidia.com/gpu.product")
    assert {d.server for d in decisions} == {s.name for s in system.servers}
    d = next(x for x in decisions if x.server == "Bronze-llama_70b")
    # 4xMI250: one accelerator configuration of multiplicity 4 per replica
    assert (d.accelerator, d.gpus_per_replica, dict(d.node_selector)) == (
        "4xMI250",
        4,
        {"nvidia.com/gpu.product": "MI250"},
    )
    assert all(decision_from_json(decision_to_json(x)) == x for x in decisions)


def test_a_class_overrides_the_control_policy_by_name() -> None:
    from inferno.cluster.serviceclass import class_policy

    spec = {**GOOD, "policy": {"marginZ": 2, "scaleDownWindow": 300, "maxScaleUpPods": 4}}
    assert class_policy(spec) == {
        "margin_z": 2,
        "stabilization_window": 300,
        "max_scale_up_pods": 4,
    }
    row = class_row({"metadata": {"name": "premium"}, "spec": spec})
    assert row["policy"] == class_policy(spec)
    assert "policy" not in class_row({"metadata": {"name": "premium"}, "spec": GOOD})
    for bad, words in (
        ({"boost": 2}, "spec.policy.boost is not a setting"),
        ({"marginZ": -1}, "spec.policy.marginZ: INFERNO_MARGIN_Z=-1"),
        ({"maxScaleUpPods": 1.5}, "spec.policy.maxScaleUpPods must be an integer"),
        ({"switchDelay": "soon"}, "spec.policy.switchDelay must be a number"),
        ([1], "spec.policy must be an object"),
    ):
        found = problems({**GOOD, "policy": bad})
        assert any(words in p for p in found), (bad, found)
