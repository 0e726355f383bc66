"""The ClusterAPI over the official ``kubernetes`` client (sync)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

import kubernetes
import urllib3
import yaml
from kubernetes.client.exceptions import ApiException

from ..cluster.labels import MANAGED, MANAGED_SELECTOR
from ..cluster.plan import Event
from ._api import SERVICE_CLASS_GROUP, SERVICE_CLASS_PLURAL, SERVICE_CLASS_VERSION, ClusterError

__all__ = ["KubeCluster", "connect"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def connect(kubeconfig: str | None = None, context: str | None = None) -> KubeCluster:
    """A client from the pod's service account when in a cluster, else from a kubeconfig."""
    config = kubernetes.client.Configuration()
    config_module: Any = kubernetes.config
    try:
        if kubeconfig is not None:
            raise kubernetes.config.ConfigException("a kubeconfig was given")
        config_module.load_incluster_config(client_configuration=config)
    except kubernetes.config.ConfigException:
        try:
            config_module.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=config
            )
        except (kubernetes.config.ConfigException, OSError) as exc:
            where = f" in kubeconfig {kubeconfig}" if kubeconfig else ""
            raise ClusterError(f"no cluster credentials{where}: {exc}") from None
        except (yaml.YAMLError, TypeError, ValueError, KeyError, AttributeError) as exc:
            # not YAML, or not a kubeconfig's shape: the client's loader fails on its own terms
            where = f"kubeconfig {kubeconfig}" if kubeconfig else "the kubeconfig"
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ClusterError(f"{where} is not a usable kubeconfig: {detail}") from None
    return KubeCluster(kubernetes.client.ApiClient(config))


