"""The controller service: runs the control cycle (:func:`inferno.control.cycle.run_cycle`) on
``GET|POST /invoke`` and every ``settings.control_period`` seconds, one cycle at a time.

- ``/invoke`` answers the cycle report: 200 when every phase succeeded and no Deployment failed,
  503 otherwise; 409 at once while a cycle runs; 401 without the bearer token when
  ``settings.invoke_token`` is set.
- ``GET /report``: the last cycle's report (404 before the first).
- The periodic loop is the app's own task, started and stopped by the app's lifespan; a tick that
  finds a cycle running is skipped. On shutdown a running cycle gets ``shutdown_grace`` seconds
  to finish before it is cancelled.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..control.cycle import PHASES, CycleReport, Phases, run_cycle
from ..k8s import ClusterAPI
from ..settings import Settings
from ._common import add_probes, error, new_registry

__all__ = ["authorized", "create_app"]

logger = logging.getLogger(__name__)


def authorized(header: str | None, token: str) -> bool:
    """``header`` is ``Bearer <token>`` (constant-time comparison)."""
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def create_app(
    settings: Settings,
    *,
    phases: Phases,
    api: ClusterAPI | None = None,
    registry: CollectorRegistry | None = None,
    shutdown_grace: float = 10.0,
) -> FastAPI:
    """The controller. ``phases`` makes the three calls; ``api``, when given, is used to write
    each ServiceClass's status after a cycle. The app closes ``phases`` when it shuts down."""
    registry = new_registry() if registry is None else registry
    cycles = Counter(
        "inferno_controller_cycles",
        "Cycles by trigger (invoke, periodic) and status (ok, failed)",
        ["trigger", "status"],
        registry=registry,
    )
    phase_seconds = Histogram(
        "inferno_controller_phase_seconds",
        "Duration of each phase of a cycle",
        ["phase"],
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        registry=registry,
    )
    phase_failures = Counter(
        "inferno_controller_phase_failures",
        "Cycles stopped by a failed phase",
        ["phase"],
        registry=registry,
    )
    deployment_failures = Counter(
        "inferno_controller_deployment_failures",
        "Deployments the actuator failed to update",
        registry=registry,
    )
    rejected = Counter(
        "inferno_controller_invocations_rejected",
        "Invocations refused (busy: a cycle was running; unauthorized)",
        ["reason"],
        registry=registry,
    )
    last_time = Gauge(
        "inferno_controller_last_cycle_timestamp_seconds",
        "When the last cycle finished (Unix time)",
        registry=registry,
    )
    last_ok = Gauge(
        "inferno_controller_last_cycle_ok", "1 if the last cycle was ok, else 0", registry=registry
    )
    for p in PHASES:
        phase_failures.labels(p)

    lock = asyncio.Lock()
    last: list[CycleReport] = []  # the last report, when there is one
    background: set[asyncio.Task[CycleReport]] = set()
    loop_task: list[asyncio.Task[None]] = []

    async def cycle(trigger: str) -> CycleReport:
        """One cycle; the caller holds ``lock``."""
        report = await run_cycle(phases, api=api, trigger=trigger)
        cycles.labels(trigger, report.status).inc()
        for p, s in report.seconds.items():
            phase_seconds.labels(p).observe(s)
        if report.failed_phase:
            phase_failures.labels(report.failed_phase).inc()
        deployment_failures.inc(len(report.failed_deployments))
        last_time.set(time.time())
        last_ok.set(1 if report.ok else 0)
        last[:] = [report]
        return report

    async def locked_cycle(trigger: str) -> CycleReport:
        try:
            return await cycle(trigger)
        finally:
            lock.release()

    async def periodic(stop: asyncio.Event, period: float) -> None:
        logger.info("control loop: a cycle every %g s", period)
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=period)
            if stop.is_set():
                return
            if lock.locked():
                logger.info("control loop: a cycle is running; this tick is skipped")
                continue
            try:
                async with lock:
                    await cycle("periodic")
            except Exception:  # run_cycle reports failures; this is a bug, keep looping
                logger.exception("control loop: the cycle raised")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        if settings.control_period > 0:
            task = asyncio.create_task(
                periodic(stop, settings.control_period), name="inferno-control-loop"
            )
            loop_task[:] = [task]
        try:
            yield
        finally:
            stop.set()
            for task in loop_task:
                try:
                    await asyncio.wait_for(task, timeout=shutdown_grace)
                except TimeoutError:
                    logger.warning("control loop: the running cycle was cancelled at shutdown")
                except asyncio.CancelledError:
                    pass
            loop_task.clear()
            await phases.aclose()

    async def ready() -> str | None:
        if loop_task and loop_task[0].done():
            return "the control loop has stopped"
        found = await phases.ready()
        down = [f"{service}: {why}" for service, why in found.items() if why is not None]
        return "not ready: " + "; ".join(down) if down else None

    app = FastAPI(title="inferno controller", version="1", lifespan=lifespan)
    add_probes(app, registry, ready)

    @app.api_route("/invoke", methods=["GET", "POST"])
    async def invoke(authorization: str | None = Header(default=None)) -> JSONResponse:
        if settings.invoke_token and not authorized(authorization, settings.invoke_token):
            rejected.labels("unauthorized").inc()
            return JSONResponse(
                {"error": "a bearer token is required (Authorization: Bearer <token>)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if lock.locked():
            rejected.labels("busy").inc()
            return error(409, "a cycle is already running")
        await lock.acquire()  # free: returns at once, no other task can take it in between
        # the cycle is its own task: a client that disconnects does not cut an actuation short
        task = asyncio.create_task(locked_cycle("invoke"))
        background.add(task)
        task.add_done_callback(background.discard)
        report = await asyncio.shield(task)
        return JSONResponse(report.to_json(), status_code=200 if report.ok else 503)

    @app.get("/report")
    async def report_route() -> JSONResponse:
        if not last:
            return error(404, "no cycle has run yet")
        return JSONResponse(last[0].to_json())

    return app
