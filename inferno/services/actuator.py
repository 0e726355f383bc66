"""The actuator service: ``POST /update`` re-reads, checks and patches the managed Deployments
named by the plan (:func:`inferno.control.actuate.actuate`), reporting every one's outcome.

Only the pod's own containers may call it (the internal token), and even then it trusts nothing
it is sent: every target is read from the API server and refused unless it is a managed
Deployment of the named server in a watched namespace; every decision is checked against the
static data. A plan older than one already applied is refused (409), and nothing is applied
after the cycle's deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from ..cluster.validate import Guards
from ..control.actuate import ActuationReport, ActuatorConfig, actuate
from ..control.static_data import StaticData
from ..errors import InputError
from ..k8s import ClusterAPI, ClusterError
from ..settings import Settings
from ._auth import InternalGate
from ._common import add_probes, error, new_registry
from .messages import UpdateAnswer, UpdateRequest
from .metrics import ActuatorMetrics

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    api: ClusterAPI,
    token: str | None,
    registry: CollectorRegistry | None = None,
    static: StaticData | None = None,
    clock: Callable[[], float] | None = None,
) -> FastAPI:
    """The actuator over ``api``; the decisions are checked against the static data in
    ``settings.service.data_path`` (or ``static``). ``token``: the internal token callers must
    present (None: no authentication). ``clock``: Unix seconds, for the deadline (tests)."""
    metrics = ActuatorMetrics(new_registry() if registry is None else registry)
    data = StaticData(settings.service.data_path) if static is None else static
    plan = settings.plan
    guards = Guards(
        gpu_node_label=settings.service.gpu_node_label, max_replicas=settings.service.max_replicas
    )
    lock = asyncio.Lock()  # one plan applied at a time
    newest = [-1]  # the sequence of the newest plan applied

    async def ready() -> str | None:
        try:
            await asyncio.to_thread(api.list_managed_deployments, settings.service.watch_namespaces)
        except ClusterError as exc:
            return f"cluster not reachable: {exc}"
        try:
            await asyncio.to_thread(data.limits)
        except InputError as exc:
            return f"static data: {exc}"
        return None

    gate = InternalGate(token, metrics.security.rejected, settings.security.max_body_bytes)
    app = FastAPI(title="inferno actuator", version="1")
    add_probes(app, metrics.registry, ready)

    @app.post("/update")
    async def update_route(request: Request) -> JSONResponse:
        body = await gate.read(request, UpdateRequest, "/update")
        if isinstance(body, JSONResponse):
            return body
        try:
            limits = await asyncio.to_thread(data.limits)
        except InputError as exc:
            logger.error("static data unusable: %s", exc)
            return error(503, f"static data: {exc}: nothing applied")
        cfg = ActuatorConfig(
            plan=plan,
            limits=limits,
            guards=guards,
            namespaces=settings.service.watch_namespaces,
            default_mode=settings.service.default_mode,
        )
        stamp = body.cycle.domain()
        async with lock:
            if stamp.sequence <= newest[0]:
                metrics.updates.labels("stale").inc()
                return error(
                    409,
                    f"cycle {stamp.id} (sequence {stamp.sequence}) is older than a plan "
                    f"already applied (sequence {newest[0]}): nothing applied",
                )
            newest[0] = stamp.sequence
            kwargs = {} if clock is None else {"clock": clock}
            report: ActuationReport = await asyncio.to_thread(
                actuate,
                api,
                [t.domain() for t in body.targets],
                [d.domain() for d in body.decisions],
                cfg,
                stamp,
                **kwargs,
            )
        metrics.record(report)
        if not report.ok:
            failed = [f"{o.namespace}/{o.deployment}" for o in report.outcomes if o.error]
            logger.warning(
                "update: %d Deployment(s) not updated: %s", len(failed), ", ".join(failed)
            )
        return JSONResponse(UpdateAnswer.of(report).wire())

    return app
