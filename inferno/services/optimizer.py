"""The optimizer service: ``POST /optimize`` solves the collected servers against the static data
(:class:`inferno.control.optimizer.Optimizer`).

Only the pod's own containers may call it (the internal token), so observations — from which
the profiles are tuned online (docs/tuning.md) — come only from the cycle. It never answers 5xx
to data: a request over ``INFERNO_MAX_BODY_BYTES`` is 413, malformed JSON or a body of the wrong
shape is 400 naming the field, a server whose data is unusable is left unallocated with the
reason while the others are decided; only unusable *static* data (our configuration) is 503.

It solves one request at a time. A caller that gave up waiting (the controller's
``INFERNO_HTTP_TIMEOUT``) leaves its solve running, and it still fills the caches the next
cycle reads; a request that arrives meanwhile is answered 503 at once, with ``Retry-After`` and
how long the running solve has taken, rather than started beside it: abandoned solves would
otherwise pile up, each slowing the others, on a fleet whose solve outlasts the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry

from ..control.optimizer import Optimized, Optimizer, StaticDataError
from ..control.static_data import StaticData
from ..errors import InputError
from ..settings import Settings
from ..solver import SizingMemo
from ..tuning import TuningReport
from ._auth import InternalGate
from ._common import add_probes, error, new_registry
from ._gc import gc_paused
from .answer import answer_body
from .messages import OptimizeAnswer, OptimizeRequest
from .metrics import OptimizerMetrics

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    token: str | None,
    registry: CollectorRegistry | None = None,
    static: StaticData | None = None,
) -> FastAPI:
    """The optimizer over the static data in ``settings.service.data_path`` (or ``static``),
    sizing with ``settings.optimizer.model`` (``INFERNO_MODEL``) unless the data names a model.
    The candidates' sizing is kept across requests (up to ``INFERNO_SIZING_MEMO_ENTRIES``:
    :class:`~inferno.solver.SizingMemo`): the same answers for the same servers (within 1e-12 of
    λ* when others were added or changed in between).
    ``token``: the internal token callers must present (None: no authentication)."""
    metrics = OptimizerMetrics(new_registry() if registry is None else registry)
    data = StaticData(settings.service.data_path) if static is None else static
    entries = settings.service.sizing_memo_entries
    memo = SizingMemo(entries) if entries > 0 else None
    optimizer = Optimizer(
        data,
        settings.tuning,
        tuning_enabled=settings.tuning.enabled,
        gpu_node_label=settings.service.gpu_node_label,
        model=settings.optimizer.model,
        # λ* does not depend on the load: the periods' requests size their candidates once
        memo=memo,
    )
    lock = threading.Lock()  # metrics of one solve at a time
    solving = threading.Lock()  # one solve at a time (held by the worker thread that solves)
    solving_since = [0.0]  # time.monotonic() of the running solve's start
    counted = [0]  # static data loads already counted

    def count_loads() -> None:
        with lock:
            if data.loads != counted[0]:
                metrics.static_loads.inc(data.loads - counted[0])
                counted[0] = data.loads

    def record_tuning(optimized: Optimized, report: TuningReport) -> None:
        result = optimized.result
        for gauge in (metrics.tuned_alpha, metrics.tuned_beta, metrics.tuning_applied):
            gauge.clear()  # filters dropped leave no series
        for p in report.pairs:
            metrics.tuned_alpha.labels(p.model, p.accelerator).set(p.tuned[0])
            metrics.tuned_beta.labels(p.model, p.accelerator).set(p.tuned[1])
            metrics.tuning_applied.labels(p.model, p.accelerator).set(
                1 if p.key in result.applied else 0
            )
        for e in report.entries:
            metrics.tuning_updates.labels(e.outcome, e.reason_class or "none").inc()
        if result.fallbacks:
            metrics.tuning_fallbacks.inc(len(result.fallbacks))

    def solve(request: OptimizeRequest) -> Optimized | JSONResponse:
        start = time.perf_counter()
        try:
            optimized = optimizer.run(
                request.servers,
                request.service_classes,
                request.observations,
                tuner_state=request.tuner_state,
            )
        except StaticDataError as exc:
            metrics.solves.labels("error").inc()
            logger.error("%s", exc)
            return error(503, str(exc))
        except InputError as exc:
            metrics.solves.labels("error").inc()
            logger.warning("optimize: bad input: %s", exc)
            return error(400, str(exc))
        finally:
            metrics.duration.observe(time.perf_counter() - start)
            count_loads()
        with lock:
            if optimized.report is not None:
                record_tuning(optimized, optimized.report)
            metrics.record_solution(optimized.result.solution)
        return optimized

    def solve_and_write(request: OptimizeRequest) -> tuple[Optimized, bytes | None] | JSONResponse:
        """Solve with ``solving`` held (in the worker thread, so it is released when the solve
        ends, whether or not anyone still waits for it); busy when another solve holds it."""
        if not solving.acquire(blocking=False):
            return busy()
        solving_since[0] = time.monotonic()
        try:
            with gc_paused():  # see ._gc
                result = solve(request)
                if isinstance(result, JSONResponse):
                    return result
                return result, answer_body(result.result)
        finally:
            solving.release()

    def busy() -> JSONResponse:
        metrics.solves.labels("busy").inc()
        running = time.monotonic() - solving_since[0]
        logger.warning("optimize: refused, a solve has been running for %.1f s", running)
        response = error(
            503,
            f"busy: a solve started {running:.1f} s ago is still running (a caller that "
            "stopped waiting for it, INFERNO_HTTP_TIMEOUT, leaves it running); the optimizer "
            "solves one request at a time: retry when it is done",
            runningSeconds=round(running, 3),
        )
        response.headers["Retry-After"] = str(max(1, math.ceil(running / 4)))
        return response

    async def ready() -> str | None:
        try:
            docs = await asyncio.to_thread(optimizer.docs)
        except StaticDataError as exc:
            return str(exc)
        finally:
            count_loads()
        missing = [f for f in ("accelerator-data.json", "model-data.json") if f not in docs]
        if missing:
            return f"static data in {data.path}: missing {', '.join(missing)}"
        return None

    gate = InternalGate(token, metrics.security.rejected, settings.security.max_body_bytes)
    app = FastAPI(title="inferno optimizer", version="1")
    app.state.sizing_memo = memo  # its stats(): for tests and benches
    add_probes(app, metrics.registry, ready)

    @app.post("/optimize")
    async def optimize_route(request: Request) -> Response:
        body = await gate.read(request, OptimizeRequest, "/optimize")
        if isinstance(body, JSONResponse):
            return body
        outcome = await asyncio.to_thread(solve_and_write, body)
        if isinstance(outcome, JSONResponse):
            return outcome
        result, written = outcome
        if written is None:  # not of the plain shape: the message validates (or refuses) it
            return JSONResponse(OptimizeAnswer.of(result.result).wire())
        return Response(written, media_type="application/json")

    return app
