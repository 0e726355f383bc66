"""Fault and abuse suite of the services: every bad request gets a 4xx naming the cause (never a
5xx, never a traceback), the internal endpoints refuse anyone without the pod's token, bodies are
bounded, and a poisoned server leaves the others decided."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from inferno.cluster import labels as L
from inferno.services import actuator, collector, controller, optimizer

from . import (
    INTERNAL,
    INVOKE,
    NS,
    FakeCluster,
    Stack,
    client,
    make_deployment,
    sample_cluster,
    settings,
)

GOOD_SERVER: dict[str, Any] = {
    "name": "ok",
    "class": "Premium",
    "model": "llama_7b",
    "currentAlloc": {"load": {"arrivalRate": 60, "avgLength": 1024}},
}


def server(**load: Any) -> dict[str, Any]:
    return {**GOOD_SERVER, "name": "bad", "currentAlloc": {"load": {**load}}}


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


#: (body, what the error names) — bodies /optimize must answer 400 (or 413) for
OPTIMIZE_BODIES: list[tuple[bytes, str]] = [
    (b"", "malformed JSON"),
    (b"{", "malformed JSON"),
    (b"not json", "malformed JSON"),
    (b"[]", "OptimizeRequest"),
    (b"null", "OptimizeRequest"),
    (b"42", "OptimizeRequest"),
    (b'"servers"', "OptimizeRequest"),
    (b"{}", "servers"),
    (b'{"servers": "all"}', "servers"),
    (b'{"servers": 1}', "servers"),
    (b'{"servers": null}', "servers"),
    (b'{"servers": {}}', "servers"),
    (b'{"servers": [], "serviceClasses": "x"}', "serviceClasses"),
    (b'{"servers": [], "serviceClasses": [1]}', "serviceClasses[0]"),
    (b'{"servers": [1]}', "servers[0]"),
    (b'{"servers": ["x"]}', "servers[0]"),
    (b'{"servers": [null]}', "servers[0]"),
    (b'{"servers": [[]]}', "servers[0]"),
    (b'{"servers": [], "observations": [1]}', "observations"),
    (b'{"servers": [], "observations": "x"}', "observations"),
    (b'{"servers": [], "observations": 5}', "observations"),
    (b'{"servers": [' + b"1" * 5000 + b"]}", "malformed JSON"),
    (b'{"servers": [], "x": ' + deep(50_000) + b"}", "nested too deeply"),
    (deep(100_000), "nested too deeply"),
    (b'{"servers": NaN}', "servers"),
    (b'{"servers": Infinity}', "servers"),
    (b"\xff\xfe", "malformed JSON"),
]

#: server rows that are each left unallocated with a reason naming the field, others decided
BAD_ROWS: list[tuple[dict[str, Any], str]] = [
    (server(arrivalRate=-1, avgLength=10), "arrivalRate"),
    (server(arrivalRate="many", avgLength=10), "arrivalRate"),
    (server(arrivalRate=None, avgLength=10), "arrivalRate"),
    (server(arrivalRate=True, avgLength=10), "arrivalRate"),
    (server(arrivalRate=[1], avgLength=10), "arrivalRate"),
    (server(arrivalRate=1e308, avgLength=10), "arrivalRate"),
    (server(arrivalRate=10, avgLength=-5), "avgLength"),
    (server(arrivalRate=10, avgLength=1e308), "avgLength"),
    (server(arrivalRate=10, avgLength="x"), "avgLength"),
    (server(arrivalRate=10, avgInTokens=-1, avgOutTokens=10), "avgInTokens"),
    (server(arrivalRate=10, avgInTokens=10, avgOutTokens=1e308), "avgOutTokens"),
    ({**GOOD_SERVER, "name": "bad", "model": 5}, "model"),
    ({**GOOD_SERVER, "name": "bad", "currentAlloc": "x"}, "currentAlloc"),
    ({**GOOD_SERVER, "name": "bad", "currentAlloc": {"load": "x"}}, "load"),
    ({**GOOD_SERVER, "name": "bad", "minNumReplicas": -3}, "minNumReplicas"),
    ({**GOOD_SERVER, "name": "bad", "minNumReplicas": "x"}, "minNumReplicas"),
    ({**GOOD_SERVER, "name": "bad", "maxNumReplicas": 0.5}, "maxNumReplicas"),
    (
        {**GOOD_SERVER, "name": "bad", "currentAlloc": {"load": {}, "numReplicas": -1}},
        "arrivalRate",
    ),
]


def request_json(body: bytes) -> httpx.Request:
    return httpx.Request("POST", "http://x", content=body)


@pytest.fixture
def optimizer_app() -> Any:
    return optimizer.create_app(settings(), token=INTERNAL, registry=CollectorRegistry())


@pytest.mark.parametrize(("body", "named"), OPTIMIZE_BODIES)
async def test_a_bad_optimize_body_is_a_400_naming_the_cause(
    optimizer_app: Any, body: bytes, named: str
) -> None:
    async with client(optimizer_app, INTERNAL) as http:
        r = await http.post("/optimize", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert named in r.json()["error"]
    assert "Traceback" not in r.text


@pytest.mark.parametrize(("row", "field"), BAD_ROWS)
async def test_a_poisoned_server_is_unallocated_and_the_others_decided(
    optimizer_app: Any, row: dict[str, Any], field: str
) -> None:
    async with client(optimizer_app, INTERNAL) as http:
        r = await http.post("/optimize", json={"servers": [GOOD_SERVER, row]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "ok" in body["solution"]["allocations"]
    assert "bad" not in body["solution"]["allocations"]
    reason = body["solution"]["unallocated"]["bad"]
    assert reason.startswith("unusable server data: $.servers[1]") and field in reason, reason
    decided = {d["server"]: d for d in body["decisions"]}
    assert decided["ok"]["allocated"] is True


@pytest.mark.parametrize(
    ("raw_name", "words"),
    [
        ('"' + "x" * 300 + '"', "longer than 253"),
        ('"b\\ud800"', "lone surrogate"),
        ('"ok"', "duplicate server name 'ok'"),
    ],
)
async def test_a_server_name_no_decision_can_carry_leaves_the_others_decided(
    optimizer_app: Any, raw_name: str, words: str
) -> None:
    """A name longer than a decision message carries, one UTF-8 cannot encode, or a second
    row of a name (before: a 500, every server's decision lost; for the duplicate, two
    contradicting decisions): that row is left out and said in the notes, and the first row
    of the name is decided, once."""
    bad = json.dumps({**GOOD_SERVER, "name": "@NAME@"}).replace('"@NAME@"', raw_name)
    body = f'{{"servers": [{json.dumps(GOOD_SERVER)}, {bad}]}}'.encode()
    async with client(optimizer_app, INTERNAL) as http:
        r = await http.post("/optimize", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    answer = r.json()
    assert [d["server"] for d in answer["decisions"]] == ["ok"]
    assert answer["decisions"][0]["allocated"] is True
    assert list(answer["solution"]["allocations"]) == ["ok"]
    (note,) = [n for n in answer["notes"] if "$.servers[1] left out" in n]
    assert words in note


async def test_a_body_over_the_limit_is_a_413_before_it_is_read() -> None:
    app = optimizer.create_app(
        settings(max_body_bytes=4096), token=INTERNAL, registry=CollectorRegistry()
    )
    big = json.dumps({"servers": [GOOD_SERVER] * 200}).encode()
    async with client(app, INTERNAL) as http:
        declared = await http.post("/optimize", content=big)

        async def chunks() -> Any:  # no Content-Length: counted while streaming
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        streamed = await http.post("/optimize", content=chunks())
        metrics = (await http.get("/metrics")).text
    assert declared.status_code == streamed.status_code == 413
    assert "limit of 4096 bytes" in streamed.json()["error"] or "4096" in declared.json()["error"]
    assert 'inferno_optimizer_requests_rejected_total{reason="too_large"} 2.0' in metrics


async def test_a_huge_model_batch_in_the_request_is_bounded() -> None:
    """A maxBatchSize of 10^9 in a server row never allocates: the row is refused (or bounded)."""
    row = {**GOOD_SERVER, "name": "bad", "maxBatchSize": 10**9}
    app = optimizer.create_app(settings(), token=INTERNAL, registry=CollectorRegistry())
    async with client(app, INTERNAL) as http:
        r = await http.post("/optimize", json={"servers": [GOOD_SERVER, row]})
    assert r.status_code == 200
    assert "ok" in r.json()["solution"]["allocations"]


@pytest.mark.parametrize(
    ("service", "method", "path"),
    [
        ("collector", "GET", "/collect"),
        ("optimizer", "POST", "/optimize"),
        ("actuator", "POST", "/update"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic " + INTERNAL, INTERNAL, "Bearer"])
async def test_the_internal_endpoints_need_the_pod_token(
    service: str, method: str, path: str, header: str | None
) -> None:
    cluster = sample_cluster()
    apps = {
        "collector": lambda: collector.create_app(
            settings(), api=cluster, token=INTERNAL, registry=CollectorRegistry()
        ),
        "optimizer": lambda: optimizer.create_app(
            settings(), token=INTERNAL, registry=CollectorRegistry()
        ),
        "actuator": lambda: actuator.create_app(
            settings(), api=cluster, token=INTERNAL, registry=CollectorRegistry()
        ),
    }
    app = apps[service]()
    headers = {} if header is None else {"Authorization": header}
    async with client(app) as http:
        r = await http.request(method, path, json={}, headers=headers)
        metrics = await http.get("/metrics")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert metrics.status_code == 200  # stays readable
    assert cluster.patches == [] and "list_managed_deployments" not in cluster.calls


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/invoke"), ("GET", "/invoke"), ("GET", "/report"), ("GET", "/report/abc")],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {INVOKE}", "Bearer "])
async def test_the_controller_routes_need_the_invoke_token(
    method: str, path: str, header: str | None
) -> None:
    stack = Stack(sample_cluster())
    headers = {} if header is None else {"Authorization": header}
    async with client(stack.controller) as http:
        r = await http.request(method, path, headers=headers)
    await stack.aclose()
    assert r.status_code == 401
    assert stack.cluster.calls == []  # nothing ran


def test_the_controller_refuses_to_start_without_a_token() -> None:
    from inferno.settings import SettingsError

    stack_settings = settings(invoke_token="")
    with pytest.raises(SettingsError, match="INFERNO_INVOKE_TOKEN"):
        controller.create_app(stack_settings, phases=Stack(sample_cluster()).phases)
    with pytest.raises(SettingsError, match="at least 16"):
        controller.create_app(settings(invoke_token="short"), phases=Stack(sample_cluster()).phases)
    # explicit development mode: no token needed
    controller.create_app(
        settings(invoke_token="", insecure=True), phases=Stack(sample_cluster()).phases
    )


async def test_get_invoke_never_runs_a_cycle() -> None:
    stack = Stack(sample_cluster())
    async with stack.client() as http:
        for _ in range(3):
            assert (await http.get("/invoke")).status_code == 404
    await stack.aclose()
    assert stack.cluster.calls == []


async def test_collect_never_returns_env_values() -> None:
    dep = make_deployment("llama-7b", model="llama_7b")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "HF_TOKEN", "value": "hf_secretvalue123"})
    container["resources"]["limits"]["memory"] = "64Gi-secret-marker"
    cluster = FakeCluster([dep])
    app = collector.create_app(
        settings(), api=cluster, token=INTERNAL, registry=CollectorRegistry()
    )
    async with client(app, INTERNAL) as http:
        r = await http.get("/collect")
    assert r.status_code == 200
    assert "hf_secretvalue123" not in r.text and "HF_TOKEN" not in r.text
    assert "secret-marker" not in r.text
    assert r.json()["deployments"][0]["name"] == "llama-7b"


async def test_a_poisoned_label_leaves_the_other_servers_decided() -> None:
    """The issue's case: one managed Deployment labelled outtokens=1e308 (and one with a
    non-number); the cycle decides and patches the others and names the bad ones."""
    cluster = sample_cluster()
    poisoned = make_deployment("poison", model="llama_7b", service_class="Premium")
    labels = poisoned["metadata"]["labels"]
    del labels[L.LOAD_NUM_TOKENS]
    labels[L.LOAD_IN_TOKENS] = "100"
    labels[L.LOAD_OUT_TOKENS] = "1e308"
    cluster.deployments[("inference", "poison")] = poisoned
    stack = Stack(cluster)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code in (200, 503)
    report = r.json()
    patched = {name for _, _, name, _ in cluster.patches}
    assert {"llama-7b", "granite-13b", "mistral-7b"} <= patched
    assert "poison" not in patched
    poison = next(d for d in report["decisions"] if d["server"] == "poison")
    assert poison["allocated"] is False
    assert "avgOutTokens" in poison["reason"], poison["reason"]  # names the field


def _tenant(change: Any) -> dict[str, Any]:
    d = make_deployment("evil", model="llama_7b", namespace="tenant")
    change(d)
    return d


BEYOND = [
    # values Kubernetes allows and a message to the controller does not
    (lambda d: d["metadata"]["annotations"].__setitem__(L.CYCLE, "9" * 300), "cycle"),
    (lambda d: d["spec"].__setitem__("replicas", 2_000_000), "replicas"),
    (
        lambda d: d["metadata"]["annotations"].__setitem__(L.MIN_REPLICAS, "10000000"),
        "min_replicas",
    ),
    (lambda d: d["metadata"]["labels"].__setitem__(L.ALLOC_MAX_BATCH, "9" * 50), "max_batch"),
    (
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].append(
            {"name": "INFERNO_INSTANCES", "value": "1" * 300}
        ),
        "serving_env",
    ),
    (lambda d: d["metadata"]["annotations"].__setitem__(L.MODE, "x" * 5000), "inferno.server/mode"),
]


@pytest.mark.parametrize(("change", "field"), BEYOND)
async def test_one_deployment_beyond_the_bounds_leaves_the_others_collected(
    change: Any, field: str
) -> None:
    """A tenant's managed Deployment with a value Kubernetes allows and the controller's
    message does not (before: /collect answered 500, and no server in the cluster was scaled):
    it is left out and named, with the field; the others are collected, and no problem
    quotes kilobytes."""
    cluster = sample_cluster()
    cluster.deployments[("tenant", "evil")] = _tenant(change)
    app = collector.create_app(
        settings(), api=cluster, token=INTERNAL, registry=CollectorRegistry()
    )
    async with client(app, INTERNAL) as http:
        r = await http.get("/collect")
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    assert {d["name"] for d in body["deployments"]} == {"llama-7b", "granite-13b", "mistral-7b"}
    assert "evil" not in {s["name"] for s in body["servers"]}
    (problem,) = [p for p in body["problems"] if "tenant/evil" in p]
    assert field in problem and len(problem) < 400


async def test_a_later_deployment_claiming_a_server_cannot_take_its_decisions() -> None:
    """A tenant's Deployment, created later in a namespace that sorts first, labels itself
    server "llama-7b" (before: both were kept, so the real llama-7b was never scaled again).
    The Deployment created first keeps its server: it is sized for its own load and patched;
    the newcomer is left as it is, named in the cycle's problems and warned by an Event."""
    cluster = sample_cluster()
    real = cluster.deployments[(NS, "llama-7b")]
    real["metadata"]["creationTimestamp"] = "2026-11-01T08:00:00Z"
    real["metadata"]["labels"][L.LOAD_RPM] = "6000"
    evil = make_deployment("evil", model="llama_7b", namespace="aaa", rpm=1)
    evil["metadata"]["labels"][L.SERVER_NAME] = "llama-7b"
    evil["metadata"]["creationTimestamp"] = "2026-12-07T08:00:00Z"
    cluster.deployments[("aaa", "evil")] = evil
    stack = Stack(cluster)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 200, r.text[:300]
    patched = {(ns, name) for kind, ns, name, _ in cluster.patches if kind == "deployment"}
    assert (NS, "llama-7b") in patched and ("aaa", "evil") not in patched
    assert cluster.replicas("llama-7b") > 1  # sized for its 6000 req/min, not the tenant's 1
    assert any("aaa/evil claims server 'llama-7b'" in p for p in r.json()["problems"])
    warned = [e for (ns, name, e) in cluster.events if (ns, name) == ("aaa", "evil")]
    assert warned and f"{NS}/llama-7b" in warned[0].message


