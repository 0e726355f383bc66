"""The optimizer's answer written straight from the result (services/answer.py) is the JSON the
message path wrote; what the messages would refuse goes back to them. The per-server gauges
read from the last solution expose what labelled gauges did."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from inferno.cluster.plan import Decision
from inferno.control.optimize import OptimizeResult, optimize, read_static_data
from inferno.services import optimizer
from inferno.services.answer import answer_body
from inferno.services.messages import OptimizeAnswer
from inferno.services.metrics import OptimizerMetrics

from . import SAMPLE, client, settings


def rows() -> list[dict[str, Any]]:
    """The sample's servers, some on another accelerator than they would get (stay decisions),
    one of an unknown class and one with a bad rate (both left out with a reason)."""
    servers: list[dict[str, Any]] = json.loads((SAMPLE / "server-data.json").read_text())["servers"]
    out = []
    for i, s in enumerate(servers):
        s = json.loads(json.dumps(s))
        if i % 3 == 0:
            s.setdefault("currentAlloc", {})["accelerator"] = "L4"
            s["currentAlloc"]["numReplicas"] = 2
        out.append(s)
    out[1]["class"] = "Gold"
    out[2].setdefault("currentAlloc", {})["load"] = {"arrivalRate": -3}
    out[2].pop("load", None)
    return out


def message_json(result: OptimizeResult) -> Any:
    return json.loads(json.dumps(OptimizeAnswer.of(result).wire(), allow_nan=False))


def test_the_answer_is_the_messages_json() -> None:
    result = optimize(read_static_data(SAMPLE), rows(), [])
    assert any(d.stay is not None for d in result.decisions)
    assert any(not d.allocated for d in result.decisions)
    section = {"enabled": True, "profiles": [{"alpha": math.nan, "beta": math.inf}], "n": (1, 2)}
    for r in (
        result,
        replace(result, notes=["x" * 5000, "y"], tuning=section, tuner_state={"f": [1.5]}),
    ):
        body = answer_body(r)
        assert body is not None
        assert json.loads(body) == message_json(r)


def bad_results(result: OptimizeResult) -> list[OptimizeResult]:
    first = result.decisions[0]
    return [
        replace(result, decisions=[replace(first, server="s" * 254)]),
        replace(result, decisions=[replace(first, cost=math.nan)]),
        replace(result, decisions=[replace(first, replicas=2_000_000)]),
        replace(result, decisions=[replace(first, replicas=2.0)]),  # type: ignore[arg-type]
        replace(result, decisions=[replace(first, node_selector={str(i): "" for i in range(65)})]),
        replace(result, decisions=[replace(first, stay=replace(first, bound="b" * 300))]),
        replace(result, solution={1: "not a string key"}),  # type: ignore[dict-item]
    ]


def test_what_the_messages_refuse_is_left_to_them() -> None:
    result = optimize(read_static_data(SAMPLE), rows()[:4], [])
    for bad in bad_results(result):
        assert answer_body(bad) is None


def test_a_stay_of_a_stay_is_dropped_as_the_message_does() -> None:
    inner = Decision(server="a", accelerator="A100", replicas=1, cost=1.0)
    outer = replace(inner, accelerator="H100", stay=replace(inner, stay=inner))
    result = OptimizeResult({"allocations": {}}, [outer])
    body = answer_body(result)
    assert body is not None
    assert json.loads(body) == message_json(result)
    assert json.loads(body)["decisions"][0]["stay"]["stay"] is None


def test_serving_decisions_and_a_settled_batch_cross_the_wire() -> None:
    """Model instances and the batching delay travel from the optimizer to the controller and
    on to the actuator (until 2026-12-06 the messages dropped them: the actuator never saw a
    decided instance count or delay)."""
    from inferno.services.messages import DecisionMessage

    d = Decision(
        server="a", accelerator="A100", replicas=2, max_batch=8, cost=3.0,
        instances=3, max_queue_delay_us=1500,
    )  # fmt: skip
    result = OptimizeResult({"allocations": {}}, [d, replace(d, server="b", stay=d)])
    body = answer_body(result)
    assert body is not None and json.loads(body) == message_json(result)
    back = OptimizeAnswer.model_validate(json.loads(body)).domain().decisions
    assert back[0] == d
    assert back[1].stay == d and replace(back[1], stay=None) == replace(d, server="b")
    assert DecisionMessage.model_validate(DecisionMessage.of(d).wire()).domain() == d
    for bad in (replace(d, instances=-1), replace(d, max_queue_delay_us=-2)):
        assert answer_body(OptimizeResult({"allocations": {}}, [bad])) is None


async def test_the_route_answers_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    app = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(app) as http:
        fast = await http.post("/optimize", json={"servers": rows()})
        monkeypatch.setattr(optimizer, "answer_body", lambda result: None)
        slow = await http.post("/optimize", json={"servers": rows()})
    assert fast.status_code == slow.status_code == 200
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    assert fast.json() == slow.json()


def test_per_server_gauges_expose_what_labelled_gauges_did() -> None:
    result = optimize(read_static_data(SAMPLE), rows(), [])
    solution = json.loads(json.dumps(result.solution))
    next(iter(solution["allocations"].values()))["waitAverage"] = None  # no sample, as before
    registry = CollectorRegistry()
    metrics = OptimizerMetrics(registry)
    metrics.record_solution({"allocations": {"gone": {"accelerator": "A100", "cost": 1.0}}})
    metrics.record_solution(solution)  # the previous solve's servers leave no series

    old = CollectorRegistry()  # the labelled gauges the metrics were before
    for key, gauge in metrics.per_server.items():
        g = Gauge(gauge._name, gauge._documentation, ["server", "accelerator"], registry=old)
        for server, a in solution["allocations"].items():
            value = a.get("numReplicas" if key == "replicas" else key)
            if isinstance(value, int | float) and math.isfinite(value):
                g.labels(server, str(a.get("accelerator", ""))).set(value)

    def per_server(text: bytes) -> list[str]:
        names = {g._name for g in metrics.per_server.values()}
        return [ln for ln in text.decode().splitlines() if ln.split("{")[0].split()[-1] in names]

    lines = per_server(generate_latest(registry))
    assert lines == per_server(generate_latest(old))
    assert len(lines) >= 3 * len(solution["allocations"])  # G0: no TTFT series
    assert not any('server="gone"' in ln for ln in lines)


def test_a_deployment_carries_only_the_serving_variables_inferno_writes() -> None:
    """The controller's copy of a Deployment has the running instances and delay (the guard's
    rollout budget counts a change of them) and nothing else of the container's environment."""
    from inferno.cluster.inventory import ManagedDeployment
    from inferno.cluster.plan import INSTANCES_ENV, QUEUE_DELAY_ENV
    from inferno.services.messages import DeploymentMessage

    d = ManagedDeployment(
        namespace="ns", name="a", server="a", model="m", service_class="Premium",
        replicas=2, ready_replicas=2, accelerator="A100", max_batch=8, container=0,
        container_name="triton",
        env=(("HF_TOKEN", "secret"), (INSTANCES_ENV, "3"), (QUEUE_DELAY_ENV, "500")),
    )  # fmt: skip
    names = (INSTANCES_ENV, QUEUE_DELAY_ENV)
    wire = DeploymentMessage.of(d, names).wire()
    assert wire["servingEnv"] == {INSTANCES_ENV: "3", QUEUE_DELAY_ENV: "500"}
    assert "secret" not in json.dumps(wire)
    back = DeploymentMessage.model_validate(wire).domain()
    assert dict(back.env) == {INSTANCES_ENV: "3", QUEUE_DELAY_ENV: "500"}
    assert DeploymentMessage.of(d).wire()["servingEnv"] == {}  # no names: nothing
