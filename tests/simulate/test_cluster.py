"""The emulated cluster: Deployments mirror the servers, patches reach the simulation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from inferno.cluster import labels as L
from inferno.cluster.inventory import parse_deployment
from inferno.cluster.startup import StartupTime, pod_startup
from inferno.cluster.validate import StaticLimits
from inferno.control import actuate, collect, optimize
from inferno.control.actuate import ActuatorConfig, CycleStamp, Target
from inferno.control.startup import measured_startups
from inferno.data import load_system
from inferno.emulator import Fixed, Poisson, ReplicaState, ServerSpec, Simulation
from inferno.k8s import ClusterError
from inferno.model.profiles import Profile
from inferno.settings import PolicyOptions
from inferno.simulate import EmulatedCluster, load_scenario, run_scenario
from inferno.simulate.cluster import NAMESPACE, deployment_name, replicas_patch
from inferno.system import Load, System

from .scenarios import SAMPLE, small_scenario, write_scenario

SERVER = "Premium-llama3_8b"


@pytest.fixture(scope="module")
def system() -> System:
    return load_system(SAMPLE)


def profile_of(system: System, model: str, acc: str) -> Profile:
    return next(p.profile for p in system.profiles if p.model == model and p.accelerator == acc)


def make(
    system: System, acc: str = "MI300X", replicas: int = 2, batch: int = 19, startup_s: float = 60
) -> tuple[Simulation, EmulatedCluster]:
    spec = ServerSpec(
        profile_of(system, "llama3_8b", acc),
        Poisson(120.0),
        replicas=replicas,
        batch_size=batch,
        output_tokens=Fixed(1024),
        startup_delay_ms=startup_s * 1000.0,
    )
    sim = Simulation({SERVER: spec}, seed=3)
    cluster = EmulatedCluster(
        sim, system, {SERVER: (acc, replicas, batch)}, startup_delay_s=startup_s
    )
    return sim, cluster


def test_deployments_carry_inferno_labels(system: System) -> None:
    sim, cluster = make(system)
    sim.run_until(1_000.0)
    (obj,) = cluster.list_managed_deployments([])
    assert obj["metadata"]["name"] == deployment_name(SERVER) == "premium-llama3-8b"
    labels = obj["metadata"]["labels"]
    assert labels[L.MANAGED] == "true" and labels[L.SERVER_NAME] == SERVER
    assert labels[L.ALLOC_ACCELERATOR] == "MI300X" and labels[L.ALLOC_MAX_BATCH] == "19"
    d = parse_deployment(obj)
    assert (d.server, d.model, d.service_class) == (SERVER, "llama3_8b", "Premium")
    assert (d.replicas, d.ready_replicas, d.accelerator, d.max_batch) == (2, 2, "MI300X", 19)
    assert obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "nvidia.com/gpu": "1"
    }
    assert cluster.list_managed_deployments(["elsewhere"]) == []


def test_replica_patches_reach_the_simulation(system: System) -> None:
    sim, cluster = make(system)
    sim.run_until(10_000.0)
    cluster.patch_deployment(NAMESPACE, deployment_name(SERVER), replicas_patch(5))
    assert sim.replica_count(SERVER) == 5 and cluster.replicas(SERVER) == 5
    state = sim.state(SERVER)
    assert (state.ready, state.starting) == (2, 3)  # new replicas start up for 60 s
    (obj,) = cluster.list_managed_deployments([NAMESPACE])
    assert obj["status"]["readyReplicas"] == 2 and obj["spec"]["replicas"] == 5
    sim.run_until(71_000.0)
    assert sim.state(SERVER).ready == 5
    cluster.patch_deployment(NAMESPACE, deployment_name(SERVER), replicas_patch(1))
    assert sim.replica_count(SERVER) == 1
    assert [(c.replicas_before, c.replicas_after) for c in cluster.changes] == [(2, 5), (5, 1)]
    # a patch that changes nothing is not a change
    cluster.patch_deployment(NAMESPACE, deployment_name(SERVER), replicas_patch(1))
    assert len(cluster.changes) == 2


def test_a_new_accelerator_is_a_rolling_update(system: System) -> None:
    sim, cluster = make(system)
    sim.run_until(30_000.0)
    patch: list[dict[str, Any]] = [
        {"op": "replace", "path": "/spec/replicas", "value": 1},
        {"op": "add", "path": "/metadata/labels/" + L.ALLOC_ACCELERATOR, "value": "2xMI300X"},
        {"op": "add", "path": "/metadata/labels/" + L.ALLOC_MAX_BATCH, "value": "38"},
    ]
    cluster.patch_deployment(NAMESPACE, deployment_name(SERVER), patch)
    assert cluster.config(SERVER).accelerator == "2xMI300X" and cluster.batch(SERVER) == 38
    assert cluster.config_at(SERVER, 10_000.0).accelerator == "MI300X"
    new = [r for r in sim.replicas(SERVER) if r.created_at == 30_000.0]
    assert len(new) == 1 and new[0].batch_size == 38
    assert new[0].profile == profile_of(system, "llama3_8b", "2xMI300X")
    sim.run_until(95_000.0)
    old = [r for r in sim.replicas(SERVER) if r.created_at == 0.0]
    assert all(r.state in (ReplicaState.DRAINING, ReplicaState.GONE) for r in old)
    assert cluster.gpus_per_replica("llama3_8b", "2xMI300X") == 2
    assert cluster.changes[-1].config_changed


def test_bad_patches_are_cluster_errors(system: System) -> None:
    _, cluster = make(system)
    with pytest.raises(ClusterError) as info:
        cluster.patch_deployment(NAMESPACE, "nope", replicas_patch(1))
    assert info.value.status == 404
    bad_acc = [{"op": "add", "path": "/metadata/labels/" + L.ALLOC_ACCELERATOR, "value": "TPU"}]
    with pytest.raises(ClusterError, match="no profile"):
        cluster.patch_deployment(NAMESPACE, deployment_name(SERVER), bad_acc)
    with pytest.raises(ClusterError, match="invalid patch"):
        cluster.patch_deployment(
            NAMESPACE, deployment_name(SERVER), [{"op": "remove", "path": "/no/such"}]
        )
    assert cluster.replicas(SERVER) == 2 and cluster.changes == []


def test_the_control_cycle_runs_against_it(system: System) -> None:
    """collect → optimize → actuate, the cluster's own code, scales the emulated server."""
    sim, cluster = make(system, replicas=1)
    sim.run_until(30_000.0)
    docs = {
        name: json.loads((SAMPLE / name).read_text())
        for name in ("accelerator-data.json", "model-data.json", "serviceclass-data.json")
    }
    found = collect(cluster, [NAMESPACE], loads={SERVER: Load(1200.0, 0.0, 1024.0)})
    assert found.servers[0]["currentAlloc"]["load"]["arrivalRate"] == 1200.0
    result = optimize(docs, found.servers, found.service_classes)
    (decision,) = result.decisions
    targets = [Target(d.namespace, d.name, d.server) for d in found.deployments]
    cfg = ActuatorConfig(limits=StaticLimits.from_system(cluster.system))
    report = actuate(cluster, targets, result.decisions, cfg, CycleStamp("c1", 1, math.inf))
    assert report.ok
    assert cluster.replicas(SERVER) == decision.replicas > 1
    assert sim.replica_count(SERVER) == decision.replicas
    assert cluster.config(SERVER).accelerator == decision.accelerator


