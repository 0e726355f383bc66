"""run_cycle over stub phases (malformed answers, the report's shape) and class_status."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from inferno.cluster.inventory import ManagedDeployment, parse_deployment
from inferno.cluster.serviceclass import class_row, class_status
from inferno.control.cycle import run_cycle
from inferno.data import load_system
from inferno.prom import LoadMeasurement, ServerObservation
from inferno.services import collector
from inferno.services.messages import DeploymentMessage, report_json
from inferno.services.phases import Phases
from inferno.solver import solve
from inferno.system import Load, PerformanceModel

from . import (
    INTERNAL,
    SAMPLE,
    FakeCluster,
    Stack,
    client,
    make_deployment,
    service_class,
    settings,
)

NOW = dt.datetime(2025, 3, 1, 8, 30, tzinfo=dt.UTC)


def deployment(name: str, **kw: Any) -> Any:
    return parse_deployment(make_deployment(name, **kw))


def phases_answering(
    routes: Mapping[str, httpx.Response | httpx.HTTPError],
) -> tuple[Phases, list[str]]:
    """Phases whose services answer ``routes`` by path (an exception: raised, as a transport
    error or timeout would be)."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        answer = routes[request.url.path]
        if isinstance(answer, httpx.HTTPError):
            raise answer
        return answer

    def c() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x")

    return Phases(settings(), token=None, collector=c(), optimizer=c(), actuator=c()), seen


