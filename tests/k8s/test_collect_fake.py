"""collect() with a cluster whose ServiceClass CRD is missing, or whose API fails."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from inferno.cluster.plan import Event
from inferno.control import collect
from inferno.k8s import ClusterError


class NoCrd:
    def __init__(self, status: int) -> None:
        self.status = status

    def list_managed_deployments(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        return []

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        raise AssertionError

    def list_hpas(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        return []

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        raise AssertionError  # no Deployments: no pods to read

    def list_nodes(self, selector: str) -> list[dict[str, Any]]:
        raise AssertionError  # the collector never reads nodes

    def patch_node(self, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        raise AssertionError

    def list_service_classes(self) -> list[dict[str, Any]]:
        raise ClusterError("list service classes: HTTP error", self.status)

    def patch_deployment(
        self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]
    ) -> None:
        raise AssertionError

    def patch_hpa(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        raise AssertionError

    def create_event(self, namespace: str, deployment: str, event: Event) -> None:
        raise AssertionError

    def patch_service_class_status(self, name: str, status: Mapping[str, Any]) -> None:
        raise AssertionError

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        raise AssertionError

    def put_config_map(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        raise AssertionError

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        raise AssertionError

    def create_lease(self, namespace: str, body: Mapping[str, Any]) -> None:
        raise AssertionError

    def patch_lease(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        raise AssertionError


def test_missing_crd_is_a_problem_not_a_failure() -> None:
    found = collect(NoCrd(404))
    assert found.service_classes == []
    assert any("CRD is not installed" in p for p in found.problems)


def test_other_api_errors_fail_the_collection() -> None:
    with pytest.raises(ClusterError) as err:
        collect(NoCrd(500))
    assert err.value.status == 500
