"""The collector service: ``GET /collect`` lists the managed Deployments, their HPAs and load, and
the ServiceClasses (:func:`inferno.control.collect`).

Only the pod's own containers may call it (the internal token): it answers what the optimizer
needs — each server's identity, current allocation and load — and never a container's
environment or resources (:class:`~inferno.services.messages.DeploymentMessage`).

With a ``load_source`` (Prometheus, :mod:`inferno.prom`), the servers' loads are measured rather
than read from the load labels: a server the source could not measure is left out of
``servers`` (its Deployment stays listed, so the actuator keeps its current allocation) and named
in ``problems``; the source failing (Prometheus down, or no data at all) makes ``/collect``
answer 503, so the cycle fails and nothing is patched: the last decision stays."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from ..cluster.inventory import server_row
from ..cluster.plan import holders
from ..control.collect import Collection, collect
from ..k8s import ClusterAPI, ClusterError
from ..prom import LoadMeasurement, LoadSource, PrometheusError
from ..settings import Settings
from ._auth import InternalGate
from ._common import add_probes, error, new_registry
from .messages import CollectAnswer
from .metrics import CollectorMetrics

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    api: ClusterAPI,
    token: str | None,
    registry: CollectorRegistry | None = None,
    load_source: LoadSource | None = None,
) -> FastAPI:
    """The collector over ``api``, for ``settings.service.watch_namespaces`` (none: all);
    loads from ``load_source`` when given, else from the load labels. ``token``: the internal
    token callers must present (None: no authentication)."""
    metrics = CollectorMetrics(new_registry() if registry is None else registry)

    async def ready() -> str | None:
        # the API server answers (a missing ServiceClass CRD, 404, is not fatal: collect then
        # falls back to the static classes)
        try:
            await asyncio.to_thread(api.list_service_classes)
        except ClusterError as exc:
            if exc.status == 404:
                return None
            return f"cluster not reachable: {exc}"
        return None

    gate = InternalGate(token, metrics.security.rejected, settings.security.max_body_bytes)
    app = FastAPI(title="inferno collector", version="1")
    add_probes(app, metrics.registry, ready)

    def run() -> Collection:
        found = collect(
            api,
            settings.service.watch_namespaces,
            default_mode=settings.service.default_mode,
            policy=settings.policy,
        )
        if load_source is None:
            return found
        # the Deployment that holds each server is measured (one load per server name)
        measured = load_source.measure(list(holders(found.deployments).values()))
        return _with_loads(found, measured, load_source.name)

    @app.get("/collect")
    async def collect_route(request: Request) -> JSONResponse:
        refused = gate.refuse(request, "/collect")
        if refused is not None:
            return refused
        start = time.perf_counter()
        try:
            found = await asyncio.to_thread(run)
        except ClusterError as exc:
            metrics.collections.labels("error").inc()
            logger.warning("collect failed: %s", exc)
            return error(503, str(exc))
        except PrometheusError as exc:
            metrics.collections.labels("error").inc()
            logger.warning("collect failed: no load: %s", exc)
            return error(503, f"load: {exc}", kind=type(exc).__name__)
        finally:
            metrics.duration.observe(time.perf_counter() - start)
        metrics.collections.labels("ok").inc()
        metrics.managed.set(len(found.deployments))
        metrics.problems.set(len(found.problems))
        names = (settings.plan.instances_env, settings.plan.queue_delay_env)
        return JSONResponse(CollectAnswer.of(found, names).wire())

    return app


def _with_loads(found: Collection, measured: LoadMeasurement, source: str) -> Collection:
    """``found`` with the measured loads: rows only for the servers measured."""
    servers = [
        server_row(d, measured.loads[d.server])
        for d in holders(found.deployments).values()
        if d.server in measured.loads
    ]
    return replace(
        found,
        servers=servers,
        problems=[*found.problems, *measured.problems],
        load_source=source,
        measurement=measured.to_json(),
    )
