"""The actuator app: POST /update applies decisions to a fake cluster and reports each outcome."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from inferno.cluster import labels as L
from inferno.cluster.inventory import deployment_to_json, parse_deployment
from inferno.k8s import ClusterError
from inferno.services import actuator

from . import NS, FakeCluster, client, make_deployment, settings


def cluster_and_body() -> tuple[FakeCluster, dict[str, Any]]:
    cluster = FakeCluster(
        [
            make_deployment("a", model="llama_7b", replicas=1, accelerator="A100", max_batch=8),
            make_deployment("b", model="llama_7b", replicas=2, accelerator="A100", max_batch=8),
            make_deployment("c", model="llama_7b", replicas=3, annotations={L.MODE: "recommend"}),
            make_deployment("d", model="llama_7b", replicas=2),
        ]
    )
    deployments = [
        deployment_to_json(parse_deployment(d)) for d in cluster.list_managed_deployments(())
    ]
    decision = {
        "accelerator": "H100",
        "replicas": 4,
        "maxBatch": 16,
        "gpusPerReplica": 1,
        "nodeSelector": {"nvidia.com/gpu.product": "H100"},
    }
    decisions = [
        {"server": "a", **decision},
        {"server": "b", **decision},
        {"server": "c", **decision},
        # d: absent from the solution -> kept as is, never scaled to zero
    ]
    return cluster, {"deployments": deployments, "decisions": decisions}


async def test_probes_and_metrics() -> None:
    cluster, body = cluster_and_body()
    registry = CollectorRegistry()
    async with client(actuator.create_app(settings(), api=cluster, registry=registry)) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.post("/update", json=body)).status_code == 200
        text = (await http.get("/metrics")).text
    assert 'inferno_actuator_patches_total{outcome="applied"} 2.0' in text
    assert 'inferno_actuator_patches_total{outcome="recommend"} 1.0' in text
    assert 'inferno_actuator_patches_total{outcome="keep"} 1.0' in text
    assert 'inferno_actuator_patches_total{outcome="failed"} 0.0' in text
    assert 'inferno_actuator_updates_total{result="ok"} 1.0' in text

    cluster.fail[("list_managed_deployments",)] = ClusterError("forbidden", 403)
    async with client(
        actuator.create_app(settings(), api=cluster, registry=CollectorRegistry())
    ) as http:
        r = await http.get("/readyz")
    assert r.status_code == 503
    assert "forbidden" in r.json()["error"]


async def test_update_applies_and_reports_every_deployment() -> None:
    cluster, body = cluster_and_body()
    app = actuator.create_app(settings(), api=cluster, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/update", json=body)
    assert r.status_code == 200
    report = r.json()
    assert report["ok"] is True
    assert report["updated"] == 2
    kinds = {o["deployment"]: (o["kind"], o["applied"]) for o in report["outcomes"]}
    assert kinds == {
        "a": ("update", True),
        "b": ("update", True),
        "c": ("recommend", False),
        "d": ("keep", False),
    }
    for name in ("a", "b"):
        assert cluster.replicas(name) == 4
        assert cluster.labels(name)[L.ALLOC_ACCELERATOR] == "H100"
        template = cluster.deployments[(NS, name)]["spec"]["template"]["spec"]
        assert template["nodeSelector"] == {"nvidia.com/gpu.product": "H100"}
    assert cluster.replicas("c") == 3  # recommend: not patched
    assert cluster.replicas("d") == 2  # not in the solution: kept, not zero
    assert {name for _, _, name, _ in cluster.patches} == {"a", "b"}
    assert {(d, e.reason) for _, d, e in cluster.events} == {
        ("a", "InfernoScaled"),
        ("b", "InfernoScaled"),
        ("c", "InfernoRecommendation"),
        ("d", "InfernoKept"),
    }


async def test_one_conflict_does_not_stop_the_others() -> None:
    cluster, body = cluster_and_body()
    cluster.fail[("patch_deployment", NS, "a")] = ClusterError(
        f"patch deployment {NS}/a: HTTP 409 the object has been modified", 409
    )
    registry = CollectorRegistry()
    async with client(actuator.create_app(settings(), api=cluster, registry=registry)) as http:
        r = await http.post("/update", json=body)
    assert r.status_code == 200
    report = r.json()
    assert report["ok"] is False
    assert report["failed"] == 1
    failed = [o for o in report["outcomes"] if o["error"]]
    assert [(o["deployment"], o["applied"]) for o in failed] == [("a", False)]
    assert "409" in failed[0]["error"]
    assert cluster.replicas("a") == 1  # unchanged
    assert cluster.replicas("b") == 4  # applied all the same
    warning = [e for _, d, e in cluster.events if d == "a"]
    assert warning[0].reason == "InfernoFailed"
    assert registry.get_sample_value("inferno_actuator_patches_total", {"outcome": "failed"}) == 1
    assert registry.get_sample_value("inferno_actuator_patches_total", {"outcome": "applied"}) == 1


async def test_malformed_requests() -> None:
    cluster, body = cluster_and_body()
    app = actuator.create_app(settings(), api=cluster, registry=CollectorRegistry())
    async with client(app) as http:
        missing = await http.post("/update", json={"deployments": body["deployments"]})
        bad_deployment = await http.post(
            "/update", json={"deployments": [{"name": "x"}], "decisions": []}
        )
        bad_decision = await http.post(
            "/update",
            json={"deployments": body["deployments"], "decisions": [{"replicas": 2}]},
        )
        bad_number = await http.post(
            "/update",
            json={
                "deployments": body["deployments"],
                "decisions": [{"server": "a", "replicas": "many"}],
            },
        )
    assert missing.status_code == 422
    assert bad_deployment.status_code == 400
    assert bad_deployment.json()["error"].startswith("deployments[0]: ")
    assert bad_decision.status_code == 400
    assert bad_decision.json()["error"] == "decisions[0]: missing 'server'"
    assert bad_number.status_code == 400
    assert "decisions[0]" in bad_number.json()["error"]
    assert cluster.patches == []
