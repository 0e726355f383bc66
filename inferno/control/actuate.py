"""Actuate: compute the plan, then apply every action and report each outcome.

One failed Deployment never stops the others; the report says exactly which were changed and
which were not, so a partial application is never silent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..cluster.inventory import ManagedDeployment
from ..cluster.plan import Action, Decision, Event, PlanSettings, plan
from ..k8s import ClusterAPI, ClusterError

__all__ = ["ActuationReport", "Outcome", "actuate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    namespace: str
    deployment: str
    server: str
    kind: str  # update, unchanged, recommend, keep
    applied: bool  # the Deployment (and its HPA) now match the decision
    error: str = ""
    event_error: str = ""
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "deployment": self.deployment,
            "server": self.server,
            "kind": self.kind,
            "applied": self.applied,
            "error": self.error,
            "eventError": self.event_error,
            "before": dict(self.before),
            "after": dict(self.after),
        }


@dataclass(frozen=True)
class ActuationReport:
    outcomes: list[Outcome]

    @property
    def ok(self) -> bool:
        return not any(o.error for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        failed = [o for o in self.outcomes if o.error]
        return {
            "ok": self.ok,
            "updated": sum(o.kind == "update" and o.applied for o in self.outcomes),
            "failed": len(failed),
            "outcomes": [o.to_json() for o in self.outcomes],
        }


def _apply(api: ClusterAPI, a: Action) -> Outcome:
    error = ""
    applied = a.kind in ("update", "unchanged")
    if a.kind == "update":
        try:
            if a.patch:
                api.patch_deployment(a.namespace, a.deployment, a.patch)
            if a.hpa_patch:
                api.patch_hpa(a.namespace, a.hpa, a.hpa_patch)
        except ClusterError as exc:
            error, applied = str(exc), False
    event_error = ""
    if a.event is not None:
        event = a.event
        if error:
            event = Event("InfernoFailed", f"{a.event.message}: not applied: {error}", "Warning")
        try:
            api.create_event(a.namespace, a.deployment, event)
        except ClusterError as exc:
            event_error = str(exc)
    if error:
        logger.warning("actuate %s/%s failed: %s", a.namespace, a.deployment, error)
    return Outcome(
        a.namespace, a.deployment, a.server, a.kind, applied, error, event_error, a.before, a.after
    )


def actuate(
    api: ClusterAPI,
    deployments: Sequence[ManagedDeployment],
    decisions: Iterable[Decision],
    settings: PlanSettings | None = None,
) -> ActuationReport:
    """Plan, then apply every action (errors are reported per Deployment, never raised)."""
    actions = plan(deployments, decisions, settings)
    return ActuationReport([_apply(api, a) for a in actions])
