"""The controller's client of its three siblings: :class:`Phases` implements
:class:`inferno.control.cycle.CyclePhases` over HTTP.

Each call presents the pod's internal token, validates the answer against its message
(:mod:`inferno.services.messages`) and returns the domain object; any failure is a
:class:`~inferno.control.cycle.PhaseError` naming the service and why. An ``/update`` whose
answer is lost (a timeout, a dropped connection, a 5xx) may have been applied in part: its
error says the outcome is unknown, and the cycle reconstructs it from the Deployments.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from ..cluster.plan import Decision
from ..control.actuate import ActuationReport, CycleStamp, Target
from ..control.collect import Collection
from ..control.cycle import PHASES, PhaseError
from ..control.optimize import OptimizeResult
from ..settings import Settings
from ._body import validation_message
from .messages import (
    CollectAnswer,
    CycleMessage,
    DecisionMessage,
    OptimizeAnswer,
    OptimizeRequest,
    TargetMessage,
    UpdateAnswer,
    UpdateRequest,
)

__all__ = ["Phases"]

M = TypeVar("M", bound=BaseModel)

_SERVICE = {"collect": "collector", "optimize": "optimizer", "update": "actuator"}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and body.get("error"):
        return str(body["error"])[:2000]
    if isinstance(body, Mapping) and body.get("detail"):
        return str(body["detail"])[:2000]
    return response.text[:500] or response.reason_phrase


class Phases:
    """The three calls, each to its service's base URL (``settings.url(...)``), with ``token``
    (the pod's internal token; None: none sent).

    Pass clients to inject them (tests, the all-in-one mode with :class:`httpx.ASGITransport`);
    :meth:`aclose` closes only the clients this object created.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        token: str | None,
        collector: httpx.AsyncClient | None = None,
        optimizer: httpx.AsyncClient | None = None,
        actuator: httpx.AsyncClient | None = None,
    ) -> None:
        self._owned: list[httpx.AsyncClient] = []
        self._headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self._timeout = settings.service.http_timeout
        timeout = httpx.Timeout(settings.service.http_timeout)

        def client(given: httpx.AsyncClient | None, service: str) -> httpx.AsyncClient:
            if given is not None:
                return given
            made = httpx.AsyncClient(base_url=settings.url(service), timeout=timeout)
            self._owned.append(made)
            return made

        self.clients: dict[str, httpx.AsyncClient] = {
            "collect": client(collector, "collector"),
            "optimize": client(optimizer, "optimizer"),
            "update": client(actuator, "actuator"),
        }
        self._probe_timeout = min(settings.service.http_timeout, 5.0)

    @classmethod
    def in_process(
        cls,
        settings: Settings,
        *,
        token: str | None,
        collector: FastAPI,
        optimizer: FastAPI,
        actuator: FastAPI,
    ) -> Phases:
        """Phases that call the given apps in this process (the all-in-one mode): the same HTTP
        code path as the four-container pod, without sockets. An exception in an app comes back
        as a 500, as it would over the network."""
        timeout = httpx.Timeout(settings.service.http_timeout)

        def client(app: FastAPI, service: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            return httpx.AsyncClient(
                transport=transport, base_url=f"http://{service}", timeout=timeout
            )

        phases = cls(
            settings,
            token=token,
            collector=client(collector, "collector"),
            optimizer=client(optimizer, "optimizer"),
            actuator=client(actuator, "actuator"),
        )
        phases._owned = list(phases.clients.values())
        return phases

    async def aclose(self) -> None:
        owned, self._owned = self._owned, []
        for c in owned:
            await c.aclose()

    async def __aenter__(self) -> Phases:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(
        self,
        phase: str,
        method: str,
        path: str,
        answer: type[M],
        body: BaseModel | None = None,
        *,
        timeout: float | None = None,
    ) -> M:
        c = self.clients[phase]
        where = f"{_SERVICE[phase]} {method} {c.base_url.join(path)}"
        lost = phase == "update"  # the actuator may have applied some of it
        try:
            response = await c.request(
                method,
                path,
                json=None
                if body is None
                else body.model_dump(mode="json", by_alias=True, exclude_none=True),
                headers=self._headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException as exc:
            waited = (
                "the cycle's deadline and INFERNO_HTTP_TIMEOUT past it"
                if lost
                else f"INFERNO_HTTP_TIMEOUT, {self._timeout:g} s"
            )
            raise PhaseError(
                phase, f"{where}: timed out ({type(exc).__name__}; waited {waited})", unknown=lost
            ) from None
        except httpx.HTTPError as exc:
            raise PhaseError(phase, f"{where}: {type(exc).__name__}: {exc}", unknown=lost) from None
        if not response.is_success:
            unknown = lost and response.status_code >= 500 and response.status_code != 503
            raise PhaseError(
                phase,
                f"{where}: HTTP {response.status_code}: {_detail(response)}",
                unknown=unknown,
            )
        try:
            return answer.model_validate(response.json())
        except ValueError as exc:
            detail = validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
            raise PhaseError(phase, f"{where}: malformed answer: {detail}", unknown=lost) from None

    async def collect(self) -> Collection:
        found = await self._call("collect", "GET", "/collect", CollectAnswer)
        return found.domain()

    async def optimize(
        self, collection: Collection, tuner_state: Mapping[str, Any] | None = None
    ) -> OptimizeResult:
        request = OptimizeRequest(
            servers=collection.servers,
            service_classes=collection.service_classes,
            observations=collection.measurement,
            tuner_state=None if tuner_state is None else dict(tuner_state),
        )
        answer = await self._call("optimize", "POST", "/optimize", OptimizeAnswer, request)
        return answer.domain()

    async def update(
        self, stamp: CycleStamp, targets: Sequence[Target], decisions: Sequence[Decision]
    ) -> ActuationReport:
        request = UpdateRequest(
            cycle=CycleMessage.of(stamp),
            targets=[
                TargetMessage(namespace=t.namespace, name=t.name, server=t.server) for t in targets
            ],
            decisions=[DecisionMessage.of(d) for d in decisions],
        )
        # wait for the actuator until a little after the deadline: it applies nothing later
        timeout = max(stamp.deadline - time.time(), 0.0) + self._timeout
        answer = await self._call(
            "update", "POST", "/update", UpdateAnswer, request, timeout=timeout
        )
        return answer.domain()

    async def ready(self) -> dict[str, str | None]:
        """Each service's ``/readyz``: None when ready, else why not."""

        async def probe(phase: str) -> str | None:
            c = self.clients[phase]
            try:
                r = await c.get("/readyz", timeout=self._probe_timeout)
            except httpx.HTTPError as exc:
                return f"{type(exc).__name__}: {exc}"
            return None if r.is_success else f"HTTP {r.status_code}: {_detail(r)}"

        found = await asyncio.gather(*(probe(p) for p in PHASES))
        return {_SERVICE[p]: why for p, why in zip(PHASES, found, strict=True)}
