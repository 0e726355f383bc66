"""Pure tests of :func:`inferno.cluster.plan.plan`: every JSON patch it produces is applied (with
``jsonpatch``, RFC 6902) to the very Deployment dict the inventory parsed, and the result is
compared with the whole expected object, so a patch that touches anything else fails."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import jsonpatch
import pytest
from k8s.conftest import BATCH_ENV, GPU, SIDECAR_IMAGE, TRITON_IMAGE, hpa, triton_deployment

from inferno.cluster import labels as L
from inferno.cluster.inventory import HpaRef, ManagedDeployment, parse_deployment
from inferno.cluster.plan import (
    Action,
    Decision,
    PlanSettings,
    _escape,
    holders,
    plan,
    plan_one,
)

NS = "llm"
PRODUCT = "nvidia.com/gpu.product"


def decision(
    server: str,
    accelerator: str = "H100",
    replicas: int = 3,
    max_batch: int = 32,
    gpus: int = 1,
    selector: Mapping[str, str] | None = None,
) -> Decision:
    return Decision(
        server=server,
        accelerator=accelerator,
        replicas=replicas,
        max_batch=max_batch,
        gpus_per_replica=gpus,
        node_selector=dict(selector) if selector is not None else {PRODUCT: accelerator},
        cost=75.0 * replicas,
        bound="itl",
    )


def settled(name: str = "llama", **kw: Any) -> dict[str, Any]:
    """A Deployment already running decision(name) (H100, 3 replicas, batch 32, 1 GPU)."""
    base: dict[str, Any] = {
        "model": "llama_13b",
        "replicas": 3,
        "accelerator": "H100",
        "max_batch": 32,
        "batch_env": "32",
        "gpus": "1",
        "node_selector": {"kubernetes.io/arch": "amd64", PRODUCT: "H100"},
    }
    base.update(kw)
    return triton_deployment(name, NS, **base)


def one(obj: dict[str, Any], dec: Decision | None, *, hpa_ref: HpaRef | None = None) -> Action:
    d: ManagedDeployment = parse_deployment(obj)
    if hpa_ref is not None:
        d = dataclasses.replace(d, hpa=hpa_ref)
    actions = plan([d], [] if dec is None else [dec])
    assert len(actions) == 1
    return actions[0]


def applied(obj: dict[str, Any], action: Action) -> dict[str, Any]:
    original = copy.deepcopy(obj)
    out: dict[str, Any] = jsonpatch.apply_patch(obj, [dict(op) for op in action.patch])
    assert obj == original, "the patch must not be applied in place"
    return out


def triton(obj: dict[str, Any]) -> dict[str, Any]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "triton")


def paths(action: Action) -> list[str]:
    return [op["path"] for op in action.patch]


# -- escaping -------------------------------------------------------------------------------------


def test_json_pointer_escaping() -> None:
    # RFC 6901: "~" first, then "/"
    assert _escape("nvidia.com/gpu") == "nvidia.com~1gpu"
    assert _escape("a~/b") == "a~0~1b"
    assert _escape(L.ALLOC_ACCELERATOR) == L.ALLOC_ACCELERATOR  # dots need no escaping


# -- replicas -------------------------------------------------------------------------------------


def test_replicas_change_is_one_replace_op() -> None:
    obj = settled(replicas=2)
    action = one(obj, decision("llama", replicas=5))
    assert action.kind == "update"
    assert list(action.patch) == [{"op": "replace", "path": "/spec/replicas", "value": 5}]
    assert action.hpa_patch == ()
    expected = copy.deepcopy(obj)
    expected["spec"]["replicas"] = 5
    assert applied(obj, action) == expected
    assert action.before == {"replicas": 2, "accelerator": "H100", "maxBatch": 32}
    assert action.after == {"replicas": 5, "accelerator": "H100", "maxBatch": 32}
    assert action.event is not None
    assert action.event.type == "Normal"
    assert action.event.reason == "InfernoScaled"
    assert "replicas 2→5" in action.event.message


def test_unchanged_deployment_gets_no_patch_and_no_event() -> None:
    obj = settled()
    action = one(obj, decision("llama"))
    assert action.kind == "unchanged"
    assert action.patch == ()
    assert action.hpa_patch == ()
    assert action.event is None
    assert action.before == action.after


# -- allocation labels ----------------------------------------------------------------------------


def test_allocation_labels_are_set_as_dotted_keys() -> None:
    obj = settled(accelerator=None, max_batch=None)  # no allocation labels yet
    action = one(obj, decision("llama"))
    assert action.kind == "update"
    assert sorted(paths(action)) == [
        f"/metadata/labels/{L.ALLOC_ACCELERATOR}",
        f"/metadata/labels/{L.ALLOC_MAX_BATCH}",
    ]
    expected = copy.deepcopy(obj)
    expected["metadata"]["labels"][L.ALLOC_ACCELERATOR] = "H100"
    expected["metadata"]["labels"][L.ALLOC_MAX_BATCH] = "32"  # label values are strings
    assert applied(obj, action) == expected


def test_allocation_labels_are_replaced() -> None:
    obj = settled(accelerator="A100", max_batch=16, batch_env="32")
    action = one(obj, decision("llama"))
    out = applied(obj, action)
    labels = out["metadata"]["labels"]
    assert labels[L.ALLOC_ACCELERATOR] == "H100"
    assert labels[L.ALLOC_MAX_BATCH] == "32"
    # every other label is intact
    others = {
        k: v
        for k, v in obj["metadata"]["labels"].items()
        if not k.startswith("inferno.server.allocation.")
    }
    assert {k: v for k, v in labels.items() if k in others} == others
    assert len(labels) == len(obj["metadata"]["labels"])
    assert action.event is not None
    assert "accelerator A100→H100" in action.event.message
    assert "batch 16→32" in action.event.message


# -- node selector --------------------------------------------------------------------------------


def test_node_selector_is_merged_with_existing_selectors() -> None:
    obj = settled(
        accelerator="A100",
        node_selector={"kubernetes.io/arch": "amd64", PRODUCT: "A100", "pool": "gpu"},
    )
    action = one(obj, decision("llama"))
    out = applied(obj, action)
    assert out["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/arch": "amd64",
        "pool": "gpu",
        PRODUCT: "H100",
    }
    expected = copy.deepcopy(obj)
    expected["metadata"]["labels"][L.ALLOC_ACCELERATOR] = "H100"
    expected["spec"]["template"]["spec"]["nodeSelector"][PRODUCT] = "H100"
    assert out == expected


def test_node_selector_is_created_when_the_pod_has_none() -> None:
    obj = settled(node_selector={})
    assert "nodeSelector" not in obj["spec"]["template"]["spec"]
    action = one(obj, decision("llama"))
    expected = copy.deepcopy(obj)
    expected["spec"]["template"]["spec"]["nodeSelector"] = {PRODUCT: "H100"}
    assert applied(obj, action) == expected


def test_custom_node_selector_of_the_decision() -> None:
    obj = settled()
    sel = {"cloud.example.com/accelerator": "h100-80gb"}
    action = one(obj, decision("llama", selector=sel))
    out = applied(obj, action)
    assert out["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/arch": "amd64",
        PRODUCT: "H100",
        "cloud.example.com/accelerator": "h100-80gb",
    }


# -- GPU limit ------------------------------------------------------------------------------------


def test_gpu_limit_goes_to_the_annotated_container_and_requests_follow() -> None:
    obj = settled(sidecar_first=True)  # the sidecar is containers[0], Triton containers[1]
    assert obj["metadata"]["annotations"][L.CONTAINER] == "triton"
    action = one(obj, decision("llama", gpus=2))
    assert paths(action) == [
        "/spec/template/spec/containers/1/name",  # a test: still the serving container
        "/spec/template/spec/containers/1/resources",
    ]
    out = applied(obj, action)
    expected = copy.deepcopy(obj)
    res = expected["spec"]["template"]["spec"]["containers"][1]["resources"]
    res["limits"][GPU] = "2"
    res["requests"][GPU] = "2"  # extended resources: requests must equal limits
    assert out == expected
    sidecar = out["spec"]["template"]["spec"]["containers"][0]
    assert sidecar["name"] == "metrics"
    assert sidecar["resources"] == {"limits": {"cpu": "100m", "memory": "64Mi"}}
    assert triton(out)["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", GPU: "2"}


def test_gpu_requests_are_not_invented() -> None:
    obj = settled(gpu_requests=False)
    action = one(obj, decision("llama", gpus=4))
    out = applied(obj, action)
    assert triton(out)["resources"] == {
        "limits": {"cpu": "8", "memory": "32Gi", GPU: "4"},
        "requests": {"cpu": "4", "memory": "32Gi"},
    }


def test_gpu_limit_added_when_missing() -> None:
    obj = settled(gpus=None)
    action = one(obj, decision("llama", gpus=1))
    out = applied(obj, action)
    assert triton(out)["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", GPU: "1"}
    assert GPU not in triton(out)["resources"]["requests"]


def test_gpu_resource_name_is_configurable() -> None:
    obj = settled()
    d = parse_deployment(obj)
    [action] = plan([d], [decision("llama", gpus=2)], PlanSettings(gpu_resource="amd.com/gpu"))
    out = applied(obj, action)
    limits = triton(out)["resources"]["limits"]
    assert limits["amd.com/gpu"] == "2"
    assert limits[GPU] == "1"  # the other resource is left alone


# -- batch size variable --------------------------------------------------------------------------


def test_batch_env_replaced_in_place() -> None:
    obj = settled(batch_env="8", max_batch=8)
    env_before = triton(obj)["env"]
    index = [e["name"] for e in env_before].index(BATCH_ENV)
    assert index == 2  # after MODEL_NAME and the valueFrom HF_TOKEN
    action = one(obj, decision("llama", max_batch=64))
    assert {
        "op": "replace",
        "path": f"/spec/template/spec/containers/0/env/{index}",
        "value": {"name": BATCH_ENV, "value": "64"},
    } in action.patch
    # the index is guarded: an env reordered since the read fails the patch whole
    assert {
        "op": "test",
        "path": f"/spec/template/spec/containers/0/env/{index}/name",
        "value": BATCH_ENV,
    } in action.patch
    moved = copy.deepcopy(obj)
    env_moved = triton(moved)["env"]
    env_moved.insert(0, env_moved.pop(index))
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(moved, list(action.patch))
    out = applied(obj, action)
    env = triton(out)["env"]
    expected_env = copy.deepcopy(env_before)
    expected_env[index]["value"] = "64"
    assert env == expected_env  # order kept, valueFrom untouched
    assert out["metadata"]["labels"][L.ALLOC_MAX_BATCH] == "64"


def test_batch_env_appended_to_existing_env() -> None:
    obj = settled(batch_env=None, sidecar_first=True)
    action = one(obj, decision("llama"))
    out = applied(obj, action)
    env = triton(out)["env"]
    assert env[:-1] == triton(obj)["env"]
    assert env[-1] == {"name": BATCH_ENV, "value": "32"}
    # the sidecar's env is not the target
    assert out["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "LOG_LEVEL", "value": "info"}
    ]


def test_batch_env_created_when_the_container_has_no_env() -> None:
    obj = settled(batch_env=None, extra_env=False)
    assert "env" not in triton(obj)
    action = one(obj, decision("llama"))
    expected = copy.deepcopy(obj)
    expected["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": BATCH_ENV, "value": "32"}
    ]
    assert applied(obj, action) == expected


def test_everything_changes_and_nothing_else() -> None:
    obj = triton_deployment(
        "granite",
        NS,
        model="granite_13b",
        replicas=1,
        sidecar_first=True,
        batch_env="4",
        gpus="1",
    )
    action = one(
        obj,
        decision(
            "granite",
            accelerator="2xA100",
            replicas=4,
            max_batch=48,
            gpus=2,
            selector={PRODUCT: "A100"},
        ),
    )
    out = applied(obj, action)
    expected = copy.deepcopy(obj)
    expected["spec"]["replicas"] = 4
    expected["metadata"]["labels"][L.ALLOC_ACCELERATOR] = "2xA100"
    expected["metadata"]["labels"][L.ALLOC_MAX_BATCH] = "48"
    expected["spec"]["template"]["spec"]["nodeSelector"] = {
        "kubernetes.io/arch": "amd64",
        PRODUCT: "A100",
    }
    c = expected["spec"]["template"]["spec"]["containers"][1]
    c["resources"]["limits"][GPU] = "2"
    c["resources"]["requests"][GPU] = "2"
    c["env"][2]["value"] = "48"
    assert out == expected
    assert triton(out)["image"] == TRITON_IMAGE
    assert out["spec"]["template"]["spec"]["containers"][0]["image"] == SIDECAR_IMAGE


# -- keep -----------------------------------------------------------------------------------------


def test_server_missing_from_decisions_is_kept() -> None:
    obj = settled(replicas=4)
    action = one(obj, None)
    assert action.kind == "keep"
    assert action.patch == () and action.hpa_patch == ()
    assert action.event is not None
    assert action.event.type == "Warning"
    assert action.event.reason == "InfernoKept"
    assert "not in the solution" in action.event.message
    assert action.after == action.before == {"replicas": 4, "accelerator": "H100", "maxBatch": 32}


def test_unallocated_server_is_kept_with_the_reason() -> None:
    obj = settled(replicas=4)
    dec = Decision(server="llama", allocated=False, reason="unknown service class 'gold'")
    action = one(obj, dec)
    assert action.kind == "keep"
    assert action.patch == ()
    assert action.event is not None and action.event.type == "Warning"
    assert "unknown service class 'gold'" in action.event.message


def test_a_decision_for_another_server_does_not_apply() -> None:
    obj = settled(server="llama-prod")
    action = one(obj, decision("llama", replicas=9))  # keyed by the Deployment's name: wrong
    assert action.server == "llama-prod"
    assert action.kind == "keep"
    assert action.patch == ()


def _created(obj: dict[str, Any], when: str) -> dict[str, Any]:
    obj["metadata"]["creationTimestamp"] = when
    return obj


def test_of_deployments_claiming_one_server_the_first_created_holds_it() -> None:
    """Two Deployments label themselves server "shared", the second created later in another
    namespace (anyone with a namespace can): the first keeps its decisions, the newcomer is
    kept as it is with a Warning naming the holder (before: both were frozen, so a tenant could
    stop another team's server from being scaled)."""
    a = parse_deployment(
        _created(settled("a", server="shared", replicas=1), "2026-12-01T10:00:00Z")
    )
    b = parse_deployment(
        _created(
            triton_deployment("b", "team-b", model="llama_13b", server="shared"),
            "2026-12-07T09:00:00Z",
        )
    )
    c = parse_deployment(settled("c", replicas=1))
    actions = plan([c, b, a], [decision("shared", replicas=6), decision("c", replicas=2)])
    by_name = {(x.namespace, x.deployment): x for x in actions}
    held = by_name[(NS, "a")]
    assert held.kind == "update" and held.after["replicas"] == 6
    x = by_name[("team-b", "b")]
    assert x.kind == "keep"
    assert x.patch == () and x.hpa_patch == ()
    assert x.event is not None and x.event.type == "Warning"
    assert "'shared'" in x.event.message and f"{NS}/a" in x.event.message
    assert L.SERVER_NAME in x.event.message
    assert by_name[(NS, "c")].kind == "update"
    # ordered by (namespace, name)
    assert [(x.namespace, x.deployment) for x in actions] == [
        (NS, "a"),
        (NS, "c"),
        ("team-b", "b"),
    ]
    # created the other way round: team-b's holds it, whatever the names' order
    a2 = parse_deployment(_created(settled("a", server="shared"), "2026-12-08T00:00:00Z"))
    assert holders([a2, b])["shared"] is b
    # no creation time (a fake API server): after any with one, then by (namespace, name)
    bare = parse_deployment(settled("a", server="shared"))
    assert holders([bare, b])["shared"] is b
    bare_b = parse_deployment(triton_deployment("b", "team-b", model="llama_13b", server="shared"))
    assert holders([bare_b, bare])["shared"] is bare


# -- replica bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "wanted", "expected"),
    [
        ({L.MIN_REPLICAS: "2", L.MAX_REPLICAS: "4"}, 7, 4),
        ({L.MIN_REPLICAS: "2", L.MAX_REPLICAS: "4"}, 1, 2),
        ({L.MAX_REPLICAS: "3"}, 5, 3),
        ({}, 0, 1),  # never 0 without an explicit min-replicas of 0
        ({L.MIN_REPLICAS: "1"}, 0, 1),
        ({L.MIN_REPLICAS: "0"}, 0, 0),
        ({L.MIN_REPLICAS: "0", L.MAX_REPLICAS: "5"}, 2, 2),
    ],
)
def test_replicas_clamped_to_annotations(
    annotations: dict[str, str], wanted: int, expected: int
) -> None:
    obj = settled(replicas=3, annotations=annotations)
    action = one(obj, decision("llama", replicas=wanted))
    out = applied(obj, action)
    assert out["spec"]["replicas"] == expected
    assert action.after["replicas"] == expected
    if expected == 3:
        assert action.kind == "unchanged"
    else:
        assert list(action.patch) == [
            {"op": "replace", "path": "/spec/replicas", "value": expected}
        ]


