"""The optimizer service's answer time: ``POST /optimize`` of N servers, as the controller sends
it, through the real app (``inferno.services.optimizer``) over an in-process ASGI transport.

The request is the synthetic system of ``bench/solver.py`` (the large sample's accelerators and
models, K = N by default) as collector rows; the static data is the large sample's. Timed: from
the request sent to the answer parsed — the body read and validated (size, depth, pydantic), the
rows prepared, the solve, the stay decisions, the answer serialised — the best of ``--repeat``.
No network and no Python start-up: what a cycle waits for in the optimize phase, minus the
loopback socket.

Usage: python bench/service.py [--sizes 2700,10000] [--repeat 3] [--queue-factor 0]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def answer_seconds(
    rows: list[dict[str, Any]], repeat: int, static_dir: Path
) -> tuple[float, int, int]:
    """Best seconds of ``repeat`` answers, the request's bytes, the decisions answered."""
    settings = Settings.from_env({}, data_path=str(static_dir), max_body_bytes=1 << 28)
    app = optimizer.create_app(settings, token=None, registry=CollectorRegistry())
    body = json.dumps({"servers": rows}).encode()
    transport = httpx.ASGITransport(app=app)
    best = math.inf
    decided = 0
    async with httpx.AsyncClient(transport=transport, base_url="http://optimizer") as http:
        for _ in range(repeat):
            t0 = time.perf_counter()
            r = await http.post(
                "/optimize", content=body, headers={"Content-Type": "application/json"}
            )
            answer = r.json()
            best = min(best, time.perf_counter() - t0)
            if r.status_code != 200:
                raise SystemExit(f"/optimize answered {r.status_code}: {r.text[:300]}")
            decided = len(answer["decisions"])
    return best, len(body), decided


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2700,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queue-factor", type=float, default=0.0, help="0: K = N")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        # the sample's static data, with the queue of the run (the service reads it from there)
        static_dir = Path(tmp)
        for name in ("accelerator-data.json", "model-data.json", "serviceclass-data.json"):
            shutil.copy(SAMPLE / name, static_dir / name)
        optimizer_data = {"optimizer": {"unlimited": True, "queueFactor": args.queue_factor}}
        (static_dir / "optimizer-data.json").write_text(json.dumps(optimizer_data))
        for n in (int(x) for x in args.sizes.split(",")):
            seconds, size, decided = asyncio.run(
                answer_seconds(rows_of(n, args.seed, args.queue_factor), args.repeat, static_dir)
            )
            cells.append([str(n), f"{size / 2**20:.1f}", str(decided), f"{seconds:.2f}"])
    print_table(["servers", "request MiB", "decisions", "answer s"], cells, args.markdown)


if __name__ == "__main__":
    main()
