"""The collector with a Prometheus load source: loads from Prometheus, 503 on an outage, and a
cycle that then patches nothing."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from inferno.cluster.inventory import parse_deployment
from inferno.prom import PrometheusLoadSource, selector_for, server_queries
from inferno.services import collector

from . import NS, FakeCluster, Stack, client, sample_cluster, settings

# the fake Prometheus of tests/prom (tests/ is on sys.path, as for every test package here)
from prom import FakePrometheus  # isort: skip


def rpm_query(cluster: FakeCluster, name: str) -> str:
    d = parse_deployment(cluster.deployments[(NS, name)])
    return server_queries(selector_for(d), 60).completions_rpm


def prometheus(cluster: FakeCluster, rates: dict[str, Any]) -> FakePrometheus:
    return FakePrometheus({rpm_query(cluster, name): rate for name, rate in rates.items()})


def app_with(cluster: FakeCluster, fake: FakePrometheus, registry: CollectorRegistry) -> Any:
    source = PrometheusLoadSource(fake.client(), 60)
    return collector.create_app(
        settings(), token=None, api=cluster, registry=registry, load_source=source
    )


async def test_the_loads_come_from_prometheus_not_the_labels() -> None:
    cluster = sample_cluster()  # labels: llama 120, granite 240, mistral 60 requests/min
    fake = prometheus(cluster, {"llama-7b": 30.0, "granite-13b": 0.0, "mistral-7b": 600.0})
    async with client(app_with(cluster, fake, CollectorRegistry())) as http:
        r = await http.get("/collect")
    assert r.status_code == 200
    body = r.json()
    assert body["loadSource"] == "prometheus"
    rates = {s["name"]: s["currentAlloc"]["load"]["arrivalRate"] for s in body["servers"]}
    assert rates == {"llama-7b": 30.0, "granite-13b": 0.0, "mistral-7b": 600.0}
    # no token metrics in this fake: the labels' token count (G0: one length) is kept
    llama = next(s for s in body["servers"] if s["name"] == "llama-7b")
    assert llama["currentAlloc"]["load"]["avgOutTokens"] == 1024.0
    assert body["problems"] == []
    assert [s["server"] for s in body["measurement"]["servers"]] == [
        "granite-13b",
        "llama-7b",
        "mistral-7b",
    ]
    assert body["measurement"]["window"] == 60.0


async def test_a_server_without_series_is_left_out_and_named() -> None:
    cluster = sample_cluster()
    fake = prometheus(cluster, {"llama-7b": 30.0, "granite-13b": 12.0})
    registry = CollectorRegistry()
    async with client(app_with(cluster, fake, registry)) as http:
        body = (await http.get("/collect")).json()
    assert sorted(s["name"] for s in body["servers"]) == ["granite-13b", "llama-7b"]
    # the Deployment is still listed: the actuator keeps it as it is
    assert sorted(d["name"] for d in body["deployments"]) == [
        "granite-13b",
        "llama-7b",
        "mistral-7b",
    ]
    [problem] = body["problems"]
    assert problem.startswith("server mistral-7b (Deployment inference/mistral-7b")
    assert registry.get_sample_value("inferno_collector_problems") == 1


async def test_a_prometheus_outage_is_a_503() -> None:
    cluster = sample_cluster()
    fake = FakePrometheus({rpm_query(cluster, "granite-13b"): httpx.ReadTimeout("timed out")})
    registry = CollectorRegistry()
    async with client(app_with(cluster, fake, registry)) as http:
        r = await http.get("/collect")
        ready = await http.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["kind"] == "PrometheusUnavailable"
    assert body["error"].startswith("load: Prometheus at http://prometheus.monitoring:9090 did not")
    assert registry.get_sample_value("inferno_collector_collections_total", {"outcome": "error"})
    assert ready.status_code == 200  # readiness does not depend on Prometheus


async def test_prometheus_with_no_data_at_all_is_a_503() -> None:
    cluster = sample_cluster()
    async with client(app_with(cluster, FakePrometheus(), CollectorRegistry())) as http:
        r = await http.get("/collect")
    assert r.status_code == 503
    assert r.json()["kind"] == "NoData"


async def test_a_cycle_during_an_outage_patches_nothing() -> None:
    cluster = sample_cluster()
    fake = FakePrometheus({rpm_query(cluster, "granite-13b"): httpx.ConnectError("refused")})
    app = app_with(cluster, fake, CollectorRegistry())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    stack = Stack(
        cluster,
        collector_client=httpx.AsyncClient(transport=transport, base_url="http://collector"),
    )
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 503
    report = r.json()
    assert report["status"] == "failed"
    assert report["failedPhase"] == "collect"
    assert "cannot reach Prometheus" in report["errors"][0]
    assert cluster.patches == []