# -- recommend mode -------------------------------------------------------------------------------


def test_recommend_mode_records_only() -> None:
    obj = settled(replicas=1, accelerator="A100", annotations={L.MODE: "recommend"})
    action = one(obj, decision("llama", replicas=5))
    assert action.kind == "recommend"
    assert action.patch == () and action.hpa_patch == ()
    assert action.event is not None
    assert action.event.reason == "InfernoRecommendation"
    assert action.event.type == "Normal"
    assert "replicas 1→5" in action.event.message
    assert "accelerator A100→H100" in action.event.message
    assert action.after == {"replicas": 5, "accelerator": "H100", "maxBatch": 32}


def test_default_mode_recommend_from_the_collector() -> None:
    obj = settled(replicas=1)
    d = parse_deployment(obj, default_mode="recommend")
    [action] = plan([d], [decision("llama", replicas=5)])
    assert action.kind == "recommend" and action.patch == ()


# -- HPA ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "wanted", "hpa_min", "hpa_max"),
    [
        ({}, 4, 4, 5),  # ceil(4 × 1.25) = 5
        ({}, 3, 3, 4),  # ceil(3.75) = 4
        ({}, 1, 1, 2),  # ceil(1.25) = 2
        ({L.MAX_REPLICAS: "8"}, 7, 7, 8),  # ceil(8.75) = 9, capped by the annotation
        ({L.MAX_REPLICAS: "6"}, 9, 6, 6),  # the decision itself is capped first
        ({L.MIN_REPLICAS: "0"}, 0, 1, 1),  # an HPA's minReplicas is at least 1, max >= min
    ],
)
def test_hpa_gets_min_and_max_instead_of_replicas(
    annotations: dict[str, str], wanted: int, hpa_min: int, hpa_max: int
) -> None:
    obj = settled(replicas=2, accelerator="A100", annotations=annotations)
    h = hpa("llama-hpa", NS, "llama", min_replicas=2, max_replicas=3)
    ref = HpaRef(NS, "llama-hpa", 2, 3)
    action = one(obj, decision("llama", replicas=wanted), hpa_ref=ref)
    assert action.kind == "update"
    assert "/spec/replicas" not in paths(action)
    out_hpa = jsonpatch.apply_patch(h, [dict(op) for op in action.hpa_patch])
    expected_hpa = copy.deepcopy(h)
    expected_hpa["spec"]["minReplicas"] = hpa_min
    expected_hpa["spec"]["maxReplicas"] = hpa_max
    assert out_hpa == expected_hpa  # metrics and target intact
    assert 1 <= out_hpa["spec"]["minReplicas"] <= out_hpa["spec"]["maxReplicas"]
    # the Deployment still gets its allocation, but keeps its replicas (the HPA's business)
    out = applied(obj, action)
    assert out["spec"]["replicas"] == 2
    assert out["metadata"]["labels"][L.ALLOC_ACCELERATOR] == "H100"
    assert action.event is not None and "llama-hpa" in action.event.message


