"""What every service app shares: the probes, the metrics endpoint and the error shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)

__all__ = ["ReadyCheck", "add_probes", "error", "new_registry"]

logger = logging.getLogger(__name__)

#: None when ready, else the reason it is not
ReadyCheck = Callable[[], Awaitable[str | None]]


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC collectors (what a served app exposes)."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """The error body of every service: ``{"error": message, ...}``."""
    return JSONResponse({"error": message, **extra}, status_code=status)


def add_probes(
    app: FastAPI,
    registry: CollectorRegistry,
    ready: ReadyCheck,
    live: Callable[[], list[str]] | None = None,
) -> None:
    """``GET /healthz`` (alive: ``live()`` finds nothing wrong), ``GET /readyz`` (``ready()``
    says so) and ``GET /metrics``. None of them needs a token: they reveal no data."""

    @app.get("/healthz", response_model=None)
    async def healthz() -> JSONResponse | dict[str, str]:
        wrong = live() if live is not None else []
        if wrong:
            return error(503, "; ".join(wrong))
        return {"status": "ok"}

    @app.get("/readyz", response_model=None)
    async def readyz() -> JSONResponse | dict[str, str]:
        try:
            reason = await ready()
        except Exception as exc:  # a probe must answer, whatever went wrong
            logger.exception("readiness check failed")
            reason = f"readiness check failed: {exc}"
        if reason is not None:
            return error(503, reason)
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
