"""One control cycle over HTTP: collect, optimize, update — the Go original's controller loop.

:class:`Phases` makes the three calls to the sibling services (``/collect``, ``/optimize``,
``/update``) over :class:`httpx.AsyncClient` s; :func:`run_cycle` runs them in order and returns a
:class:`CycleReport`.

Rules:

- If collect or optimize fails (no connection, a timeout, a non-2xx answer, a malformed body),
  nothing is sent to the actuator; the report names the phase and why.
- The actuator's per-Deployment failures are reported, never hidden: the cycle then fails.
- Decisions go to the actuator as the optimizer wrote them; the actuator's plan is what keeps a
  server absent from the solution (or unallocated) at its current allocation, never at zero.
- After the actuator answered, each ServiceClass's ``status`` is written (if a cluster API is
  given); a failure there is logged and reported but does not fail the cycle.
- The collector's ``measurement`` (Prometheus mode) goes to the optimizer as ``observations``,
  from which it tunes the profiles online; its ``tuning`` section is copied into the report.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
from fastapi import FastAPI

from ..cluster.inventory import ManagedDeployment, deployment_from_json
from ..cluster.serviceclass import class_status
from ..k8s import ClusterAPI, ClusterError
from ..settings import Settings

__all__ = ["PHASES", "CycleReport", "PhaseError", "Phases", "run_cycle"]

logger = logging.getLogger(__name__)

PHASES = ("collect", "optimize", "update")
_SERVICE = {"collect": "collector", "optimize": "optimizer", "update": "actuator"}


class PhaseError(Exception):
    """A phase's call failed: ``phase`` is collect, optimize or update."""

    def __init__(self, phase: str, message: str) -> None:
        self.phase = phase
        super().__init__(message)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and body.get("error"):
        return str(body["error"])
    if isinstance(body, Mapping) and body.get("detail"):  # FastAPI's validation errors
        return str(body["detail"])
    return response.text[:500] or response.reason_phrase


