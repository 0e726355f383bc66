"""collect -> decisions -> ``actuate`` through the real client against kmock, then the objects
are read back from the emulator and compared field by field with what the decisions call for."""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import kmock as kmock_lib
import pytest

from inferno.cluster import labels as L
from inferno.cluster.plan import Decision
from inferno.control import (
    ActuationReport,
    Collection,
    actuate,
    collect,
    optimize,
    read_static_data,
)
from inferno.control.actuate import ActuatorConfig, CycleStamp
from inferno.k8s import KubeCluster

from .conftest import (
    BATCH_ENV,
    DEPLOY,
    EVENTS,
    GPU,
    HPA,
    PRODUCT,
    SAMPLES,
    SIDECAR_IMAGE,
    TRITON_IMAGE,
    actuator_config,
    hpa,
    seed,
    service_class,
    stamp,
    stored,
    targets_of,
    triton_deployment,
)

NAMESPACES = ("llm", "team-b")
DEPLOY_KEY = kmock_lib.resource(DEPLOY)
HPA_KEY = kmock_lib.resource(HPA)

CLASSES = [
    service_class(
        "premium",
        1,
        [
            {"model": "llama_13b", "itlMs": 80, "ttwMs": 500},
            {"model": "mistral_7b", "itlMs": 40, "ttwMs": 500},
        ],
    ),
    service_class("bronze", 2, [{"model": "granite_13b", "itlMs": 80, "ttwMs": 1000}]),
]


def deployments() -> dict[tuple[str, str], dict[str, Any]]:
    objs = [
        # Triton is the second container (annotation), batch variable at env index 2
        triton_deployment(
            "llama",
            "llm",
            model="llama_13b",
            server="premium-llama-13b",
            replicas=1,
            load=("600", "0", "1024"),
            sidecar_first=True,
        ),
        # scaled by an HPA whose name differs from the Deployment's
        triton_deployment(
            "granite",
            "llm",
            model="granite_13b",
            service_class="bronze",
            replicas=2,
            load=("240", "0", "1024"),
        ),
        # bounded by annotations; no env at all
        triton_deployment(
            "mistral",
            "team-b",
            model="mistral_7b",
            replicas=3,
            load=("300", "0", "512"),
            annotations={L.MIN_REPLICAS: "2", L.MAX_REPLICAS: "6"},
            batch_env=None,
            extra_env=False,
        ),
        # recommend mode: never patched
        triton_deployment(
            "advisory",
            "team-b",
            model="llama_13b",
            replicas=1,
            load=("600", "0", "1024"),
            annotations={L.MODE: "recommend"},
        ),
    ]
    return {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs}


GRANITE_HPA = hpa("granite-hpa", "llm", "granite", min_replicas=1, max_replicas=4)


@pytest.fixture
def world(emulator: kmock_lib.KubernetesEmulator) -> kmock_lib.KubernetesEmulator:
    seed(emulator, *deployments().values(), GRANITE_HPA, *CLASSES)
    return emulator


async def run_collect(cluster: KubeCluster) -> Collection:
    return await asyncio.to_thread(collect, cluster, NAMESPACES)


STAMP = stamp(1)  # "1.c1" on every Deployment the first cycle patches
CYCLE_OP = {"op": "add", "path": "/metadata/annotations/inferno.server~1cycle", "value": "1.c1"}


async def run_actuate(
    cluster: KubeCluster,
    c: Collection,
    decisions: Iterable[Decision],
    *,
    cfg: ActuatorConfig | None = None,
    cycle: CycleStamp = STAMP,
    clock: Callable[[], float] | None = None,
) -> ActuationReport:
    """``actuate`` on the collected Deployments (as references), in a thread."""
    cfg = cfg or actuator_config(NAMESPACES)
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    return await asyncio.to_thread(
        actuate, cluster, targets_of(c.deployments), list(decisions), cfg, cycle, **extra
    )


def static_docs() -> dict[str, Any]:
    docs = read_static_data(SAMPLES)
    docs.pop("serviceclass-data.json")
    return docs


def clamp(wanted: int, lo: int, hi: int | None) -> int:
    r = max(wanted, lo, 1)
    return r if hi is None else min(r, hi)


