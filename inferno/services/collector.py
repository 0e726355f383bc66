"""The collector service: ``GET /collect`` lists the managed Deployments, their HPAs and load, and
the ServiceClasses (:func:`inferno.control.collect`).

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

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..cluster.inventory import server_row
from ..control.collect import Collection, collect
from ..k8s import ClusterAPI, ClusterError
from ..prom import LoadMeasurement, LoadSource, PrometheusError
from ..settings import Settings
from ._common import add_probes, error, new_registry

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    api: ClusterAPI,
    registry: CollectorRegistry | None = None,
    load_source: LoadSource | None = None,
) -> FastAPI:
    """The collector over ``api``, for ``settings.watch_namespaces`` (none: every namespace);
    loads from ``load_source`` when given, else from the load labels."""
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

    def run() -> tuple[Collection, LoadMeasurement | None]:
        found = collect(api, settings.watch_namespaces, default_mode=settings.default_mode)
        if load_source is None:
            return found, None
        measured = load_source.measure(found.deployments)
        return _with_loads(found, measured, load_source.name), measured

    @app.get("/collect")
    async def collect_route() -> JSONResponse:
        start = time.perf_counter()
        try:
            found, measured = await asyncio.to_thread(run)
        except ClusterError as exc:
            collections.labels("error").inc()
            logger.warning("collect failed: %s", exc)
            return error(503, str(exc))
        except PrometheusError as exc:
            collections.labels("error").inc()
            logger.warning("collect failed: no load: %s", exc)
            return error(503, f"load: {exc}", kind=type(exc).__name__)
        finally:
            duration.observe(time.perf_counter() - start)
        collections.labels("ok").inc()
        managed.set(len(found.deployments))
        problems.set(len(found.problems))
        body = found.to_json()
        if measured is not None:
            body["measurement"] = measured.to_json()
        return JSONResponse(body)

    return app


def _with_loads(found: Collection, measured: LoadMeasurement, source: str) -> Collection:
    """``found`` with the measured loads: rows only for the servers measured."""
    servers = [
        server_row(d, measured.loads[d.server])
        for d in found.deployments
        if d.server in measured.loads
    ]
    return replace(
        found,
        servers=servers,
        problems=[*found.problems, *measured.problems],
        load_source=source,
    )
