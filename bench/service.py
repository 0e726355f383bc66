"""The optimizer service's answer time: ``POST /optimize`` of N servers, as the controller sends
it, through the real app (``inferno.services.optimizer``) over an in-process ASGI transport.

The request is the synthetic system of ``bench/solver.py`` (the large sample's accelerators and
models, K = N by default) as collector rows; the static data is the large sample's. Timed: from
the request sent to the answer parsed — the body read and validated (size, depth, pydantic), the
rows prepared, the solve, the stay decisions, the answer serialised — the best of ``--repeat``.
No network and no Python start-up: what a cycle waits for in the optimize phase, minus the
loopback socket.

With ``--phases`` it also prints where the answer's time goes: each phase's CPU seconds in the
thread that runs it (the solve's worker thread, or the event loop for the body and the answer),
the rest of the wall time (the ASGI transport, the event loop, waiting for a core on a busy
machine), and the client's parsing of the answer, for the request of the best answer.

Usage: python bench/service.py [--sizes 2700,10000] [--repeat 3] [--queue-factor 0] [--phases]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _tables import print_table  # bench/, first on sys.path when run as a script
from prometheus_client import CollectorRegistry
from solver import SAMPLE, server_rows, synthetic

from inferno.data import load_system
from inferno.services import optimizer
from inferno.settings import Settings


def rows_of(n: int, seed: int, queue_factor: float) -> list[dict[str, Any]]:
    return server_rows(synthetic(load_system(SAMPLE), n, seed, queue_factor))


#: the phases ``--phases`` times: (module, function, label); the solve's run in its worker thread
PHASES = (
    ("inferno.services._auth", "read_body", "body read and validated (the event loop)"),
    ("inferno.control.optimizer", "prepare", "rows to a System (checked)"),
    ("inferno.solver", "build_candidates", "candidates and their sizing"),
    ("inferno.solver", "solve_table", "the choice, the allocations"),
    ("inferno.control.optimize", "decisions_from_solution", "decisions"),
    ("inferno.control.optimize", "_with_stays", "stay decisions"),
    ("inferno.control.optimize", "solution_to_json", "solution JSON"),
    ("inferno.services.optimizer", "answer_body", "answer written"),
)


def time_phases(spent: dict[str, float]) -> None:
    """Wrap each phase so that its thread's CPU seconds add up in ``spent``."""

    def timed(f: Any, label: str) -> Any:
        if inspect.iscoroutinefunction(f):

            async def timed_async(*a: Any, **k: Any) -> Any:
                t = time.thread_time()
                try:
                    return await f(*a, **k)
                finally:
                    spent[label] = spent.get(label, 0.0) + time.thread_time() - t

            return timed_async

        def timed_sync(*a: Any, **k: Any) -> Any:
            t = time.thread_time()
            try:
                return f(*a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + time.thread_time() - t

        return timed_sync

    for module, name, label in PHASES:
        m = importlib.import_module(module)
        setattr(m, name, timed(getattr(m, name), label))


async def answer_seconds(
    rows: list[dict[str, Any]], repeat: int, static_dir: Path, phases: bool = False
) -> tuple[float, int, int, dict[str, float]]:
    """Best seconds of ``repeat`` answers, the request's bytes, the decisions answered, and
    (``phases``) the seconds of each phase of the best answer."""
    spent: dict[str, float] = {}
    if phases:
        time_phases(spent)
    settings = Settings.from_env({}, data_path=str(static_dir), max_body_bytes=1 << 28)
    app = optimizer.create_app(settings, token=None, registry=CollectorRegistry())
    body = json.dumps({"servers": rows}).encode()
    transport = httpx.ASGITransport(app=app)
    best = math.inf
    decided = 0
    best_phases: dict[str, float] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://optimizer") as http:
        for _ in range(repeat):
            spent.clear()
            t0 = time.perf_counter()
            r = await http.post(
                "/optimize", content=body, headers={"Content-Type": "application/json"}
            )
            received = time.perf_counter()
            answer = r.json()
            seconds = time.perf_counter() - t0
            if r.status_code != 200:
                raise SystemExit(f"/optimize answered {r.status_code}: {r.text[:300]}")
            decided = len(answer["decisions"])
            if seconds < best:
                best = seconds
                best_phases = dict(spent)
                best_phases["the rest of the wall time"] = (received - t0) - sum(spent.values())
                best_phases["the client parses the answer"] = seconds - (received - t0)
    return best, len(body), decided, best_phases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2700,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queue-factor", type=float, default=0.0, help="0: K = N")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--phases", action="store_true", help="where the time of each answer goes")
    args = ap.parse_args()
    cells = []
    phase_tables: list[tuple[int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # the sample's static data, with the queue of the run (the service reads it from there)
        static_dir = Path(tmp)
        for name in ("accelerator-data.json", "model-data.json", "serviceclass-data.json"):
            shutil.copy(SAMPLE / name, static_dir / name)
        optimizer_data = {"optimizer": {"unlimited": True, "queueFactor": args.queue_factor}}
        (static_dir / "optimizer-data.json").write_text(json.dumps(optimizer_data))
        for n in (int(x) for x in args.sizes.split(",")):
            seconds, size, decided, phases = asyncio.run(
                answer_seconds(
                    rows_of(n, args.seed, args.queue_factor), args.repeat, static_dir, args.phases
                )
            )
            cells.append([str(n), f"{size / 2**20:.1f}", str(decided), f"{seconds:.2f}"])
            phase_tables.append((n, phases))
    print_table(["servers", "request MiB", "decisions", "answer s"], cells, args.markdown)
    for n, phases in phase_tables if args.phases else ():
        print(f"\n{n} servers, the best answer:")
        rows = [[label, f"{s:.3f}"] for label, s in phases.items()]
        rows.append(["total", f"{sum(phases.values()):.3f}"])
        print_table(["phase", "s"], rows, args.markdown)


if __name__ == "__main__":
    main()
