"""The controller service: runs the control cycle (:class:`inferno.control.loop.ControlLoop`)
on ``POST /invoke`` and every ``settings.service.control_period`` seconds, one cycle at a time.

- ``POST /invoke`` runs a cycle and answers its report: 200 when every phase succeeded and no
  Deployment failed, 503 otherwise; 409 at once while a cycle runs; 503 when another instance
  holds the leader Lease. ``GET /invoke`` runs nothing: it answers the last report (404 before
  the first).
- ``GET /report`` (the last report) and ``GET /report/{cycle}`` (a recent cycle's).
- Every route but the probes and ``/metrics`` needs ``Authorization: Bearer <invoke token>``.
- ``/healthz`` fails when the loop's own tasks died or ``live()`` (the ServiceClass operator's
  thread) says so; ``/readyz`` also when a sibling is not ready or the last cycle failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from ..control.cycle import CyclePhases, CycleReport
from ..control.leader import LeaderElector
from ..control.loop import Busy, ControlLoop, NotLeader
from ..control.mig import MigOptions
from ..control.policy import Policy
from ..control.state import StateStore
from ..k8s import ClusterAPI
from ..settings import Settings
from ._auth import InvokeToken, unauthorized
from ._common import add_probes, error, new_registry
from .messages import report_json
from .metrics import ControllerMetrics

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _mig_options(settings: Settings) -> MigOptions | None:
    """The MIG application's options when ``INFERNO_MIG_APPLY`` is on (docs/gpu-partitions.md)."""
    mig = settings.mig
    if not mig.apply:
        return None
    return MigOptions(namespace=mig.namespace, config_map=mig.config_map, max_nodes=mig.max_nodes)


def create_app(
    settings: Settings,
    *,
    phases: CyclePhases,
    api: ClusterAPI | None = None,
    registry: CollectorRegistry | None = None,
    elector: LeaderElector | None = None,
    live: Callable[[], list[str]] | None = None,
    shutdown_grace: float = 10.0,
) -> FastAPI:
    """The controller. ``phases`` makes the three calls; ``api``, when given, is used to write
    each ServiceClass's status after a cycle; ``elector``, when given, makes only the Lease's
    holder run cycles. The app closes ``phases`` when it shuts down."""
    metrics = ControllerMetrics(new_registry() if registry is None else registry)
    token = InvokeToken(settings)
    token.check()  # no usable token, and not insecure: refuse to start

    def on_report(report: CycleReport) -> None:
        metrics.record(report, time.time())

    loop = ControlLoop(
        phases,
        api=api,
        period=settings.service.control_period,
        deadline=settings.service.cycle_deadline,
        elector=elector,
        on_report=on_report,
        policy=Policy.from_settings(settings, time.time),
        store=None if api is None else StateStore(api, settings.service.namespace),
        mig=_mig_options(settings),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await loop.start()
        try:
            yield
        finally:
            await loop.stop(shutdown_grace)
            await phases.aclose()

    def alive() -> list[str]:
        wrong = loop.problems()
        if live is not None:
            wrong += live()
        return wrong

    async def ready() -> str | None:
        wrong = alive()
        metrics.leader.set(1 if loop.is_leader else 0)
        if wrong:
            return "; ".join(wrong)
        found = await phases.ready()
        down = [f"{service}: {why}" for service, why in found.items() if why is not None]
        if down:
            return "not ready: " + "; ".join(down)
        last = loop.last
        if last is not None and not last.ok:
            return f"the last cycle ({last.cycle}) failed: {'; '.join(last.errors)[:500]}"
        return None

    app = FastAPI(title="inferno controller", version="1", lifespan=lifespan)
    add_probes(app, metrics.registry, ready, alive)
    app.state.loop = loop

    def denied(request: Request, what: str) -> JSONResponse | None:
        if token.allows(request):
            return None
        metrics.security.rejected.labels("unauthorized").inc()
        return unauthorized(what)

    @app.post("/invoke")
    async def invoke(request: Request) -> JSONResponse:
        if (refused := denied(request, "/invoke")) is not None:
            return refused
        try:
            report = await loop.run_once("invoke")
        except Busy as exc:
            metrics.rejected.labels("busy").inc()
            return error(409, str(exc))
        except NotLeader as exc:
            metrics.rejected.labels("not_leader").inc()
            return error(503, str(exc))
        metrics.leader.set(1 if loop.is_leader else 0)
        return JSONResponse(report_json(report), status_code=200 if report.ok else 503)

    @app.get("/invoke")
    async def invoke_status(request: Request) -> JSONResponse:
        """Read-only: the last report (a GET never runs a cycle)."""
        return await last_report(request)

    @app.get("/report")
    async def last_report(request: Request) -> JSONResponse:
        if (refused := denied(request, "/report")) is not None:
            return refused
        if loop.last is None:
            return error(404, "no cycle has run yet")
        return JSONResponse(report_json(loop.last))

    @app.get("/report/{cycle}")
    async def cycle_report(cycle: str, request: Request) -> JSONResponse:
        if (refused := denied(request, "/report")) is not None:
            return refused
        found = loop.report(cycle[:64])
        if found is None:
            return error(404, f"no recent cycle {cycle[:64]!r}")
        return JSONResponse(report_json(found))

    return app