def test_its_pods_show_the_start_up_the_collector_measures(system: System) -> None:
    """The replicas are pods, scheduled when created and Ready when ready: collect measures the
    emulator's start-up delay exactly as it would a cluster's (the replicas running at t = 0
    started that long before)."""
    sim, cluster = make(system, startup_s=45.0)
    sim.run_until(10_000.0)
    selector = "app=" + deployment_name(SERVER)
    (d,) = collect(cluster, [NAMESPACE]).deployments
    assert d.startup == StartupTime(45.0, 2)
    cluster.patch_deployment(NAMESPACE, deployment_name(SERVER), replicas_patch(5))
    pods = cluster.list_pods(NAMESPACE, selector)
    assert len(pods) == 5
    assert [pod_startup(p) is None for p in pods] == [False, False, True, True, True]  # starting
    sim.run_until(56_000.0)  # the new ones Ready at 55 s
    (d,) = collect(cluster, [NAMESPACE]).deployments
    assert d.startup == StartupTime(45.0, 5)
    assert cluster.list_pods("elsewhere", selector) == []
    assert cluster.list_pods(NAMESPACE, "app=nope") == []
    # measuring off: no pod is read, the setting applies
    (d,) = collect(cluster, [NAMESPACE], policy=PolicyOptions(measure_startup=False)).deployments
    assert d.startup is None


def test_simulate_measured_is_the_setting_when_they_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inferno policy of a simulation measures its servers' start-up (60 s, the scenario's)
    and, that being the setting too, decides exactly as the setting does: the same replicas
    every period, the same changes."""
    from inferno.simulate import policies

    seen: list[dict[str, float]] = []

    def spy(deployments: Any) -> dict[str, float]:
        seen.append(real(deployments))
        return seen[-1]

    real = measured_startups
    monkeypatch.setattr(policies, "measured_startups", spy)
    doc = small_scenario(
        duration=150,
        policies=["inferno", {"inferno": {"label": "setting", "measure_startup": False}}],
    )
    result = run_scenario(load_scenario(write_scenario(tmp_path, doc)))
    measured, setting = result.runs
    periods = len(result.scenario.period_ends_ms) - 1  # the policy acts after all but the last
    servers = set(result.initial)
    assert seen[:periods] == [dict.fromkeys(servers, 60.0)] * periods  # measured, each period
    assert seen[periods:] == [{}] * periods  # measuring off: nothing
    assert measured.cluster.changes and measured.cluster.changes == setting.cluster.changes
    assert [(r.replicas, r.accelerator, r.batch) for r in measured.rows] == [
        (r.replicas, r.accelerator, r.batch) for r in setting.rows
    ]
