"""The collector service: ``GET /collect`` lists the managed Deployments, their HPAs and load, and
the ServiceClasses (:func:`inferno.control.collect`)."""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..control.collect import collect
from ..k8s import ClusterAPI, ClusterError
from ..settings import Settings
from ._common import add_probes, error, new_registry

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, api: ClusterAPI, registry: CollectorRegistry | None = None
) -> FastAPI:
    """The collector over ``api``, for ``settings.watch_namespaces`` (none: every namespace)."""
    registry = new_registry() if registry is None else registry
    collections = Counter(
        "inferno_collector_collections",
        "Collections by outcome (ok, error)",
        ["outcome"],
        registry=registry,
    )
    managed = Gauge(
        "inferno_collector_managed_deployments",
        "Managed Deployments found by the last successful collection",
        registry=registry,
    )
    problems = Gauge(
        "inferno_collector_problems",
        "Objects the last successful collection had to leave out (bad labels, invalid classes)",
        registry=registry,
    )
    duration = Histogram("inferno_collector_collect_seconds", "Time to collect", registry=registry)

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

    app = FastAPI(title="inferno collector", version="1")
    add_probes(app, registry, ready)

    @app.get("/collect")
    async def collect_route() -> JSONResponse:
        start = time.perf_counter()
        try:
            found = await asyncio.to_thread(
                collect, api, settings.watch_namespaces, default_mode=settings.default_mode
            )
        except ClusterError as exc:
            collections.labels("error").inc()
            logger.warning("collect failed: %s", exc)
            return error(503, str(exc))
        finally:
            duration.observe(time.perf_counter() - start)
        collections.labels("ok").inc()
        managed.set(len(found.deployments))
        problems.set(len(found.problems))
        return JSONResponse(found.to_json())

    return app
