"""run_cycle over stub phases (malformed answers, the report's shape) and class_status."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from inferno.cluster.inventory import deployment_to_json, parse_deployment
from inferno.cluster.serviceclass import class_row, class_status
from inferno.control.cycle import Phases, run_cycle

from . import make_deployment, service_class, settings

NOW = dt.datetime(2025, 3, 1, 8, 30, tzinfo=dt.UTC)


def deployment(name: str, **kw: Any) -> Any:
    return parse_deployment(make_deployment(name, **kw))


def phases_answering(routes: dict[str, httpx.Response]) -> tuple[Phases, list[str]]:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return routes[request.url.path]

    def c() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x")

    return Phases(settings(), collector=c(), optimizer=c(), actuator=c()), seen


COLLECTION = {
    "deployments": [deployment_to_json(deployment("a", model="llama_7b"))],
    "servers": [{"name": "a"}],
    "serviceClasses": [],
}


async def test_a_non_json_answer_fails_the_phase() -> None:
    phases, seen = phases_answering(
        {
            "/collect": httpx.Response(200, json=COLLECTION),
            "/optimize": httpx.Response(200, text="<html>proxy</html>"),
        }
    )
    report = await run_cycle(phases)
    assert report.status == "failed"
    assert report.failed_phase == "optimize"
    assert "not JSON" in report.errors[0]
    assert seen == ["/collect", "/optimize"]


async def test_a_malformed_collection_fails_the_collect_phase() -> None:
    phases, seen = phases_answering(
        {"/collect": httpx.Response(200, json={"servers": "x", "deployments": []})}
    )
    report = await run_cycle(phases)
    assert (report.status, report.failed_phase) == ("failed", "collect")
    assert "'servers' is not a list" in report.errors[0]
    assert seen == ["/collect"]


async def test_an_actuator_error_answer_fails_the_update_phase() -> None:
    phases, _ = phases_answering(
        {
            "/collect": httpx.Response(200, json=COLLECTION),
            "/optimize": httpx.Response(200, json={"solution": {}, "decisions": []}),
            "/update": httpx.Response(400, json={"error": "decisions[0]: missing 'server'"}),
        }
    )
    report = await run_cycle(phases, trigger="test", now=lambda: NOW)
    assert report.failed_phase == "update"
    assert report.errors == [
        "update: actuator POST http://x/update: HTTP 400: decisions[0]: missing 'server'"
    ]
    body = report.to_json()
    assert body["trigger"] == "test"
    assert body["started"] == "2025-03-01T08:30:00.000Z"
    assert [body["phases"][p]["result"] for p in ("collect", "optimize", "update")] == [
        "ok",
        "ok",
        "failed",
    ]


def test_class_status() -> None:
    row = class_row(
        service_class(
            "premium",
            1,
            llama_7b={"itlMs": 40, "ttwMs": 500},
            mistral_7b={"itlMs": 20},
            granite_13b={"ttftMs": 100, "ttftQuantile": 0.95},
        )
    )
    deployments = [
        deployment("a", model="llama_7b", service_class="Premium"),  # any case
        deployment("b", model="mistral_7b", service_class="premium", replicas=2, accelerator="L4"),
        deployment("c", model="granite_13b", service_class="premium"),
        deployment("d", model="llama_7b", service_class="premium"),
        deployment("other", model="llama_7b", service_class="free"),
    ]
    solution = {
        "allocations": {
            "a": {"accelerator": "A100", "numReplicas": 3, "itlAverage": 12.5, "waitAverage": 40},
            "c": {"accelerator": "H100", "numReplicas": 1, "ttftAverage": 50, "ttftP95": 140},
            "d": {"accelerator": "A100", "numReplicas": 1, "itlAverage": 45, "status": "partial"},
        },
        "unallocated": {"b": "no accelerator meets itl 20 ms"},
    }
    status = class_status(row, deployments, solution, now=NOW)
    assert status["lastCycle"] == "2025-03-01T08:30:00Z"
    by = {s["server"]: s for s in status["servers"]}
    assert list(by) == ["a", "b", "c", "d"]  # only the class's servers
    assert by["a"] == {
        "server": "a",
        "namespace": "inference",
        "deployment": "a",
        "model": "llama_7b",
        "accelerator": "A100",
        "replicas": 3,
        "predicted": {"itlMs": 12.5, "ttftMs": None, "waitMs": 40.0},
        "target": {"itlMs": 40, "ttwMs": 500},
        "meetsTarget": True,
    }
    assert by["b"]["meetsTarget"] is False
    assert (by["b"]["accelerator"], by["b"]["replicas"]) == ("L4", 2)  # kept as is
    assert by["b"]["reason"] == "no accelerator meets itl 20 ms"
    assert by["c"]["meetsTarget"] is False  # judged on the p95, not the mean
    assert "p95 ttft 140 ms > target 100 ms" in by["c"]["reason"]
    assert by["d"]["meetsTarget"] is False
    assert "fewer replicas" in by["d"]["reason"]
    assert "mean itl 45 ms > target 40 ms" in by["d"]["reason"]
