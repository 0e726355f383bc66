"""How long a server's replicas take to start, measured from its pods' conditions.

A managed Deployment selects its pods with ``spec.selector`` (:class:`PodSelector`: the label
query the adapter sends, and the same match applied again here, since not every API server
applies it). Each pod that became Ready is one sample (:func:`pod_startup`)::

    start-up = Ready.lastTransitionTime − PodScheduled.lastTransitionTime
               (metadata.creationTimestamp when the pod has no PodScheduled condition)

It counts from the scheduling, not the creation: the wait for a node with a free GPU is the
cluster's capacity, unbounded and no property of the server, while the image pull, the model
load and the readiness probe — what a replica added now will take — are all in it. Not samples:
pods never Ready (a cluster without kubelets, as in CI, leaves every pod Pending), pods whose
containers restarted (their Ready transition may be a recovery, not the start), a Ready before
the scheduling (clock skew between the scheduler and the node) and unreadable timestamps (both
logged, never raised).

The server's start-up (:func:`startup_time`) is the **largest** of its ``RECENT_PODS`` most
recently Ready samples, among those at most ``max_s`` long: the pods of one Deployment run the
same image and model, so their start-ups differ mostly by whether the node had the image cached,
and a scale-up is exactly when new pods may land on such a node. Taking less than the slowest
recent start would size too late for a rise (the SLO's cost); taking more costs only margin. Only
the newest few count, so a new image or model version shows at its next rollout. A sample longer
than ``max_s`` (``INFERNO_STARTUP_MAX``) is dropped rather than clamped: the Ready condition
keeps only its *last* transition, so a pod whose readiness probe failed and recovered days after
its start reports days, which is no start-up at all.

Pure: the pods are the API's JSON; nothing here talks to Kubernetes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_STARTUP_S",
    "MIN_STARTUP_S",
    "RECENT_PODS",
    "PodSelector",
    "PodStartup",
    "StartupTime",
    "pod_selector",
    "pod_startup",
    "startup_time",
]

logger = logging.getLogger(__name__)

#: a measured start-up is never taken as shorter (the API's timestamps have 1 s resolution)
MIN_STARTUP_S = 1.0
#: … nor longer (the range of ``INFERNO_STARTUP_TIME``)
MAX_STARTUP_S = 86400.0
#: the server's start-up is taken over this many of its most recently Ready pods
RECENT_PODS = 5

_SET_OPS = {"In": "in", "NotIn": "notin"}


@dataclass(frozen=True, slots=True)
class PodSelector:
    """A Deployment's ``spec.selector``: ``matchLabels`` and ``matchExpressions`` (key,
    operator, values)."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def query(self) -> str:
        """The selector as a label query (``labelSelector=`` of a list call)."""
        parts = [f"{k}={v}" for k, v in self.match_labels]
        for key, op, values in self.expressions:
            if op in _SET_OPS:
                parts.append(f"{key} {_SET_OPS[op]} ({','.join(values)})")
            else:
                parts.append(key if op == "Exists" else f"!{key}")
        return ",".join(parts)

    def matches(self, labels: Mapping[str, Any]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels):
            return False
        for key, op, values in self.expressions:
            has = key in labels
            if op == "In" and not (has and labels[key] in values):
                return False
            if op == "NotIn" and has and labels[key] in values:
                return False
            if op == "Exists" and not has:
                return False
            if op == "DoesNotExist" and has:
                return False
        return True


def pod_selector(raw: object) -> PodSelector | None:
    """The selector of a Deployment's ``spec.selector`` (None when it is missing, empty or
    malformed: an empty selector would select every pod of the namespace)."""
    if not isinstance(raw, Mapping):
        return None
    labels = raw.get("matchLabels") or {}
    expressions = raw.get("matchExpressions") or []
    if not isinstance(labels, Mapping) or not isinstance(expressions, list):
        return None
    exprs: list[tuple[str, str, tuple[str, ...]]] = []
    for e in expressions:
        if not isinstance(e, Mapping):
            return None
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if not isinstance(key, str) or not isinstance(values, list):
            return None
        if op in _SET_OPS and values:
            exprs.append((key, str(op), tuple(str(v) for v in values)))
        elif op in ("Exists", "DoesNotExist"):
            exprs.append((key, str(op), ()))
        else:
            return None
    selector = PodSelector(tuple((str(k), str(v)) for k, v in labels.items()), tuple(exprs))
    return selector if selector.match_labels or selector.expressions else None


