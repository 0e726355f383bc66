"""Actuate: re-read every target from the API, refuse what is not ours, plan, then apply every
action and report each outcome.

The actuator trusts nothing it is sent. A plan names its targets (namespace, Deployment, server)
and carries the optimizer's decisions; for each target the actuator

1. checks the names (RFC 1123) and that the namespace is watched (``WATCH_NAMESPACE``);
2. reads the Deployment from the API server — never a copy from the request — and refuses it
   unless it is labelled ``inferno.server.managed=true`` with the target's server name;
3. refuses it when a newer plan was already applied to it (the :data:`~inferno.cluster.labels.CYCLE`
   annotation carries the sequence number of the last plan that patched it);
4. checks the decision against the static data (:func:`inferno.cluster.validate.decision_problem`);
5. plans the patch (:func:`inferno.cluster.plan.plan_one`) and applies it, unless the cycle's
   deadline has passed: then it stops and reports the rest as ``skipped``.

One failed or refused Deployment never stops the others; the report says exactly which were
changed and which were not, so a partial application is never silent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..cluster import labels as L
from ..cluster.inventory import HpaRef, InventoryError, ManagedDeployment, parse_deployment
from ..cluster.names import dns_label_problem, dns_subdomain_problem
from ..cluster.plan import (
    Action,
    Decision,
    Event,
    PlanSettings,
    current_state,
    holders,
    keep_duplicate,
    plan_one,
)
from ..cluster.validate import Guards, StaticLimits, decision_problem
from ..k8s import ClusterAPI, ClusterError

__all__ = [
    "ActuationReport",
    "ActuatorConfig",
    "CycleStamp",
    "Outcome",
    "Target",
    "actuate",
    "cycle_annotation",
    "parse_cycle_annotation",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    """A Deployment the controller asks the actuator to bring to its server's decision."""

    namespace: str
    name: str
    server: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class CycleStamp:
    """Which cycle a plan belongs to: its id, its sequence number (later plans have larger
    ones) and its deadline (Unix seconds) after which nothing more is applied."""

    id: str
    sequence: int
    deadline: float


def cycle_annotation(stamp: CycleStamp) -> str:
    return f"{stamp.sequence}.{stamp.id}"


def parse_cycle_annotation(value: str | None) -> tuple[int, str] | None:
    """(sequence, cycle id) of a :data:`~inferno.cluster.labels.CYCLE` annotation, if it is one."""
    if not value:
        return None
    seq, _, cycle = value.partition(".")
    if not seq.isdigit() or len(seq) > 30:
        return None
    return int(seq), cycle


@dataclass(frozen=True)
class ActuatorConfig:
    plan: PlanSettings = field(default_factory=PlanSettings)
    limits: StaticLimits = field(default_factory=StaticLimits)
    guards: Guards = field(default_factory=Guards)
    namespaces: tuple[str, ...] = ()  # the namespaces it may touch (none: every namespace)
    default_mode: str = "auto"  # a Deployment without the mode annotation: auto or recommend