class KubeCluster:
    """Implements :class:`~inferno.k8s.ClusterAPI`."""

    def __init__(self, api_client: kubernetes.client.ApiClient, timeout: float = 30.0) -> None:
        self._client: Any = api_client
        self._apps: Any = kubernetes.client.AppsV1Api(api_client)
        self._autoscaling: Any = kubernetes.client.AutoscalingV2Api(api_client)
        self._core: Any = kubernetes.client.CoreV1Api(api_client)
        self._custom: Any = kubernetes.client.CustomObjectsApi(api_client)
        self._coordination: Any = kubernetes.client.CoordinationV1Api(api_client)
        self._timeout = timeout

    @classmethod
    def at(cls, host: str, timeout: float = 30.0) -> KubeCluster:
        """A client for an unauthenticated API server at ``host`` (tests, ``kubectl proxy``)."""
        config = kubernetes.client.Configuration()
        config.host = host.rstrip("/")
        return cls(kubernetes.client.ApiClient(config), timeout)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ApiException as exc:
            raise ClusterError(f"{what}: HTTP {exc.status} {_message(exc)}", exc.status) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"{what}: the API server did not answer ({exc})") from None

    def _items(self, what: str, fn: Callable[[], Any]) -> list[dict[str, Any]]:
        result = self._call(what, fn)
        if isinstance(result, dict):
            items = result.get("items") or []
        else:
            items = self._client.sanitize_for_serialization(result.items) or []
        return [dict(i) for i in items]

    def list_managed_deployments(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        apps, t = self._apps, self._timeout
        if not namespaces:
            found = self._items(
                "list deployments",
                lambda: apps.list_deployment_for_all_namespaces(
                    label_selector=MANAGED_SELECTOR, _request_timeout=t
                ),
            )
        else:
            found = []
            for ns in namespaces:
                found += self._items(
                    f"list deployments in {ns}",
                    lambda ns=ns: apps.list_namespaced_deployment(  # type: ignore[misc]
                        ns, label_selector=MANAGED_SELECTOR, _request_timeout=t
                    ),
                )
        # the selector again, client-side: not every API server (or emulator) applies it
        return [
            d
            for d in found
            if ((d.get("metadata") or {}).get("labels") or {}).get(MANAGED) == "true"
        ]

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        result = self._call(
            f"get deployment {namespace}/{name}",
            lambda: self._apps.read_namespaced_deployment(
                name, namespace, _request_timeout=self._timeout
            ),
        )
        found: dict[str, Any] = (
            dict(result)
            if isinstance(result, dict)
            else self._client.sanitize_for_serialization(result)
        )
        return found

    def list_hpas(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        api, t = self._autoscaling, self._timeout
        if not namespaces:
            return self._items(
                "list HPAs",
                lambda: api.list_horizontal_pod_autoscaler_for_all_namespaces(_request_timeout=t),
            )
        out: list[dict[str, Any]] = []
        for ns in namespaces:
            out += self._items(
                f"list HPAs in {ns}",
                lambda ns=ns: api.list_namespaced_horizontal_pod_autoscaler(  # type: ignore[misc]
                    ns, _request_timeout=t
                ),
            )
        return out

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        # raw JSON: the client's models would parse every field of every pod (and reject a pod
        # whose status lacks one they require); only the conditions are read
        response = self._call(
            f"list pods in {namespace}",
            lambda: self._core.list_namespaced_pod(
                namespace,
                label_selector=selector,
                _request_timeout=self._timeout,
                _preload_content=False,
            ),
        )
        try:
            found = json.loads(response.data)
        except ValueError as exc:
            raise ClusterError(f"list pods in {namespace}: malformed answer ({exc})") from None
        items = found.get("items") if isinstance(found, dict) else None
        return [dict(i) for i in items or [] if isinstance(i, dict)]

    def list_nodes(self, selector: str) -> list[dict[str, Any]]:
        # raw JSON, as for pods: only the names and labels are read
        response = self._call(
            f"list nodes {selector}",
            lambda: self._core.list_node(
                label_selector=selector, _request_timeout=self._timeout, _preload_content=False
            ),
        )
        try:
            found = json.loads(response.data)
        except ValueError as exc:
            raise ClusterError(f"list nodes: malformed answer ({exc})") from None
        items = found.get("items") if isinstance(found, dict) else None
        return [dict(i) for i in items or [] if isinstance(i, dict)]

    def patch_node(self, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        self._call(
            f"patch node {name}",
            lambda: self._core.patch_node(
                name, [dict(op) for op in patch], _request_timeout=self._timeout
            ),
        )

    def list_service_classes(self) -> list[dict[str, Any]]:
        return self._items(
            "list service classes",
            lambda: self._custom.list_cluster_custom_object(
                SERVICE_CLASS_GROUP,
                SERVICE_CLASS_VERSION,
                SERVICE_CLASS_PLURAL,
                _request_timeout=self._timeout,
            ),
        )

    def patch_deployment(
        self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]
    ) -> None:
        # a list body makes the client send application/json-patch+json
        self._call(
            f"patch deployment {namespace}/{name}",
            lambda: self._apps.patch_namespaced_deployment(
                name, namespace, [dict(op) for op in patch], _request_timeout=self._timeout
            ),
        )

    def patch_hpa(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        self._call(
            f"patch HPA {namespace}/{name}",
            lambda: self._autoscaling.patch_namespaced_horizontal_pod_autoscaler(
                name, namespace, [dict(op) for op in patch], _request_timeout=self._timeout
            ),
        )

    def create_event(self, namespace: str, deployment: str, event: Event) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            # an explicit unique name: generateName is not honoured everywhere
            "metadata": {
                "name": f"{deployment}.inferno.{uuid.uuid4().hex[:10]}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment,
                "namespace": namespace,
            },
            "reason": event.reason,
            "message": event.message,
            "type": event.type,
            "source": {"component": "inferno"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self._call(
            f"create event for {namespace}/{deployment}",
            lambda: self._core.create_namespaced_event(
                namespace, cast(Any, body), _request_timeout=self._timeout
            ),
        )

    def patch_service_class_status(self, name: str, status: Mapping[str, Any]) -> None:
        self._call(
            f"patch status of service class {name}",
            lambda: self._custom.patch_cluster_custom_object_status(
                SERVICE_CLASS_GROUP,
                SERVICE_CLASS_VERSION,
                SERVICE_CLASS_PLURAL,
                name,
                {"status": dict(status)},
                _request_timeout=self._timeout,
            ),
        )

    def _read_raw(self, what: str, fn: Callable[[], Any]) -> dict[str, Any] | None:
        """The object as the server stores it (raw JSON: the client's models would rewrite
        values such as MicroTime), None if it does not exist."""
        try:
            response = self._call(what, fn)
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise
        found: dict[str, Any] = json.loads(response.data)
        return found

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._read_raw(
            f"get configmap {namespace}/{name}",
            lambda: self._core.read_namespaced_config_map(
                name, namespace, _request_timeout=self._timeout, _preload_content=False
            ),
        )

    def put_config_map(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/part-of": "inferno"},
            },
            "data": dict(data),
        }
        try:
            self._call(
                f"create configmap {namespace}/{name}",
                lambda: self._core.create_namespaced_config_map(
                    namespace, cast(Any, body), _request_timeout=self._timeout
                ),
            )
        except ClusterError as exc:
            if exc.status != 409:
                raise
            self._call(
                f"patch configmap {namespace}/{name}",
                lambda: self._core.patch_namespaced_config_map(
                    name, namespace, {"data": dict(data)}, _request_timeout=self._timeout
                ),
            )

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        # the elector's JSON-patch tests compare the times exactly as the server stores them
        return self._read_raw(
            f"get lease {namespace}/{name}",
            lambda: self._coordination.read_namespaced_lease(
                name, namespace, _request_timeout=self._timeout, _preload_content=False
            ),
        )

    def create_lease(self, namespace: str, body: Mapping[str, Any]) -> None:
        self._call(
            f"create lease {namespace}/{(body.get('metadata') or {}).get('name')}",
            lambda: self._coordination.create_namespaced_lease(
                namespace, cast(Any, dict(body)), _request_timeout=self._timeout
            ),
        )

    def patch_lease(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        self._call(
            f"patch lease {namespace}/{name}",
            lambda: self._coordination.patch_namespaced_lease(
                name, namespace, [dict(op) for op in patch], _request_timeout=self._timeout
            ),
        )


def _message(exc: ApiException) -> str:
    body = exc.body
    if isinstance(body, bytes | str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    return str(exc.reason or "")
