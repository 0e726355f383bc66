"""The actuator app: POST /update applies decisions to a fake cluster and reports each outcome."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from inferno.cluster import labels as L
from inferno.k8s import ClusterError
from inferno.services import actuator

from . import INTERNAL, NS, FakeCluster, client, make_deployment, settings
from .fakes import SAMPLE

#: a far deadline (Unix seconds): nothing is skipped
FAR = 4.0e9


def body_for(
    targets: list[tuple[str, str, str]], decisions: list[dict[str, Any]], sequence: int = 1
) -> dict[str, Any]:
    """An /update body: (namespace, name, server) targets, decisions, cycle ``sequence``."""
    return {
        "cycle": {"id": f"c{sequence}", "sequence": sequence, "deadline": FAR},
        "targets": [{"namespace": ns, "name": n, "server": srv} for ns, n, srv in targets],
        "decisions": decisions,
    }


def cluster_and_body() -> tuple[FakeCluster, dict[str, Any]]:
    cluster = FakeCluster(
        [
            make_deployment("a", model="llama_7b", replicas=1, accelerator="A100", max_batch=8),
            make_deployment("b", model="llama_7b", replicas=2, accelerator="A100", max_batch=8),
            make_deployment("c", model="llama_7b", replicas=3, annotations={L.MODE: "recommend"}),
            make_deployment("d", model="llama_7b", replicas=2),
        ]
    )
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
    targets = [(NS, name, name) for name in "abcd"]
    return cluster, body_for(targets, decisions)


async def test_probes_and_metrics() -> None:
    cluster, body = cluster_and_body()
    registry = CollectorRegistry()
    async with client(
        actuator.create_app(settings(), token=None, api=cluster, registry=registry)
    ) as http:
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
        actuator.create_app(settings(), token=None, api=cluster, registry=CollectorRegistry())
    ) as http:
        r = await http.get("/readyz")
    assert r.status_code == 503
    assert "forbidden" in r.json()["error"]


async def test_update_applies_and_reports_every_deployment() -> None:
    cluster, body = cluster_and_body()
    app = actuator.create_app(settings(), token=None, api=cluster, registry=CollectorRegistry())
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
    async with client(
        actuator.create_app(settings(), token=None, api=cluster, registry=registry)
    ) as http:
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


async def test_malformed_requests_are_400_naming_the_field() -> None:
    cluster, body = cluster_and_body()
    app = actuator.create_app(settings(), token=None, api=cluster, registry=CollectorRegistry())
    async with client(app) as http:
        missing = await http.post("/update", json={"targets": body["targets"]})
        bad_target = await http.post("/update", json={**body, "targets": [{"name": "x"}]})
        bad_decision = await http.post("/update", json={**body, "decisions": [{"replicas": 2}]})
        bad_number = await http.post(
            "/update", json={**body, "decisions": [{"server": "a", "replicas": "many"}]}
        )
        huge = await http.post(
            "/update", json={**body, "decisions": [{"server": "a", "replicas": 10**9}]}
        )
    for r in (missing, bad_target, bad_decision, bad_number, huge):
        assert r.status_code == 400, r.text
    assert "cycle" in missing.json()["error"]
    assert "targets[0].namespace" in bad_target.json()["error"]
    assert "decisions[0].server" in bad_decision.json()["error"]
    assert "decisions[0].replicas" in bad_number.json()["error"]
    assert "decisions[0].replicas" in huge.json()["error"]
    assert cluster.patches == []


async def test_a_foreign_deployment_is_refused_and_untouched() -> None:
    """An unlabelled Deployment named as a target (with a decision scaling it to 0) is re-read,
    found not managed and refused; the managed ones in the same plan are applied."""
    cluster, body = cluster_and_body()
    cluster.deployments[("victim", "web")] = make_deployment(
        "web", model="llama_7b", namespace="victim", replicas=3, managed=False
    )
    body["targets"].append({"namespace": "victim", "name": "web", "server": "web"})
    body["decisions"].append(
        {
            "server": "web",
            "accelerator": "H100",
            "replicas": 0,
            "maxBatch": 16,
            "gpusPerReplica": 1,
            "nodeSelector": {"nvidia.com/gpu.product": "H100"},
        }
    )
    registry = CollectorRegistry()
    app = actuator.create_app(settings(), token=None, api=cluster, registry=registry)
    async with client(app) as http:
        r = await http.post("/update", json=body)
    outcome = next(o for o in r.json()["outcomes"] if o["deployment"] == "web")
    assert outcome["kind"] == "refused" and outcome["applied"] is False
    assert "not labelled inferno.server.managed=true" in outcome["error"]
    assert cluster.replicas("web", "victim") == 3
    assert all(ns != "victim" for _, ns, _, _ in cluster.patches)
    assert all(ns != "victim" for ns, _, _ in cluster.events)  # no Event on foreign objects
    assert cluster.replicas("a") == 4  # the managed ones are applied all the same
    assert registry.get_sample_value("inferno_actuator_patches_total", {"outcome": "refused"}) == 1


async def test_the_request_body_is_never_used_as_the_deployment() -> None:
    """Whatever the request says, the patch is computed from the object read from the API."""
    cluster, body = cluster_and_body()
    body["deployments"] = [{"namespace": NS, "name": "a", "env": [["X", "1"]], "replicas": 99}]
    app = actuator.create_app(settings(), token=None, api=cluster, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/update", json=body)
    assert r.status_code == 200
    a = next(o for o in r.json()["outcomes"] if o["deployment"] == "a")
    assert a["before"]["replicas"] == 1  # the live object's, not 99
    env = cluster.deployments[(NS, "a")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "X", "value": "1"} not in env


async def test_names_and_namespaces_are_checked_before_any_call() -> None:
    cluster, body = cluster_and_body()
    body["targets"] = [
        {"namespace": "Bad_NS", "name": "a", "server": "a"},
        {"namespace": NS, "name": "../../x", "server": "x"},
        {"namespace": "kube-system", "name": "coredns", "server": "coredns"},
    ]
    cfg = settings(watch_namespaces=(NS,))
    app = actuator.create_app(cfg, token=None, api=cluster, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/update", json=body)
    errors = [o["error"] for o in r.json()["outcomes"]]
    assert any("not a DNS label" in e for e in errors)
    assert any("not a DNS subdomain" in e for e in errors)
    assert any("'kube-system' is not watched" in e for e in errors)
    assert "get_deployment" not in cluster.calls


async def test_the_internal_token_is_required() -> None:
    cluster, body = cluster_and_body()
    app = actuator.create_app(settings(), token=INTERNAL, api=cluster, registry=CollectorRegistry())
    async with client(app) as anonymous, client(app, "wrong-token") as wrong:
        none = await anonymous.post("/update", json=body)
        bad = await wrong.post("/update", json=body)
        probe = await anonymous.get("/readyz")
        metrics = await anonymous.get("/metrics")
    assert none.status_code == bad.status_code == 401
    assert probe.status_code == 200 and metrics.status_code == 200
    assert cluster.patches == [] and "get_deployment" not in cluster.calls


async def test_an_older_plan_is_refused_after_a_newer_one() -> None:
    cluster, body = cluster_and_body()
    app = actuator.create_app(settings(), token=None, api=cluster, registry=CollectorRegistry())
    newer = {**body, "cycle": {"id": "new", "sequence": 10, "deadline": FAR}}
    older = {**body, "cycle": {"id": "old", "sequence": 5, "deadline": FAR}}
    async with client(app) as http:
        first = await http.post("/update", json=newer)
        stale = await http.post("/update", json=older)
        again = await http.post("/update", json=newer)
    assert first.status_code == 200
    assert stale.status_code == again.status_code == 409
    assert "older than a plan already applied" in stale.json()["error"]
    annotations = cluster.deployments[(NS, "a")]["metadata"]["annotations"]
    assert annotations[L.CYCLE] == "10.new"


async def test_nothing_is_applied_after_the_deadline() -> None:
    cluster, body = cluster_and_body()
    times = iter([100.0, 100.0, 200.0, 200.0, 200.0, 200.0, 200.0, 200.0, 200.0, 200.0])
    app = actuator.create_app(
        settings(),
        token=None,
        api=cluster,
        registry=CollectorRegistry(),
        clock=lambda: next(times, 200.0),
    )
    body["cycle"]["deadline"] = 150.0
    async with client(app) as http:
        r = await http.post("/update", json=body)
    kinds = [o["kind"] for o in r.json()["outcomes"]]
    assert "skipped" in kinds
    skipped = [o["deployment"] for o in r.json()["outcomes"] if o["kind"] == "skipped"]
    assert all(name not in {n for _, _, n, _ in cluster.patches} for name in skipped)
    assert r.json()["ok"] is False


async def test_a_decision_the_static_data_does_not_allow_is_refused() -> None:
    cluster, body = cluster_and_body()
    wrong = {
        "a": {"accelerator": "NoSuchGPU"},
        "b": {"gpusPerReplica": 8},
        "c": {"nodeSelector": {"kubernetes.io/hostname": "node-1"}},
    }
    for d in body["decisions"]:
        d.update(wrong.get(d["server"], {}))
    body["decisions"].append(
        {
            "server": "d",
            "accelerator": "H100",
            "replicas": 2000,
            "maxBatch": 16,
            "gpusPerReplica": 1,
            "nodeSelector": {"nvidia.com/gpu.product": "H100"},
        }
    )
    app = actuator.create_app(settings(), token=None, api=cluster, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/update", json=body)
    errors = {o["deployment"]: o["error"] for o in r.json()["outcomes"]}
    assert "not in the static data" in errors["a"]
    assert "gpusPerReplica 8" in errors["b"]
    assert "kubernetes.io/hostname" in errors["c"]
    assert "replicas 2000 outside 0..1000" in errors["d"]
    assert cluster.patches == []
    assert {e.reason for _, _, e in cluster.events} == {"InfernoRefused"}


def _with_contention(tmp: Path) -> Path:
    """The sample's static data with llama_7b on H100 a batch-kind row whose contention lets
    the optimizer decide its instances (up to 3) and delay."""
    for f in ("accelerator-data.json", "capacity-data.json", "optimizer-data.json"):
        shutil.copy(SAMPLE / f, tmp / f)
    models = json.loads((SAMPLE / "model-data.json").read_text())
    for row in models["models"]:
        if row["name"] == "llama_7b" and row["acc"] == "H100":
            row.update(kind="batch", contention=[1.0, 1.3, 1.6])
    (tmp / "model-data.json").write_text(json.dumps(models))
    return tmp


async def test_decided_instances_and_delay_reach_the_container_through_update(
    tmp_path: Path,
) -> None:
    """The /update message carries the solver's model instances and batching delay to the
    plan: the serving container's variables are patched (they were dropped on the wire until
    2026-12-06, so only in-process actuation set them)."""
    from inferno.cluster.plan import INSTANCES_ENV, QUEUE_DELAY_ENV

    cluster, body = cluster_and_body()
    body["decisions"][0].update(instances=3, maxQueueDelayUs=2000)
    # the sample's static data let the optimizer decide no instances: refused there
    app = actuator.create_app(settings(), token=None, api=cluster, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/update", json=body)
    refused = {o["deployment"]: o["error"] for o in r.json()["outcomes"]}
    assert "no measured contention" in refused["a"] and (NS, "a") not in {
        (ns, name) for ns, _, name, _ in cluster.patches
    }
    # a static data whose llama_7b on H100 is a batch-kind row with a measured contention
    cluster, body = cluster_and_body()
    body["decisions"][0].update(instances=3, maxQueueDelayUs=2000)
    app = actuator.create_app(
        settings(data_path=str(_with_contention(tmp_path))),
        token=None,
        api=cluster,
        registry=CollectorRegistry(),
    )
    async with client(app) as http:
        r = await http.post("/update", json=body)
    assert r.status_code == 200 and r.json()["ok"] is True
    containers = cluster.deployments[(NS, "a")]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for c in containers for e in c.get("env", [])}
    assert env[INSTANCES_ENV] == "3" and env[QUEUE_DELAY_ENV] == "2000"
    others = cluster.deployments[(NS, "b")]["spec"]["template"]["spec"]["containers"]
    assert INSTANCES_ENV not in {e["name"] for c in others for e in c.get("env", [])}
