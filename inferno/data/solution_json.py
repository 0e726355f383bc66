"""The solution as Inferno's JSON shape, plus this project's extra fields.

``{"allocations": {server: {accelerator, numReplicas, maxBatch, cost, itlAverage,
waitAverage | ttftAverage, load, ...}}}``; unallocated servers and the overall status are extra
top-level keys, so a consumer of Inferno's format still reads what it expects.
"""

from __future__ import annotations

import math
from typing import Any

from ..model.profiles import Kind
from ..solver.result import Allocation, Solution
from ..system import Load, System

__all__ = ["solution_to_json"]


def _num(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else round(x, 6)


def _load_json(load: Load, g0: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"arrivalRate": load.arrival_rate}
    if g0:
        out["avgLength"] = load.out_tokens
    else:
        out["avgInTokens"] = load.in_tokens
        out["avgOutTokens"] = load.out_tokens
    if load.arrival_cov is not None:
        out["arrivalCOV"] = load.arrival_cov
    if load.service_cov is not None:
        out["serviceCOV"] = load.service_cov
    return out


def _allocation_json(a: Allocation, kind: Kind | None, load: Load) -> dict[str, Any]:
    m = a.metrics
    out: dict[str, Any] = {
        "accelerator": a.accelerator,
        "numReplicas": a.replicas,
        "maxBatch": a.max_batch,
        "cost": _num(a.cost),
    }
    if kind is Kind.BATCH:
        out["latencyAverage"] = _num(m.get("response", math.nan))
        out["waitAverage"] = _num(m.get("wait", math.nan))
    else:
        out["itlAverage"] = _num(m.get("itl", math.nan))
        if kind is Kind.G0:
            out["waitAverage"] = _num(m.get("wait", math.nan))
        else:
            out["ttftAverage"] = _num(m.get("ttft", math.nan))
            out["waitAverage"] = _num(m.get("wait", math.nan))
    for key, value in sorted(m.items()):
        stat, _, q = key.partition("_p")
        if (
            q
            and stat in ("wait", "ttft", "latency")
            and not (kind is Kind.BATCH and stat == "ttft")
        ):
            out[f"{stat}P{q}"] = _num(value)
    out["load"] = _load_json(load, kind is Kind.G0)
    out["status"] = str(a.status)
    out["requiredReplicas"] = a.required_replicas
    out["maxRatePerReplica"] = _num(a.max_rate_per_replica)
    out["boundBy"] = a.bound
    out["utilization"] = _num(m.get("utilization", math.nan))
    out["avgNumInServ"] = _num(m.get("in_service", math.nan))
    if a.max_batch_memory and a.max_batch_memory != a.max_batch:
        out["maxBatchMemory"] = a.max_batch_memory
    if len(a.parts) > 1:
        out["parts"] = [
            {
                "accelerator": p.accelerator,
                "numReplicas": p.replicas,
                "maxBatch": p.max_batch,
                "cost": _num(p.cost),
                "ratePerReplica": _num(p.rate_per_replica),
            }
            for p in a.parts
        ]
    if a.note:
        out["note"] = a.note
    return out


def solution_to_json(solution: Solution, system: System) -> dict[str, Any]:
    kinds = {(p.model, p.accelerator): p.profile.kind for p in system.profiles}
    servers = {s.name: s for s in system.servers}
    allocations = {}
    for name in sorted(solution.allocations):
        a = solution.allocations[name]
        srv = servers[name]
        allocations[name] = _allocation_json(a, kinds.get((srv.model, a.accelerator)), srv.load)
    return {
        "allocations": allocations,
        "unallocated": {n: u.reason for n, u in sorted(solution.unallocated.items())},
        "status": str(solution.status),
        "solver": solution.solver,
        "totalCost": _num(solution.total_cost),
        "unitsUsed": dict(solution.units_used),
    }
