"""Writes ``samples/gpulets/``: a fleet of CNN/BERT-class Triton models on GPU partitions.

Synthetic but plausible, and made only by this script (rerun it to get the same bytes):

- Two GPU products with MIG slices 1g.10gb, 2g.20gb, 3g.40gb, 4g.40gb: ``A100-80GB`` (cost 40)
  and ``H100-80GB`` (cost 65). (MPS shares are not in the sample: without interference data for
  its models, Inferno does not co-locate different models on one GPU, docs/gpu-partitions.md.)
- Eight batch-kind models. Their whole-A100 batch times τ(b) = α + β·b are of the order that
  Triton's perf_analyzer reports for these networks at fp16 (a few ms at batch 1, sub-ms per extra
  item); on the H100 they are 0.6× the A100's. Each has a serial fraction s (the share of its batch
  time that does not speed up with more SMs: large for small networks, which use few SMs at their
  batch sizes, as GPU-let measured) and a memory need.
- On partitions, every profile is derived by the scaling law τ_f = τ_1·(s + (1 − s)/f)
  (docs/gpu-partitions.md), except resnet50 on ``A100-80GB:1g.10gb`` and ``2g.20gb``, given as
  measured (the law at s = 0.55, ±2%), from which the sample's resnet50 serial fraction is fitted.
- Two classes: Premium (mean latency ≤ 3 × τ(1) on the whole A100) and Standard (≤ 6 ×); each
  model in both, with loads between 15,000 and 240,000 requests per minute: from a small slice to
  a few GPUs each.
- Capacity: 24 A100-80GB and 12 H100-80GB.

``samples/gpulets/whole/`` is the same system without partitions (Inferno on whole GPUs), for the
scenarios that compare the two on the same requests (``samples/scenarios/gpulets*.yaml``).

``samples/gpulets/mps/`` is the same system with the H100-80GB shared by MPS instead of MIG (pools
of 2 and 4 equal shares), GPU-let's RTX 2080 Ti interference constants (``gpulet-2080ti``) and,
per model, the L2 and DRAM utilisation of the GPU-let network nearest to it
(:data:`UTILISATION_OF`; GPU-let's 2080 Ti table, docs/gpu-partitions.md) — a stand-in until the
models are measured on an H100 with Nsight Compute. vit_b16 has none: it is never co-located.

Usage: python bench/make_gpulets.py [--out samples/gpulets]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from inferno.partitions.gpulet_2080ti import BATCHES, L2_DRAM

ROOT = Path(__file__).resolve().parent.parent

#: name: (α ms, β ms, max batch, serial fraction, memory GB, Premium load, Standard load /min)
MODELS = {
    "resnet50": (2.0, 0.35, 32, 0.55, 1.5, 90000, 180000),
    "efficientnet_b0": (1.6, 0.15, 32, 0.70, 0.8, 60000, 120000),
    "mobilenet_v2": (1.0, 0.08, 64, 0.80, 0.5, 120000, 240000),
    "yolov5s": (4.0, 0.90, 16, 0.45, 2.0, 30000, 60000),
    "bert_base": (3.0, 0.60, 32, 0.40, 1.5, 60000, 90000),
    "bert_large": (8.0, 1.80, 16, 0.30, 4.0, 15000, 30000),
    "distilbert": (1.8, 0.30, 32, 0.55, 1.0, 90000, 150000),
    "vit_b16": (5.0, 1.20, 16, 0.35, 2.0, 30000, 45000),
}
H100_SPEED = 0.6
#: the sample's model → the GPU-let network whose utilisation stands in for it
UTILISATION_OF = {
    "resnet50": "resnet50",
    "efficientnet_b0": "mnasnet1_0",
    "mobilenet_v2": "mobilenet_v2",
    "yolov5s": "ssd-mobilenetv1",
    "bert_base": "bert",
    "bert_large": "bert",
    "distilbert": "bert",
}
MEASURED = {"A100-80GB:1g.10gb": (1 / 7, 1.02), "A100-80GB:2g.20gb": (2 / 7, 0.98)}


def files() -> dict[str, Any]:
    accelerators = [
        {
            "name": "A100-80GB",
            "memSize": 80,
            "cost": 40.0,
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
            "partitions": {"mig": ["1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb"]},
        },
        {
            "name": "H100-80GB",
            "memSize": 80,
            "cost": 65.0,
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            "partitions": {"mig": ["1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb"]},
        },
    ]
    models: list[dict[str, Any]] = []
    classes: list[dict[str, Any]] = []
    servers: list[dict[str, Any]] = []
    for name, (alpha, beta, n, s, mem, premium, standard) in MODELS.items():
        for acc, speed in (("A100-80GB", 1.0), ("H100-80GB", H100_SPEED)):
            models.append(
                {
                    "name": name,
                    "acc": acc,
                    "kind": "batch",
                    "alpha": round(alpha * speed, 4),
                    "beta": round(beta * speed, 4),
                    "maxBatchSize": n,
                    "serialFraction": s,
                    "memSize": mem,
                }
            )
        if name == "resnet50":
            for acc, (f, noise) in MEASURED.items():
                k = (s + (1 - s) / f) * noise
                models.append(
                    {
                        "name": name,
                        "acc": acc,
                        "kind": "batch",
                        "alpha": round(alpha * k, 4),
                        "beta": round(beta * k, 4),
                        "maxBatchSize": n,
                        "memSize": mem,
                    }
                )
        tau1 = alpha + beta
        for cls, factor, load in (("Premium", 3, premium), ("Standard", 6, standard)):
            classes.append(
                {
                    "name": cls,
                    "priority": 1 if cls == "Premium" else 2,
                    "model": name,
                    "slo-latency": round(factor * tau1, 3),
                }
            )
            servers.append(
                {
                    "name": f"{cls}-{name}",
                    "class": cls,
                    "model": name,
                    "currentAlloc": {"load": {"arrivalRate": load, "avgLength": 1}},
                }
            )
    return {
        "accelerator-data.json": {"accelerators": accelerators},
        "model-data.json": {"models": models},
        "serviceclass-data.json": {"serviceClasses": classes},
        "server-data.json": {"servers": servers},
        "capacity-data.json": {
            "count": [{"type": "A100-80GB", "count": 24}, {"type": "H100-80GB", "count": 12}]
        },
    }


def whole_files() -> dict[str, Any]:
    """The same system on whole GPUs only: no partitions, no partition rows."""
    docs: dict[str, Any] = json.loads(json.dumps(files()))
    for acc in docs["accelerator-data.json"]["accelerators"]:
        acc.pop("partitions", None)
    models = docs["model-data.json"]["models"]
    docs["model-data.json"]["models"] = [m for m in models if ":" not in m["acc"]]
    return docs


def mps_files() -> dict[str, Any]:
    """The system with MPS shares on the H100-80GB instead of MIG slices, with interference
    data (the module docstring)."""
    docs: dict[str, Any] = json.loads(json.dumps(files()))
    for acc in docs["accelerator-data.json"]["accelerators"]:
        if acc["name"] == "H100-80GB":
            acc["partitions"] = {"mps": [2, 4], "interference": "gpulet-2080ti"}
    for row in docs["model-data.json"]["models"]:
        net = UTILISATION_OF.get(row["name"])
        if net is not None and ":" not in row["acc"]:
            l2, dram = L2_DRAM[net]
            row["utilization"] = {str(b): [x, y] for b, x, y in zip(BATCHES, l2, dram, strict=True)}
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "samples" / "gpulets"), help="the directory")
    out = Path(ap.parse_args().out)
    for directory, docs in (
        (out, files()),
        (out / "whole", whole_files()),
        (out / "mps", mps_files()),
    ):
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in docs.items():
            (directory / name).write_text(json.dumps(content, indent=2) + "\n")


if __name__ == "__main__":
    main()
