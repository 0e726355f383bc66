"""The start-up time a cycle's horizon takes, measured from the pods kmock holds: the real
adapter lists them, the real collector app measures them, the answer crosses the wire to the
controller's cycle and its policy."""

from __future__ import annotations

import datetime as dt
from typing import Any

import kmock as kmock_lib
from prometheus_client import CollectorRegistry

from inferno.cluster import labels as L
from inferno.control.cycle import CycleReport, run_cycle
from inferno.control.policy import Policy
from inferno.k8s import KubeCluster
from inferno.services import actuator, collector, optimizer
from inferno.services.phases import Phases
from inferno.settings import Settings

from .conftest import DEPLOY, PODS, SAMPLES, seed, stored, triton_deployment

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
TOKEN = "test-internal-token-0123456789"
SERVER = "premium-llama-13b"
POD_LABELS = {"app.kubernetes.io/name": "llama", "pod-template-hash": "5d9c"}


def iso(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def pod(
    name: str, scheduled: float, ready: float | None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A pod of the llama Deployment, scheduled and (unless None) Ready at these seconds after
    T0; a pod never Ready is Pending with Ready False, as on an API server without kubelets."""
    ready_cond = (
        {"type": "Ready", "status": "True", "lastTransitionTime": iso(ready)}
        if ready is not None
        else {"type": "Ready", "status": "False", "lastTransitionTime": iso(scheduled)}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "llm",
            "labels": labels or dict(POD_LABELS),
            "creationTimestamp": iso(scheduled - 30.0),
            "ownerReferences": [{"kind": "ReplicaSet", "name": "llama-5d9c", "controller": True}],
        },
        "spec": {"containers": [{"name": "triton", "image": "triton"}]},
        "status": {
            "phase": "Running" if ready is not None else "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": iso(scheduled)},
                ready_cond,
            ],
            "containerStatuses": [
                {"name": "triton", "ready": ready is not None, "restartCount": 0}
            ],
        },
    }


def llama(rpm: int) -> dict[str, Any]:
    return triton_deployment(
        "llama",
        "llm",
        model="llama_13b",
        server=SERVER,
        replicas=2,
        accelerator="A100",
        max_batch=32,
        load=(str(rpm), "0", "1024"),
    )


async def two_cycles(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster, **env: Any
) -> tuple[CycleReport, CycleReport]:
    """Two cycles, 60 s apart on the policy's clock, the load label rising from 120 to 240."""
    settings = Settings.from_env(
        {}, data_path=str(SAMPLES), control_period=0.0, watch_namespaces=("llm",), **env
    )
    registry = CollectorRegistry()
    phases = Phases.in_process(
        settings,
        token=TOKEN,
        collector=collector.create_app(settings, api=cluster, token=TOKEN, registry=registry),
        optimizer=optimizer.create_app(settings, token=TOKEN, registry=registry),
        actuator=actuator.create_app(settings, api=cluster, token=TOKEN, registry=registry),
    )
    t = [1000.0]
    policy = Policy.from_settings(settings, lambda: t[0])
    try:
        first = await run_cycle(phases, policy=policy)
        rising = stored(emulator, DEPLOY, "llm", "llama")
        rising["metadata"]["labels"][L.LOAD_RPM] = "240"
        seed(emulator, rising)
        t[0] += 60.0
        second = await run_cycle(phases, policy=policy)
    finally:
        await phases.aclose()
    return first, second


async def test_ready_pods_set_the_start_up_of_the_horizon(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    seed(
        emulator,
        llama(120),
        pod("llama-5d9c-a", scheduled=0.0, ready=420.0),  # 420 s: the slowest recent
        pod("llama-5d9c-b", scheduled=600.0, ready=700.0),
        pod("llama-5d9c-c", scheduled=800.0, ready=None),  # still starting: no sample
        # another Deployment's pod in the namespace (kmock ignores the label query)
        pod("granite-1", scheduled=0.0, ready=3000.0, labels={"app.kubernetes.io/name": "x"}),
    )
    measured = await two_cycles(emulator, cluster)
    for report in measured:
        assert report.forecasts[SERVER]["startup"] == 420.0, report.forecasts
        assert report.forecasts[SERVER]["startupSource"] == "measured"
        assert not [p for p in report.problems if "pods" in p], report.problems
    # the adapter asked for the Deployment's own pods, in its namespace
    listed = [r for r in emulator if r.method.upper() == "GET" and "/pods" in str(r.url)]
    assert listed and all(str(r.url.path) == "/api/v1/namespaces/llm/pods" for r in listed)
    assert all(r.url.query.get("labelSelector") == "app.kubernetes.io/name=llama" for r in listed)


async def test_a_longer_measured_start_up_looks_further_along_a_rise(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    seed(emulator, llama(120), pod("llama-5d9c-a", scheduled=0.0, ready=600.0))
    _, measured = await two_cycles(emulator, cluster)
    # the same cluster with measuring off: the setting's 60 s
    _, setting = await two_cycles(emulator, cluster, measure_startup=False)
    assert setting.forecasts[SERVER]["startupSource"] == "setting"
    assert setting.forecasts[SERVER]["startup"] == 60.0
    assert measured.forecasts[SERVER]["startup"] == 600.0
    assert measured.forecasts[SERVER]["ahead"] > setting.forecasts[SERVER]["ahead"]
    assert measured.forecasts[SERVER]["target"] > setting.forecasts[SERVER]["target"]


async def test_pods_never_ready_leave_the_setting(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    seed(
        emulator,
        llama(120),
        pod("llama-5d9c-a", scheduled=0.0, ready=None),
        pod("llama-5d9c-b", scheduled=0.0, ready=None),
    )
    first, _ = await two_cycles(emulator, cluster, startup_time=90.0)
    assert first.forecasts[SERVER]["startup"] == 90.0
    assert first.forecasts[SERVER]["startupSource"] == "setting"


async def test_pods_not_readable_leave_the_setting_and_say_so(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    del emulator.resources[PODS]  # as an API server answering 404 (or an old ClusterRole, 403)
    seed(emulator, llama(120))
    first, _ = await two_cycles(emulator, cluster)
    assert first.forecasts[SERVER]["startupSource"] == "setting"
    [problem] = [p for p in first.problems if "pods" in p]
    assert "the start-up setting applies to 1 Deployment(s): llm/llama: list pods in llm" in (
        problem
    )
