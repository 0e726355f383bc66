"""The optimizer service: ``POST /optimize`` solves the collected servers against the static data
(accelerators, profiles, capacity, solver options) read from ``settings.data_path``.

The static data is the ConfigMap ``inferno-static-data`` mounted as files; it is re-read whenever
a file changes (the cache is keyed by each file's modification time, size and inode, so the
ConfigMap's atomic symlink swap is seen too).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import BaseModel, ConfigDict, Field

from ..control.optimize import STATIC_FILES, OptimizeResult, optimize, read_static_data
from ..errors import InputError
from ..settings import Settings
from ._common import add_probes, error, new_registry

__all__ = ["OptimizeRequest", "StaticData", "create_app"]

logger = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int, int] | tuple[str], ...]


class StaticData:
    """The static JSON documents of a directory, re-read when one of its files changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.loads = 0  # how many times the files were read
        self._lock = threading.Lock()
        self._key: Fingerprint | None = None
        self._docs: dict[str, Any] = {}

    def _fingerprint(self) -> Fingerprint:
        if not self.path.is_dir():
            raise InputError("static data directory not found", source=str(self.path))
        key: list[tuple[str, int, int, int] | tuple[str]] = []
        for name in STATIC_FILES:
            try:
                st = os.stat(self.path / name)  # follows the ConfigMap's symlinks
            except FileNotFoundError:
                key.append((name,))
            except OSError as exc:
                raise InputError(f"cannot read: {exc}", source=str(self.path / name)) from None
            else:
                key.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(key)

    def get(self) -> dict[str, Any]:
        """The documents (InputError if the directory or a file is unreadable or malformed)."""
        with self._lock:
            key = self._fingerprint()  # before reading: a change while reading is seen next time
            if key != self._key:
                self._docs = read_static_data(self.path)
                self._key = key
                self.loads += 1
                logger.info("read static data from %s: %s", self.path, sorted(self._docs))
            return self._docs


class OptimizeRequest(BaseModel):
    """``{"servers": [server-data rows], "serviceClasses": [serviceclass-data rows]}``."""

    model_config = ConfigDict(populate_by_name=True)

    servers: list[dict[str, Any]]
    service_classes: list[dict[str, Any]] = Field(default_factory=list, alias="serviceClasses")


def _metric_value(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def create_app(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    static: StaticData | None = None,
) -> FastAPI:
    """The optimizer over the static data in ``settings.data_path`` (or ``static``)."""
    registry = new_registry() if registry is None else registry
    data = StaticData(settings.data_path) if static is None else static
    labels = ["server", "accelerator"]
    per_server = {
        "replicas": Gauge(
            "inferno_optimizer_replicas",
            "Replicas decided per server",
            labels,
            registry=registry,
        ),
        "cost": Gauge(
            "inferno_optimizer_cost",
            "Cost of the decided allocation per server (accelerator-data.json units)",
            labels,
            registry=registry,
        ),
        "itlAverage": Gauge(
            "inferno_optimizer_predicted_itl_ms",
            "Predicted mean inter-token latency at the decided allocation",
            labels,
            registry=registry,
        ),
        "ttftAverage": Gauge(
            "inferno_optimizer_predicted_ttft_ms",
            "Predicted mean time to first token at the decided allocation",
            labels,
            registry=registry,
        ),
        "waitAverage": Gauge(
            "inferno_optimizer_predicted_wait_ms",
            "Predicted mean queueing wait at the decided allocation",
            labels,
            registry=registry,
        ),
    }
    unallocated = Gauge(
        "inferno_optimizer_unallocated_servers",
        "Servers the last solve left unallocated",
        registry=registry,
    )
    solves = Counter(
        "inferno_optimizer_solves",
        "Solves by status (optimal, feasible, partially-allocated, infeasible, error)",
        ["status"],
        registry=registry,
    )
    duration = Histogram(
        "inferno_optimizer_solve_seconds",
        "Time to solve (including reading the static data)",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        registry=registry,
    )
    loads = Counter(
        "inferno_optimizer_static_data_loads",
        "Times the static data was (re-)read",
        registry=registry,
    )
    metrics_lock = threading.Lock()

    def record(result: OptimizeResult) -> None:
        allocations: dict[str, Any] = result.solution.get("allocations") or {}
        with metrics_lock:
            for gauge in per_server.values():
                gauge.clear()  # servers gone or moved to another accelerator leave no series
            for server, a in allocations.items():
                acc = str(a.get("accelerator", ""))
                for key, gauge in per_server.items():
                    value = _metric_value(a.get("numReplicas" if key == "replicas" else key))
                    if value is not None:
                        gauge.labels(server, acc).set(value)
            unallocated.set(len(result.solution.get("unallocated") or {}))

    def static_docs() -> dict[str, Any]:
        before = data.loads
        docs = data.get()
        if data.loads != before:
            loads.inc()
        return docs

    def solve(request: OptimizeRequest) -> OptimizeResult | JSONResponse:
        start = time.perf_counter()
        try:
            try:
                docs = static_docs()
            except InputError as exc:  # our configuration, not the caller's request
                solves.labels("error").inc()
                logger.error("static data unusable: %s", exc)
                return error(503, f"static data: {exc}")
            try:
                result = optimize(
                    docs,
                    request.servers,
                    request.service_classes,
                    gpu_node_label=settings.gpu_node_label,
                    origin=settings.data_path,
                    request="request",
                )
            except InputError as exc:
                solves.labels("error").inc()
                if exc.source != "request":  # the static data: our configuration
                    logger.error("static data unusable: %s", exc)
                    return error(503, f"static data: {exc}")
                logger.warning("optimize: bad input: %s", exc)
                return error(400, str(exc))
        finally:
            duration.observe(time.perf_counter() - start)
        solves.labels(str(result.solution.get("status", "unknown"))).inc()
        record(result)
        return result

    async def ready() -> str | None:
        try:
            docs = await asyncio.to_thread(static_docs)
        except InputError as exc:
            return f"static data: {exc}"
        missing = [f for f in ("accelerator-data.json", "model-data.json") if f not in docs]
        if missing:
            return f"static data in {data.path}: missing {', '.join(missing)}"
        return None

    app = FastAPI(title="inferno optimizer", version="1")
    add_probes(app, registry, ready)

    @app.post("/optimize")
    async def optimize_route(request: OptimizeRequest) -> JSONResponse:
        result = await asyncio.to_thread(solve, request)
        if isinstance(result, JSONResponse):
            return result
        return JSONResponse(result.to_json())

    return app
