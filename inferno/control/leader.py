"""Leader election over a ``coordination.k8s.io/v1`` Lease: only one Inferno actuates.

Two installations, or a laptop's ``inferno run --all-in-one`` beside the pod, would otherwise
both run cycles against the same Deployments. Each instance calls :meth:`LeaderElector.tick`
every ``duration / 3`` seconds:

- no Lease: create it, holding it (a 409 means another instance created it first);
- we hold it: renew it with a JSON patch whose first op *tests* that we still hold it, so a
  renewal can never overwrite a holder that took over meanwhile;
- another holds it: take it over only when its ``renewTime`` has not moved for ``duration``
  seconds *as observed by this instance's own clock* (clock skew between hosts does not
  matter), again with a patch that tests the holder and renewal time it saw.

A leader that cannot renew for ``duration`` seconds (API errors) stops being the leader before
anyone else may take over. Every decision is a pure function of what was read and the clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..k8s import ClusterAPI, ClusterError

__all__ = ["LeaderElector", "default_identity"]

logger = logging.getLogger(__name__)


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _micro(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Seen:
    holder: str
    renew: str
    since: float  # monotonic time this (holder, renew) pair was first seen


class LeaderElector:
    """Holds or watches one Lease. Sync (call :meth:`tick` from a thread)."""

    def __init__(
        self,
        api: ClusterAPI,
        namespace: str,
        name: str,
        identity: str,
        *,
        duration: float = 15.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self._monotonic = monotonic
        self._wall = wall
        self._seen: _Seen | None = None
        self._renewed_at: float | None = None  # monotonic time of our last successful renewal
        self.holder = ""  # who holds the Lease, as last seen
        self.last_error = ""

    @property
    def is_leader(self) -> bool:
        """We renewed the Lease less than ``duration`` seconds ago."""
        if self._renewed_at is None:
            return False
        return self._monotonic() - self._renewed_at < self.duration

    @property
    def period(self) -> float:
        return self.duration / 3.0

    def tick(self) -> bool:
        """Acquire, renew or watch; True when this instance is the leader afterwards."""
        try:
            self._tick()
            self.last_error = ""
        except ClusterError as exc:
            self.last_error = str(exc)
            logger.warning("leader election: %s", exc)
        return self.is_leader

    def release(self) -> None:
        """Give the Lease up (at shutdown) so another instance need not wait for it to expire."""
        if not self.is_leader:
            return
        try:
            self.api.patch_lease(
                self.namespace,
                self.name,
                [
                    {"op": "test", "path": "/spec/holderIdentity", "value": self.identity},
                    {"op": "replace", "path": "/spec/holderIdentity", "value": ""},
                ],
            )
        except ClusterError as exc:
            logger.warning("leader election: could not release the Lease: %s", exc)
        self._renewed_at = None

    def _tick(self) -> None:
        lease = self.api.get_lease(self.namespace, self.name)
        if lease is None:
            self._create()
            return
        spec: Mapping[str, Any] = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        renew = str(spec.get("renewTime") or "")
        self.holder = holder
        if holder == self.identity:
            self._patch(
                [
                    {"op": "test", "path": "/spec/holderIdentity", "value": self.identity},
                    {"op": "replace", "path": "/spec/renewTime", "value": _micro(self._wall())},
                ],
                "renewed",
            )
            return
        self._renewed_at = None  # someone else holds it
        now = self._monotonic()
        if self._seen is None or (self._seen.holder, self._seen.renew) != (holder, renew):
            self._seen = _Seen(holder, renew, now)
        # the holder's own promise counts when it is the longer one
        held = spec.get("leaseDurationSeconds")
        patience = max(self.duration, float(held) if isinstance(held, int | float) else 0.0)
        if holder and now - self._seen.since < patience:
            return  # a live holder
        transitions = int(spec.get("leaseTransitions") or 0)
        stamp = _micro(self._wall())
        # the takeover is atomic: the server applies it only if the holder and renewal time
        # are still what this instance saw ("add" replaces a field, or creates an absent one)
        tests = [
            {"op": "test", "path": f"/spec/{key}", "value": spec[key]}
            for key in ("holderIdentity", "renewTime")
            if key in spec
        ]
        values = {
            "holderIdentity": self.identity,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": transitions + 1,
            "leaseDurationSeconds": int(self.duration),
        }
        ops = [{"op": "add", "path": f"/spec/{k}", "value": v} for k, v in values.items()]
        self._patch([*tests, *ops], f"taken over from {holder or 'nobody'}")

    def _create(self) -> None:
        stamp = _micro(self._wall())
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": 0,
            },
        }
        started = self._monotonic()
        try:
            self.api.create_lease(self.namespace, body)
        except ClusterError as exc:
            if exc.status == 409:  # another instance was first
                return
            raise
        self._renewed_at = started
        self.holder = self.identity
        logger.info(
            "leader election: %s holds Lease %s/%s", self.identity, self.namespace, self.name
        )

    def _patch(self, ops: list[dict[str, Any]], what: str) -> None:
        started = self._monotonic()
        was = self.is_leader
        try:
            self.api.patch_lease(self.namespace, self.name, ops)
        except ClusterError as exc:
            if exc.status is not None and exc.status < 500:  # the test failed: not ours
                self._renewed_at = None
                if was:
                    logger.warning("leader election: lost the Lease (%s)", exc)
                return
            raise
        self._renewed_at = started
        self.holder = self.identity
        if not was:
            logger.info(
                "leader election: %s %s Lease %s/%s", self.identity, what, self.namespace, self.name
            )
