"""End to end against a real cluster: install, one control cycle out of cluster, check every sample
Deployment against the decisions, tighten the premium class, decide again, check it moved.

Runs only when ``KUBECONFIG`` is set (and ``kubectl`` is on PATH); see ``conftest.py``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from typing import Any

import pytest

from inferno.cluster import labels as L
from inferno.cluster.inventory import ManagedDeployment
from inferno.cluster.plan import steady_batch
from inferno.control import actuate
from inferno.control.actuate import Target
from inferno.control.cycle import new_stamp
from inferno.k8s import connect

from .conftest import SERVERS_NS, Controller, Cycle, Installed, Kubectl, actuator_config

pytestmark = pytest.mark.skipif(
    not os.environ.get("KUBECONFIG"),
    reason="end-to-end: set KUBECONFIG to a disposable cluster (kind, minikube) to run",
)

GPU = "nvidia.com/gpu"
BATCH_ENV = "INFERNO_MAX_BATCH_SIZE"
HEADROOM = 0.25  # INFERNO_HPA_HEADROOM's default
BATCH_TOLERANCE = 0.25  # INFERNO_BATCH_TOLERANCE's default
#: the solution's "bound" -> the ServiceClass field of that target
TARGET_OF_BOUND = {"itl": "itlMs", "ttft": "ttftMs", "ttw": "ttwMs", "latency": "latencyMs"}


def wanted_replicas(d: ManagedDeployment, decided: int) -> int:
    floor = d.min_replicas
    r = max(decided, floor, 1 if floor > 0 else 0)
    return r if d.max_replicas is None else min(r, d.max_replicas)


def check_cycle(kubectl: Kubectl, installed: Installed, cycle: Cycle) -> dict[str, dict[str, Any]]:
    """Every managed sample Deployment carries its decision; returns the live objects."""
    assert cycle.collection.deployments, "the cycle found no managed Deployment"
    assert cycle.collection.problems == [], cycle.collection.problems
    live_all: dict[str, dict[str, Any]] = {}
    for d in cycle.collection.deployments:
        dec = cycle.decisions[d.server]
        assert dec.allocated, f"{d.server}: {dec.reason}"
        # the actuator keeps the running batch when the decision barely moves it
        dec = steady_batch(d.accelerator, d.max_batch, dec, BATCH_TOLERANCE)
        live = kubectl.json("get", "deployment", d.name, "-n", d.namespace)
        live_all[d.name] = live
        where = f"{d.namespace}/{d.name}"

        labels = live["metadata"]["labels"]
        assert labels[L.ALLOC_ACCELERATOR] == dec.accelerator, where
        assert labels[L.ALLOC_MAX_BATCH] == str(dec.max_batch), where
        assert labels[L.MANAGED] == "true" and labels[L.MODEL] == d.model, where

        pod = live["spec"]["template"]["spec"]
        selector = pod.get("nodeSelector") or {}
        for key, value in dec.node_selector.items():
            assert selector.get(key) == value, (where, selector)
        for key, value in d.node_selector.items():  # other selectors are kept
            if key not in dec.node_selector:
                assert selector.get(key) == value, (where, selector)

        container = pod["containers"][d.container]
        assert container["name"] == d.container_name, where
        resources = container.get("resources") or {}
        assert str(resources["limits"][GPU]) == str(dec.gpus_per_replica), (where, resources)
        if GPU in (resources.get("requests") or {}):
            assert str(resources["requests"][GPU]) == str(dec.gpus_per_replica), where
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        assert env.get(BATCH_ENV) == str(dec.max_batch), (where, env)
        applied = installed.deployments[d.name]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == applied[d.container]["image"], where
        assert [c["name"] for c in pod["containers"]] == [c["name"] for c in applied], where

        replicas = wanted_replicas(d, dec.replicas)
        if d.hpa is None:
            assert live["spec"]["replicas"] == replicas, where
        else:
            h = kubectl.json("get", "hpa", d.hpa.name, "-n", d.namespace)
            lo = max(replicas, 1)
            top = max(lo, math.ceil(replicas * (1 + HEADROOM)))
            if d.max_replicas is not None:
                top = max(lo, min(top, d.max_replicas))
            assert (h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) == (lo, top), where

        changed = (d.accelerator, d.max_batch) != (dec.accelerator, dec.max_batch) or (
            d.hpa is None and d.replicas != replicas
        )
        if changed:
            events = kubectl.json(
                "get",
                "events",
                "-n",
                d.namespace,
                "--field-selector",
                f"involvedObject.name={d.name},reason=InfernoScaled",
            )["items"]
            assert events, f"no InfernoScaled event on {where}"
    return live_all


def tighten(kubectl: Kubectl, class_name: str, model: str, bound: str) -> tuple[str, float]:
    """Divide the binding target of ``model`` in ``class_name`` by 5 (a merge patch replaces the
    whole ``spec.models`` list, so the list is sent whole)."""
    sc = kubectl.json("get", "serviceclass", class_name)
    models = sc["spec"]["models"]
    entry = next(m for m in models if m["model"] == model)
    key = TARGET_OF_BOUND.get(bound, "ttwMs")
    if key not in entry:
        key = next(k for k in ("ttwMs", "itlMs", "ttftMs", "latencyMs") if k in entry)
    entry[key] = entry[key] / 5
    patch = json.dumps({"spec": {"models": models}})
    kubectl.run("patch", "serviceclass", class_name, "--type", "merge", "-p", patch)
    after = kubectl.json("get", "serviceclass", class_name)
    got = next(m for m in after["spec"]["models"] if m["model"] == model)
    assert got[key] == entry[key]
    return key, entry[key]


def test_control_cycle_sizes_the_samples_and_follows_a_class_change(
    kubectl: Kubectl, installed: Installed, controller: Controller
) -> None:
    first = controller.run_cycle()
    live = check_cycle(kubectl, installed, first)

    premium = next((d for d in first.collection.deployments if d.service_class == "premium"), None)
    assert premium is not None, "services/yamls/ has no Deployment of class premium"
    before = first.decisions[premium.server]
    before_replicas = live[premium.name]["spec"].get("replicas")

    tighten(kubectl, "premium", premium.model, before.bound)
    second = controller.run_cycle()
    live = check_cycle(kubectl, installed, second)

    after = second.decisions[premium.server]
    assert after.allocated, after.reason
    moved = (after.accelerator, after.gpus_per_replica) != (
        before.accelerator,
        before.gpus_per_replica,
    )
    rose = after.replicas > before.replicas
    assert moved or rose, (before, after)
    labels = live[premium.name]["metadata"]["labels"]
    assert labels[L.ALLOC_ACCELERATOR] == after.accelerator
    if premium.hpa is None and rose:
        assert live[premium.name]["spec"]["replicas"] > (before_replicas or 0)


def _victim(kubectl: Kubectl) -> None:
    """An unmanaged Deployment in the servers' namespace (3 replicas)."""
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "victim", "namespace": SERVERS_NS, "labels": {"app": "victim"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "victim"}},
            "template": {
                "metadata": {"labels": {"app": "victim"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    kubectl.run("apply", "-f", "-", stdin=json.dumps(body))


def test_a_foreign_deployment_is_refused_with_the_service_account(
    kubectl: Kubectl, installed: Installed, controller: Controller
) -> None:
    """The actuator, acting as the manifests' ServiceAccount, refuses an unmanaged Deployment
    named as a target (and the API server's admission policy refuses a direct patch)."""
    if controller.kubeconfig is None:
        pytest.skip("no ServiceAccount kubeconfig")
    _victim(kubectl)
    try:
        api = connect(kubeconfig=str(controller.kubeconfig))
        decision = next(iter(controller.run_cycle().decisions.values()))
        scale_to_zero = replace(decision, server="victim", replicas=0)
        report = actuate(
            api,
            [Target(SERVERS_NS, "victim", "victim")],
            [scale_to_zero],
            actuator_config(),
            new_stamp(60),
        )
        (outcome,) = report.outcomes
        assert outcome.kind == "refused", outcome
        assert "inferno.server.managed=true" in outcome.error
        live = kubectl.json("get", "deployment", "victim", "-n", SERVERS_NS)
        assert live["spec"]["replicas"] == 3
        direct = kubectl.run(
            "--kubeconfig",
            str(controller.kubeconfig),
            "-n",
            SERVERS_NS,
            "scale",
            "deployment/victim",
            "--replicas=0",
            check=False,
        )
        assert direct.returncode != 0, "the ServiceAccount scaled an unmanaged Deployment"
        assert (
            kubectl.json("get", "deployment", "victim", "-n", SERVERS_NS)["spec"]["replicas"] == 3
        )
    finally:
        kubectl.run(
            "delete", "deployment", "victim", "-n", SERVERS_NS, "--ignore-not-found", check=False
        )


def test_a_poisoned_label_leaves_the_other_servers_decided(
    kubectl: Kubectl, installed: Installed, controller: Controller
) -> None:
    name = next(iter(installed.deployments))
    kubectl.run(
        "label",
        "deployment",
        name,
        "-n",
        SERVERS_NS,
        "--overwrite",
        f"{L.LOAD_OUT_TOKENS}=1e308",
    )
    try:
        cycle = controller.run_cycle_allowing_failures()
        decisions = cycle.decisions
        poisoned = [d for d in decisions.values() if not d.allocated]
        assert poisoned, "the poisoned server was decided"
        others = [d for d in decisions.values() if d.allocated]
        assert others, "no other server was decided"
    finally:
        original = installed.deployments[name]["metadata"]["labels"].get(L.LOAD_OUT_TOKENS)
        value = f"{L.LOAD_OUT_TOKENS}={original}" if original else f"{L.LOAD_OUT_TOKENS}-"
        kubectl.run("label", "deployment", name, "-n", SERVERS_NS, "--overwrite", value)


def relabel(kubectl: Kubectl, deployment: str, label: str) -> None:
    kubectl.run("label", "deployment", deployment, "-n", SERVERS_NS, "--overwrite", label)


def test_a_step_limit_clamps_a_surge_and_says_so(
    kubectl: Kubectl, installed: Installed, controller: Controller
) -> None:
    """The controller, restarted with a step limit of one replica per cycle, meets a server
    whose load label jumped ×8: the decision is clamped to one more replica, the report lists
    the clamp, the Deployment gets exactly that, and its Event names the rule."""
    if controller.proc is None:
        pytest.skip("needs `inferno run --all-in-one` (the control policy runs in the controller)")
    first = controller.run_cycle()
    check_cycle(kubectl, installed, first)
    target = next(
        d for d in first.collection.deployments if d.hpa is None and d.max_replicas is None
    )
    live = kubectl.json("get", "deployment", target.name, "-n", SERVERS_NS)
    before = int(live["spec"]["replicas"])
    original = live["metadata"]["labels"][L.LOAD_RPM]
    rpm = float(original)
    limits = {"INFERNO_MAX_SCALE_UP_PODS": "1", "INFERNO_MAX_SCALE_UP_PERCENT": "0"}
    try:
        controller.restart(limits)
        relabel(kubectl, target.name, f"{L.LOAD_RPM}={rpm * 8:g}")
        cycle = controller.run_cycle()
        check_cycle(kubectl, installed, cycle)
        clamps = [c for c in cycle.report.get("clamps") or [] if c["server"] == target.server]
        decided = cycle.decisions[target.server]
        if decided.accelerator == target.accelerator:
            assert [c["rule"] for c in clamps] == ["max-scale-up"], cycle.report.get("clamps")
            assert clamps[0]["got"] == before + 1 < clamps[0]["wanted"]
            live = kubectl.json("get", "deployment", target.name, "-n", SERVERS_NS)
            assert live["spec"]["replicas"] == before + 1
            events = kubectl.json(
                "get",
                "events",
                "-n",
                SERVERS_NS,
                "--field-selector",
                f"involvedObject.name={target.name},reason=InfernoScaled",
            )["items"]
            assert any("max-scale-up" in e.get("message", "") for e in events), events
        else:  # a new GPU type is not a step of the same replicas: no step limit applies
            assert all(c["rule"] != "max-scale-up" for c in clamps), clamps
    finally:
        relabel(kubectl, target.name, f"{L.LOAD_RPM}={original}")
        controller.restart({})


def test_a_mig_slice_decision_passes_a_server_side_dry_run(
    kubectl: Kubectl, installed: Installed
) -> None:
    """A Deployment decided onto a MIG slice carries the slice's resource limit and node labels
    and no whole-GPU limit, and the API server accepts it (a dry run: nothing changes)."""
    from inferno.cluster.inventory import parse_deployment
    from inferno.cluster.plan import Decision, PlanSettings, plan
    from inferno.data._json import Node
    from inferno.data.partition_rows import partition_accelerators
    from inferno.system import Accelerator

    name = sorted(installed.deployments)[0]
    base = Accelerator("A100-80GB", "A100-80GB", cost=40.0)
    row = Node({"name": "A100-80GB", "partitions": {"mig": ["3g.40gb"]}}, "e2e", "$")
    [mig] = partition_accelerators(row, base)
    d = parse_deployment(kubectl.json("get", "deployment", "-n", SERVERS_NS, name))
    dec = Decision(
        server=d.server,
        accelerator=mig.name,
        replicas=max(d.replicas, 1),
        max_batch=max(d.max_batch, 1),
        gpus_per_replica=1,
        node_selector=dict(mig.node_selector),
    )
    [action] = plan([d], [dec], PlanSettings(gpu_resource=mig.resource or GPU))
    out = json.loads(
        kubectl.run(
            "patch", "deployment", name, "-n", SERVERS_NS, "--type", "json",
            "-p", json.dumps([dict(op) for op in action.patch]),
            "--dry-run=server", "-o", "json",
        ).stdout
    )  # fmt: skip
    spec = out["spec"]["template"]["spec"]
    limits = spec["containers"][d.container]["resources"]["limits"]
    assert limits.get("nvidia.com/mig-3g.40gb") == "1" and GPU not in limits
    assert spec["nodeSelector"]["nvidia.com/mig.strategy"] == "mixed"
    live = kubectl.json("get", "deployment", "-n", SERVERS_NS, name)
    live_res = live["spec"]["template"]["spec"]["containers"][d.container].get("resources") or {}
    assert "nvidia.com/mig-3g.40gb" not in (live_res.get("limits") or {})  # nothing changed
