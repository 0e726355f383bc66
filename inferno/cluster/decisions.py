"""Decisions: the part of a solution the actuator needs, one per server, as JSON between the
optimizer and actuator containers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..solver.allocation_columns import AllocationColumns
from ..solver.result import Solution
from ..system import System
from .plan import Decision

__all__ = ["decision_from_json", "decision_to_json", "decisions_from_solution"]


def decisions_from_solution(
    solution: Solution, system: System, gpu_node_label: str
) -> list[Decision]:
    """One decision per server of ``system``: its allocation, or why it has none."""
    acc_count = {(p.model, p.accelerator): max(p.acc_count, 1) for p in system.profiles}
    # per accelerator, once: its node selector and GPUs per accelerator (10,000 servers share
    # a few accelerators); each decision still gets its own selector dict
    selectors: dict[str, tuple[dict[str, str], int]] = {}
    for name, acc in system.accelerators.items():
        selector = dict(acc.node_selector) if acc.node_selector else {gpu_node_label: acc.type}
        selectors[name] = (selector, acc.multiplicity)
    allocations = solution.allocations
    if isinstance(allocations, AllocationColumns):
        return _from_columns(allocations, solution, system, acc_count, selectors)
    out = []
    for srv in system.servers:
        a = allocations.get(srv.name)
        if a is None:
            reason = (
                solution.unallocated[srv.name].reason if srv.name in solution.unallocated else ""
            )
            out.append(Decision(server=srv.name, allocated=False, reason=reason or "not allocated"))
            continue
        selector, multiplicity = selectors[a.accelerator]
        serving = a.serving
        out.append(
            Decision(
                server=srv.name,
                accelerator=a.accelerator,
                replicas=a.replicas,
                max_batch=a.max_batch,
                gpus_per_replica=acc_count.get((srv.model, a.accelerator), 1) * multiplicity,
                node_selector=dict(selector),
                allocated=True,
                reason=a.note,
                cost=a.cost,
                bound=a.bound,
                instances=serving.instances if serving is not None else 0,
                max_queue_delay_us=serving.delay_us if serving is not None else -1,
            )
        )
    return out


def _from_columns(
    cols: AllocationColumns,
    solution: Solution,
    system: System,
    acc_count: dict[tuple[str, str], int],
    selectors: dict[str, tuple[dict[str, str], int]],
) -> list[Decision]:
    """:func:`decisions_from_solution` read from the allocations' columns (no allocation
    object is built)."""
    position = cols.position
    accelerator, replicas, max_batch = cols.accelerator, cols.replicas, cols.max_batch
    note, cost, bound, serving = cols.note, cols.cost, cols.bound, cols.serving
    out = []
    for srv in system.servers:
        name = srv.name
        try:
            i = position(name)
        except KeyError:
            reason = solution.unallocated[name].reason if name in solution.unallocated else ""
            out.append(Decision(server=name, allocated=False, reason=reason or "not allocated"))
            continue
        acc = accelerator[i]
        selector, multiplicity = selectors[acc]
        decided = serving[i]
        # positional (Decision's field order): a third quicker than by keyword
        out.append(
            Decision(
                name,
                acc,
                replicas[i],
                max_batch[i],
                acc_count.get((srv.model, acc), 1) * multiplicity,
                dict(selector),
                True,
                note[i],
                cost[i],
                bound[i],
                decided.instances if decided is not None else 0,
                decided.delay_us if decided is not None else -1,
                None,
            )
        )
    return out


def decision_to_json(d: Decision) -> dict[str, Any]:
    return {
        "server": d.server,
        "accelerator": d.accelerator,
        "replicas": d.replicas,
        "maxBatch": d.max_batch,
        "gpusPerReplica": d.gpus_per_replica,
        "nodeSelector": dict(d.node_selector),
        "allocated": d.allocated,
        "reason": d.reason,
        "cost": d.cost,
        "bound": d.bound,
        **({"instances": d.instances} if d.instances > 0 else {}),
        **({"maxQueueDelayUs": d.max_queue_delay_us} if d.max_queue_delay_us >= 0 else {}),
        **({"stay": decision_to_json(d.stay)} if d.stay is not None else {}),
    }


def decision_from_json(obj: Mapping[str, Any]) -> Decision:
    """The inverse of :func:`decision_to_json` (KeyError/TypeError/ValueError on a bad shape)."""
    return Decision(
        server=str(obj["server"]),
        accelerator=str(obj.get("accelerator", "")),
        replicas=int(obj.get("replicas", 0)),
        max_batch=int(obj.get("maxBatch", 0)),
        gpus_per_replica=int(obj.get("gpusPerReplica", 0)),
        node_selector={str(k): str(v) for k, v in (obj.get("nodeSelector") or {}).items()},
        allocated=bool(obj.get("allocated", True)),
        reason=str(obj.get("reason", "")),
        cost=None if obj.get("cost") is None else float(obj["cost"]),
        bound=str(obj.get("bound", "")),
        instances=int(obj.get("instances", 0)),
        max_queue_delay_us=int(obj.get("maxQueueDelayUs", -1)),
        stay=None if obj.get("stay") is None else decision_from_json(obj["stay"]),
    )
