"""The ServiceClass operator: kopf handlers for ``serviceclasses.inferno.ai`` (v1alpha1,
cluster-scoped) that validate each class and report it in ``status``.

On create, update and resume, :func:`validation_status` (pure) checks the spec with
:func:`inferno.cluster.serviceclass.problems` and gives ``status.conditions`` (one condition of
type ``Valid``) and ``status.observedGeneration``; the handler writes it through kopf's ``patch``.
An invalid class is not an error for kopf (no retries): it is a status, and the collector leaves
the class out of the cycle until it is fixed.

The handlers live on a private :class:`kopf.OperatorRegistry`; :func:`start_operator_thread` runs
``kopf.operator`` in its own thread and event loop, as kopf's docs describe for embedding.
Nothing here watches Deployments: a timer or daemon on them would add kopf's finalizers to
objects Inferno does not own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kopf

from ..cluster.labels import SERVICE_CLASS_GROUP, SERVICE_CLASS_PLURAL, SERVICE_CLASS_VERSION
from ..cluster.serviceclass import problems
from ..settings import Settings

__all__ = [
    "GROUP",
    "PLURAL",
    "VERSION",
    "OperatorThread",
    "make_registry",
    "on_service_class",
    "start_operator_thread",
    "valid_condition",
    "validation_status",
]

logger = logging.getLogger(__name__)

GROUP = SERVICE_CLASS_GROUP
VERSION = SERVICE_CLASS_VERSION
PLURAL = SERVICE_CLASS_PLURAL

LoginFn = Callable[..., kopf.ConnectionInfo | None]


def _stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_condition(
    spec: Mapping[str, Any],
    previous: Sequence[Mapping[str, Any]] = (),
    *,
    now: dt.datetime,
) -> dict[str, Any]:
    """The ``Valid`` condition of a spec. ``lastTransitionTime`` moves only when the status
    changes (the Kubernetes convention), so ``previous`` (the current conditions) is needed."""
    wrong = problems(spec)
    status = "False" if wrong else "True"
    before = next((c for c in previous if c.get("type") == "Valid"), None)
    if before is not None and before.get("status") == status and before.get("lastTransitionTime"):
        since = str(before["lastTransitionTime"])
    else:
        since = _stamp(now)
    return {
        "type": "Valid",
        "status": status,
        "reason": "InvalidSpec" if wrong else "ValidSpec",
        "message": "; ".join(wrong) if wrong else "the spec is valid",
        "lastTransitionTime": since,
    }


def validation_status(
    spec: Mapping[str, Any],
    status: Mapping[str, Any] | None,
    generation: int | None,
    *,
    now: dt.datetime,
) -> dict[str, Any]:
    """The status fields to merge into a ServiceClass: its conditions (``Valid`` replaced, any
    other type kept) and ``observedGeneration``."""
    current = (status or {}).get("conditions") or []
    previous = [c for c in current if isinstance(c, Mapping)]
    condition = valid_condition(spec, previous, now=now)
    others = [dict(c) for c in previous if c.get("type") != "Valid"]
    out: dict[str, Any] = {"conditions": [*others, condition]}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def on_service_class(
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    meta: Mapping[str, Any],
    patch: kopf.Patch,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    **_: Any,
) -> None:
    """The kopf handler (create, update, resume): merge :func:`validation_status` into the
    object's status through ``patch``."""
    generation = meta.get("generation")
    fields = validation_status(
        spec,
        status,
        generation if isinstance(generation, int) else None,
        now=dt.datetime.now(dt.UTC),
    )
    patch.status.update(fields)
    condition = fields["conditions"][-1]
    if condition["status"] == "True":
        logger.info("ServiceClass %s is valid", meta.get("name"))
    else:
        logger.warning("ServiceClass %s is invalid: %s", meta.get("name"), condition["message"])


def make_registry(*, login: LoginFn | None = None) -> kopf.OperatorRegistry:
    """A private registry with the ServiceClass handler and a login handler (default: the
    ``kubernetes`` client's configuration, in-cluster or from the kubeconfig)."""
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(login or kopf.login_via_client)
    for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
        on(GROUP, VERSION, PLURAL, registry=registry, id="validate")(on_service_class)
    return registry


def default_operator_settings() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.posting.level = logging.WARNING  # Events for invalid classes, not for every pass
    settings.watching.server_timeout = 300
    return settings


class OperatorThread:
    """kopf's operator in its own thread and event loop; :meth:`stop` stops it and joins."""

    def __init__(
        self,
        registry: kopf.OperatorRegistry,
        operator_settings: kopf.OperatorSettings,
    ) -> None:
        self.registry = registry
        self.operator_settings = operator_settings
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="inferno-operator", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=self.registry,
                    settings=self.operator_settings,
                    clusterwide=True,
                    standalone=True,  # one replica: no kopf.dev peering objects
                    stop_flag=self.stop_flag,
                    ready_flag=self.ready_flag,
                )
            )
        except BaseException as exc:
            self.error = exc
            logger.exception("the ServiceClass operator stopped with an error")
        else:
            logger.info("the ServiceClass operator stopped")

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.ready_flag.wait(timeout)

    def stop(self, timeout: float = 15.0) -> bool:
        """Ask the operator to stop and wait for its thread; False if it did not stop in time."""
        self.stop_flag.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        if not stopped:
            logger.warning("the ServiceClass operator did not stop within %g s", timeout)
        return stopped


def start_operator_thread(
    settings: Settings,
    *,
    kubeconfig: str | None = None,
    login: LoginFn | None = None,
    operator_settings: kopf.OperatorSettings | None = None,
) -> OperatorThread:
    """Start the ServiceClass operator. ``login`` overrides how it reaches the cluster; with
    ``kubeconfig`` (and no ``login``) it reads that file (set ``KUBECONFIG`` to it too: kopf's
    kubeconfig login reads the variable), else the in-cluster account or the default kubeconfig.
    """
    if login is None and kubeconfig is not None:
        login = kopf.login_with_kubeconfig
    thread = OperatorThread(
        make_registry(login=login),
        default_operator_settings() if operator_settings is None else operator_settings,
    )
    thread.start()
    logger.info(
        "ServiceClass operator started (namespace of Inferno: %s)", settings.service.namespace
    )
    return thread