COLLECTION = {
    "deployments": [DeploymentMessage.of(deployment("a", model="llama_7b")).wire()],
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
    assert "malformed answer" in report.errors[0]
    assert seen == ["/collect", "/optimize"]


async def test_a_malformed_collection_fails_the_collect_phase() -> None:
    phases, seen = phases_answering(
        {"/collect": httpx.Response(200, json={"servers": "x", "deployments": []})}
    )
    report = await run_cycle(phases)
    assert (report.status, report.failed_phase) == ("failed", "collect")
    assert "malformed answer: servers: Input should be a valid list" in report.errors[0]
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
    body = report_json(report)
    assert body["trigger"] == "test"
    assert body["started"] == "2025-03-01T08:30:00.000Z"
    assert [body["phases"][p]["result"] for p in ("collect", "optimize", "update")] == [
        "ok",
        "ok",
        "failed",
    ]


async def test_an_optimizer_answer_past_half_the_deadline_is_noted() -> None:
    """The cycle says when the optimizer took most of its deadline (a large fleet deciding its
    serving), naming the settings to raise; an answer in time adds no note."""
    routes = {
        "/collect": httpx.Response(200, json=COLLECTION),
        "/optimize": httpx.Response(200, json={"solution": {}, "decisions": []}),
        "/update": httpx.Response(200, json={"outcomes": []}),
    }
    for spent, noted in ((20.0, True), (14.0, False)):
        phases, _ = phases_answering(routes)
        clock = iter([NOW, *[NOW + dt.timedelta(seconds=spent)] * 10])
        report = await run_cycle(phases, deadline=30.0, now=partial(next, clock))
        late = [n for n in report.notes if "past half its deadline" in n]
        assert bool(late) is noted, report.notes
        if noted:
            assert f"answered {spent:.1f} s into the cycle" in late[0]
            assert "INFERNO_CYCLE_DEADLINE" in late[0] and "INFERNO_HTTP_TIMEOUT" in late[0]


async def test_an_optimizer_that_times_out_names_the_setting() -> None:
    phases, seen = phases_answering(
        {"/collect": httpx.Response(200, json=COLLECTION), "/optimize": httpx.ReadTimeout("slow")}
    )
    report = await run_cycle(phases)
    assert report.failed_phase == "optimize" and seen == ["/collect", "/optimize"]
    assert "timed out (ReadTimeout; waited INFERNO_HTTP_TIMEOUT" in report.errors[0]


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
    # the printer columns: a count of models (not the first of them), and who meets targets
    assert status["modelCount"] == 3
    met = sum(s["meetsTarget"] for s in status["servers"])
    assert status["summary"] == f"{met}/4 meet targets" and 0 < met < 4
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


# --- observations to the optimizer, tuning back into the report ----------------------------------

MEASUREMENT = {
    "window": 60.0,
    "servers": [{"server": "a", "computeMs": 12.5, "avgBatch": 4.0, "completionsRpm": 600.0}],
    "problems": [],
}
TUNING = {"enabled": True, "observations": [], "profiles": [{"model": "m"}], "notes": []}


def recording_phases(
    collection: dict[str, Any], optimized: dict[str, Any]
) -> tuple[Phases, list[dict[str, Any]]]:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/collect":
            return httpx.Response(200, json=collection)
        if request.url.path == "/optimize":
            bodies.append(json.loads(request.content))
            return httpx.Response(200, json=optimized)
        return httpx.Response(200, json={"ok": True, "outcomes": []})

    def c() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x")

    return Phases(settings(), token=None, collector=c(), optimizer=c(), actuator=c()), bodies


async def test_the_measurement_goes_to_the_optimizer_and_tuning_into_the_report() -> None:
    phases, bodies = recording_phases(
        {**COLLECTION, "measurement": MEASUREMENT},
        {"solution": {"status": "optimal"}, "decisions": [], "tuning": TUNING},
    )
    report = await run_cycle(phases)
    assert report.ok, report.errors
    assert bodies == [
        {"servers": [{"name": "a"}], "serviceClasses": [], "observations": MEASUREMENT}
    ]
    assert report.tuning == TUNING
    assert report_json(report)["tuning"] == TUNING


async def test_without_a_measurement_nothing_is_sent_and_nothing_reported() -> None:
    phases, bodies = recording_phases(
        COLLECTION, {"solution": {"status": "optimal"}, "decisions": []}
    )
    report = await run_cycle(phases)
    assert report.ok
    assert bodies == [{"servers": [{"name": "a"}], "serviceClasses": []}]
    assert report.tuning is None and report_json(report)["tuning"] is None


async def test_a_malformed_measurement_fails_the_collect_phase() -> None:
    phases, bodies = recording_phases({**COLLECTION, "measurement": [1]}, {})
    report = await run_cycle(phases)
    assert (report.status, report.failed_phase) == ("failed", "collect")
    assert "measurement: Input should be a valid dictionary" in report.errors[0]
    assert bodies == []


class SlowerThanProfiled:
    """A load source measuring llama_7b on G2 running 30% slower than its sample profile, at a
    different occupancy each cycle."""

    name = "fake"

    def __init__(self) -> None:
        self.occupancies = [4.0, 16.0, 8.0, 24.0]
        self.calls = 0

    def measure(self, deployments: Sequence[ManagedDeployment]) -> LoadMeasurement:
        b = self.occupancies[self.calls % len(self.occupancies)]
        self.calls += 1
        observations = []
        loads = {}
        for d in deployments:
            z = 1024 * 1.3 * (9.74 + 0.53 * b)
            rpm = b * d.replicas * 60_000 / z
            load = Load(rpm, 0.0, 1024.0)
            loads[d.server] = load
            observations.append(
                ServerObservation(
                    d.server,
                    d.namespace,
                    d.name,
                    d.model,
                    load=load,
                    completions_rpm=rpm,
                    avg_batch=1.0,
                    compute_ms=z,
                )
            )
        return LoadMeasurement(600.0, loads, observations)


async def test_tuned_parameters_reach_the_cycle_report_through_the_services() -> None:
    cluster = FakeCluster(
        [make_deployment("llama-7b", model="llama_7b", accelerator="G2", replicas=2)]
    )
    cfg = settings()
    registry = CollectorRegistry()
    collector_app = collector.create_app(
        cfg, api=cluster, token=INTERNAL, registry=registry, load_source=SlowerThanProfiled()
    )
    stack = Stack(cluster, cfg, collector_client=client(collector_app))
    alphas = []
    try:
        for _ in range(3):
            report = await run_cycle(stack.phases)
            assert report.ok, report.errors
            assert report.tuning is not None
            (pair,) = report.tuning["profiles"]
            assert (pair["model"], pair["accelerator"], pair["applied"]) == ("llama_7b", "G2", True)
            alphas.append(pair["tuned"]["alpha"])
            assert report_json(report)["tuning"]["observations"][0]["server"] == "llama-7b"
    finally:
        await stack.aclose()
    assert alphas[0] > 9.74 and len(set(alphas)) == 3
    text = (await client(stack.optimizer).get("/metrics")).text
    assert 'inferno_optimizer_tuned_alpha{accelerator="G2",model="llama_7b"}' in text


async def test_the_cycle_sizes_with_the_inferno_model_setting() -> None:
    """The controller's cycle, through the real optimizer app: INFERNO_MODEL=accurate decides
    llama-70b (the large sample's Premium-llama_70b load) as the accurate model does, a replica
    fewer than the chain; the patch the actuator applies carries it."""
    replicas = {}
    for model in ("inferno", "accurate"):
        cluster = FakeCluster(
            [make_deployment("llama-70b", model="llama_70b", rpm=120, tokens=1024)]
        )
        stack = Stack(cluster, settings(model=model))
        try:
            report = await run_cycle(stack.phases)
        finally:
            await stack.aclose()
        assert report.ok, report.errors
        (decision,) = report.decisions
        assert decision.allocated, decision.reason
        replicas[model] = decision.replicas
        assert cluster.replicas("llama-70b") == decision.replicas
    expected = {}
    for model in ("inferno", "accurate"):
        system = load_system(SAMPLE)
        spec = replace(system.optimizer, model=PerformanceModel(model))
        one = tuple(s for s in system.servers if s.name == "Premium-llama_70b")
        solution = solve(replace(system, servers=one, optimizer=spec))
        expected[model] = solution.allocations["Premium-llama_70b"].replicas
    assert replicas == expected
    assert replicas["accurate"] != replicas["inferno"]
