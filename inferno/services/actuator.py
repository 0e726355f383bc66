"""The actuator service: ``POST /update`` plans and applies the decisions to the managed
Deployments (:func:`inferno.control.actuate`), reporting every Deployment's outcome."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from ..cluster.decisions import decision_from_json
from ..cluster.inventory import deployment_from_json
from ..cluster.plan import PlanSettings
from ..control.actuate import ActuationReport, Outcome, actuate
from ..k8s import ClusterAPI, ClusterError
from ..settings import Settings
from ._common import add_probes, error, new_registry

__all__ = ["UpdateRequest", "create_app", "outcome_label", "plan_settings"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class UpdateRequest(BaseModel):
    """``{"deployments": [collector deployment JSON], "decisions": [decision JSON]}``."""

    deployments: list[dict[str, Any]]
    decisions: list[dict[str, Any]]


class _BadItem(ValueError):
    pass


def plan_settings(settings: Settings) -> PlanSettings:
    return PlanSettings(
        gpu_resource=settings.gpu_resource,
        batch_env=settings.batch_env,
        hpa_headroom=settings.hpa_headroom,
        batch_tolerance=settings.batch_tolerance,
    )


def outcome_label(o: Outcome) -> str:
    """applied, failed, recommend, keep or unchanged."""
    if o.error:
        return "failed"
    if o.kind == "update":
        return "applied" if o.applied else "failed"
    return o.kind


def _convert(what: str, items: Sequence[dict[str, Any]], fn: Callable[[Any], T]) -> list[T]:
    out = []
    for i, item in enumerate(items):
        try:
            out.append(fn(item))
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise _BadItem(f"{what}[{i}]: {detail}") from None
    return out


def create_app(
    settings: Settings, *, api: ClusterAPI, registry: CollectorRegistry | None = None
) -> FastAPI:
    """The actuator over ``api``; the plan's knobs come from ``settings``."""
    registry = new_registry() if registry is None else registry
    cfg = plan_settings(settings)
    patches = Counter(
        "inferno_actuator_patches",
        "Deployment outcomes (applied, failed, recommend, keep, unchanged)",
        ["outcome"],
        registry=registry,
    )
    requests = Counter(
        "inferno_actuator_updates",
        "Update requests by result (ok: every Deployment fine, partial, rejected)",
        ["result"],
        registry=registry,
    )
    for name in ("applied", "failed", "recommend", "keep", "unchanged"):
        patches.labels(name)  # every series exists from the start, at 0
    lock = asyncio.Lock()  # one plan applied at a time

    async def ready() -> str | None:
        try:
            await asyncio.to_thread(api.list_managed_deployments, settings.watch_namespaces)
        except ClusterError as exc:
            return f"cluster not reachable: {exc}"
        return None

    app = FastAPI(title="inferno actuator", version="1")
    add_probes(app, registry, ready)

    @app.post("/update")
    async def update_route(request: UpdateRequest) -> JSONResponse:
        try:
            deployments = _convert("deployments", request.deployments, deployment_from_json)
            decisions = _convert("decisions", request.decisions, decision_from_json)
        except _BadItem as exc:
            requests.labels("rejected").inc()
            return error(400, str(exc))
        async with lock:
            report: ActuationReport = await asyncio.to_thread(
                actuate, api, deployments, decisions, cfg
            )
        for o in report.outcomes:
            patches.labels(outcome_label(o)).inc()
        requests.labels("ok" if report.ok else "partial").inc()
        if not report.ok:
            failed = [f"{o.namespace}/{o.deployment}" for o in report.outcomes if o.error]
            logger.warning("update: %d Deployment(s) failed: %s", len(failed), ", ".join(failed))
        return JSONResponse(report.to_json())

    return app
