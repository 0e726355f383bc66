"""The serving-configuration part of a profile row (pure): the contention factor of several model
instances, fitted from the runs' throughput, and the resources measured at each level; and how
the rows of runs at different instance counts merge into one.

**Contention.** The model (:mod:`inferno.model.bulk_instances`) gives each of c instances a batch
time κ(c)·τ(b): c instances busy with full batches serve c·N/(κ(c)·τ(N)) req/s, against
N/τ(N) for one. So from the saturated throughput X(c) of a run with c instances,

    κ(c) = c·X(1) / X(c)        (κ(1) = 1)

κ below 1 (c instances more than c times as fast: noise) is set to 1 and said so. A count between
two measured ones gets κ interpolated linearly; the list stops at the largest count measured.

**Runs.** A running server's instance count cannot be changed from outside (PyTriton binds one
callable per instance at start; Triton's own model-control reload needs explicit mode), so each
count is one ``inferno profile --instances-run c`` against a server started with c instances.
Its row carries ``instanceThroughput: {"c": X(c)}`` and resources levels labelled with c.
:func:`merge_row` folds it into the row already in the model-data file: the throughputs and the
levels of the other counts are kept, κ is recomputed, and α, β, maxBatchSize, queueDelayMs and
gpuShare stay those of the 1-instance run when the new run has more (a c-instance run's fit
measures κ(c)·τ(b), not τ(b), and its phases are timed under the instances' contention).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .fit import FitError
from .levels import Level
from .resources import ResourceUse

__all__ = [
    "contention_factors",
    "merge_row",
    "resource_levels",
    "saturated_throughput",
]

logger = logging.getLogger(__name__)

#: the fields a c-instance run (c > 1) does not override in a row that has the 1-instance run
_BASE_FIELDS = ("alpha", "beta", "maxBatchSize", "queueDelayMs", "batchParms", "gpuShare")


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def saturated_throughput(levels: Sequence[Level]) -> float:
    """The most requests per second any level served (the top level saturates the server)."""
    rates = [lv.request_rate for lv in levels if lv.request_rate > 0]
    if not rates:
        raise FitError("no level served any request: no throughput to compare")
    return max(rates)


def contention_factors(throughput: Mapping[int, float]) -> tuple[tuple[float, ...], list[str]]:
    """κ(1), …, κ(C) from the saturated throughput of each instance count measured (C the
    largest), with notes on what was clamped or interpolated."""
    if 1 not in throughput:
        raise FitError(
            "the contention factor needs a run with one instance (--instances-run 1) to compare "
            f"with; measured: {sorted(throughput)}"
        )
    x1 = throughput[1]
    notes: list[str] = []
    measured: dict[int, float] = {}
    for c, x in sorted(throughput.items()):
        if not (x > 0 and math.isfinite(x)):
            raise FitError(f"throughput at {c} instance(s) must be > 0, got {x!r}")
        kappa = c * x1 / x
        if kappa < 1.0:
            notes.append(
                f"{c} instances served {x / x1:.2f}× one instance's throughput (more than {c}×: "
                "noise or a cold first run): κ set to 1"
            )
            kappa = 1.0
        measured[c] = kappa
    counts = sorted(measured)
    kappas: list[float] = []
    for c in range(1, counts[-1] + 1):
        if c in measured:
            kappas.append(measured[c])
            continue
        lo = max(k for k in counts if k < c)
        hi = min(k for k in counts if k > c)
        t = (c - lo) / (hi - lo)
        kappas.append(measured[lo] + t * (measured[hi] - measured[lo]))
        notes.append(f"κ({c}) interpolated between {lo} and {hi} instances (not measured)")
    return tuple(_round(k) for k in kappas), notes


def resource_levels(
    levels: Sequence[Level], idle: ResourceUse | None, instances: int, memory: str = "pss"
) -> dict[str, Any]:
    """The row's ``resources`` block: the idle level (rate 0) and each measured level."""
    rows: list[dict[str, Any]] = []
    measured = [(0.0, idle)] if idle is not None else []
    measured += [(lv.request_rate, lv.resources) for lv in levels if lv.resources is not None]
    for rate, use in measured:
        assert use is not None
        rows.append({"instances": instances, "rps": round(rate, 3), **use.to_json()})
        memory = use.memory if use.memory == "rss" else memory
    return {"memory": memory, "levels": rows}


def _throughput(row: Mapping[str, Any]) -> dict[int, float]:
    raw = row.get("instanceThroughput")
    if not isinstance(raw, Mapping):
        return {}
    out: dict[int, float] = {}
    for k, v in raw.items():
        try:
            out[int(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _levels(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    res = row.get("resources")
    if not isinstance(res, Mapping):
        return []
    return [dict(lv) for lv in res.get("levels") or [] if isinstance(lv, Mapping)]


def combine(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``new`` (one run's row) folded into ``old`` (the same model and accelerator's row)."""
    notes: list[str] = []
    new_tp, old_tp = _throughput(new), _throughput(old)
    run = max(new_tp, default=1)  # the new run's instance count
    out = dict(new)
    if run > 1 and 1 in old_tp:
        for key in _BASE_FIELDS:
            if key in old:
                out[key] = old[key]
            else:
                out.pop(key, None)
        notes.append(
            f"kept α, β and the batch settings of the 1-instance run; took the {run}-instance "
            "run's throughput and resources"
        )
    throughput = {**old_tp, **new_tp}
    if throughput:
        out["instanceThroughput"] = {str(c): throughput[c] for c in sorted(throughput)}
    new_levels = _levels(new)
    counts = {int(lv.get("instances", 1)) for lv in new_levels}
    levels = [lv for lv in _levels(old) if int(lv.get("instances", 1)) not in counts]
    if levels and not new_levels:
        notes.append("kept the resources measured before (this run sampled none: no --pid)")
    levels += new_levels
    if levels:
        memory = new.get("resources", old.get("resources", {})).get("memory", "pss")
        out["resources"] = {"memory": memory, "levels": levels}
    out.pop("contention", None)
    if len(throughput) > 1:
        try:
            kappas, more = contention_factors(throughput)
        except FitError as exc:
            notes.append(f"no contention factor: {exc}")
        else:
            out["contention"] = list(kappas)
            notes += more
    return out, notes


def merge_row(
    document: Mapping[str, Any], row: Mapping[str, Any]
) -> tuple[dict[str, Any], bool, list[str]]:
    """``document`` (a model-data.json) with ``row`` in place of the row of the same model and
    accelerator — folded into it by :func:`combine` — or appended. Returns the new document,
    whether a row was replaced, and notes."""
    models = list(document.get("models") or [])
    replaced = False
    notes: list[str] = []
    for i, old in enumerate(models):
        if (
            isinstance(old, Mapping)
            and old.get("name") == row["name"]
            and old.get("acc") == row["acc"]
        ):
            models[i], notes = combine(old, row)
            replaced = True
    if not replaced:
        models.append(dict(row))
    return {**document, "models": models}, replaced, notes
