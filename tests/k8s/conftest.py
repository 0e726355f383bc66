"""Fixtures for the Kubernetes-facing tests: realistic managed Deployments and a kmock emulator.

The kmock server runs on the test's event loop, so every test that talks to it is ``async def`` and
calls the (sync) client through ``await asyncio.to_thread(...)`` (see docs/dev/kmock.md).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import kmock as kmock_lib
import pytest

from inferno.cluster import labels as L
from inferno.cluster.inventory import ManagedDeployment
from inferno.cluster.validate import Guards, StaticLimits
from inferno.control.actuate import ActuatorConfig, CycleStamp, Target
from inferno.data import load_system
from inferno.k8s import KubeCluster

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "large"

# kmock resource keys: group/version/plural ("v1/<plural>" for the core group)
DEPLOY = "apps/v1/deployments"
HPA = "autoscaling/v2/horizontalpodautoscalers"
EVENTS = "v1/events"
PODS = "v1/pods"
SC = "inferno.ai/v1alpha1/serviceclasses"

TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-trtllm-python-py3"
SIDECAR_IMAGE = "quay.io/prometheus/statsd-exporter:v0.27.1"
BATCH_ENV = "INFERNO_MAX_BATCH_SIZE"
GPU = "nvidia.com/gpu"
PRODUCT = "nvidia.com/gpu.product"
FAR_FUTURE = 4.0e9  # 2096: a deadline no test reaches


@functools.cache
def sample_limits() -> StaticLimits:
    """What the static data of samples/large allows a decision to say."""
    return StaticLimits.from_system(load_system(SAMPLES))


def actuator_config(
    namespaces: Iterable[str] = (), *, max_replicas: int = 1000, **kw: Any
) -> ActuatorConfig:
    """The actuator's configuration with the sample's static limits."""
    return ActuatorConfig(
        limits=sample_limits(),
        guards=Guards(gpu_node_label=PRODUCT, max_replicas=max_replicas),
        namespaces=tuple(namespaces),
        **kw,
    )


def stamp(sequence: int = 1, cycle: str | None = None, deadline: float = FAR_FUTURE) -> CycleStamp:
    """A cycle stamp (id ``c<sequence>`` unless given) whose deadline is far away."""
    return CycleStamp(cycle or f"c{sequence}", sequence, deadline=deadline)


def targets_of(deployments: Iterable[ManagedDeployment]) -> list[Target]:
    """The actuator's targets for collected Deployments (references only)."""
    return [Target(d.namespace, d.name, d.server) for d in deployments]


def triton_deployment(
    name: str,
    namespace: str,
    *,
    model: str,
    service_class: str | None = "premium",
    server: str | None = None,
    replicas: int = 1,
    accelerator: str | None = None,
    max_batch: int | None = None,
    gpus: str | None = "1",
    gpu_requests: bool = True,
    node_selector: Mapping[str, str] | None = None,
    load: tuple[str, str, str] | None = ("60", "0", "1024"),
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    managed: bool = True,
    sidecar_first: bool = False,
    batch_env: str | None = "8",
    extra_env: bool = True,
) -> dict[str, Any]:
    """A managed Triton Deployment as the API returns it (camelCase dict).

    ``load`` is (rpm, in tokens, out tokens) as labels; ``sidecar_first`` puts a metrics sidecar
    before the Triton container and names Triton with the ``inferno.server/container``
    annotation; ``batch_env`` is the current ``INFERNO_MAX_BATCH_SIZE`` (None: not set), after a
    ``valueFrom`` variable so its index is not 0.
    """
    meta_labels: dict[str, str] = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "inference-server",
    }
    if managed:
        meta_labels[L.MANAGED] = "true"
    meta_labels[L.MODEL] = model
    if service_class is not None:
        meta_labels[L.SERVICE_CLASS] = service_class
    if server is not None:
        meta_labels[L.SERVER_NAME] = server
    if accelerator is not None:
        meta_labels[L.ALLOC_ACCELERATOR] = accelerator
    if max_batch is not None:
        meta_labels[L.ALLOC_MAX_BATCH] = str(max_batch)
    if load is not None:
        rpm, n_in, n_out = load
        meta_labels[L.LOAD_RPM] = rpm
        meta_labels[L.LOAD_IN_TOKENS] = n_in
        meta_labels[L.LOAD_OUT_TOKENS] = n_out
    meta_labels.update(labels or {})
    meta_annotations = {"deployment.kubernetes.io/revision": "3", **(annotations or {})}

    env: list[dict[str, Any]] = []
    if extra_env:
        env += [
            {"name": "MODEL_NAME", "value": model},
            {
                "name": "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}},
            },
        ]
    if batch_env is not None:
        env.append({"name": BATCH_ENV, "value": batch_env})
    if extra_env:
        env.append({"name": "TRITON_LOG_VERBOSE", "value": "0"})
    limits: dict[str, str] = {"cpu": "8", "memory": "32Gi"}
    requests: dict[str, str] = {"cpu": "4", "memory": "32Gi"}
    if gpus is not None:
        limits[GPU] = gpus
        if gpu_requests:
            requests[GPU] = gpus
    triton: dict[str, Any] = {
        "name": "triton",
        "image": TRITON_IMAGE,
        "args": ["tritonserver", "--model-repository=/models", "--http-port=8000"],
        "ports": [
            {"name": "http", "containerPort": 8000, "protocol": "TCP"},
            {"name": "grpc", "containerPort": 8001, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 8002, "protocol": "TCP"},
        ],
        "resources": {"limits": limits, "requests": requests},
        "volumeMounts": [{"name": "models", "mountPath": "/models"}],
        "imagePullPolicy": "IfNotPresent",
    }
    if env:
        triton["env"] = env
    sidecar: dict[str, Any] = {
        "name": "metrics",
        "image": SIDECAR_IMAGE,
        "args": ["--statsd.listen-udp=:9125"],
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
    }
    containers = [sidecar, triton] if sidecar_first else [triton, sidecar]
    if sidecar_first:
        meta_annotations[L.CONTAINER] = "triton"
    selector = {"kubernetes.io/arch": "amd64"} if node_selector is None else dict(node_selector)
    pod_spec: dict[str, Any] = {
        "containers": containers,
        "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": f"{model}-repo"}}],
        "terminationGracePeriodSeconds": 60,
    }
    if selector:
        pod_spec["nodeSelector"] = selector
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": meta_labels,
            "annotations": meta_annotations,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "strategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": pod_spec,
            },
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


