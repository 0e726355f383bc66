"""The optimizer service's answer time: ``POST /optimize`` of N servers, as the controller sends
it, through the real app (``inferno.services.optimizer``) over an in-process ASGI transport.

The request is the synthetic system of ``bench/solver.py`` (the large sample's accelerators and
models, K = N by default) as collector rows; the static data is the large sample's. Timed: from
the request sent to the answer parsed — the body read and validated (size, depth, pydantic), the
rows prepared, the solve, the stay decisions, the answer serialised — the best of ``--repeat``.

Three answers per size: ``cold`` (a fresh service: the sizing memo empty), ``warm, same
request`` (the same body again) and ``warm, rates changed`` (every server's rate × U(0.7, 1.3),
tokens unchanged: what the controller sends each period). Issue 13's ≤ 0.5 s is judged on the
last; each repetition starts a fresh service.
No network and no Python start-up: what a cycle waits for in the optimize phase, minus the
loopback socket.

With ``--phases`` it also prints where the time of the best rates-changed answer goes: each
phase's CPU seconds in the thread that runs it (the solve's worker thread, or the event loop for
the body and the answer), the rest of the wall time (the ASGI transport, the event loop, waiting
for a core on a busy machine), and the client's parsing of the answer.

With ``--memory`` it only reports what the service keeps across requests: the sizing memo's
entries and the candidate table kept for the next request of the same servers.

Usage: python bench/service.py [--sizes 2700,10000] [--repeat 3] [--queue-factor 0] [--phases]
       [--memory]
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
import numpy as np
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
    ("inferno.solver", "build_candidates", "candidates and their sizing (memo lookups)"),
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


def rescaled(rows: list[dict[str, Any]], rng: np.random.Generator) -> list[dict[str, Any]]:
    """``rows`` with every server's rate × U(0.7, 1.3), tokens unchanged: what the controller
    sends the next period."""
    out = []
    for row, f in zip(rows, rng.uniform(0.7, 1.3, len(rows)).tolist(), strict=True):
        load = row["currentAlloc"]["load"]
        changed = {**load, "arrivalRate": load["arrivalRate"] * f}
        out.append({**row, "currentAlloc": {**row["currentAlloc"], "load": changed}})
    return out


#: the three requests timed: a fresh service's first, the same again, the rates changed
KINDS = ("cold", "warm, same request", "warm, rates changed")


async def answer_seconds(
    rows: list[dict[str, Any]], repeat: int, static_dir: Path, phases: bool = False
) -> tuple[dict[str, float], int, int, dict[str, float]]:
    """Best seconds of ``repeat`` answers of each of :data:`KINDS`, the request's bytes, the
    decisions answered, and (``phases``) the seconds of each phase of the best answer with the
    rates changed (the issue's case). Each repetition starts a fresh service (an empty memo)."""
    spent: dict[str, float] = {}
    if phases:
        time_phases(spent)
    settings = Settings.from_env({}, data_path=str(static_dir), max_body_bytes=1 << 28)
    body = json.dumps({"servers": rows}).encode()
    rng = np.random.default_rng(7)
    best = dict.fromkeys(KINDS, math.inf)
    decided = 0
    best_phases: dict[str, float] = {}
    for _ in range(repeat):
        app = optimizer.create_app(settings, token=None, registry=CollectorRegistry())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://optimizer") as http:
            changed = json.dumps({"servers": rescaled(rows, rng)}).encode()
            for kind, content in zip(KINDS, (body, body, changed), strict=True):
                spent.clear()
                t0 = time.perf_counter()
                r = await http.post(
                    "/optimize", content=content, headers={"Content-Type": "application/json"}
                )
                received = time.perf_counter()
                answer = r.json()
                seconds = time.perf_counter() - t0
                if r.status_code != 200:
                    raise SystemExit(f"/optimize answered {r.status_code}: {r.text[:300]}")
                decided = len(answer["decisions"])
                if seconds < best[kind]:
                    best[kind] = seconds
                    if kind == KINDS[-1]:
                        best_phases = dict(spent)
                        rest = (received - t0) - sum(spent.values())
                        best_phases["the rest of the wall time"] = rest
                        best_phases["the client parses the answer"] = seconds - (received - t0)
    return best, len(body), decided, best_phases


def table_mib(n: int, seed: int, queue_factor: float) -> tuple[int, float]:
    """The sizing memo's entries after one solve of ``n`` servers, and the MiB of the candidate
    table it keeps for the next solve of the same servers (``inferno.solver.candidate_reuse``):
    the memory traced while it is held, less after it is dropped."""
    import gc
    import tracemalloc

    from inferno.solver import SizingMemo, solve

    system = synthetic(load_system(SAMPLE), n, seed, queue_factor)
    memo = SizingMemo(Settings.from_env({}).service.sizing_memo_entries)
    tracemalloc.start()
    try:
        solve(system, memo=memo)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        memo.tables.clear()
        gc.collect()
        return len(memo), (held - tracemalloc.get_traced_memory()[0]) / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2700,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queue-factor", type=float, default=0.0, help="0: K = N")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--phases", action="store_true", help="where the time of each answer goes")
    ap.add_argument(
        "--memory",
        action="store_true",
        help="only the memory the service keeps across requests (no timing)",
    )
    args = ap.parse_args()
    if args.memory:
        cells = []
        for n in (int(x) for x in args.sizes.split(",")):
            entries, mib = table_mib(n, args.seed, args.queue_factor)
            cells.append([str(n), str(entries), f"{mib:.1f}"])
        print_table(["servers", "memo entries", "candidate table kept MiB"], cells, args.markdown)
        return
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
            best, size, decided, phases = asyncio.run(
                answer_seconds(
                    rows_of(n, args.seed, args.queue_factor), args.repeat, static_dir, args.phases
                )
            )
            seconds = [f"{best[k]:.2f}" for k in KINDS]
            cells.append([str(n), f"{size / 2**20:.1f}", str(decided), *seconds])
            phase_tables.append((n, phases))
    heads = ["servers", "request MiB", "decisions", *(f"{k} s" for k in KINDS)]
    print_table(heads, cells, args.markdown)
    for n, phases in phase_tables if args.phases else ():
        print(f"\n{n} servers, the best answer with the rates changed (a warm memo):")
        rows = [[label, f"{s:.3f}"] for label, s in phases.items()]
        rows.append(["total", f"{sum(phases.values()):.3f}"])
        print_table(["phase", "s"], rows, args.markdown)


if __name__ == "__main__":
    main()
