"""The collector app: GET /collect over a fake cluster, probes and metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from inferno.k8s import ClusterError
from inferno.services import collector

from . import FakeCluster, client, make_deployment, sample_cluster, service_class, settings


async def test_probes_and_metrics() -> None:
    registry = CollectorRegistry()
    app = collector.create_app(settings(), token=None, api=sample_cluster(), registry=registry)
    async with client(app) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get("/collect")).status_code == 200
        metrics = await http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'inferno_collector_collections_total{outcome="ok"} 1.0' in text
    assert "inferno_collector_managed_deployments 3.0" in text
    assert "inferno_collector_problems 0.0" in text
    assert "inferno_collector_collect_seconds_count 1.0" in text


async def test_readyz_503_when_the_cluster_fails() -> None:
    cluster = sample_cluster()
    cluster.fail[("list_service_classes",)] = ClusterError("list service classes: HTTP 403", 403)
    async with client(
        collector.create_app(settings(), token=None, api=cluster, registry=CollectorRegistry())
    ) as http:
        r = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200  # alive all the same
    assert r.status_code == 503
    assert "HTTP 403" in r.json()["error"]


async def test_readyz_tolerates_a_missing_crd() -> None:
    cluster = sample_cluster()
    cluster.fail[("list_service_classes",)] = ClusterError("HTTP 404 not found", 404)
    app = collector.create_app(settings(), token=None, api=cluster, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.get("/readyz")
        c = await http.get("/collect")
    assert r.status_code == 200
    assert c.status_code == 200
    assert len(c.json()["servers"]) == 3


async def test_collect_returns_the_managed_servers() -> None:
    cluster = sample_cluster()
    cluster.deployments[("inference", "broken")] = make_deployment("broken", model="")
    cluster.service_classes["premium"] = service_class("premium", 1, llama_7b={"itlMs": 40})
    cluster.service_classes["bad"] = service_class("bad", 0, llama_7b={})
    registry = CollectorRegistry()
    app = collector.create_app(settings(), token=None, api=cluster, registry=registry)
    async with client(app) as http:
        r = await http.get("/collect")
    assert r.status_code == 200
    body = r.json()
    assert sorted(s["name"] for s in body["servers"]) == ["granite-13b", "llama-7b", "mistral-7b"]
    llama = next(s for s in body["servers"] if s["name"] == "llama-7b")
    assert llama["model"] == "llama_7b"
    assert llama["class"] == "Premium"
    assert llama["currentAlloc"]["load"]["arrivalRate"] == 120.0
    assert sorted(d["name"] for d in body["deployments"]) == [
        "granite-13b",
        "llama-7b",
        "mistral-7b",
    ]
    assert [c["name"] for c in body["serviceClasses"]] == ["premium"]
    assert any("broken" in p for p in body["problems"])
    assert any("ServiceClass bad" in p for p in body["problems"])
    assert registry.get_sample_value("inferno_collector_problems") == 2


async def test_collect_watches_only_the_configured_namespaces() -> None:
    cluster = FakeCluster(
        [
            make_deployment("a", model="llama_7b", namespace="team-a"),
            make_deployment("b", model="llama_7b", namespace="team-b"),
        ]
    )
    app = collector.create_app(
        settings(watch_namespaces=("team-b",)),
        api=cluster,
        token=None,
        registry=CollectorRegistry(),
    )
    async with client(app) as http:
        body = (await http.get("/collect")).json()
    assert [d["namespace"] for d in body["deployments"]] == ["team-b"]


async def test_collect_503_on_cluster_error() -> None:
    cluster = sample_cluster()
    cluster.fail[("list_managed_deployments",)] = ClusterError(
        "list deployments: the API server did not answer"
    )
    registry = CollectorRegistry()
    async with client(
        collector.create_app(settings(), token=None, api=cluster, registry=registry)
    ) as http:
        r = await http.get("/collect")
        text = (await http.get("/metrics")).text
    assert r.status_code == 503
    assert r.json() == {"error": "list deployments: the API server did not answer"}
    assert 'inferno_collector_collections_total{outcome="error"} 1.0' in text
