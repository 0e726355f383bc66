"""What Inferno needs from a cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..cluster.labels import SERVICE_CLASS_GROUP, SERVICE_CLASS_PLURAL, SERVICE_CLASS_VERSION
from ..cluster.plan import Event
from ..errors import InfernoError

__all__ = [
    "SERVICE_CLASS_GROUP",
    "SERVICE_CLASS_PLURAL",
    "SERVICE_CLASS_VERSION",
    "ClusterAPI",
    "ClusterError",
    "Event",
]


class ClusterError(InfernoError):
    """A Kubernetes API call failed; ``status`` is the HTTP status (None: no answer at all)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ClusterAPI(Protocol):
    """Objects are the API's JSON (camelCase dicts); patches are JSON patches (RFC 6902)."""

    def list_managed_deployments(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        """Deployments labelled ``inferno.server.managed=true`` (all namespaces if none given)."""
        ...

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        """One Deployment as the API server has it now (ClusterError 404 if there is none)."""
        ...

    def list_hpas(self, namespaces: Sequence[str]) -> list[dict[str, Any]]: ...

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The pods of ``namespace`` that the label query ``selector`` selects (read only: the
        start-up times, :mod:`inferno.cluster.startup`)."""
        ...

    def list_nodes(self, selector: str) -> list[dict[str, Any]]:
        """The nodes the label query ``selector`` selects (only with the opt-in MIG RBAC:
        :mod:`inferno.cluster.mig_nodes`)."""
        ...

    def patch_node(self, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        """JSON-patch a node (its MIG configuration label)."""
        ...

    def list_service_classes(self) -> list[dict[str, Any]]: ...

    def patch_deployment(
        self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]
    ) -> None: ...

    def patch_hpa(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None: ...

    def create_event(self, namespace: str, deployment: str, event: Event) -> None: ...

    def patch_service_class_status(self, name: str, status: Mapping[str, Any]) -> None: ...

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A ConfigMap, None if it does not exist."""
        ...

    def put_config_map(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        """Create the ConfigMap, or merge-patch its ``data`` if it exists."""
        ...

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A ``coordination.k8s.io/v1`` Lease, None if it does not exist."""
        ...

    def create_lease(self, namespace: str, body: Mapping[str, Any]) -> None:
        """Create a Lease (ClusterError 409 if another instance created it first)."""
        ...

    def patch_lease(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        """JSON-patch a Lease; a failed ``test`` op (another holder won) raises ClusterError."""
        ...
