"""The ``partitions`` section of a cycle's report (``/report``, docs/gpu-partitions.md).

From the cycle's solution (its JSON, :func:`inferno.data.solution_json`): per GPU type with GPU
partitions, the whole GPUs the decision uses after packing, each packed GPU's layout (MIG slices
with their start slots and servers, or the servers on an MPS GPU's shares), the mig-parted
geometry per GPU (a recommendation unless the cluster opted in to MIG apply), the stranded MIG
compute and memory slices and MPS shares, and the packing's notes. None when the solution uses no
partitions. Long layouts are cut at :data:`MAX_GPUS` GPUs per type (``gpusLeftOut`` says how many).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_GPUS", "partitions_section"]

logger = logging.getLogger(__name__)

#: packed GPUs listed per type in a report (a report is read by people and kept for many cycles)
MAX_GPUS = 200

_COUNTS = (
    ("whole", "whole"),
    ("partitioned", "partitioned"),
    ("shares", "shares"),
    ("strandedComputeSlices", "strandedComputeSlices"),
    ("strandedMemorySlices", "strandedMemorySlices"),
    ("strandedShares", "strandedShares"),
    ("costOfGpus", "costOfGpus"),
)


def partitions_section(solution: Mapping[str, Any]) -> dict[str, Any] | None:
    """The report's ``partitions`` section for ``solution`` (None without partitions)."""
    used = solution.get("gpusUsed")
    layout = solution.get("layout")
    if not isinstance(used, Mapping) or not isinstance(layout, Mapping) or not layout:
        return None
    types: dict[str, Any] = {}
    for kind, entry in sorted(layout.items()):
        if not isinstance(entry, Mapping):
            continue
        out: dict[str, Any] = {"gpusUsed": used.get(kind)}
        for key, src in _COUNTS:
            if src in entry:
                out[key] = entry[src]
        gpus = list(entry.get("gpus") or ())
        configs = list(entry.get("migConfig") or ())
        out["gpus"] = gpus[:MAX_GPUS]
        if configs:
            out["migConfig"] = configs[:MAX_GPUS]
        if len(gpus) > MAX_GPUS:
            out["gpusLeftOut"] = len(gpus) - MAX_GPUS
            logger.debug("report: %s layout cut at %d of %d GPUs", kind, MAX_GPUS, len(gpus))
        out["notes"] = list(entry.get("notes") or ())
        types[str(kind)] = out
    return {"gpusUsed": dict(used), "types": types}