def hpa(
    name: str, namespace: str, target: str, *, min_replicas: int, max_replicas: int
) -> dict[str, Any]:
    """An autoscaling/v2 HPA that scales Deployment ``target``."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    },
                }
            ],
        },
    }


def service_class(name: str, priority: int, models: list[dict[str, Any]]) -> dict[str, Any]:
    """A cluster-scoped ServiceClass resource (``spec.models`` entries in CRD field names)."""
    return {
        "apiVersion": "inferno.ai/v1alpha1",
        "kind": "ServiceClass",
        "metadata": {"name": name},
        "spec": {"priority": priority, "models": copy.deepcopy(models)},
    }


def declare_resources(emulator: kmock_lib.KubernetesEmulator) -> None:
    """Make LIST answer (empty) for every resource Inferno reads, even with no objects."""
    verbs = {"get", "list", "watch", "patch", "create", "delete"}
    emulator.resources[DEPLOY] = kmock_lib.ResourceInfo(
        kind="Deployment", singular="deployment", namespaced=True, verbs=verbs
    )
    emulator.resources[HPA] = kmock_lib.ResourceInfo(
        kind="HorizontalPodAutoscaler",
        singular="horizontalpodautoscaler",
        namespaced=True,
        verbs=verbs,
    )
    emulator.resources[SC] = kmock_lib.ResourceInfo(
        kind="ServiceClass",
        singular="serviceclass",
        namespaced=False,  # scope: Cluster in manifests/10-crd-serviceclass.yaml
        shortnames={"isc"},
        subresources={"status"},
        verbs=verbs,
    )
    emulator.resources[EVENTS] = kmock_lib.ResourceInfo(
        kind="Event", singular="event", namespaced=True, verbs={"create", "list", "watch"}
    )
    emulator.resources[PODS] = kmock_lib.ResourceInfo(
        kind="Pod", singular="pod", namespaced=True, verbs={"get", "list", "watch"}
    )


@pytest.fixture
def emulator(kmock: kmock_lib.KubernetesEmulator) -> kmock_lib.KubernetesEmulator:
    """The kmock emulator with Deployments, HPAs, ServiceClasses, Events and Pods declared."""
    declare_resources(kmock)
    return kmock


@pytest.fixture
def cluster(emulator: kmock_lib.KubernetesEmulator) -> KubeCluster:
    """Inferno's real adapter, pointed at the emulator (short timeout: a hang fails fast)."""
    return KubeCluster.at(str(emulator.url), timeout=5.0)


def seed(emulator: kmock_lib.KubernetesEmulator, *objects: dict[str, Any]) -> None:
    """Store objects under their resource key (Deployments, HPAs, ServiceClasses, Pods)."""
    keys = {
        "Pod": PODS,
        "Deployment": DEPLOY,
        "HorizontalPodAutoscaler": HPA,
        "ServiceClass": SC,
    }
    for obj in objects:
        meta = obj["metadata"]
        emulator.objects[keys[obj["kind"]], meta.get("namespace"), meta["name"]] = copy.deepcopy(
            obj
        )


def stored(emulator: kmock_lib.KubernetesEmulator, resource: str, ns: str | None, name: str) -> Any:
    """The emulator's current version of an object as a plain dict."""
    return copy.deepcopy(emulator.objects[resource, ns, name].raw)
