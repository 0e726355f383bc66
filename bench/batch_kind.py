"""Batch-kind solver benchmark: Triton models (kind "batch") on the large sample's accelerators,
solved with Triton's batching (the bulk model, the default) and with the chain.

Systems: S servers cycling through 4 models × 2 classes (Premium: mean latency ≤ 3·τ(1) of the
fastest accelerator, Bronze: ≤ 6·τ(1)); each model has a profile on 3 accelerators with batch
limits 8, 16, 32 or 64; arrival rates uniform in 600–6000 req/min, seeded. Prints one row per
(S, batching): solve time, cost, replicas, and how the two models' decisions differ.

With ``--quantile 0.95`` the targets are on the p95 latency (twice the mean targets), sized on
the model's response-time distribution.

Usage: python bench/batch_kind.py [--sizes 10,100,500] [--quantile 0.95] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from _tables import print_table  # bench/, first on sys.path when run as a script

from inferno.data import system_from_documents
from inferno.solver import solve

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "large"
ACCS = ("A100", "H100", "L40S")
MODELS = {  # name: (α ms, β ms, max batch) on A100; H100 ×0.6, L40S ×1.5
    "resnet": (6.0, 0.8, 32),
    "bert": (10.0, 1.5, 16),
    "yolo": (15.0, 2.0, 8),
    "clip": (4.0, 0.3, 64),
}
SPEED = {"A100": 1.0, "H100": 0.6, "L40S": 1.5}


def documents(
    servers: int, seed: int, batching: str, quantile: float | None = None
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    accelerators = json.loads((SAMPLE / "accelerator-data.json").read_text())
    models = [
        {
            "name": m,
            "acc": acc,
            "accCount": 1,
            "kind": "batch",
            "alpha": a * SPEED[acc],
            "beta": b * SPEED[acc],
            "maxBatchSize": n,
            "batching": batching,
        }
        for m, (a, b, n) in MODELS.items()
        for acc in ACCS
    ]
    classes: list[dict[str, Any]] = []
    for m, (a, b, _) in MODELS.items():
        fastest = (a + b) * min(SPEED.values())
        classes.append({"name": "Premium", "model": m, "priority": 1, "slo-latency": 3 * fastest})
        classes.append({"name": "Bronze", "model": m, "priority": 2, "slo-latency": 6 * fastest})
    if quantile is not None:
        for c in classes:
            c["slo-latency"] *= 2  # a p95 target: twice the mean's
            c["slo-latency-quantile"] = quantile
    rows = []
    for i in range(servers):
        m = list(MODELS)[i % len(MODELS)]
        cls = ("Premium", "Bronze")[(i // len(MODELS)) % 2]
        rate = float(rng.uniform(600, 6000))
        rows.append(
            {
                "name": f"s{i:04d}-{cls}-{m}",
                "class": cls,
                "model": m,
                "currentAlloc": {"load": {"arrivalRate": rate, "avgLength": 0}},
            }
        )
    return {
        "accelerator-data.json": accelerators,
        "model-data.json": {"models": models},
        "serviceclass-data.json": {"serviceClasses": classes},
        "server-data.json": {"servers": rows},
        "optimizer-data.json": {"optimizer": {"unlimited": True}},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10,100,500")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument(
        "--quantile",
        type=float,
        default=None,
        help="latency targets on this quantile (twice the mean targets) instead of the mean",
    )
    args = ap.parse_args()
    header = ["servers", "batching", "solve s", "cost", "replicas", "servers changed"]
    rows: list[list[str]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        decided: dict[str, dict[str, tuple[str, int, int]]] = {}
        for batching in ("triton", "chain"):
            docs = documents(size, args.seed, batching, args.quantile)
            system = system_from_documents(docs, "bench")
            t0 = time.perf_counter()
            sol = solve(system)
            seconds = time.perf_counter() - t0
            decided[batching] = {
                name: (a.accelerator, a.replicas, a.max_batch)
                for name, a in sol.allocations.items()
            }
            replicas = sum(a.replicas for a in sol.allocations.values())
            changed = (
                "-"
                if batching == "triton"
                else str(sum(decided["triton"].get(k) != v for k, v in decided["chain"].items()))
            )
            rows.append(
                [
                    str(size),
                    batching,
                    f"{seconds:.2f}",
                    f"{sol.total_cost:,.0f}",
                    str(replicas),
                    changed,
                ]
            )
    print_table(header, rows, args.markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
