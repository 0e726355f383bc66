"""Why the batch-size bounds are where they are: ``inferno optimize`` of a one-server system at a
large batch limit, whole process, wall time and peak memory (docs/data-format.md, "Batch sizes").

Rows: the LLM chain (G0) at ``maxBatchSize`` N (its O(N) numbers per candidate), and Triton's
batching (kind ``batch``, the bulk-service model: a dense chain of up to 5N states, O(N²) memory
and O(N³) time) at N. Each system is written to a temporary directory and solved by a
subprocess (`inferno optimize DIR --format json`); peak RSS is the child's ``ru_maxrss``.

Usage: python bench/batch_limits.py [--g0 100000] [--triton 128,256] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _tables import print_table  # bench/, first on sys.path when run as a script

INFERNO = Path(sys.executable).with_name("inferno")


def system(kind: str, n: int) -> dict[str, object]:
    """One server, one accelerator, the model at batch limit ``n``."""
    if kind == "G0":
        model = {"name": "m", "acc": "A", "alpha": 20.0, "beta": 0.5, "maxBatchSize": n}
        model |= {"atTokens": 64}
        load = {"arrivalRate": 60, "avgLength": 64}
        cls = {"name": "C", "model": "m", "slo-itl": 1e9, "slo-ttw": 1e9}
    else:
        model = {"name": "m", "acc": "A", "kind": "batch", "alpha": 5.0, "beta": 0.1}
        model |= {"maxBatchSize": n}
        load = {"arrivalRate": 600}
        cls = {"name": "C", "model": "m", "slo-latency": 1e6}
    return {
        "accelerator-data.json": {"accelerators": [{"name": "A", "cost": 1.0}]},
        "model-data.json": {"models": [model]},
        "serviceclass-data.json": {"serviceClasses": [cls]},
        "server-data.json": {
            "servers": [{"name": "s", "class": "C", "model": "m", "currentAlloc": {"load": load}}]
        },
    }


def solve(kind: str, n: int) -> tuple[float, float, int]:
    """(wall s, peak RSS MiB, exit code) of ``inferno optimize`` on the one-server system."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, doc in system(kind, n).items():
            Path(tmp, name).write_text(json.dumps(doc))
        pid_started = time.perf_counter()
        proc = subprocess.Popen(
            [str(INFERNO), "optimize", tmp, "--format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - pid_started
    return wall, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--g0", default="100000", help="G0 batch limits, comma-separated")
    parser.add_argument("--triton", default="64,128", help="Triton batch limits (at most 128)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    rows = []
    for kind, sizes in (("G0", args.g0), ("Triton batching", args.triton)):
        for text in filter(None, sizes.split(",")):
            n = int(text)
            wall, rss, code = solve("G0" if kind == "G0" else "batch", n)
            rows.append([kind, f"{n:,}", f"{wall:.2f}", f"{rss:.0f}", str(code)])
    print_table(["model", "batch limit N", "wall s", "peak RSS MiB", "exit"], rows, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
