"""The tuner's observations from what the collector measured and the server rows the optimizer
is given.

The collector's ``measurement`` (``LoadMeasurement.to_json()``: ``window`` and, per server,
``server``, ``computeMs``, ``avgBatch``, ``completionsRpm``, ``load``) says how each server ran;
its ``server-data.json`` row says which model it serves and on which accelerator it runs now
(``model``, ``currentAlloc.accelerator``, ``currentAlloc.numReplicas``). The two are joined by
server name. Plain JSON in, frozen values out: nothing here talks to Prometheus.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..model.profiles import Tokens
from ..units import MS_PER_MIN, S_PER_MIN
from .tuner import Observation

__all__ = ["observations_from"]

logger = logging.getLogger(__name__)


def _number(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def _mapping(x: object) -> Mapping[str, Any]:
    return x if isinstance(x, Mapping) else {}


def _tokens(*loads: Mapping[str, Any]) -> Tokens:
    """The first load that has tokens: ``avgInTokens``/``avgOutTokens`` (or G0's ``avgLength``)."""
    for load in loads:
        length = _number(load.get("avgLength"))
        if length is not None:
            return Tokens(0.0, length)
        in_tokens, out_tokens = _number(load.get("avgInTokens")), _number(load.get("avgOutTokens"))
        if in_tokens is not None or out_tokens is not None:
            return Tokens(in_tokens or 0.0, out_tokens or 0.0)
    return Tokens()


def observations_from(
    measurement: Mapping[str, Any], servers: Sequence[Mapping[str, Any]]
) -> tuple[list[Observation], list[str]]:
    """One :class:`Observation` per measured server that has a row; notes for the others."""
    rows = {str(r.get("name")): r for r in servers if isinstance(r, Mapping)}
    window = _number(measurement.get("window"))
    found: list[Observation] = []
    notes: list[str] = []
    measured = measurement.get("servers")
    for item in measured if isinstance(measured, list) else []:
        if not isinstance(item, Mapping):
            continue
        name = str(item.get("server", ""))
        row = rows.get(name)
        if row is None:
            notes.append(f"server {name}: observed but not optimized (no load): not used")
            continue
        current = _mapping(row.get("currentAlloc"))
        rpm = _number(item.get("completionsRpm"))
        compute = _number(item.get("computeMs"))
        requests = None if rpm is None or window is None else rpm * window / S_PER_MIN
        replicas = _number(current.get("numReplicas"))
        occupancy = None
        if rpm is not None and compute is not None and replicas is not None and replicas > 0:
            occupancy = rpm / MS_PER_MIN * compute / replicas  # Little's law, per replica
        found.append(
            Observation(
                server=name,
                model=str(row.get("model", "")),
                accelerator=str(current.get("accelerator") or ""),
                compute_ms=compute,
                avg_batch=_number(item.get("avgBatch")),
                tokens=_tokens(
                    _mapping(item.get("load")),
                    _mapping(row.get("load")),
                    _mapping(current.get("load")),
                ),
                requests=requests,
                occupancy=occupancy,
            )
        )
    return found, notes
