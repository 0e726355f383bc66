"""The serving-configuration fields of a batch-kind model-data row, written by
``inferno profile`` (``--instances-run``, ``--pid``; docs/triton.md)::

    {"name": "resnet", "acc": "A100", "kind": "batch", "alpha": 3.1, "beta": 0.4, ...,
     "instanceThroughput": {"1": 410.0, "2": 730.0},     # req/s at saturation per count
     "contention": [1.0, 1.123],                          # κ(c), c = 1, 2, …
     "resources": {"levels": [                            # per instance count and load level
         {"instances": 1, "rps": 0.0, "cpuMean": 0.02, "cpuP95": 0.05,
          "memoryPeakMiB": 812.0, "samples": 10}, ...]}}

:func:`contention` gives the row's κ list for :class:`~inferno.model.profiles.BatchProfile`
(``(1.0,)`` without one), :func:`resource_levels` its resources for :mod:`inferno.solver.recipe`,
:func:`model_row` finds a row in a model-data document. Errors name the file and the field.
"""

from __future__ import annotations

import logging

from ..errors import InputError
from ..model.profiles import MAX_INSTANCES
from ..solver.recipe import ResourceLevel
from ._json import Node

__all__ = ["contention", "instance_throughput", "model_row", "resource_levels"]

logger = logging.getLogger(__name__)

MAX_RATE = 1e9  # req/s
MAX_CORES = 1e4
MAX_MIB = 1e9  # a petabyte
MAX_SAMPLES = 10**9


def contention(row: Node) -> tuple[float, ...]:
    """κ(1), κ(2), … of the row's ``contention`` (κ(1) must be 1, each ≥ 1); ``(1.0,)`` when
    the row has none (one instance: no contention to model)."""
    items = row.array("contention")
    if not items:
        if row.has("contention"):
            raise row.member("contention").error("expected at least κ(1) = 1")
        return (1.0,)
    if len(items) > MAX_INSTANCES:
        raise row.member("contention").error(
            f"expected at most {MAX_INSTANCES} factors (Inferno's instance limit), got {len(items)}"
        )
    values = tuple(item.as_number(minimum=1.0, maximum=1e6) for item in items)
    if values[0] != 1.0:
        raise items[0].error(f"κ(1) must be 1 (one instance is the reference), got {values[0]!r}")
    return values


def instance_throughput(row: Node) -> dict[int, float]:
    """The row's ``instanceThroughput``: req/s at saturation per instance count."""
    node = row.obj("instanceThroughput")
    out: dict[int, float] = {}
    if node is None:
        return out
    for key, value in node.as_items():
        try:
            count = int(key)
        except ValueError:
            raise value.error(f"expected an instance count as key, got {key!r}") from None
        if not 1 <= count <= MAX_INSTANCES:
            raise value.error(f"instance count {count} is outside 1..{MAX_INSTANCES}")
        out[count] = value.as_number(above=0.0, maximum=MAX_RATE)
    return out


def resource_levels(row: Node) -> tuple[ResourceLevel, ...]:
    """The row's ``resources.levels`` (empty without ``resources``)."""
    node = row.obj("resources")
    if node is None:
        return ()
    levels = []
    for item in node.array("levels", required=True):
        levels.append(
            ResourceLevel(
                rate=item.number("rps", minimum=0.0, maximum=MAX_RATE),
                cpu_mean=item.number("cpuMean", minimum=0.0, maximum=MAX_CORES),
                cpu_p95=item.number("cpuP95", minimum=0.0, maximum=MAX_CORES),
                memory_peak_mib=item.number("memoryPeakMiB", minimum=0.0, maximum=MAX_MIB),
                instances=item.integer("instances", 1, minimum=1, maximum=MAX_INSTANCES),
                samples=item.integer("samples", 0, minimum=0, maximum=MAX_SAMPLES),
            )
        )
    return tuple(levels)


def model_row(document: Node, model: str, accelerator: str) -> Node:
    """The row of ``model`` on ``accelerator`` in a model-data document."""
    rows = document.array("models", required=True)
    for row in rows:
        if row.as_object().find("name") is None:
            continue
        if row.string("name") == model and row.string("acc", "") == accelerator:
            return row
    known = sorted(
        f"{r.string('name', '?')}@{r.string('acc', '?')}" for r in rows if isinstance(r.value, dict)
    )
    raise InputError(
        f"no row of model {model!r} on accelerator {accelerator!r} (rows: "
        f"{', '.join(known) or 'none'})",
        source=document.source,
    )
