"""Helpers for the service tests: an in-memory cluster, managed Deployments, in-process clients.

:class:`FakeCluster` implements :class:`inferno.k8s.ClusterAPI` over dicts: it applies JSON
patches (so a second cycle sees the first one's changes), records every patch, event and status,
and fails the calls it is told to (``cluster.fail[("patch_deployment", ns, name)] = error``).
"""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from inferno.cluster import labels as L
from inferno.cluster.plan import Event
from inferno.k8s import ClusterError
from inferno.services import actuator, collector, controller, optimizer
from inferno.services.phases import Phases
from inferno.settings import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE = ROOT / "samples" / "large"
NS = "inference"


class FakeCluster:
    """An in-memory ClusterAPI."""

    def __init__(
        self,
        deployments: Iterable[Mapping[str, Any]] = (),
        *,
        hpas: Iterable[Mapping[str, Any]] = (),
        service_classes: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        for d in deployments:
            meta = d["metadata"]
            self.deployments[(meta["namespace"], meta["name"])] = copy.deepcopy(dict(d))
        self.hpas = {(h["metadata"]["namespace"], h["metadata"]["name"]): dict(h) for h in hpas}
        self.service_classes = {c["metadata"]["name"]: dict(c) for c in service_classes}
        self.patches: list[tuple[str, str, str, list[dict[str, Any]]]] = []  # kind, ns, name, ops
        self.events: list[tuple[str, str, Event]] = []
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.fail: dict[tuple[str, ...], ClusterError] = {}
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.config_maps: dict[tuple[str, str], dict[str, Any]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def _call(self, *key: str) -> None:
        self.calls.append(key[0])
        for k in (key, key[:1]):
            if k in self.fail:
                raise self.fail[k]

    def replicas(self, name: str, namespace: str = NS) -> int:
        return int(self.deployments[(namespace, name)]["spec"]["replicas"])

    def labels(self, name: str, namespace: str = NS) -> dict[str, str]:
        return dict(self.deployments[(namespace, name)]["metadata"]["labels"])

    # the ClusterAPI

    def list_managed_deployments(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        self._call("list_managed_deployments")
        return [
            copy.deepcopy(d)
            for (ns, _), d in sorted(self.deployments.items())
            if (not namespaces or ns in namespaces)
            and d["metadata"].get("labels", {}).get(L.MANAGED) == "true"
        ]

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        self._call("get_deployment", namespace, name)
        if (namespace, name) not in self.deployments:
            raise ClusterError(f"deployments.apps {name!r} not found", 404)
        return copy.deepcopy(self.deployments[(namespace, name)])

    def list_hpas(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        self._call("list_hpas")
        return [
            copy.deepcopy(h)
            for (ns, _), h in sorted(self.hpas.items())
            if not namespaces or ns in namespaces
        ]

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self._call("list_pods", namespace)
        return []  # as a cluster without kubelets: no pod ever Ready (the setting applies)

    def list_nodes(self, selector: str) -> list[dict[str, Any]]:
        self._call("list_nodes")
        wanted = dict(p.split("=", 1) for p in selector.split(",") if p)
        return [
            copy.deepcopy(n)
            for _, n in sorted(self.nodes.items())
            if all(n["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]

    def patch_node(self, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        self._call("patch_node", name)
        ops = [dict(op) for op in patch]
        try:
            self.nodes[name] = jsonpatch.apply_patch(self.nodes[name], ops)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ClusterError(f"the patch of node {name} failed: {exc}", 422) from None
        self.patches.append(("node", "", name, ops))

    def list_service_classes(self) -> list[dict[str, Any]]:
        self._call("list_service_classes")
        return [copy.deepcopy(c) for _, c in sorted(self.service_classes.items())]

    def patch_deployment(
        self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]
    ) -> None:
        self._call("patch_deployment", namespace, name)
        ops = [dict(op) for op in patch]
        key = (namespace, name)
        self.deployments[key] = jsonpatch.apply_patch(self.deployments[key], ops)
        self.patches.append(("deployment", namespace, name, ops))

    def patch_hpa(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        self._call("patch_hpa", namespace, name)
        ops = [dict(op) for op in patch]
        self.hpas[(namespace, name)] = jsonpatch.apply_patch(self.hpas[(namespace, name)], ops)
        self.patches.append(("hpa", namespace, name, ops))

    def create_event(self, namespace: str, deployment: str, event: Event) -> None:
        self._call("create_event", namespace, deployment)
        self.events.append((namespace, deployment, event))

    def patch_service_class_status(self, name: str, status: Mapping[str, Any]) -> None:
        self._call("patch_service_class_status", name)
        self.statuses.setdefault(name, []).append(json.loads(json.dumps(status)))

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get_config_map", namespace, name)
        found = self.config_maps.get((namespace, name))
        return None if found is None else copy.deepcopy(found)

    def put_config_map(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        self._call("put_config_map", namespace, name)
        obj = self.config_maps.setdefault(
            (namespace, name), {"metadata": {"name": name, "namespace": namespace}, "data": {}}
        )
        obj["data"].update(dict(data))

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._call("get_lease", namespace, name)
        found = self.leases.get((namespace, name))
        return None if found is None else copy.deepcopy(found)

    def create_lease(self, namespace: str, body: Mapping[str, Any]) -> None:
        name = str(body["metadata"]["name"])
        self._call("create_lease", namespace, name)
        if (namespace, name) in self.leases:
            raise ClusterError(f"leases {name!r} already exists", 409)
        self.leases[(namespace, name)] = copy.deepcopy(dict(body))

    def patch_lease(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        self._call("patch_lease", namespace, name)
        key = (namespace, name)
        if key not in self.leases:
            raise ClusterError(f"leases {name!r} not found", 404)
        try:
            self.leases[key] = jsonpatch.apply_patch(self.leases[key], [dict(op) for op in patch])
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ClusterError(f"the patch of lease {name} failed: {exc}", 422) from None


def make_deployment(
    name: str,
    *,
    model: str,
    service_class: str = "Premium",
    rpm: float = 120.0,
    tokens: float = 1024.0,
    replicas: int = 1,
    accelerator: str = "",
    max_batch: int = 0,
    namespace: str = NS,
    managed: bool = True,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A managed Deployment whose labels carry its load (G0: one token count)."""
    labels = {
        "app": name,
        L.MODEL: model,
        L.SERVICE_CLASS: service_class,
        L.LOAD_RPM: str(rpm),
        L.LOAD_NUM_TOKENS: str(tokens),
    }
    if managed:
        labels[L.MANAGED] = "true"
    if accelerator:
        labels[L.ALLOC_ACCELERATOR] = accelerator
    if max_batch:
        labels[L.ALLOC_MAX_BATCH] = str(max_batch)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": dict(annotations or {}),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "vllm/vllm-openai:latest",
                            "env": [{"name": "MODEL", "value": model}],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ]
                },
            },
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def sample_cluster() -> FakeCluster:
    """Three managed Deployments of the large sample's models (classes from its static data),
    plus one unmanaged Deployment that must never be touched."""
    return FakeCluster(
        [
            make_deployment("llama-7b", model="llama_7b", service_class="Premium"),
            make_deployment("granite-13b", model="granite_13b", service_class="Bronze", rpm=240),
            make_deployment("mistral-7b", model="mistral_7b", service_class="Free", rpm=60),
            make_deployment("other", model="llama_7b", managed=False),
        ]
    )


def service_class(name: str, priority: int, **models: Mapping[str, Any]) -> dict[str, Any]:
    """A ServiceClass resource: ``service_class("premium", 1, llama_7b={"itlMs": 40})``."""
    return {
        "apiVersion": "inferno.ai/v1alpha1",
        "kind": "ServiceClass",
        "metadata": {"name": name, "generation": 1},
        "spec": {"priority": priority, "models": [{"model": m, **t} for m, t in models.items()]},
    }


#: the invoke token of the tests' controllers, and the internal token of their pods
INVOKE = "test-invoke-token-0123456789"
INTERNAL = "test-internal-token-0123456789"
AUTH = {"Authorization": f"Bearer {INVOKE}"}


def settings(**overrides: Any) -> Settings:
    """Settings for tests: the large sample's static data, no periodic cycle, the test token."""
    values: dict[str, Any] = {
        "data_path": str(SAMPLE),
        "control_period": 0.0,
        "invoke_token": INVOKE,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


def client(app: FastAPI, token: str | None = None) -> httpx.AsyncClient:
    """A client of ``app``, presenting ``token`` when given."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


class Stack:
    """The four apps over one fake cluster, the controller's phases going through
    :class:`httpx.ASGITransport` to the real collector, optimizer and actuator apps."""

    def __init__(
        self,
        cluster: FakeCluster,
        cfg: Settings | None = None,
        *,
        optimizer_app: FastAPI | None = None,
        optimizer_client: httpx.AsyncClient | None = None,
        collector_client: httpx.AsyncClient | None = None,
        phases_cls: type[Phases] = Phases,
        write_status: bool = True,
        shutdown_grace: float = 10.0,
    ) -> None:
        self.cluster = cluster
        self.settings = cfg or settings()
        self.registry = CollectorRegistry()
        self.collector = collector.create_app(
            self.settings, api=cluster, token=INTERNAL, registry=self.registry
        )
        self.optimizer = optimizer_app or optimizer.create_app(
            self.settings, token=INTERNAL, registry=self.registry
        )
        self.actuator = actuator.create_app(
            self.settings, api=cluster, token=INTERNAL, registry=self.registry
        )

        def asgi(app: FastAPI, name: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            return httpx.AsyncClient(transport=transport, base_url=f"http://{name}")

        self.phases = phases_cls(
            self.settings,
            token=INTERNAL,
            collector=collector_client or asgi(self.collector, "collector"),
            optimizer=optimizer_client or asgi(self.optimizer, "optimizer"),
            actuator=asgi(self.actuator, "actuator"),
        )
        self.controller = controller.create_app(
            self.settings,
            phases=self.phases,
            api=cluster if write_status else None,
            registry=self.registry,
            shutdown_grace=shutdown_grace,
        )

    def client(self) -> httpx.AsyncClient:
        """A client of the controller with the invoke token."""
        return client(self.controller, INVOKE)

    async def aclose(self) -> None:
        for c in self.phases.clients.values():
            await c.aclose()
