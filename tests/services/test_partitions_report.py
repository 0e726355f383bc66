"""The ``partitions`` section of ``/report``: the GPUs the last cycle's decision uses after
packing its GPU partitions, each GPU's layout and the stranded slices
(inferno/control/partitions_report.py), through the real controller, collector, optimizer and
actuator apps over a fake cluster."""

from __future__ import annotations

from typing import Any

from inferno.control.partitions_report import MAX_GPUS, partitions_section

from . import FakeCluster, Stack, make_deployment, settings
from .fakes import ROOT

#: Deployments of samples/gpulets' models at loads that take MIG slices (req/min)
LOADS = {
    "resnet50": ("Premium", 90000),
    "mobilenet_v2": ("Standard", 240000),
    "efficientnet_b0": ("Premium", 60000),
    "distilbert": ("Standard", 150000),
}


async def test_report_shows_gpus_layout_and_stranded_slices() -> None:
    cluster = FakeCluster(
        [
            make_deployment(m.replace("_", "-"), model=m, service_class=c, rpm=r, tokens=1)
            for m, (c, r) in LOADS.items()
        ]
    )
    stack = Stack(cluster, settings(data_path=str(ROOT / "samples" / "gpulets")))
    async with stack.client() as http:
        r = await http.post("/invoke")
        last = await http.get("/report")
    await stack.aclose()
    assert r.status_code == 200, r.text
    report = last.json()
    assert report["status"] == "ok", report["errors"]
    section = report["partitions"]
    on_slices = {d["server"] for d in report["decisions"] if ":" in (d["accelerator"] or "")}
    assert on_slices, "some decisions are on MIG slices"
    listed: set[str] = set()
    for kind, entry in section["types"].items():
        assert (
            section["gpusUsed"][kind] == entry["gpusUsed"] == entry["whole"] + entry["partitioned"]
        )
        assert len(entry["gpus"]) == entry["partitioned"] == len(entry["migConfig"])
        # the stranded counts are what the layout leaves free
        mig = [g for g in entry["gpus"] if g["mode"] == "mig"]
        assert entry["strandedComputeSlices"] == sum(g["freeComputeSlices"] for g in mig)
        assert entry["strandedMemorySlices"] == sum(len(g["freeMemorySlices"]) for g in mig)
        for gpu, config in zip(mig, entry["migConfig"], strict=True):
            used = 7 - gpu["freeComputeSlices"]
            assert sum(int(p.split("g.")[0]) * n for p, n in config.items()) == used
            listed |= {s["server"] for s in gpu["slices"]}
    assert listed == on_slices  # every server on a slice has its slices in the layout


def test_no_section_without_partitions_and_long_layouts_are_cut() -> None:
    assert partitions_section({"status": "optimal", "allocations": {}}) is None
    gpus: list[dict[str, Any]] = [
        {"product": "A100-80GB", "mode": "mig", "slices": [], "freeComputeSlices": 7}
    ] * (MAX_GPUS + 5)
    solution = {
        "gpusUsed": {"A100-80GB": MAX_GPUS + 5},
        "layout": {"A100-80GB": {"whole": 0, "partitioned": MAX_GPUS + 5, "gpus": gpus}},
    }
    section = partitions_section(solution)
    assert section is not None
    entry = section["types"]["A100-80GB"]
    assert len(entry["gpus"]) == MAX_GPUS and entry["gpusLeftOut"] == 5