def test_hpa_already_matching_is_not_patched() -> None:
    obj = settled(replicas=4)
    ref = HpaRef(NS, "llama-hpa", 4, 5)
    action = one(obj, decision("llama", replicas=4), hpa_ref=ref)
    assert action.kind == "unchanged"
    assert action.patch == () and action.hpa_patch == ()


def test_hpa_only_change_is_an_update() -> None:
    obj = settled(replicas=2)
    ref = HpaRef(NS, "llama-hpa", 2, 3)
    action = one(obj, decision("llama", replicas=4), hpa_ref=ref)
    assert action.kind == "update"
    assert action.patch == ()
    assert list(action.hpa_patch) == [
        {"op": "replace", "path": "/spec/minReplicas", "value": 4},
        {"op": "replace", "path": "/spec/maxReplicas", "value": 5},
    ]


def test_hpa_headroom_setting() -> None:
    obj = settled(replicas=2)
    d = dataclasses.replace(parse_deployment(obj), hpa=HpaRef(NS, "h", 1, 1))
    [action] = plan([d], [decision("llama", replicas=10)], PlanSettings(hpa_headroom=0.5))
    ops = {op["path"]: op["value"] for op in action.hpa_patch}
    assert ops == {"/spec/minReplicas": 10, "/spec/maxReplicas": 15}


