"""The controller app, wired through ASGITransport to real collector/optimizer/actuator apps over
a fake cluster: /invoke, /report, the bearer token, the periodic loop and the fault cases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from inferno.cluster import labels as L
from inferno.k8s import ClusterError
from inferno.services import controller
from inferno.services._auth import authorized
from inferno.services.phases import Phases

from . import (
    NS,
    FakeCluster,
    Stack,
    client,
    closed_port,
    make_deployment,
    sample_cluster,
    service_class,
    settings,
)


async def test_probes_and_metrics() -> None:
    stack = Stack(sample_cluster())
    async with stack.client() as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert (await http.get("/invoke")).status_code == 404  # a GET runs nothing
        assert (await http.post("/invoke")).status_code == 200
        assert (await http.get("/invoke")).status_code == 200  # the last report
        text = (await http.get("/metrics")).text
    await stack.aclose()
    assert ready.status_code == 200, ready.text
    for name in (
        'inferno_controller_cycles_total{status="ok",trigger="invoke"} 1.0',
        'inferno_controller_phase_seconds_count{phase="optimize"} 1.0',
        "inferno_controller_last_cycle_ok 1.0",
        "inferno_controller_last_cycle_timestamp_seconds",
        # the shared registry also holds the siblings' metrics
        "inferno_collector_collections_total",
        "inferno_optimizer_solve_seconds",
        "inferno_actuator_patches_total",
    ):
        assert name in text, name


async def test_readyz_names_the_sibling_that_is_not_ready(tmp_path: Any) -> None:
    stack = Stack(sample_cluster(), settings(data_path=str(tmp_path / "absent")))
    async with stack.client() as http:
        r = await http.get("/readyz")
    await stack.aclose()
    assert r.status_code == 503
    assert "optimizer" in r.json()["error"]
    assert "collector" not in r.json()["error"]


async def test_invoke_runs_a_cycle_and_changes_the_deployments() -> None:
    cluster = sample_cluster()
    stack = Stack(cluster)
    async with stack.client() as http:
        assert (await http.get("/report")).status_code == 404
        r = await http.post("/invoke")
        last = await http.get("/report")
    await stack.aclose()
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["status"] == "ok"
    assert report["failedPhase"] is None
    assert report["errors"] == []
    assert {p: v["result"] for p, v in report["phases"].items()} == {
        "collect": "ok",
        "optimize": "ok",
        "update": "ok",
    }
    assert all(v["seconds"] >= 0 for v in report["phases"].values())
    decisions = {d["server"]: d for d in report["decisions"]}
    assert set(decisions) == {"llama-7b", "granite-13b", "mistral-7b"}
    for name, d in decisions.items():
        assert d["allocated"] is True
        assert cluster.labels(name)[L.ALLOC_ACCELERATOR] == d["accelerator"]
        assert cluster.labels(name)[L.ALLOC_MAX_BATCH] == str(d["maxBatch"])
        assert cluster.replicas(name) == d["replicas"]
    assert {o["deployment"]: o["kind"] for o in report["outcomes"]} == {
        "llama-7b": "update",
        "granite-13b": "update",
        "mistral-7b": "update",
    }
    assert all(name != "other" for _, _, name, _ in cluster.patches)  # unmanaged: untouched
    assert last.json() == report


async def test_a_second_invoke_while_one_runs_gets_409() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    class BlockingPhases(Phases):
        async def collect(self) -> Any:
            entered.set()
            await release.wait()
            return await super().collect()

    stack = Stack(sample_cluster(), phases_cls=BlockingPhases)
    async with stack.client() as http:
        first = asyncio.create_task(http.post("/invoke"))
        await asyncio.wait_for(entered.wait(), 5)
        second = await asyncio.wait_for(http.post("/invoke"), 1)  # answered at once
        also = await asyncio.wait_for(http.post("/invoke"), 1)
        release.set()
        done = await asyncio.wait_for(first, 10)
        third = await http.post("/invoke")  # the lock is free again
        text = (await http.get("/metrics")).text
    await stack.aclose()
    assert second.status_code == 409
    assert second.json() == {"error": "a cycle is already running"}
    assert also.status_code == 409
    assert done.status_code == 200
    assert third.status_code == 200
    assert 'inferno_controller_invocations_rejected_total{reason="busy"} 2.0' in text


async def test_bearer_token_is_required_when_set() -> None:
    stack = Stack(sample_cluster(), settings(invoke_token="s3cret-0123456789abcdef"))
    async with stack.client() as http:
        none = await http.post("/invoke")
        wrong = await http.post("/invoke", headers={"Authorization": "Bearer nope"})
        basic = await http.post(
            "/invoke", headers={"Authorization": "Basic s3cret-0123456789abcdef"}
        )
        right = await http.post(
            "/invoke", headers={"Authorization": "Bearer s3cret-0123456789abcdef"}
        )
        health = await http.get("/healthz")
    await stack.aclose()
    assert none.status_code == 401
    assert none.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert basic.status_code == 401
    assert right.status_code == 200
    assert health.status_code == 200  # probes stay open
    assert stack.cluster.patches  # only the authorized call ran a cycle
    assert len({name for _, _, name, _ in stack.cluster.patches}) == 3


async def test_optimizer_down_nothing_is_patched() -> None:
    """The issue's fault test: the optimizer's port is closed -> 503, the report names the
    optimize phase, and the actuator is never called."""
    cluster = sample_cluster()
    down = httpx.AsyncClient(base_url=f"http://127.0.0.1:{closed_port()}", timeout=5)
    stack = Stack(cluster, optimizer_client=down)
    async with stack.client() as http:
        r = await http.post("/invoke")
        text = (await http.get("/metrics")).text
    await stack.aclose()
    assert r.status_code == 503
    report = r.json()
    assert report["status"] == "failed"
    assert report["failedPhase"] == "optimize"
    assert report["phases"]["optimize"]["result"] == "failed"
    assert report["phases"]["update"]["result"] == "skipped"
    assert report["errors"][0].startswith("optimize: optimizer POST http://127.0.0.1:")
    assert "ConnectError" in report["errors"][0]
    assert report["outcomes"] == []
    assert cluster.patches == []
    assert cluster.events == []
    assert "patch_deployment" not in cluster.calls
    assert 'inferno_controller_phase_failures_total{phase="optimize"} 1.0' in text
    assert "inferno_actuator_updates_total{" not in text  # the actuator never answered a call


async def test_optimizer_raising_nothing_is_patched() -> None:
    broken = FastAPI()

    @broken.post("/optimize")
    async def explode() -> None:
        raise RuntimeError("solver crashed")

    cluster = sample_cluster()
    stack = Stack(cluster, optimizer_app=broken)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 503
    assert r.json()["failedPhase"] == "optimize"
    assert "HTTP 500" in r.json()["errors"][0]
    assert cluster.patches == []


async def test_collector_failing_nothing_is_optimized_or_patched() -> None:
    cluster = sample_cluster()
    cluster.fail[("list_hpas",)] = ClusterError("list HPAs: HTTP 403 forbidden", 403)
    stack = Stack(cluster)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 503
    report = r.json()
    assert report["failedPhase"] == "collect"
    assert "HTTP 503" in report["errors"][0] and "forbidden" in report["errors"][0]
    assert report["phases"]["optimize"]["result"] == "skipped"
    assert cluster.patches == []


async def test_collector_unreachable() -> None:
    down = httpx.AsyncClient(base_url=f"http://127.0.0.1:{closed_port()}", timeout=5)
    cluster = sample_cluster()
    stack = Stack(cluster, collector_client=down)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 503
    assert r.json()["failedPhase"] == "collect"
    assert cluster.patches == []


async def test_one_deployment_failing_is_a_503_naming_it() -> None:
    cluster = sample_cluster()
    cluster.fail[("patch_deployment", NS, "granite-13b")] = ClusterError(
        f"patch deployment {NS}/granite-13b: HTTP 409 conflict", 409
    )
    stack = Stack(cluster)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 503
    report = r.json()
    assert report["status"] == "failed"
    assert report["failedPhase"] is None  # every phase answered
    assert report["failedDeployments"] == [f"{NS}/granite-13b"]
    assert any(f"{NS}/granite-13b" in e and "409" in e for e in report["errors"])
    patched = {name for _, _, name, _ in cluster.patches}
    assert patched == {"llama-7b", "mistral-7b"}  # the others were applied


async def test_a_server_left_out_of_the_solution_is_never_scaled_to_zero() -> None:
    cluster = FakeCluster(
        [
            make_deployment("llama-7b", model="llama_7b", replicas=3),
            make_deployment("odd", model="llama_7b", service_class="NoSuchClass", replicas=2),
        ]
    )
    stack = Stack(cluster)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 200, r.text
    outcomes = {o["deployment"]: o for o in r.json()["outcomes"]}
    assert outcomes["odd"]["kind"] == "keep"
    assert cluster.replicas("odd") == 2
    assert all(name != "odd" for _, _, name, _ in cluster.patches)


async def test_service_class_status_is_written() -> None:
    cluster = FakeCluster(
        [
            # labels match ServiceClass names in any case
            make_deployment("llama-7b", model="llama_7b", service_class="Premium"),
            make_deployment("granite-13b", model="granite_13b", service_class="bronze"),
            make_deployment("tight", model="mistral_7b", service_class="bronze"),
        ],
        service_classes=[
            service_class("premium", 1, llama_7b={"itlMs": 40, "ttwMs": 500}),
            service_class(
                "bronze", 2, granite_13b={"itlMs": 80, "ttwMs": 1000}, mistral_7b={"itlMs": 1}
            ),
        ],
    )
    stack = Stack(cluster)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 200, r.text
    assert r.json()["statusErrors"] == []
    premium = cluster.statuses["premium"][-1]
    assert premium["lastCycle"].endswith("Z")
    [entry] = premium["servers"]
    decision = next(d for d in r.json()["decisions"] if d["server"] == "llama-7b")
    assert entry["server"] == "llama-7b"
    assert (entry["namespace"], entry["deployment"], entry["model"]) == (
        NS,
        "llama-7b",
        "llama_7b",
    )
    assert (entry["accelerator"], entry["replicas"]) == (
        decision["accelerator"],
        decision["replicas"],
    )
    assert entry["target"] == {"itlMs": 40, "ttwMs": 500}
    assert 0 < entry["predicted"]["itlMs"] <= 40
    assert 0 <= entry["predicted"]["waitMs"] <= 500
    assert entry["meetsTarget"] is True
    bronze = {s["server"]: s for s in cluster.statuses["bronze"][-1]["servers"]}
    assert bronze["granite-13b"]["meetsTarget"] is True
    # an ITL of 1 ms is out of reach: no allocation, the current one is reported
    assert bronze["tight"]["meetsTarget"] is False
    assert bronze["tight"]["reason"]


async def test_a_failing_status_write_does_not_fail_the_cycle() -> None:
    cluster = FakeCluster(
        [make_deployment("llama-7b", model="llama_7b", service_class="premium")],
        service_classes=[service_class("premium", 1, llama_7b={"itlMs": 40, "ttwMs": 500})],
    )
    cluster.fail[("patch_service_class_status",)] = ClusterError("forbidden", 403)
    stack = Stack(cluster)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["statusErrors"] == ["ServiceClass premium: forbidden"]
    assert cluster.replicas("llama-7b") >= 1


async def test_no_managed_deployments_is_an_empty_ok_cycle() -> None:
    cluster = FakeCluster([make_deployment("other", model="llama_7b", managed=False)])
    stack = Stack(cluster)
    async with stack.client() as http:
        r = await http.post("/invoke")
    await stack.aclose()
    assert r.status_code == 200
    assert r.json()["phases"]["optimize"]["result"] == "skipped"
    assert cluster.patches == []


async def test_the_periodic_loop_runs_and_stops_on_shutdown() -> None:
    cluster = sample_cluster()
    stack = Stack(cluster, settings(control_period=0.05))
    app = stack.controller
    async with app.router.lifespan_context(app):
        for _ in range(250):
            if stack.registry.get_sample_value(
                "inferno_controller_cycles_total", {"trigger": "periodic", "status": "ok"}
            ):
                break
            await asyncio.sleep(0.02)
        async with client(app) as http:
            anonymous = await http.get("/report")
        async with stack.client() as http:
            report = (await http.get("/report")).json()
    assert anonymous.status_code == 401  # the report needs the token
    ran = stack.registry.get_sample_value(
        "inferno_controller_cycles_total", {"trigger": "periodic", "status": "ok"}
    )
    assert ran is not None and ran >= 1
    assert report["trigger"] == "periodic"
    assert {name for _, _, name, _ in cluster.patches} == {"llama-7b", "granite-13b", "mistral-7b"}
    # stopped: no cycle after the lifespan ended
    calls = len(cluster.calls)
    await asyncio.sleep(0.2)
    assert len(cluster.calls) == calls
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "inferno-control-loop"]


async def test_shutdown_cancels_a_cycle_that_overruns_the_grace() -> None:
    entered = asyncio.Event()

    class HangingPhases(Phases):
        async def collect(self) -> Any:
            entered.set()
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

    cluster = sample_cluster()
    stack = Stack(
        cluster, settings(control_period=0.01), phases_cls=HangingPhases, shutdown_grace=0.1
    )
    app = stack.controller
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(entered.wait(), 5)
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "inferno-control-loop"]
    assert cluster.patches == []


async def test_a_zero_period_starts_no_loop() -> None:
    stack = Stack(sample_cluster(), settings(control_period=0))
    app = stack.controller
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.05)
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "inferno-control-loop"]
    assert stack.cluster.calls == ["get_config_map"]  # the policy's state, restored; no cycle


def test_authorized() -> None:
    assert authorized("Bearer abc", "abc")
    assert authorized("bearer  abc ", "abc")
    assert not authorized("Bearer abcd", "abc")
    assert not authorized(None, "abc")
    assert not authorized("abc", "abc")
    assert not authorized("Bearer ", "")  # an empty token never matches


async def test_the_app_owns_phases_it_is_given_but_not_injected_clients() -> None:
    own = Phases(settings(), token=None)
    app = controller.create_app(settings(), phases=own, registry=CollectorRegistry())
    async with app.router.lifespan_context(app):
        pass
    assert all(c.is_closed for c in own.clients.values())


async def test_the_policy_clamps_a_step_and_says_so() -> None:
    """A decision beyond INFERNO_MAX_SCALE_DOWN_PODS is clamped: the Deployment gets the bounded
    replicas, the report lists the clamp, /metrics counts it and the Event names it."""
    unbounded = Stack(sample_cluster())
    async with unbounded.client() as http:
        free = (await http.post("/invoke")).json()
    await unbounded.aclose()
    decided = {d["server"]: d for d in free["decisions"]}
    # the same servers, running 10 replicas each on the accelerator and batch they get
    base = sample_cluster()
    cluster = FakeCluster(
        [
            make_deployment(
                name,
                model=obj["metadata"]["labels"][L.MODEL],
                service_class=obj["metadata"]["labels"][L.SERVICE_CLASS],
                rpm=float(obj["metadata"]["labels"][L.LOAD_RPM]),
                replicas=10,
                accelerator=decided[name]["accelerator"],
                max_batch=decided[name]["maxBatch"],
            )
            for (_, name), obj in base.deployments.items()
            if name in decided
        ]
    )
    stack = Stack(cluster, settings(max_scale_down_pods=1))
    async with stack.client() as http:
        r = await http.post("/invoke")
        text = (await http.get("/metrics")).text
    await stack.aclose()
    report = r.json()
    clamps = {c["server"]: c for c in report["clamps"]}
    assert set(clamps) == set(decided)
    for server, d in decided.items():
        assert clamps[server]["rule"] == "max-scale-down"
        assert (clamps[server]["wanted"], clamps[server]["got"]) == (d["replicas"], 9)
        assert cluster.replicas(server) == 9  # one step down, not to the decision
    assert 'inferno_controller_clamps_total{rule="max-scale-down"} 3.0' in text
    messages = [e.message for _, _, e in cluster.events if e.reason == "InfernoScaled"]
    assert len(messages) == 3 and all("max-scale-down" in m for m in messages)
    # and what each server was sized for: its measured rate (the label), forecast, margin
    forecasts = report["forecasts"]
    assert set(forecasts) == set(decided)
    for (_, name), obj in base.deployments.items():
        if name in decided:
            f = forecasts[name]
            assert f["measured"] == float(obj["metadata"]["labels"][L.LOAD_RPM])
            assert f["target"] == f["now"] * (1 + f["margin"]) > f["measured"]


async def test_a_clock_stepped_back_does_not_stop_the_updates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wall clock steps back an hour between two cycles (a corrected clock): the second
    cycle's sequence still follows the first's, so the actuator applies it (before: the
    sequence was the start time in ns, the plan "older" than the last one applied, refused
    with a 409, and every Deployment refused it too until the clock caught up)."""
    import inferno.control.loop as loop_module
    from inferno.control.cycle import new_stamp

    clock = [1_800_000_000.0]
    monkeypatch.setattr(
        loop_module, "new_stamp", lambda deadline: new_stamp(deadline, lambda: clock[0])
    )
    cluster = sample_cluster()
    stack = Stack(cluster)
    async with stack.client() as http:
        first = (await http.post("/invoke")).json()
        clock[0] -= 3600.0
        rpm = float(cluster.deployments[(NS, "llama-7b")]["metadata"]["labels"][L.LOAD_RPM])
        cluster.deployments[(NS, "llama-7b")]["metadata"]["labels"][L.LOAD_RPM] = str(1.5 * rpm)
        second = await http.post("/invoke")
    await stack.aclose()
    assert second.status_code == 200, second.text[:300]
    report = second.json()
    assert report["sequence"] == first["sequence"] + 1
    assert report["status"] == "ok"
    assert all(o["kind"] != "refused" for o in report["outcomes"])
    llama = next(d for d in report["decisions"] if d["server"] == "llama-7b")
    was = next(d for d in first["decisions"] if d["server"] == "llama-7b")
    assert cluster.replicas("llama-7b") == llama["replicas"] >= was["replicas"]
    # the patch of the second cycle landed: the Deployment's annotation names it
    stamped = cluster.deployments[(NS, "llama-7b")]["metadata"]["annotations"][L.CYCLE]
    assert stamped.startswith(f"{report['sequence']}.")
