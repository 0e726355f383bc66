"""``collect`` through the real client against kmock, then ``optimize`` on what it found."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import kmock as kmock_lib
import pytest

from inferno.cli import main as inferno_main
from inferno.cluster import labels as L
from inferno.cluster.inventory import HpaRef, ManagedDeployment
from inferno.control import Collection, collect, optimize, read_static_data
from inferno.k8s import KubeCluster
from inferno.services.messages import CollectAnswer

from .conftest import (
    BATCH_ENV,
    DEPLOY,
    SAMPLES,
    SC,
    TRITON_IMAGE,
    hpa,
    seed,
    service_class,
    triton_deployment,
)

PREMIUM = service_class(
    "premium",
    1,
    [
        {"model": "llama_13b", "itlMs": 80, "ttwMs": 500},
        {"model": "mistral_7b", "itlMs": 40, "ttwMs": 500},
    ],
)
BRONZE = service_class(
    "bronze",
    2,
    [
        {"model": "granite_13b", "itlMs": 80, "ttwMs": 1000},
        {"model": "llama_13b", "itlMs": 160, "ttwMs": 1000, "ttftMs": 2000},
    ],
)
BROKEN_CLASS = service_class(  # valid for the schema, not for serviceclass.problems
    "broken-class",
    3,
    [
        {"model": "llama_13b", "itlMs": 80},
        {"model": "llama_13b", "itlMs": 160},
    ],
)


def objects() -> list[dict[str, Any]]:
    return [
        triton_deployment(
            "llama",
            "llm",
            model="llama_13b",
            server="premium-llama-13b",
            replicas=2,
            accelerator="A100",
            max_batch=32,
            load=("120", "0", "1024"),
        ),
        triton_deployment(
            "granite",
            "llm",
            model="granite_13b",
            service_class="bronze",
            load=("240", "128", "512"),
            sidecar_first=True,
        ),
        triton_deployment(
            "mistral",
            "team-b",
            model="mistral_7b",
            replicas=3,
            load=("60", "0", "512"),
            annotations={L.MIN_REPLICAS: "2", L.MAX_REPLICAS: "6"},
        ),
        triton_deployment(
            "llama-gold", "team-b", model="llama_13b", service_class="gold", load=("30", "0", "256")
        ),
        # not managed: kmock ignores the label selector, so the client must filter it out
        triton_deployment("unmanaged", "llm", model="llama_13b", managed=False),
        # managed, but its annotation is unusable
        triton_deployment("broken", "llm", model="llama_13b", annotations={L.MIN_REPLICAS: "two"}),
        # a namespace that is not asked for
        triton_deployment("far", "elsewhere", model="mistral_7b", load=("10", "0", "128")),
        hpa("granite-hpa", "llm", "granite", min_replicas=1, max_replicas=4),
        # same target name, other namespace: must not attach to llm/granite
        hpa("granite-hpa", "team-b", "granite", min_replicas=5, max_replicas=9),
        hpa("unmanaged", "llm", "unmanaged", min_replicas=1, max_replicas=2),
        PREMIUM,
        BRONZE,
        BROKEN_CLASS,
    ]


@pytest.fixture
def seeded(emulator: kmock_lib.KubernetesEmulator) -> kmock_lib.KubernetesEmulator:
    seed(emulator, *objects())
    return emulator


def load_row(rpm: float, n_in: float, n_out: float) -> dict[str, float]:
    return {"arrivalRate": rpm, "avgInTokens": n_in, "avgOutTokens": n_out}


EXPECTED_SERVERS = {
    "premium-llama-13b": {
        "name": "premium-llama-13b",
        "class": "premium",
        "model": "llama_13b",
        "minNumReplicas": 1,
        "currentAlloc": {
            "accelerator": "A100",
            "numReplicas": 2,
            "maxBatch": 32,
            "load": load_row(120, 0, 1024),
        },
    },
    "granite": {
        "name": "granite",
        "class": "bronze",
        "model": "granite_13b",
        "minNumReplicas": 1,
        "currentAlloc": {
            "accelerator": "",
            "numReplicas": 1,
            "maxBatch": 0,
            "load": load_row(240, 128, 512),
        },
    },
    "mistral": {
        "name": "mistral",
        "class": "premium",
        "model": "mistral_7b",
        "minNumReplicas": 2,
        "maxNumReplicas": 6,
        "currentAlloc": {
            "accelerator": "",
            "numReplicas": 3,
            "maxBatch": 0,
            "load": load_row(60, 0, 512),
        },
    },
    "llama-gold": {
        "name": "llama-gold",
        "class": "gold",
        "model": "llama_13b",
        "minNumReplicas": 1,
        "currentAlloc": {
            "accelerator": "",
            "numReplicas": 1,
            "maxBatch": 0,
            "load": load_row(30, 0, 256),
        },
    },
}

EXPECTED_CLASSES = [
    {
        "name": "bronze",
        "priority": 2,
        "modelTargets": [
            {"model": "granite_13b", "slo-itl": 80, "slo-ttw": 1000},
            {"model": "llama_13b", "slo-itl": 160, "slo-ttft": 2000, "slo-ttw": 1000},
        ],
    },
    {
        "name": "premium",
        "priority": 1,
        "modelTargets": [
            {"model": "llama_13b", "slo-itl": 80, "slo-ttw": 500},
            {"model": "mistral_7b", "slo-itl": 40, "slo-ttw": 500},
        ],
    },
]


async def run_collect(cluster: KubeCluster, namespaces: tuple[str, ...]) -> Collection:
    return await asyncio.to_thread(collect, cluster, namespaces)


async def test_collect_two_namespaces(
    seeded: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    c = await run_collect(cluster, ("llm", "team-b"))
    assert sorted(d.key for d in c.deployments) == [
        "llm/granite",
        "llm/llama",
        "team-b/llama-gold",
        "team-b/mistral",
    ]
    assert {s["name"]: s for s in c.servers} == EXPECTED_SERVERS
    assert len(c.servers) == 4
    assert sorted(c.service_classes, key=lambda r: r["name"]) == EXPECTED_CLASSES
    assert c.load_source == "labels"

    # problems: exactly the bad Deployment and the bad ServiceClass, each named with the cause
    assert len(c.problems) == 2
    [dep_problem] = [p for p in c.problems if p.startswith("Deployment")]
    assert "llm/broken" in dep_problem and L.MIN_REPLICAS in dep_problem and "'two'" in dep_problem
    [sc_problem] = [p for p in c.problems if p.startswith("ServiceClass")]
    assert "broken-class" in sc_problem and "listed twice" in sc_problem

    # the HPA is attached to its own Deployment only (namespace-qualified)
    by_key = {d.key: d for d in c.deployments}
    assert by_key["llm/granite"].hpa == HpaRef("llm", "granite-hpa", 1, 4)
    assert [k for k, d in by_key.items() if d.hpa is not None] == ["llm/granite"]
    # the serving container chosen by annotation, its GPU resources and env
    granite = by_key["llm/granite"]
    assert (granite.container, granite.container_name) == (1, "triton")
    assert granite.resources["limits"]["nvidia.com/gpu"] == "1"
    assert ("INFERNO_MAX_BATCH_SIZE", "8") in granite.env
    assert by_key["llm/llama"].node_selector == {"kubernetes.io/arch": "amd64"}

    # the selector was asked of the server (kmock ignores it; the client filtered)
    lists = seeded["list", seeded.resource(DEPLOY)]
    assert {r.namespace for r in lists} == {"llm", "team-b"}
    assert all(r.params.get("labelSelector") == L.MANAGED_SELECTOR for r in lists)
    # the ServiceClasses were listed cluster-wide
    assert [r.namespace for r in seeded["list", seeded.resource(SC)]] == [None]


async def test_collect_all_namespaces(
    seeded: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    c = await run_collect(cluster, ())
    assert sorted(d.key for d in c.deployments) == [
        "elsewhere/far",
        "llm/granite",
        "llm/llama",
        "team-b/llama-gold",
        "team-b/mistral",
    ]
    assert sorted(s["name"] for s in c.servers) == sorted([*EXPECTED_SERVERS, "far"])
    assert len(c.problems) == 2
    assert {d.key: d.hpa for d in c.deployments if d.hpa} == {
        "llm/granite": HpaRef("llm", "granite-hpa", 1, 4)
    }
    [lst] = seeded["list", seeded.resource(DEPLOY)]
    assert lst.namespace is None  # one cluster-wide LIST, not one per namespace


async def test_collect_empty_cluster(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    c = await run_collect(cluster, ("llm",))
    assert (c.deployments, c.servers, c.service_classes, c.problems) == ([], [], [], [])


SECRET = "secret-value"


def summary(d: ManagedDeployment) -> tuple[Any, ...]:
    """What the collector tells the controller about a Deployment (the wire's fields)."""
    return (
        d.namespace,
        d.name,
        d.server,
        d.model,
        d.service_class,
        d.mode,
        d.replicas,
        d.ready_replicas,
        d.accelerator,
        d.max_batch,
        d.min_replicas,
        d.max_replicas,
        None if d.hpa is None else (d.hpa.namespace, d.hpa.name),
        d.cycle,
    )


def keys_of(node: Any) -> set[str]:
    """Every object key anywhere in a JSON document."""
    if isinstance(node, dict):
        return set(node).union(*(keys_of(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(keys_of(v) for v in node))
    return set()


async def test_collection_wire_round_trip_without_container_details(
    seeded: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    # a Deployment whose serving container holds a secret in plain text, last patched by cycle 7
    leaky = triton_deployment(
        "leaky",
        "llm",
        model="mistral_7b",
        server="leaky-mistral",
        annotations={L.CYCLE: "7.c7"},
        load=("30", "0", "256"),
    )
    leaky["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "HF_TOKEN", "value": SECRET}
    )
    seed(seeded, leaky)
    c = await run_collect(cluster, ("llm", "team-b"))
    by_key = {d.key: d for d in c.deployments}
    # the collector itself saw the container (the actuator needs it; the wire does not)
    assert ("HF_TOKEN", SECRET) in by_key["llm/leaky"].env
    assert by_key["llm/leaky"].cycle == "7.c7"

    text = json.dumps(CollectAnswer.of(c).wire())
    wire = json.loads(text)
    # no environment, resources, node selector or image of any container goes on the wire
    assert SECRET not in text
    for leaked in ("HF_TOKEN", BATCH_ENV, "MODEL_NAME", TRITON_IMAGE, "32Gi", "nvidia.com/gpu"):
        assert leaked not in text, leaked
    assert not keys_of(wire) & {"env", "resources", "nodeSelector", "containers", "image"}
    [leaky_wire] = [d for d in wire["deployments"] if d["name"] == "leaky"]
    assert leaky_wire["cycle"] == "7.c7"
    assert leaky_wire["server"] == "leaky-mistral"

    back = CollectAnswer.model_validate(json.loads(text)).domain()
    assert [summary(d) for d in back.deployments] == [summary(d) for d in c.deployments]
    assert (back.servers, back.service_classes, back.problems) == (
        c.servers,
        c.service_classes,
        c.problems,
    )
    assert (back.load_source, back.measurement) == (c.load_source, c.measurement)
    for d in back.deployments:
        assert (d.env, dict(d.resources), dict(d.node_selector)) == ((), {}, {})
    # the wire format is a fixed point: a second trip changes nothing
    assert CollectAnswer.of(back).wire() == wire


# -- optimize on what was collected ---------------------------------------------------------------


def static_docs() -> dict[str, Any]:
    docs = read_static_data(SAMPLES)
    docs.pop("serviceclass-data.json")  # the ServiceClass resources must be used
    return docs


def cli_solution(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    docs: dict[str, Any],
    servers: list[dict[str, Any]],
    classes: list[dict[str, Any]],
) -> dict[str, Any]:
    """``inferno optimize DIR --format json`` on the same data written as files."""
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    (tmp_path / "server-data.json").write_text(json.dumps({"servers": servers}))
    (tmp_path / "serviceclass-data.json").write_text(json.dumps({"serviceClasses": classes}))
    capsys.readouterr()
    assert inferno_main(["optimize", str(tmp_path), "--format", "json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


async def test_optimize_collected_servers_like_the_cli(
    seeded: kmock_lib.KubernetesEmulator,
    cluster: KubeCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    c = await run_collect(cluster, ("llm", "team-b"))
    docs = static_docs()
    result = optimize(docs, c.servers, c.service_classes)
    decisions = {d.server: d for d in result.decisions}
    assert sorted(decisions) == sorted(EXPECTED_SERVERS)

    # the server of an unknown class: not allocated, and the reason names the class
    gold = decisions["llama-gold"]
    assert gold.allocated is False
    assert "'gold'" in gold.reason
    assert "'gold'" in result.solution["unallocated"]["llama-gold"]
    assert result.solution["status"] == "partially-allocated"

    # the others: as `inferno optimize` decides on the same data
    known = [s for s in c.servers if s["class"] != "gold"]
    cli = cli_solution(tmp_path, capsys, docs, known, c.service_classes)
    assert sorted(cli["allocations"]) == sorted(s["name"] for s in known)
    accelerators = {a["name"]: a for a in docs["accelerator-data.json"]["accelerators"]}
    acc_count = {
        (m["name"], m["acc"]): m.get("accCount", 1) for m in docs["model-data.json"]["models"]
    }
    models = {s["name"]: s["model"] for s in c.servers}
    for name, alloc in cli["allocations"].items():
        d = decisions[name]
        assert d.allocated, name
        assert (d.accelerator, d.replicas, d.max_batch) == (
            alloc["accelerator"],
            alloc["numReplicas"],
            alloc["maxBatch"],
        ), name
        acc = accelerators[d.accelerator]
        assert d.node_selector == {"nvidia.com/gpu.product": acc["type"]}
        assert d.gpus_per_replica == acc_count[(models[name], d.accelerator)] * acc.get(
            "multiplicity", 1
        )
        assert d.replicas >= 1
    # the min/max of the mistral Deployment reached the solver
    assert 2 <= decisions["mistral"].replicas <= 6


async def test_invalid_class_is_unknown_to_the_optimizer(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    """A Deployment whose class is only defined by an invalid ServiceClass is not allocated."""
    seed(
        emulator,
        triton_deployment("a", "llm", model="llama_13b", service_class="broken-class"),
        triton_deployment("b", "llm", model="llama_13b", service_class="premium"),
        PREMIUM,
        BROKEN_CLASS,
    )
    c = await run_collect(cluster, ("llm",))
    assert [r["name"] for r in c.service_classes] == ["premium"]
    result = optimize(static_docs(), c.servers, c.service_classes)
    decisions = {d.server: d for d in result.decisions}
    assert decisions["a"].allocated is False
    assert "'broken-class'" in decisions["a"].reason
    assert decisions["b"].allocated is True