@dataclass(frozen=True)
class Outcome:
    """What happened to one target. ``kind``: update, unchanged, recommend, keep (the decision
    was not applied on purpose: unallocated, duplicate server), refused (not ours, or the
    decision is not allowed), skipped (the deadline passed first)."""

    namespace: str
    deployment: str
    server: str
    kind: str
    applied: bool  # the Deployment (and its HPA) now match the decision
    error: str = ""
    event_error: str = ""
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)

    @property
    def patched(self) -> bool:
        """A patch of this cycle landed on the Deployment."""
        return self.kind == "update" and self.applied

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
    cycle: str = ""

    @property
    def ok(self) -> bool:
        return not any(o.error for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        failed = [o for o in self.outcomes if o.error]
        return {
            "cycle": self.cycle,
            "ok": self.ok,
            "updated": sum(o.patched for o in self.outcomes),
            "failed": len(failed),
            "outcomes": [o.to_json() for o in self.outcomes],
        }


def _refused(t: Target, why: str, d: ManagedDeployment | None = None) -> Outcome:
    logger.warning("actuate: %s refused: %s", t.key, why)
    state = current_state(d) if d is not None else {}
    return Outcome(
        t.namespace, t.name, t.server, "refused", False, f"refused: {why}", "", state, state
    )


def _target_problem(t: Target, namespaces: Sequence[str]) -> str | None:
    for problem in (
        dns_label_problem(t.namespace, "namespace"),
        dns_subdomain_problem(t.name, "Deployment name"),
    ):
        if problem is not None:
            return problem
    if namespaces and t.namespace not in namespaces:
        return f"namespace {t.namespace!r} is not watched (WATCH_NAMESPACE={','.join(namespaces)})"
    return None


def _hpa(obj: Mapping[str, Any], deployment: str) -> HpaRef | None:
    spec = obj.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    if ref.get("kind") != "Deployment" or ref.get("name") != deployment:
        return None
    meta = obj.get("metadata") or {}
    return HpaRef(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        min_replicas=int(spec.get("minReplicas") or 1),
        max_replicas=int(spec.get("maxReplicas") or 1),
    )


class _Reader:
    """Reads targets from the API, one HPA listing per namespace."""

    def __init__(self, api: ClusterAPI, cfg: ActuatorConfig) -> None:
        self.api = api
        self.cfg = cfg
        self._hpas: dict[str, list[dict[str, Any]]] = {}

    def hpa_for(self, namespace: str, deployment: str) -> HpaRef | None:
        if namespace not in self._hpas:
            self._hpas[namespace] = self.api.list_hpas([namespace])
        for obj in self._hpas[namespace]:
            found = _hpa(obj, deployment)
            if found is not None:
                return found
        return None

    def read(self, t: Target) -> ManagedDeployment | Outcome:
        """The target as the API server has it, or the outcome that refuses it."""
        problem = _target_problem(t, self.cfg.namespaces)
        if problem is not None:
            return _refused(t, problem)
        try:
            obj = self.api.get_deployment(t.namespace, t.name)
        except ClusterError as exc:
            if exc.status == 404:
                return _refused(t, "the Deployment does not exist")
            return Outcome(t.namespace, t.name, t.server, "update", False, str(exc))
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get(L.MANAGED) != "true":
            return _refused(t, f"the Deployment is not labelled {L.MANAGED}=true")
        try:
            d = parse_deployment(obj, self.cfg.default_mode)
        except InventoryError as exc:
            return _refused(t, str(exc))
        if d.namespace != t.namespace or d.name != t.name:
            return _refused(t, f"the API answered with {d.key}")
        if d.server != t.server:
            return _refused(t, f"the Deployment serves {d.server!r}, not {t.server!r}", d)
        try:
            hpa = self.hpa_for(t.namespace, t.name)
        except ClusterError as exc:
            return Outcome(t.namespace, t.name, t.server, "update", False, str(exc))
        return replace(d, hpa=hpa)


def _stamped(action: Action, d: ManagedDeployment, stamp: CycleStamp) -> Action:
    """The action with the cycle annotation added to its Deployment patch."""
    if action.kind != "update":
        return action
    value = cycle_annotation(stamp)
    op: dict[str, Any]
    if d.has_annotations:
        token = L.CYCLE.replace("~", "~0").replace("/", "~1")
        op = {"op": "add", "path": f"/metadata/annotations/{token}", "value": value}
    else:
        op = {"op": "add", "path": "/metadata/annotations", "value": {L.CYCLE: value}}
    return replace(action, patch=(*action.patch, op))


def _apply(api: ClusterAPI, a: Action) -> Outcome:
    error = ""
    applied = a.kind in ("update", "unchanged")
    if a.kind == "update":
        try:
            # the HPA first: the Deployment's patch carries the cycle annotation, so a Deployment
            # stamped with a cycle had every one of its patches land
            if a.hpa_patch:
                api.patch_hpa(a.namespace, a.hpa, a.hpa_patch)
            if a.patch:
                api.patch_deployment(a.namespace, a.deployment, a.patch)
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


def _refusal_event(api: ClusterAPI, d: ManagedDeployment, why: str) -> str:
    try:
        api.create_event(d.namespace, d.name, Event("InfernoRefused", why, "Warning"))
    except ClusterError as exc:
        return str(exc)
    return ""


def actuate(
    api: ClusterAPI,
    targets: Iterable[Target],
    decisions: Iterable[Decision],
    cfg: ActuatorConfig,
    stamp: CycleStamp,
    *,
    clock: Callable[[], float] = time.time,
) -> ActuationReport:
    """Re-read, check, plan and apply (see the module's docstring). Errors are reported per
    target, never raised; ``clock`` gives Unix seconds (for the deadline)."""
    reader = _Reader(api, cfg)
    by_server = {d.server: d for d in decisions}
    outcomes: dict[str, Outcome] = {}
    fresh: list[ManagedDeployment] = []
    wanted = sorted(set(targets), key=lambda t: (t.namespace, t.name))
    for t in wanted:
        if clock() > stamp.deadline:
            outcomes[t.key] = _skipped(t)
            continue
        found = reader.read(t)
        if isinstance(found, Outcome):
            outcomes[t.key] = found
        else:
            fresh.append(found)
    held = holders(fresh)  # from the Deployments as the API has them now
    for d in fresh:
        t = Target(d.namespace, d.name, d.server)
        if clock() > stamp.deadline:
            outcomes[t.key] = _skipped(t)
            continue
        last = parse_cycle_annotation(d.cycle)
        if last is not None and last[0] > stamp.sequence:
            outcomes[t.key] = _refused(
                t, f"a newer plan (cycle {last[1]}, sequence {last[0]}) was applied", d
            )
            continue
        if held[d.server] is not d:
            outcomes[t.key] = _apply(api, keep_duplicate(d, held[d.server]))
            continue
        dec = by_server.get(d.server)
        problem = None if dec is None else decision_problem(dec, d.model, cfg.limits, cfg.guards)
        if problem is not None:
            refused = _refused(t, f"decision for server {d.server!r}: {problem}", d)
            outcomes[t.key] = replace(refused, event_error=_refusal_event(api, d, problem))
            continue
        plan_cfg = cfg.plan
        if dec is not None and dec.allocated:
            resource = cfg.limits.resource_of(dec.accelerator, cfg.plan.gpu_resource)
            if resource != cfg.plan.gpu_resource:  # a MIG slice: its own resource
                plan_cfg = replace(cfg.plan, gpu_resource=resource)
        action = _stamped(plan_one(d, dec, plan_cfg), d, stamp)
        outcomes[t.key] = _apply(api, action)
    return ActuationReport([outcomes[t.key] for t in wanted], stamp.id)


def _skipped(t: Target) -> Outcome:
    return Outcome(
        t.namespace, t.name, t.server, "skipped", False, "the cycle's deadline passed: not applied"
    )