class Phases:
    """The three calls, each to its service's base URL (``settings.url(...)``).

    Pass clients to inject them (tests, the all-in-one mode with :class:`httpx.ASGITransport`);
    :meth:`aclose` closes only the clients this object created.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        collector: httpx.AsyncClient | None = None,
        optimizer: httpx.AsyncClient | None = None,
        actuator: httpx.AsyncClient | None = None,
    ) -> None:
        self._owned: list[httpx.AsyncClient] = []
        timeout = httpx.Timeout(settings.http_timeout)

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
        self._probe_timeout = min(settings.http_timeout, 5.0)

    @classmethod
    def in_process(
        cls,
        settings: Settings,
        *,
        collector: FastAPI,
        optimizer: FastAPI,
        actuator: FastAPI,
    ) -> Phases:
        """Phases that call the given apps in this process (the all-in-one mode): the same HTTP
        code path as the four-container pod, without sockets. An exception in an app comes back
        as a 500, as it would over the network."""
        timeout = httpx.Timeout(settings.http_timeout)

        def client(app: FastAPI, service: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            return httpx.AsyncClient(
                transport=transport, base_url=f"http://{service}", timeout=timeout
            )

        phases = cls(
            settings,
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
        self, phase: str, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        c = self.clients[phase]
        where = f"{_SERVICE[phase]} {method} {c.base_url.join(path)}"
        try:
            response = await c.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise PhaseError(phase, f"{where}: timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise PhaseError(phase, f"{where}: {type(exc).__name__}: {exc}") from None
        if not response.is_success:
            raise PhaseError(phase, f"{where}: HTTP {response.status_code}: {_detail(response)}")
        try:
            answer = response.json()
        except ValueError:
            raise PhaseError(phase, f"{where}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise PhaseError(phase, f"{where}: the answer is not a JSON object")
        return answer

    async def collect(self) -> dict[str, Any]:
        """``GET /collect`` on the collector: ``Collection.to_json()``."""
        return await self._call("collect", "GET", "/collect")

    async def optimize(
        self,
        servers: Sequence[Mapping[str, Any]],
        service_classes: Sequence[Mapping[str, Any]],
        observations: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /optimize`` on the optimizer: ``OptimizeResult.to_json()``. ``observations``
        (the collector's ``measurement``) is sent when given: the optimizer then tunes the
        profiles from it."""
        body: dict[str, Any] = {"servers": list(servers), "serviceClasses": list(service_classes)}
        if observations is not None:
            body["observations"] = dict(observations)
        return await self._call("optimize", "POST", "/optimize", body)

    async def update(
        self, deployments: Sequence[Mapping[str, Any]], decisions: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        """``POST /update`` on the actuator: ``ActuationReport.to_json()``."""
        body = {"deployments": list(deployments), "decisions": list(decisions)}
        return await self._call("update", "POST", "/update", body)

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


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did; ``status`` is ``ok`` only if every phase succeeded and no Deployment
    failed (a Deployment in recommend mode, or kept, is not a failure)."""

    started: str  # ISO 8601, UTC
    finished: str
    trigger: str  # invoke, periodic...
    status: str  # ok | failed
    failed_phase: str | None
    seconds: dict[str, float]  # phase -> duration, for the phases that ran
    errors: list[str]
    decisions: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    failed_deployments: list[str] = field(default_factory=list)  # namespace/name
    problems: list[str] = field(default_factory=list)  # objects the collector left out
    notes: list[str] = field(default_factory=list)
    solution_status: str | None = None
    status_errors: list[str] = field(default_factory=list)  # ServiceClass status writes
    tuning: dict[str, Any] | None = None  # the optimizer's tuning section (docs/tuning.md)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "trigger": self.trigger,
            "started": self.started,
            "finished": self.finished,
            "failedPhase": self.failed_phase,
            "phases": {
                p: {
                    "result": "failed"
                    if p == self.failed_phase
                    else "ok"
                    if p in self.seconds
                    else "skipped",
                    "seconds": self.seconds.get(p),
                }
                for p in PHASES
            },
            "errors": self.errors,
            "failedDeployments": self.failed_deployments,
            "decisions": self.decisions,
            "outcomes": self.outcomes,
            "problems": self.problems,
            "notes": self.notes,
            "solutionStatus": self.solution_status,
            "statusErrors": self.status_errors,
            "tuning": self.tuning,
        }


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _list_of_dicts(phase: str, answer: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = answer.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise PhaseError(phase, f"malformed answer: {key!r} is not a list of objects")
    return value


def write_class_statuses(
    api: ClusterAPI,
    service_classes: Sequence[Mapping[str, Any]],
    deployments: Sequence[ManagedDeployment],
    solution: Mapping[str, Any],
    now: dt.datetime,
) -> list[str]:
    """Patch every ServiceClass's status; returns the failures (each also logged)."""
    failures = []
    for row in service_classes:
        name = str(row.get("name", ""))
        status = class_status(row, deployments, solution, now=now)
        try:
            api.patch_service_class_status(name, status)
        except ClusterError as exc:
            logger.warning("status of ServiceClass %s not written: %s", name, exc)
            failures.append(f"ServiceClass {name}: {exc}")
    return failures


async def run_cycle(
    phases: Phases,
    *,
    api: ClusterAPI | None = None,
    trigger: str = "invoke",
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    clock: Callable[[], float] = time.perf_counter,
) -> CycleReport:
    """Collect, optimize, update; then write the ServiceClass statuses. Never raises for a
    failed phase: the report says what failed (and the cycle's status is ``failed``)."""
    started = now()
    seconds: dict[str, float] = {}
    errors: list[str] = []
    report: dict[str, Any] = {}

    def finish(status: str, failed_phase: str | None = None) -> CycleReport:
        result = CycleReport(
            started=_iso(started),
            finished=_iso(now()),
            trigger=trigger,
            status=status,
            failed_phase=failed_phase,
            seconds=seconds,
            errors=errors,
            **report,
        )
        log = logger.info if status == "ok" else logger.warning
        log("cycle (%s) %s%s", trigger, status, f": {'; '.join(errors)}" if errors else "")
        return result

    phase = "collect"
    try:
        t0 = clock()
        try:
            collection = await phases.collect()
        finally:
            seconds["collect"] = clock() - t0
        servers = _list_of_dicts(phase, collection, "servers")
        classes = _list_of_dicts(phase, collection, "serviceClasses")
        deployments_json = _list_of_dicts(phase, collection, "deployments")
        try:
            deployments = [deployment_from_json(d) for d in deployments_json]
        except (KeyError, TypeError, ValueError) as exc:
            raise PhaseError(phase, f"malformed answer: deployments: {exc}") from None
        report["problems"] = [str(p) for p in collection.get("problems") or []]
        if not deployments:
            report["notes"] = ["no managed Deployments: nothing to optimize"]
            return finish("ok")

        measurement = collection.get("measurement")
        if measurement is not None and not isinstance(measurement, dict):
            raise PhaseError(phase, "malformed answer: 'measurement' is not an object")

        phase = "optimize"
        t0 = clock()
        try:
            optimized = await phases.optimize(servers, classes, measurement)
        finally:
            seconds["optimize"] = clock() - t0
        decisions = _list_of_dicts(phase, optimized, "decisions")
        solution = optimized.get("solution")
        if not isinstance(solution, dict):
            raise PhaseError(phase, "malformed answer: 'solution' is not an object")
        report["decisions"] = decisions
        report["notes"] = [str(n) for n in optimized.get("notes") or []]
        report["solution_status"] = str(solution.get("status", ""))
        tuning = optimized.get("tuning")
        if isinstance(tuning, dict):
            report["tuning"] = tuning

        phase = "update"
        t0 = clock()
        try:
            actuated = await phases.update(deployments_json, decisions)
        finally:
            seconds["update"] = clock() - t0
        outcomes = _list_of_dicts(phase, actuated, "outcomes")
    except PhaseError as exc:
        errors.append(f"{exc.phase}: {exc}")
        return finish("failed", exc.phase)
    except Exception as exc:  # a bug must not kill the loop: report it as the phase's failure
        logger.exception("cycle: %s phase raised", phase)
        errors.append(f"{phase}: {type(exc).__name__}: {exc}")
        return finish("failed", phase)

    report["outcomes"] = outcomes
    failed = [o for o in outcomes if o.get("error")]
    report["failed_deployments"] = [f"{o.get('namespace')}/{o.get('deployment')}" for o in failed]
    for o in failed:
        errors.append(f"update {o.get('namespace')}/{o.get('deployment')}: {o.get('error')}")
    if actuated.get("ok") is False and not failed:
        errors.append("update: the actuator reported a failure without naming a Deployment")

    if api is not None and classes:
        try:
            report["status_errors"] = await asyncio.to_thread(
                write_class_statuses, api, classes, deployments, solution, now()
            )
        except Exception as exc:  # never fails the cycle
            logger.exception("writing ServiceClass statuses failed")
            report["status_errors"] = [f"{type(exc).__name__}: {exc}"]
    return finish("failed" if errors else "ok")