def test_batch_env_from_a_value_from_is_replaced_by_a_value() -> None:
    obj = settled(batch_env="8", max_batch=8)
    env = triton(obj)["env"]
    index = [e["name"] for e in env].index(BATCH_ENV)
    env[index] = {"name": BATCH_ENV, "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
    out = applied(obj, one(obj, decision("llama", max_batch=64)))
    assert triton(out)["env"][index] == {"name": BATCH_ENV, "value": "64"}


# -- batch-size hysteresis --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accelerator", "new_batch", "tolerance", "kept"),
    [
        ("H100", 36, 0.25, True),  # +12.5%: a rolling restart is not worth it
        ("H100", 24, 0.25, True),  # −25%: at the edge, kept
        ("H100", 40, 0.25, True),  # +25%: at the edge, kept
        ("H100", 41, 0.25, False),  # beyond
        ("H100", 48, 0.25, False),  # +50%
        ("A100", 36, 0.25, False),  # another accelerator: the batch follows the decision
        ("H100", 36, 0.0, False),  # no tolerance: every change applies
    ],
)
def test_batch_size_kept_within_the_tolerance(
    accelerator: str, new_batch: int, tolerance: float, kept: bool
) -> None:
    obj = settled(replicas=3)  # runs batch 32 on H100
    d = parse_deployment(obj)
    dec = decision("llama", accelerator=accelerator, replicas=4, max_batch=new_batch)
    [action] = plan([d], [dec], PlanSettings(batch_tolerance=tolerance))
    out = applied(obj, action)
    env = {e["name"]: e.get("value") for e in triton(out).get("env", [])}
    assert env[BATCH_ENV] == ("32" if kept else str(new_batch))
    assert action.after["maxBatch"] == (32 if kept else new_batch)
    assert out["spec"]["replicas"] == 4  # the replicas follow the decision either way


def test_default_batch_tolerance_is_a_quarter() -> None:
    assert PlanSettings().batch_tolerance == 0.25
    obj = settled(replicas=3)  # batch 32 on H100
    [kept] = plan([parse_deployment(obj)], [decision("llama", replicas=3, max_batch=40)])
    assert kept.kind == "unchanged" and kept.after["maxBatch"] == 32
    [moved] = plan([parse_deployment(obj)], [decision("llama", replicas=3, max_batch=41)])
    assert moved.kind == "update"
    assert triton(applied(obj, moved))["env"][2] == {"name": BATCH_ENV, "value": "41"}


@pytest.mark.parametrize(
    "dec",
    [
        None,
        Decision(server="llama", allocated=False, reason="no capacity"),
        decision("llama"),
        decision("llama", accelerator="2xA100", replicas=5, max_batch=16, gpus=2),
    ],
)
def test_plan_one_is_plan_for_a_single_deployment(dec: Decision | None) -> None:
    obj = settled(replicas=2, accelerator="A100", max_batch=16)
    d = parse_deployment(obj)
    cfg = PlanSettings()
    assert plan_one(d, dec, cfg) == one(obj, dec)
