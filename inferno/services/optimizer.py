"""The optimizer service: ``POST /optimize`` solves the collected servers against the static data
(accelerators, profiles, capacity, solver options) read from ``settings.data_path``.

The static data is the ConfigMap ``inferno-static-data`` mounted as files; it is re-read whenever
a file changes (the cache is keyed by each file's modification time, size and inode, so the
ConfigMap's atomic symlink swap is seen too).

When the request carries ``observations`` (the collector's ``measurement``), the profiles are
tuned online (:mod:`inferno.tuning`, ``docs/tuning.md``): the app keeps one filter per (model,
accelerator) across requests, in memory, updates them from the observations, solves with the
tuned parameters (under the feasibility guard of :func:`inferno.control.optimize.solve_prepared`)
and answers a ``tuning`` section. Without ``observations`` nothing is tuned and nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import BaseModel, ConfigDict, Field

from ..control.optimize import (
    STATIC_FILES,
    OptimizeResult,
    prepare,
    read_static_data,
    solve_prepared,
)
from ..errors import InputError
from ..settings import Settings
from ..system import System
from ..tuning import (
    PairKey,
    Theta,
    TunerState,
    TuningOptions,
    TuningReport,
    observations_from,
    tuned_parameters,
    update,
)
from ._common import add_probes, error, new_registry

__all__ = ["OptimizeRequest", "StaticData", "Tuner", "create_app", "tuning_options"]

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
    """``{"servers": [server-data rows], "serviceClasses": [serviceclass-data rows],
    "observations": the collector's measurement}``; ``observations`` (``window`` and per-server
    ``servers``, as ``GET /collect`` answers under ``measurement``) is optional: without it
    nothing is tuned."""

    model_config = ConfigDict(populate_by_name=True)

    servers: list[dict[str, Any]]
    service_classes: list[dict[str, Any]] = Field(default_factory=list, alias="serviceClasses")
    observations: dict[str, Any] | None = None


def tuning_options(settings: Settings) -> TuningOptions:
    """The filters' options from the ``INFERNO_TUNING_*`` settings."""
    return TuningOptions(
        bounds=settings.tuning_bounds,
        gate=settings.tuning_gate,
        process_noise=settings.tuning_process_noise,
        measurement_noise=settings.tuning_measurement_noise,
        initial_uncertainty=settings.tuning_initial_uncertainty,
        min_requests=settings.tuning_min_requests,
        reset_after=settings.tuning_reset_after,
    )


class Tuner:
    """The filters of one optimizer app, kept across requests (in memory; thread-safe: one
    update at a time, each from the state the previous one left)."""

    def __init__(self, options: TuningOptions, *, enabled: bool = True) -> None:
        self.options = options
        self.enabled = enabled
        self._lock = threading.Lock()
        self._state = TunerState()

    @property
    def state(self) -> TunerState:
        with self._lock:
            return self._state

    def step(
        self,
        system: System,
        measurement: Mapping[str, Any],
        servers: Sequence[Mapping[str, Any]],
    ) -> tuple[dict[PairKey, Theta], TuningReport, list[str]]:
        """Update the filters from ``measurement``; the (α, β) to solve with, the report and
        notes on observations that could not be tied to a server."""
        base = {(mp.model, mp.accelerator): mp.profile for mp in system.profiles}
        observations, notes = observations_from(measurement, servers)
        with self._lock:
            self._state, report = update(self._state, observations, base, self.options)
            tuned = tuned_parameters(self._state, base)
        return tuned, report, notes


def _section(enabled: bool, note: str) -> dict[str, Any]:
    """A tuning section with nothing tuned."""
    return {"enabled": enabled, "observations": [], "profiles": [], "notes": [note]}


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
    pair_labels = ["model", "accelerator"]
    tuned_alpha = Gauge(
        "inferno_optimizer_tuned_alpha",
        "Tuned alpha of a (model, accelerator) profile (ms; the filter's estimate)",
        pair_labels,
        registry=registry,
    )
    tuned_beta = Gauge(
        "inferno_optimizer_tuned_beta",
        "Tuned beta of a (model, accelerator) profile (ms; the filter's estimate)",
        pair_labels,
        registry=registry,
    )
    tuning_applied = Gauge(
        "inferno_optimizer_tuning_applied",
        "1 if the last solve used the tuned profile, 0 if not (no accepted update yet, or the "
        "feasibility guard put the base profile back)",
        pair_labels,
        registry=registry,
    )
    tuning_updates = Counter(
        "inferno_optimizer_tuning_updates",
        "Observations by outcome (accepted, reset, rejected, skipped) and reason class",
        ["outcome", "reason"],
        registry=registry,
    )
    tuning_fallbacks = Counter(
        "inferno_optimizer_tuning_fallbacks",
        "Tuned (model, accelerator) profiles the feasibility guard replaced by the base profile",
        registry=registry,
    )
    tuner = Tuner(tuning_options(settings), enabled=settings.tuning_enabled)
    metrics_lock = threading.Lock()

    def record_tuning(result: OptimizeResult, report: TuningReport) -> None:
        with metrics_lock:
            for gauge in (tuned_alpha, tuned_beta, tuning_applied):
                gauge.clear()  # filters dropped leave no series
            for p in report.pairs:
                tuned_alpha.labels(p.model, p.accelerator).set(p.tuned[0])
                tuned_beta.labels(p.model, p.accelerator).set(p.tuned[1])
                tuning_applied.labels(p.model, p.accelerator).set(
                    1 if p.key in result.applied else 0
                )
            for e in report.entries:
                tuning_updates.labels(e.outcome, e.reason_class or "none").inc()
            if result.fallbacks:
                tuning_fallbacks.inc(len(result.fallbacks))

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

    def tune(
        system: System, request: OptimizeRequest
    ) -> tuple[dict[PairKey, Theta] | None, TuningReport | None, dict[str, Any] | None]:
        """The tuned parameters, the report and the start of the answer's tuning section (None,
        None, None without observations)."""
        if request.observations is None:
            return None, None, None
        if not tuner.enabled:
            off = "tuning is disabled (INFERNO_TUNING_ENABLED=false): the base profiles are used"
            return None, None, _section(False, off)
        try:
            tuned, report, notes = tuner.step(system, request.observations, request.servers)
        except Exception as exc:  # tuning must never cost the solve: fall back to the base
            logger.exception("tuning failed; the base profiles are used")
            why = f"tuning failed ({type(exc).__name__}: {exc}): the base profiles are used"
            return None, None, _section(True, why)
        section = {"enabled": True, **report.to_json()}
        section["notes"] = [*notes, *section["notes"]]
        return tuned, report, section

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
                prepared = prepare(
                    docs,
                    request.servers,
                    request.service_classes,
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
            tuned, report, section = tune(prepared.system, request)
            result = solve_prepared(prepared, gpu_node_label=settings.gpu_node_label, tuned=tuned)
        finally:
            duration.observe(time.perf_counter() - start)
        if section is not None:
            for p in section["profiles"]:
                key = (p["model"], p["accelerator"])
                p["applied"] = key in result.applied
                p["fallback"] = result.fallbacks.get(key)
            result = replace(result, tuning=section)
        if report is not None:
            record_tuning(result, report)
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