def expected_after(
    original: dict[str, Any],
    dec: Decision,
    *,
    container: int,
    replicas: int | None,
    env_index: int | None,
    cycle: str = "1.c1",
) -> dict[str, Any]:
    """The Deployment as it must look once ``dec`` is applied by cycle ``cycle`` (derived
    independently)."""
    out = copy.deepcopy(original)
    out["metadata"]["annotations"][L.CYCLE] = cycle
    if replicas is not None:
        out["spec"]["replicas"] = replicas
    out["metadata"]["labels"][L.ALLOC_ACCELERATOR] = dec.accelerator
    out["metadata"]["labels"][L.ALLOC_MAX_BATCH] = str(dec.max_batch)
    pod = out["spec"]["template"]["spec"]
    pod["nodeSelector"] = {**pod.get("nodeSelector", {}), **dec.node_selector}
    c = pod["containers"][container]
    c["resources"]["limits"][GPU] = str(dec.gpus_per_replica)
    if GPU in c["resources"].get("requests", {}):
        c["resources"]["requests"][GPU] = str(dec.gpus_per_replica)
    if env_index is None:
        c.setdefault("env", []).append({"name": BATCH_ENV, "value": str(dec.max_batch)})
    else:
        assert c["env"][env_index]["name"] == BATCH_ENV
        c["env"][env_index]["value"] = str(dec.max_batch)
    return out


