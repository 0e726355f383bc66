"""A :class:`~inferno.solver.recipe.Recipe` as Kubernetes objects (pure data, no API calls).

- :func:`deployment_patch`: a strategic-merge patch of the Deployment that sets the serving
  container's CPU and memory requests and limits (``kubectl patch deployment NAME --patch-file``
  merges containers by name, so only that container's ``resources`` change and its GPU
  resources stay as they are).
- :func:`hpa`: an ``autoscaling/v2`` HorizontalPodAutoscaler on the Deployment with the recipe's
  bounds and CPU utilisation target.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import InputError
from ..solver.recipe import Recipe
from .names import dns_label_problem, dns_subdomain_problem

__all__ = ["cpu_quantity", "deployment_patch", "hpa", "memory_quantity"]

logger = logging.getLogger(__name__)


def cpu_quantity(millicores: int) -> str:
    """``2`` for 2000m, ``250m`` otherwise (Kubernetes' canonical form)."""
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_quantity(mib: int) -> str:
    """``2Gi`` for 2048 MiB, ``300Mi`` otherwise."""
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _check(name: str, namespace: str | None, container: str) -> None:
    problem = (
        dns_subdomain_problem(name, "Deployment name")
        or (dns_label_problem(namespace) if namespace is not None else None)
        or dns_label_problem(container, "container name")
    )
    if problem:
        raise InputError(problem)


def _metadata(name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return meta


def deployment_patch(
    r: Recipe, name: str, *, container: str = "triton", namespace: str | None = None
) -> dict[str, Any]:
    """The strategic-merge patch of Deployment ``name`` setting ``container``'s resources."""
    _check(name, namespace, container)
    resources = {
        "requests": {
            "cpu": cpu_quantity(r.cpu_request_m),
            "memory": memory_quantity(r.memory_request_mib),
        },
        "limits": {
            "cpu": cpu_quantity(r.cpu_limit_m),
            "memory": memory_quantity(r.memory_limit_mib),
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace),
        "spec": {
            "template": {"spec": {"containers": [{"name": container, "resources": resources}]}}
        },
    }


def hpa(r: Recipe, name: str, *, namespace: str | None = None) -> dict[str, Any]:
    """An ``autoscaling/v2`` HPA scaling Deployment ``name`` between the recipe's bounds on its
    pods' mean CPU utilisation (of the CPU request)."""
    _check(name, namespace, "triton")
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(name, namespace),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": r.hpa_min,
            "maxReplicas": r.hpa_max,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": r.hpa_cpu_utilization,
                        },
                    },
                }
            ],
        },
    }
