"""Apply the optimizer's MIG geometries to opted-in nodes (``INFERNO_MIG_APPLY``; off by default).

After a cycle whose update succeeded, the controller lists the nodes an administrator labelled
``inferno.ai/mig-managed=true``, plans with :func:`inferno.cluster.mig_nodes.plan_mig_nodes`,
writes the mig-parted configurations into its ConfigMap (``config.yaml``, in the GPU operator's
namespace: point the MIG manager at it) and then relabels the planned nodes'
``nvidia.com/mig.config``, each with a JSON patch that first tests the label still has the value
the plan read (a node relabelled meanwhile by someone else is left alone and reported).

Nothing is applied when the ConfigMap cannot be written (a node must never name a configuration
the MIG manager cannot find), when the cycle had errors, or when the policy clamped decisions
(the geometry follows the optimizer's solution, which the Deployments then do not): the report
says which. Every outcome is in the cycle's report (``mig``) and the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..cluster.mig_nodes import (
    MIG_CONFIG,
    MIG_MANAGED_SELECTOR,
    MigNode,
    config_document,
    plan_mig_nodes,
)
from ..k8s import ClusterAPI, ClusterError

__all__ = ["CONFIG_KEY", "MigOptions", "apply_mig"]

logger = logging.getLogger(__name__)

#: the ConfigMap key the MIG manager reads
CONFIG_KEY = "config.yaml"
_LABEL_PATH = "/metadata/labels/" + MIG_CONFIG.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class MigOptions:
    """Where the mig-parted configurations go and how many nodes may re-partition per cycle."""

    namespace: str = "gpu-operator"
    config_map: str = "inferno-mig-parted-config"
    max_nodes: int = 1


def _has_geometries(solution: Mapping[str, Any]) -> bool:
    layout = solution.get("layout") or {}
    return any(entry.get("migConfig") for entry in layout.values() if isinstance(entry, Mapping))


def apply_mig(
    api: ClusterAPI,
    solution: Mapping[str, Any],
    options: MigOptions,
    *,
    hold: str | None = None,
) -> dict[str, Any] | None:
    """Plan and apply; the report section (None when the solution has no MIG geometry).
    ``hold``: why nothing may be applied this cycle (the plan is still reported)."""
    if not _has_geometries(solution):
        return None
    errors: list[str] = []
    try:
        nodes = [MigNode.of(n) for n in api.list_nodes(MIG_MANAGED_SELECTOR)]
    except ClusterError as exc:
        logger.warning("MIG: cannot list nodes: %s", exc)
        return {"applied": [], "errors": [f"list nodes: {exc}"], "plan": None}
    plan = plan_mig_nodes(solution["layout"], nodes, max_changes=options.max_nodes)
    report: dict[str, Any] = {"plan": plan.to_json(), "applied": [], "errors": errors}
    if hold is not None and plan.changes:
        report["held"] = hold
        logger.info("MIG: %d node change(s) held: %s", len(plan.changes), hold)
        return report
    if not plan.changes:
        return report
    where = f"{options.namespace}/{options.config_map}"
    try:
        found = api.get_config_map(options.namespace, options.config_map)
        existing = ((found or {}).get("data") or {}).get(CONFIG_KEY)
        text, notes = config_document(plan, nodes, existing)
        report["plan"]["notes"] += notes
        api.put_config_map(options.namespace, options.config_map, {CONFIG_KEY: text})
    except ClusterError as exc:
        errors.append(f"ConfigMap {where}: {exc}: no node relabelled")
        logger.warning("MIG: cannot write %s (%s): no node relabelled", where, exc)
        return report
    for change in plan.changes:
        ops: list[dict[str, Any]] = []
        if change.old is not None:
            ops.append({"op": "test", "path": _LABEL_PATH, "value": change.old})
        ops.append({"op": "add", "path": _LABEL_PATH, "value": change.new})
        try:
            api.patch_node(change.node, ops)
        except ClusterError as exc:
            errors.append(f"node {change.node}: {exc}")
            logger.warning("MIG: node %s not relabelled: %s", change.node, exc)
            continue
        report["applied"].append(change.to_json())
        logger.info(
            "MIG: node %s relabelled %s -> %s (%s)",
            change.node,
            change.old,
            change.new,
            change.accelerator,
        )
    return report