def posted_events(
    emulator: kmock_lib.KubernetesEmulator,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in emulator["post", emulator.resource(EVENTS)]:
        obj = r.data["involvedObject"]
        assert obj["kind"] == "Deployment" and obj["apiVersion"] == "apps/v1"
        assert r.namespace == obj["namespace"]
        out.setdefault((obj["namespace"], obj["name"]), []).append(r.data)
    return out


def patches_of(
    emulator: kmock_lib.KubernetesEmulator, resource: str, ns: str, name: str
) -> list[Any]:
    return list(
        emulator["patch", emulator.resource(resource), emulator.namespace(ns), emulator.name(name)]
    )


# -- the whole path -------------------------------------------------------------------------------


async def test_collect_optimize_actuate(
    world: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    originals = deployments()
    c = await run_collect(cluster)
    assert c.problems == []
    result = optimize(static_docs(), c.servers, c.service_classes)
    decisions = {d.server: d for d in result.decisions}
    assert all(d.allocated for d in decisions.values()), decisions
    report = await run_actuate(cluster, c, result.decisions)

    summary = report.to_json()
    assert report.ok, summary
    assert summary["failed"] == 0
    kinds = {(o.namespace, o.deployment): o.kind for o in report.outcomes}
    assert kinds == {
        ("llm", "granite"): "update",
        ("llm", "llama"): "update",
        ("team-b", "advisory"): "recommend",
        ("team-b", "mistral"): "update",
    }
    assert summary["updated"] == 3

    # llama: Triton is containers[1]; batch variable at index 2 of its env
    dec = decisions["premium-llama-13b"]
    got = stored(world, DEPLOY, "llm", "llama")
    want = expected_after(
        originals["llm", "llama"],
        dec,
        container=1,
        replicas=clamp(dec.replicas, 1, None),
        env_index=2,
    )
    assert got == want
    assert got["spec"]["template"]["spec"]["nodeSelector"] == {
        "kubernetes.io/arch": "amd64",
        PRODUCT: dec.node_selector[PRODUCT],
    }
    serving = got["spec"]["template"]["spec"]["containers"][1]
    assert serving["name"] == "triton" and serving["image"] == TRITON_IMAGE
    assert serving["resources"]["limits"][GPU] == str(dec.gpus_per_replica)
    assert {"name": BATCH_ENV, "value": str(dec.max_batch)} in serving["env"]
    sidecar = got["spec"]["template"]["spec"]["containers"][0]
    assert sidecar == originals["llm", "llama"]["spec"]["template"]["spec"]["containers"][0]
    assert sidecar["image"] == SIDECAR_IMAGE
    # one JSON patch request, not a merge patch, stamped with the cycle last
    [req] = patches_of(world, DEPLOY, "llm", "llama")
    assert req.headers["Content-Type"] == "application/json-patch+json"
    assert req.data[-1] == CYCLE_OP
    assert [op["path"] for op in req.data].count(CYCLE_OP["path"]) == 1

    # mistral: replicas within the annotations, env created
    dec = decisions["mistral"]
    got = stored(world, DEPLOY, "team-b", "mistral")
    want = expected_after(
        originals["team-b", "mistral"],
        dec,
        container=0,
        replicas=clamp(dec.replicas, 2, 6),
        env_index=None,
    )
    assert got == want
    assert 2 <= got["spec"]["replicas"] <= 6

    # granite: the HPA gets min/max; the Deployment keeps its replicas
    dec = decisions["granite"]
    got = stored(world, DEPLOY, "llm", "granite")
    want = expected_after(originals["llm", "granite"], dec, container=0, replicas=None, env_index=2)
    assert got == want
    assert got["spec"]["replicas"] == 2
    [req] = patches_of(world, DEPLOY, "llm", "granite")
    assert "/spec/replicas" not in [op["path"] for op in req.data]
    assert req.data[-1] == CYCLE_OP
    # the HPA first, the Deployment (which carries the cycle annotation) last
    granite_requests = [
        r
        for r in world["patch"]
        if (r.resource, r.name) in ((HPA_KEY, "granite-hpa"), (DEPLOY_KEY, "granite"))
    ]
    assert [r.name for r in granite_requests] == ["granite-hpa", "granite"]
    got_hpa = stored(world, HPA, "llm", "granite-hpa")
    want_hpa = copy.deepcopy(GRANITE_HPA)
    want_hpa["spec"]["minReplicas"] = dec.replicas
    want_hpa["spec"]["maxReplicas"] = math.ceil(dec.replicas * 1.25)
    assert got_hpa == want_hpa
    assert len(patches_of(world, HPA, "llm", "granite-hpa")) == 1

    # advisory (recommend mode): not patched at all
    assert patches_of(world, DEPLOY, "team-b", "advisory") == []
    assert stored(world, DEPLOY, "team-b", "advisory") == originals["team-b", "advisory"]
    assert len(world.objects[DEPLOY, "team-b", "advisory"].history) == 1

    # one Event per Deployment, stored by the emulator under its explicit name
    events = posted_events(world)
    assert {k: [e["reason"] for e in v] for k, v in events.items()} == {
        ("llm", "llama"): ["InfernoScaled"],
        ("llm", "granite"): ["InfernoScaled"],
        ("team-b", "mistral"): ["InfernoScaled"],
        ("team-b", "advisory"): ["InfernoRecommendation"],
    }
    assert all(e[0]["type"] == "Normal" for e in events.values())
    assert "granite-hpa" in events["llm", "granite"][0]["message"]
    for (ns, name), [ev] in events.items():
        assert ev["metadata"]["name"].startswith(f"{name}.inferno.")
        assert world.objects[EVENTS, ns, ev["metadata"]["name"]] >= {"reason": ev["reason"]}


async def test_second_cycle_changes_nothing(
    world: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    c = await run_collect(cluster)
    result = optimize(static_docs(), c.servers, c.service_classes)
    await run_actuate(cluster, c, result.decisions)
    n_patches = len(world["patch"])
    n_events = len(world["post", world.resource(EVENTS)])

    c2 = await run_collect(cluster)
    # the first cycle's stamp is read back from every Deployment it patched
    assert {d.name: d.cycle for d in c2.deployments} == {
        "llama": "1.c1",
        "granite": "1.c1",
        "mistral": "1.c1",
        "advisory": "",
    }
    # the labels written by the first cycle are read back as the current allocation
    current = {s["name"]: s["currentAlloc"] for s in c2.servers}
    for d in result.decisions:
        if d.server == "advisory":
            continue
        assert current[d.server]["accelerator"] == d.accelerator
        assert current[d.server]["maxBatch"] == d.max_batch
    result2 = optimize(static_docs(), c2.servers, c2.service_classes)
    report = await run_actuate(cluster, c2, result2.decisions, cycle=stamp(2))
    kinds = {o.deployment: o.kind for o in report.outcomes}
    assert kinds == {
        "llama": "unchanged",
        "granite": "unchanged",
        "mistral": "unchanged",
        "advisory": "recommend",
    }
    assert len(world["patch"]) == n_patches  # no new PATCH at all
    # only the recommendation is recorded again
    assert len(world["post", world.resource(EVENTS)]) == n_events + 1


# -- fixed decisions ------------------------------------------------------------------------------


def fixed_decisions() -> list[Decision]:
    def dec(server: str, acc: str, replicas: int, batch: int, gpus: int) -> Decision:
        return Decision(
            server=server,
            accelerator=acc,
            replicas=replicas,
            max_batch=batch,
            gpus_per_replica=gpus,
            node_selector={PRODUCT: acc.split("x")[-1]},
        )

    return [
        dec("premium-llama-13b", "2xH100", 4, 32, 2),
        dec("granite", "A100", 3, 24, 1),
        dec("mistral", "2xA100", 5, 64, 2),
        dec("advisory", "H100", 4, 32, 1),
    ]


async def test_fixed_decisions_applied_exactly(
    world: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    originals = deployments()
    c = await run_collect(cluster)
    decisions = {d.server: d for d in fixed_decisions()}
    report = await run_actuate(cluster, c, decisions.values())
    assert report.ok
    # llama: 1 -> 4 replicas, 2 GPUs on Triton (containers[1]), batch variable in place
    got = stored(world, DEPLOY, "llm", "llama")
    assert got == expected_after(
        originals["llm", "llama"],
        decisions["premium-llama-13b"],
        container=1,
        replicas=4,
        env_index=2,
    )
    triton = got["spec"]["template"]["spec"]["containers"][1]
    assert triton["resources"]["limits"][GPU] == "2" == triton["resources"]["requests"][GPU]
    assert got["metadata"]["annotations"][L.CYCLE] == "1.c1"
    [req] = patches_of(world, DEPLOY, "llm", "llama")
    assert req.data[-1] == CYCLE_OP
    # mistral: 3 -> 5 replicas, 2 GPUs, env created
    got = stored(world, DEPLOY, "team-b", "mistral")
    assert got == expected_after(
        originals["team-b", "mistral"],
        decisions["mistral"],
        container=0,
        replicas=5,
        env_index=None,
    )
    assert got["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": BATCH_ENV, "value": "64"}
    ]


# -- faults ---------------------------------------------------------------------------------------


def fail_patch(
    emulator: kmock_lib.KubernetesEmulator, ns: str, name: str, status: int, reason: str
) -> None:
    """Answer ``status`` to PATCHes of Deployment ns/name, without persisting the patch."""
    key = (DEPLOY, ns, name)

    def react(request: Any) -> kmock_lib.KubernetesError:
        emulator.objects[key].history.pop()  # kmock applied it before asking the reactions
        return kmock_lib.KubernetesError(status=status, reason=reason, message=f"{reason} {name}")

    view = emulator["patch", emulator.resource(DEPLOY), emulator.namespace(ns), emulator.name(name)]
    view << react  # kmock's DSL: << installs a reaction


async def test_api_errors_are_reported_per_deployment(
    world: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    originals = deployments()
    fail_patch(world, "llm", "llama", 409, "Conflict")
    fail_patch(world, "team-b", "mistral", 500, "InternalError")
    c = await run_collect(cluster)
    report = await run_actuate(cluster, c, fixed_decisions())
    world.errors.clear()

    summary = report.to_json()
    assert report.ok is False
    assert summary["failed"] == 2
    assert summary["updated"] == 1
    outcomes = {o.deployment: o for o in report.outcomes}
    assert "HTTP 409" in outcomes["llama"].error
    assert "llm/llama" in outcomes["llama"].error
    assert "HTTP 500" in outcomes["mistral"].error
    assert "team-b/mistral" in outcomes["mistral"].error
    assert outcomes["llama"].applied is False and outcomes["mistral"].applied is False
    assert outcomes["granite"].error == "" and outcomes["granite"].applied is True
    assert outcomes["advisory"].error == ""
    assert [o["deployment"] for o in summary["outcomes"] if o["error"]] == ["llama", "mistral"]

    # the failed ones are unchanged (one PATCH each, not retried, not persisted)
    for ns, name in [("llm", "llama"), ("team-b", "mistral")]:
        assert len(patches_of(world, DEPLOY, ns, name)) == 1
        assert stored(world, DEPLOY, ns, name) == originals[ns, name]
        assert len(world.objects[DEPLOY, ns, name].history) == 1
    # the other one was patched anyway, and its HPA too
    granite = stored(world, DEPLOY, "llm", "granite")
    assert granite["metadata"]["annotations"][L.CYCLE] == "1.c1"
    assert granite["metadata"]["labels"][L.ALLOC_ACCELERATOR] == "A100"
    assert granite["metadata"]["labels"][L.ALLOC_MAX_BATCH] == "24"
    assert granite["spec"]["template"]["spec"]["nodeSelector"][PRODUCT] == "A100"
    hpa_spec = stored(world, HPA, "llm", "granite-hpa")["spec"]
    assert (hpa_spec["minReplicas"], hpa_spec["maxReplicas"]) == (3, 4)  # 4 = ceil(3 × 1.25)
    assert stored(world, DEPLOY, "team-b", "advisory") == originals["team-b", "advisory"]

    # a Warning for each failure, naming the status; the success is reported normally
    events = posted_events(world)
    for name, ns, status in [("llama", "llm", "409"), ("mistral", "team-b", "500")]:
        [ev] = events[ns, name]
        assert (ev["reason"], ev["type"]) == ("InfernoFailed", "Warning")
        assert "not applied" in ev["message"] and status in ev["message"]
    assert [e["reason"] for e in events["llm", "granite"]] == ["InfernoScaled"]
    assert [e["reason"] for e in events["team-b", "advisory"]] == ["InfernoRecommendation"]


async def test_a_failed_hpa_patch_is_reported(
    world: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    world["patch", world.resource(HPA)] << kmock_lib.KubernetesError(
        status=500, reason="InternalError", message="etcd down"
    )
    c = await run_collect(cluster)
    report = await run_actuate(cluster, c, fixed_decisions())
    world.errors.clear()
    outcomes = {o.deployment: o for o in report.outcomes}
    assert report.to_json()["failed"] == 1
    assert "HPA llm/granite-hpa" in outcomes["granite"].error
    assert "HTTP 500" in outcomes["granite"].error
    assert outcomes["granite"].applied is False
    assert outcomes["llama"].error == "" and outcomes["mistral"].error == ""
    # the HPA is patched first: when it fails, the Deployment is not patched (nor stamped)
    assert patches_of(world, DEPLOY, "llm", "granite") == []
    assert stored(world, DEPLOY, "llm", "granite") == deployments()["llm", "granite"]
    assert stored(world, DEPLOY, "llm", "llama")["metadata"]["annotations"][L.CYCLE] == "1.c1"


async def test_event_failure_does_not_fail_the_actuation(
    world: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    world["post", world.resource(EVENTS)] << kmock_lib.KubernetesError(
        status=403, reason="Forbidden", message="events is forbidden"
    )
    c = await run_collect(cluster)
    report = await run_actuate(cluster, c, fixed_decisions())
    world.errors.clear()
    assert report.ok
    outcomes = {o.deployment: o for o in report.outcomes}
    assert all("HTTP 403" in o.event_error for o in outcomes.values())
    assert stored(world, DEPLOY, "llm", "llama")["spec"]["replicas"] == 4


# -- never scale what was not decided -------------------------------------------------------------


async def test_server_missing_from_decisions_is_never_scaled(
    world: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    originals = deployments()
    c = await run_collect(cluster)
    decisions = [d for d in fixed_decisions() if d.server not in ("mistral", "granite")] + [
        Decision(server="granite", allocated=False, reason="no capacity")
    ]
    report = await run_actuate(cluster, c, decisions)
    outcomes = {o.deployment: o for o in report.outcomes}
    assert report.ok
    for ns, name, why in [
        ("team-b", "mistral", "not in the solution"),
        ("llm", "granite", "no capacity"),
    ]:
        o = outcomes[name]
        assert (o.kind, o.applied, o.error) == ("keep", False, "")
        assert o.after == o.before
        assert patches_of(world, DEPLOY, ns, name) == []
        assert stored(world, DEPLOY, ns, name) == originals[ns, name]
        [ev] = posted_events(world)[ns, name]
        assert (ev["reason"], ev["type"]) == ("InfernoKept", "Warning")
        assert why in ev["message"]
    assert patches_of(world, HPA, "llm", "granite-hpa") == []
    assert stored(world, DEPLOY, "llm", "llama")["spec"]["replicas"] == 4


async def test_recommend_mode_is_not_patched(
    world: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    c = await run_collect(cluster)
    report = await run_actuate(cluster, c, fixed_decisions())
    outcomes = {o.deployment: o for o in report.outcomes}
    o = outcomes["advisory"]
    assert (o.kind, o.applied) == ("recommend", False)
    assert o.before["replicas"] == 1 and o.after == {
        "replicas": 4,
        "accelerator": "H100",
        "maxBatch": 32,
    }
    assert patches_of(world, DEPLOY, "team-b", "advisory") == []
    assert stored(world, DEPLOY, "team-b", "advisory") == deployments()["team-b", "advisory"]
    [ev] = posted_events(world)["team-b", "advisory"]
    assert ev["reason"] == "InfernoRecommendation"
    assert "replicas 1→4" in ev["message"] and "accelerator -→H100" in ev["message"]