@dataclass(frozen=True, slots=True)
class PodStartup:
    """One pod's start-up: from its scheduling (or creation) to its Ready transition."""

    pod: str
    started: dt.datetime
    ready: dt.datetime

    @property
    def seconds(self) -> float:
        # 1 ms resolution: the API's times have 1 s, and a float sum must not move a horizon
        return round((self.ready - self.started).total_seconds(), 3)


@dataclass(frozen=True, slots=True)
class StartupTime:
    """A server's measured start-up, in seconds, and how many pods it was taken over."""

    seconds: float
    pods: int


def _time(value: object) -> dt.datetime | None:
    """An RFC 3339 time of the API (``2025-03-01T08:30:00Z``, fractions and offsets too)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _condition(conditions: object, kind: str) -> Mapping[str, Any] | None:
    if not isinstance(conditions, list):
        return None
    for c in conditions:
        if isinstance(c, Mapping) and c.get("type") == kind:
            return c
    return None


def _restarted(status: Mapping[str, Any]) -> bool:
    """Whether a container of the pod restarted (an init container's retry is part of the
    start; a serving container's restart may come long after it)."""
    found = status.get("containerStatuses")
    for c in found if isinstance(found, list) else []:
        count = c.get("restartCount") if isinstance(c, Mapping) else None
        if isinstance(count, int) and count > 0:
            return True
    return False


def pod_startup(pod: Mapping[str, Any], where: str = "") -> PodStartup | None:
    """The start-up of ``pod`` (the API's JSON), None when it is no sample (see the module's
    docstring; the unreadable and the skewed are logged, naming ``where`` and the pod)."""
    meta = pod.get("metadata")
    status = pod.get("status")
    if not isinstance(meta, Mapping) or not isinstance(status, Mapping):
        return None
    name = f"{where}pod {meta.get('namespace') or '?'}/{meta.get('name') or '?'}"
    ready = _condition(status.get("conditions"), "Ready")
    if ready is None or ready.get("status") != "True" or _restarted(status):
        return None
    scheduled = _condition(status.get("conditions"), "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "True":
        field, raw_start = "PodScheduled.lastTransitionTime", scheduled.get("lastTransitionTime")
    else:
        field, raw_start = "metadata.creationTimestamp", meta.get("creationTimestamp")
    started = _time(raw_start)
    ready_at = _time(ready.get("lastTransitionTime"))
    if started is None or ready_at is None:
        bad = (
            f"{field}={raw_start!r}"
            if started is None
            else f"Ready.lastTransitionTime={ready.get('lastTransitionTime')!r}"
        )
        logger.warning("%s: start-up not measured: %s is not an RFC 3339 time", name, bad)
        return None
    if ready_at < started:
        logger.warning(
            "%s: start-up not measured: Ready (%s) before %s (%s): clock skew",
            name,
            ready_at.isoformat(),
            field,
            started.isoformat(),
        )
        return None
    return PodStartup(str(meta.get("name") or ""), started, ready_at)


def startup_time(
    pods: Iterable[object],
    selector: PodSelector | None = None,
    *,
    max_s: float = 1800.0,
    recent: int = RECENT_PODS,
    where: str = "",
) -> StartupTime | None:
    """The start-up of the server whose pods are ``pods`` (only those ``selector`` matches):
    the largest of its ``recent`` most recently Ready samples of at most ``max_s`` seconds,
    within [:data:`MIN_STARTUP_S`, :data:`MAX_STARTUP_S`]; None when no pod is a sample."""
    samples: list[PodStartup] = []
    for pod in pods:
        if not isinstance(pod, Mapping):
            continue
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if selector is not None and not (isinstance(labels, Mapping) and selector.matches(labels)):
            continue
        s = pod_startup(pod, where)
        if s is None:
            continue
        if s.seconds > max_s:
            logger.debug(
                "%spod %s: %.0f s from start to Ready is beyond %.0f s: not a start-up",
                where,
                s.pod,
                s.seconds,
                max_s,
            )
            continue
        samples.append(s)
    if not samples:
        return None
    newest = sorted(samples, key=lambda s: (s.ready, s.pod), reverse=True)[: max(recent, 1)]
    seconds = max(s.seconds for s in newest)
    return StartupTime(min(max(seconds, MIN_STARTUP_S), MAX_STARTUP_S), len(newest))
