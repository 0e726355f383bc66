"""The solution as Inferno's JSON shape, plus this project's extra fields.

``{"allocations": {server: {accelerator, numReplicas, maxBatch, cost, itlAverage,
waitAverage | ttftAverage, load, ...}}}``; unallocated servers and the overall status are extra
top-level keys, so a consumer of Inferno's format still reads what it expects.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..model.profiles import Kind
from ..partitions.labels import MIG_STRATEGY
from ..solver.allocation_columns import AllocationColumns
from ..solver.result import Allocation, ServerStatus, Solution
from ..system import Load, Server, System

__all__ = ["solution_to_json"]


def _num(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else round(x, 6)


#: |x| from which round(x, 6) is left to Python: x·10⁶ nears 2⁵³, where rint stops being exact
_ROUND_FAST_BELOW = 1e9


def _rounded(values: list[Any]) -> list[Any]:
    """``[_num(x) for x in values]``, vectorised for floats: round(x, 6) is the double nearest
    to x·10⁶ rounded half-even to an integer m, over 10⁶; ``rint(x * 1e6) / 1e6`` finds the same
    m unless x·10⁶ lies within rounding error of a half-integer (the product is inexact), and
    m / 1e6 is then the correctly rounded quotient. Those near-ties, large values, non-floats
    and non-finite values take ``_num`` (60,000 ``round`` calls were 0.2 s of a
    10,000-server solution)."""
    x = np.array([v if type(v) is float else math.nan for v in values], dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        y = x * 1e6
        fast = np.rint(y) / 1e6
        near_tie = np.abs(np.abs(y - np.floor(y)) - 0.5) <= np.abs(y) * 2.0**-48
    ok = np.isfinite(x) & ~near_tie & (np.abs(x) < _ROUND_FAST_BELOW)
    out: list[Any] = fast.tolist()
    for i in np.flatnonzero(~ok).tolist():
        out[i] = _num(values[i])
    return out


#: per metrics key order and kind: the quantile metrics reported, (metric key, JSON key)
_QUANTILE_KEYS: dict[tuple[tuple[str, ...], bool], list[tuple[str, str]]] = {}


def _quantile_keys(keys: tuple[str, ...], batch: bool) -> list[tuple[str, str]]:
    found = _QUANTILE_KEYS.get((keys, batch))
    if found is None:
        found = []
        for key in sorted(keys):
            stat, _, q = key.partition("_p")
            if q and stat in ("wait", "ttft", "latency") and not (batch and stat == "ttft"):
                found.append((key, f"{stat}P{q}"))
        _QUANTILE_KEYS[(keys, batch)] = found
    return found


def _allocation_json(
    a: Allocation, kind: Kind | None, load: Load, numbers: list[tuple[dict[str, Any], str, Any]]
) -> dict[str, Any]:
    """The allocation's JSON, its numbers to round still raw: each (object, key, value) is
    appended to ``numbers`` for the caller to round (:func:`_rounded`) and set."""
    m = a.metrics
    nan = math.nan
    out: dict[str, Any] = {
        "accelerator": a.accelerator,
        "numReplicas": a.replicas,
        "maxBatch": a.max_batch,
        "cost": a.cost,
    }
    if kind is Kind.BATCH:
        out["latencyAverage"] = m.get("response", nan)
        out["waitAverage"] = m.get("wait", nan)
    else:
        out["itlAverage"] = m.get("itl", nan)
        if kind is Kind.G0:
            out["waitAverage"] = m.get("wait", nan)
        else:
            out["ttftAverage"] = m.get("ttft", nan)
            out["waitAverage"] = m.get("wait", nan)
    for key, name in _quantile_keys(tuple(m), kind is Kind.BATCH):
        out[name] = m[key]
    for key in out.keys() - _RAW:
        numbers.append((out, key, out[key]))
    out["load"] = load.to_json(g0=kind is Kind.G0)
    out["status"] = str(a.status)
    out["requiredReplicas"] = a.required_replicas
    out["maxRatePerReplica"] = a.max_rate_per_replica
    numbers.append((out, "maxRatePerReplica", a.max_rate_per_replica))
    out["boundBy"] = a.bound
    out["utilization"] = m.get("utilization", nan)
    numbers.append((out, "utilization", out["utilization"]))
    out["avgNumInServ"] = m.get("in_service", nan)
    numbers.append((out, "avgNumInServ", out["avgNumInServ"]))
    if a.max_batch_memory and a.max_batch_memory != a.max_batch:
        out["maxBatchMemory"] = a.max_batch_memory
    if len(a.parts) > 1:
        parts = []
        for p in a.parts:
            part = {
                "accelerator": p.accelerator,
                "numReplicas": p.replicas,
                "maxBatch": p.max_batch,
                "cost": p.cost,
                "ratePerReplica": p.rate_per_replica,
            }
            numbers.append((part, "cost", p.cost))
            numbers.append((part, "ratePerReplica", p.rate_per_replica))
            parts.append(part)
        out["parts"] = parts
    if a.serving is not None:  # decided by the solver (solver/serving_config.py)
        out["instances"] = a.serving.instances
        out["maxQueueDelayUs"] = a.serving.delay_us
    if a.note:
        out["note"] = a.note
    return out


#: the keys of an allocation's first part that are not numbers to round
_RAW = frozenset(("accelerator", "numReplicas", "maxBatch"))


def solution_to_json(solution: Solution, system: System) -> dict[str, Any]:
    kinds = {(p.model, p.accelerator): p.profile.kind for p in system.profiles}
    derived = {(p.model, p.accelerator) for p in system.profiles if p.derived}
    servers = {s.name: s for s in system.servers}
    numbers: list[tuple[dict[str, Any], str, Any]] = []
    if isinstance(solution.allocations, AllocationColumns):
        allocations = _columns_json(solution.allocations, kinds, derived, servers, numbers)
    else:
        allocations = {}
        for name in sorted(solution.allocations):
            a = solution.allocations[name]
            srv = servers[name]
            kind = kinds.get((srv.model, a.accelerator))
            allocations[name] = _allocation_json(a, kind, srv.load, numbers)
            if (srv.model, a.accelerator) in derived:
                allocations[name]["derived"] = True  # the profile on this partition is derived
    rounded = _rounded([value for _, _, value in numbers])
    for (obj, key, _), value in zip(numbers, rounded, strict=True):
        obj[key] = value
    return {
        "allocations": allocations,
        "unallocated": {n: u.reason for n, u in sorted(solution.unallocated.items())},
        "status": str(solution.status),
        "solver": solution.solver,
        "totalCost": _num(solution.total_cost),
        "unitsUsed": dict(solution.units_used),
        **_partitions_json(solution, system),
    }


#: the metrics an allocation's JSON carries besides its quantiles
_AVERAGES = ("response", "wait", "itl", "ttft", "utilization", "in_service")
_STATUS = {False: str(ServerStatus.ALLOCATED), True: str(ServerStatus.PARTIAL)}


def _columns_json(
    cols: AllocationColumns,
    kinds: dict[tuple[str, str], Kind],
    derived: set[tuple[str, str]],
    servers: dict[str, Server],
    numbers: list[tuple[dict[str, Any], str, Any]],
) -> dict[str, Any]:
    """:func:`_allocation_json` of every row of ``cols``, by server name, its numbers rounded
    a column at a time (the same values: :func:`_rounded` rounds each number alone); the rows
    built apart go through :func:`_allocation_json` (their numbers appended to ``numbers``)."""
    n = len(cols.server)
    m = cols.metrics
    nan = [math.nan] * n
    quantile_keys = {batch: _quantile_keys(tuple(m), batch) for batch in (False, True)}
    written = {*_AVERAGES, *(key for keys in quantile_keys.values() for key, _ in keys)}
    r: dict[str, list[Any]] = {k: _rounded(v) for k, v in m.items() if k in written}
    cost = _rounded(cols.cost)
    max_rate = _rounded(cols.max_rate)
    response, wait, itl, ttft, utilization, in_service = (r.get(k, nan) for k in _AVERAGES)
    quantiles = {
        batch: [(name, r[key]) for key, name in keys] for batch, keys in quantile_keys.items()
    }
    built = cols.built
    out: dict[str, Any] = {}
    accelerator, replicas, max_batch = cols.accelerator, cols.replicas, cols.max_batch
    memory, note, serving = cols.max_batch_memory, cols.note, cols.serving
    for i in sorted(range(n), key=cols.server.__getitem__):
        name = cols.server[i]
        srv = servers[name]
        acc = accelerator[i]
        pair = (srv.model, acc)
        kind = kinds.get(pair)
        if i in built:
            row = _allocation_json(built[i], kind, srv.load, numbers)
        else:
            row = {"accelerator": acc, "numReplicas": replicas[i], "maxBatch": max_batch[i]}
            row["cost"] = cost[i]
            if kind is Kind.BATCH:
                row["latencyAverage"] = response[i]
                row["waitAverage"] = wait[i]
            else:
                row["itlAverage"] = itl[i]
                if kind is not Kind.G0:
                    row["ttftAverage"] = ttft[i]
                row["waitAverage"] = wait[i]
            for key, values in quantiles[kind is Kind.BATCH]:
                row[key] = values[i]
            row["load"] = srv.load.to_json(g0=kind is Kind.G0)
            row["status"] = _STATUS[cols.partial[i]]
            row["requiredReplicas"] = cols.required[i]
            row["maxRatePerReplica"] = max_rate[i]
            row["boundBy"] = cols.bound[i]
            row["utilization"] = utilization[i]
            row["avgNumInServ"] = in_service[i]
            if memory[i] and memory[i] != max_batch[i]:
                row["maxBatchMemory"] = memory[i]
            decided = serving[i]
            if decided is not None:  # decided by the solver (solver/serving_config.py)
                row["instances"] = decided.instances
                row["maxQueueDelayUs"] = decided.delay_us
            if note[i]:
                row["note"] = note[i]
        if pair in derived:
            row["derived"] = True  # the profile on this partition is derived
        out[name] = row
    return out


def _partitions_json(solution: Solution, system: System) -> dict[str, Any]:
    """GPU partitions after packing (docs/gpu-partitions.md): the GPUs used per type, each
    GPU's layout, the stranded slices, and per GPU type the MIG geometry to give the GPUs
    (``nvidia.com/mig.config`` is a recommendation: Inferno does not relabel nodes)."""
    out: dict[str, Any] = {}
    if solution.gpus:
        out["gpusUsed"] = {k: g.used for k, g in solution.gpus.items()}
        out["layout"] = {
            k: {
                "whole": g.whole,
                "partitioned": g.packed,
                "shares": _num(g.relaxed),
                "strandedComputeSlices": g.stranded_compute,
                "strandedMemorySlices": g.stranded_memory,
                "strandedShares": g.stranded_shares,
                "costOfGpus": _num(g.used * g.gpu_cost),
                "gpus": [dict(x) for x in g.layout],
                "migConfig": [_counts(x["slices"]) for x in g.layout if x.get("mode") == "mig"],
                **_nodes_of(system, k),
                "notes": list(g.notes),
            }
            for k, g in solution.gpus.items()
        }
    if system.notes:
        out["notes"] = list(system.notes)
    return out


def _nodes_of(system: System, gpu_type: str) -> dict[str, Any]:
    """The whole GPU's node selector and the device plugin's MIG strategy on its nodes: where
    the geometries go (:mod:`inferno.cluster.mig_nodes`)."""
    base = system.accelerators.get(gpu_type)
    selector = dict(base.node_selector) if base is not None else {}
    strategy = "mixed"
    for acc in system.accelerators.values():
        if acc.type == gpu_type and acc.partition and not acc.partition.startswith("mps"):
            strategy = dict(acc.node_selector).get(MIG_STRATEGY, strategy)
    selector.pop(MIG_STRATEGY, None)
    return {"nodeSelector": selector, "migStrategy": strategy}


def _counts(slices: list[dict[str, Any]]) -> dict[str, int]:
    """A GPU's MIG instances as mig-parted counts (profile → instances)."""
    counts: dict[str, int] = {}
    for s in slices:
        counts[s["profile"]] = counts.get(s["profile"], 0) + 1
    return dict(sorted(counts.items()))
