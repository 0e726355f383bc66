"""Collect: the managed Deployments, their HPAs, their load, their replicas' start-up time
(measured from their pods, :mod:`inferno.cluster.startup`) and the service classes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..cluster.inventory import (
    HpaRef,
    InventoryError,
    ManagedDeployment,
    parse_deployment,
    server_row,
)
from ..cluster.plan import holders
from ..cluster.serviceclass import class_row, problems
from ..cluster.startup import startup_time
from ..k8s import ClusterAPI, ClusterError
from ..settings import PolicyOptions
from ..system import Load

__all__ = ["Collection", "collect"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Collection:
    """What the collector found; ``problems`` lists objects it had to leave out, and why."""

    deployments: list[ManagedDeployment]
    servers: list[dict[str, Any]]  # server-data.json rows
    service_classes: list[dict[str, Any]]  # serviceclass-data.json rows (from the CRs)
    problems: list[str] = field(default_factory=list)
    load_source: str = "labels"
    #: what the load source measured (Prometheus mode): the optimizer tunes profiles from it
    measurement: dict[str, Any] | None = None


def _hpa_for(hpas: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], HpaRef]:
    out: dict[tuple[str, str], HpaRef] = {}
    for h in hpas:
        meta = h.get("metadata") or {}
        spec = h.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        if target.get("kind") != "Deployment":
            continue
        ns = str(meta.get("namespace") or "default")
        out[(ns, str(target.get("name")))] = HpaRef(
            namespace=ns,
            name=str(meta.get("name")),
            min_replicas=int(spec.get("minReplicas") or 1),
            max_replicas=int(spec.get("maxReplicas") or 1),
        )
    return out


def collect(
    api: ClusterAPI,
    namespaces: Sequence[str] = (),
    *,
    loads: Mapping[str, Load] | None = None,
    load_source: str = "labels",
    default_mode: str = "auto",
    policy: PolicyOptions | None = None,
) -> Collection:
    """Read the cluster. ``loads`` (server name → measured load) override the load labels.
    With ``policy.measure_startup`` (the default), each Deployment's pods are read for its
    start-up time (samples beyond ``policy.startup_max`` are not counted).

    A Deployment with unusable labels is left out and named in ``problems``; an invalid
    ServiceClass likewise. Of Deployments claiming one server name, the one that holds it
    (:func:`~inferno.cluster.plan.holders`) gives the server's row; the others are named in
    ``problems`` (and kept by the actuator, with a Warning). A failing API call raises
    :class:`~inferno.k8s.ClusterError`, but for the pods: a Deployment whose pods cannot be
    read keeps the start-up setting, and the first such failure is named in ``problems``.
    """
    opts = policy if policy is not None else PolicyOptions()
    found: list[str] = []
    hpas = _hpa_for(api.list_hpas(namespaces))
    deployments: list[ManagedDeployment] = []
    for obj in api.list_managed_deployments(namespaces):
        try:
            d = parse_deployment(obj, default_mode)
        except InventoryError as exc:
            found.append(str(exc))
            continue
        hpa = hpas.get((d.namespace, d.name))
        if hpa is not None:
            d = replace(d, hpa=hpa)
        deployments.append(d)
    if opts.measure_startup:
        deployments = _with_startups(api, deployments, opts.startup_max, found)
    classes = []
    try:
        resources = api.list_service_classes()
    except ClusterError as exc:
        if exc.status != 404:
            raise
        # the CRD is not installed: the static serviceclass-data.json (if any) is used instead
        found.append("the ServiceClass CRD is not installed (serviceclasses.inferno.ai: 404)")
        resources = []
    for resource in resources:
        name = (resource.get("metadata") or {}).get("name", "?")
        wrong = problems(resource.get("spec") or {})
        if wrong:
            found.append(f"ServiceClass {name}: " + "; ".join(wrong))
            continue
        classes.append(class_row(resource))
    measured = loads or {}
    held = holders(deployments)
    for d in deployments:
        h = held[d.server]
        if h is not d:
            found.append(
                f"Deployment {d.key} claims server {d.server!r}, held by {h.key} (created "
                "first): left as it is"
            )
    servers = [server_row(d, measured.get(d.server)) for d in held.values()]
    for p in found:
        logger.warning("collect: %s", p)
    return Collection(deployments, servers, classes, found, load_source)


def _with_startups(
    api: ClusterAPI, deployments: list[ManagedDeployment], max_s: float, found: list[str]
) -> list[ManagedDeployment]:
    """``deployments`` with the start-up time their pods show (where they show one)."""
    out = []
    failed: list[str] = []
    for d in deployments:
        if d.pod_selector is None:
            out.append(d)
            continue
        try:
            pods = api.list_pods(d.namespace, d.pod_selector.query())
        except ClusterError as exc:
            failed.append(f"{d.key}: {exc}")
            out.append(d)
            continue
        measured = startup_time(pods, d.pod_selector, max_s=max_s, where=f"{d.key}: ")
        out.append(d if measured is None else replace(d, startup=measured))
    if failed:
        found.append(
            f"pods not readable, the start-up setting applies to {len(failed)} Deployment(s): "
            f"{failed[0]}"
        )
    return out
