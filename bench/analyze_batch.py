"""What `inferno analyze --percentiles` costs on the batch kind near saturation: the whole
process, start to output, for single-server problems whose exact response-time distribution
has hundreds of thousands to millions of terms (Triton's batching of N = 128 at 99.8% of its
capacity; a queue of 1,000 in target mode). Prints the seconds (median of ``--repeat``) and
the p99 response time each gives (to compare two trees: the same number, another cost).

Usage: python bench/analyze_batch.py [--repeat 3] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _tables import print_table  # bench/, first on sys.path when run as a script

PROBLEMS = {
    "N 128, 990 req/s (99.8% of capacity), queue 128": {
        "RPS": 990, "maxBatchSize": 128, "alpha": 1, "beta": 1, "kind": "batch",
        "maxQueueSize": 128,
    },
    "N 128, queue 1,000, target mode (targetTTFT 5 ms)": {
        "RPS": 3, "maxBatchSize": 128, "alpha": 1, "beta": 1, "kind": "batch",
        "maxQueueSize": 1000, "targetTTFT": 5,
    },
}  # fmt: skip


def run(problem: dict[str, object], repeat: int) -> tuple[float, float]:
    exe = shutil.which("inferno", path=str(Path(sys.executable).parent)) or "inferno"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "problem.json"
        path.write_text(json.dumps(problem))
        times, p99 = [], float("nan")
        for _ in range(repeat):
            start = time.perf_counter()
            out = subprocess.run(
                [exe, "analyze", str(path), "--percentiles"],
                check=True,
                capture_output=True,
                text=True,
            )
            times.append(time.perf_counter() - start)
            p99 = float(json.loads(out.stdout)["p99RespTime"])
    return statistics.median(times), p99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per problem (median)")
    ap.add_argument("--markdown", action="store_true", help="a table for bench/README.md")
    args = ap.parse_args()
    rows = []
    for label, problem in PROBLEMS.items():
        seconds, p99 = run(problem, args.repeat)
        rows.append([label, f"{seconds:.1f}", f"{p99:.6f}"])
    print_table(["problem", "whole process s", "p99 response ms"], rows, markdown=args.markdown)


if __name__ == "__main__":
    main()