async def test_a_later_claimant_beyond_the_bounds_does_not_take_the_servers_row() -> None:
    """A tenant's Deployment claims server "llama-7b" with an annotation beyond the message's
    bounds: it is left out, and the server's row (its holder's) stays."""
    cluster = sample_cluster()
    cluster.deployments[(NS, "llama-7b")]["metadata"]["creationTimestamp"] = "2026-11-01T08:00:00Z"
    evil = _tenant(lambda d: d["metadata"]["annotations"].__setitem__(L.CYCLE, "9" * 300))
    evil["metadata"]["labels"][L.SERVER_NAME] = "llama-7b"
    evil["metadata"]["creationTimestamp"] = "2026-12-07T08:00:00Z"
    cluster.deployments[("tenant", "evil")] = evil
    app = collector.create_app(
        settings(), api=cluster, token=INTERNAL, registry=CollectorRegistry()
    )
    async with client(app, INTERNAL) as http:
        body = (await http.get("/collect")).json()
    assert "llama-7b" in {s["name"] for s in body["servers"]}
    assert any("tenant/evil: left out: cycle" in p for p in body["problems"])


async def test_the_actuator_answer_lost_is_reconstructed_from_the_annotations() -> None:
    """The controller times out on /update while the actuator applies: the report says which
    Deployments carry this cycle's annotation."""
    cluster = sample_cluster()
    stack = Stack(cluster, settings(cycle_deadline=0.5))

    class LosingPhases(type(stack.phases)):  # type: ignore[misc]
        async def update(self, stamp: Any, targets: Any, decisions: Any) -> Any:
            await super().update(stamp, targets, decisions)  # applied...
            from inferno.control.cycle import PhaseError

            raise PhaseError("update", "timed out (ReadTimeout)", unknown=True)  # ...answer lost

    stack.phases.__class__ = LosingPhases
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    report = r.json()
    assert r.status_code == 503
    assert sorted(report["patched"]) == [
        "inference/granite-13b",
        "inference/llama-7b",
        "inference/mistral-7b",
    ]
    assert any("reconstructed from the Deployments" in e for e in report["errors"])


async def test_leader_election_only_the_holder_runs_cycles() -> None:
    from inferno.control.leader import LeaderElector

    cluster = sample_cluster()
    first = LeaderElector(cluster, "inferno", "inferno-leader", "pod-a")
    second = LeaderElector(cluster, "inferno", "inferno-leader", "laptop")
    a = Stack(cluster)
    b = Stack(cluster)
    app_a = controller.create_app(a.settings, phases=a.phases, elector=first)
    app_b = controller.create_app(b.settings, phases=b.phases, elector=second)
    async with (
        app_a.router.lifespan_context(app_a),
        app_b.router.lifespan_context(app_b),
        client(app_a, INVOKE) as ha,
        client(app_b, INVOKE) as hb,
    ):
        ra = await ha.post("/invoke")
        rb = await hb.post("/invoke")
        leader_a = (await ha.get("/metrics")).text
        leader_b = (await hb.get("/metrics")).text
    assert ra.status_code == 200
    assert rb.status_code == 503 and "not the leader" in rb.json()["error"]
    assert "'pod-a'" in rb.json()["error"]
    assert "inferno_controller_leader 1.0" in leader_a
    assert "inferno_controller_leader 0.0" in leader_b


async def test_liveness_reflects_the_operator_thread() -> None:
    stack = Stack(sample_cluster())
    dead: list[str] = []
    app = controller.create_app(stack.settings, phases=stack.phases, live=lambda: dead)
    async with app.router.lifespan_context(app), client(app) as http:
        assert (await http.get("/healthz")).status_code == 200
        dead.append("the ServiceClass operator thread has stopped: LoginError")
        r = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert r.status_code == 503 and "LoginError" in r.json()["error"]
    assert ready.status_code == 503
