"""GPU partitions after the solve: the chosen MIG slices and MPS shares packed onto whole GPUs.

The solver sees a partition as an accelerator taking its share of one GPU (g/7 for a MIG slice,
1/N for an MPS share) at that share of the GPU's cost: a linear relaxation of the GPUs really
used. This step places the replicas on partitions onto physical GPUs, per product:

- MIG slices by :func:`~inferno.solver.packing.pack_mig` (placement rules, exact ILP or FFD);
- MPS shares by :func:`~inferno.solver.packing_mps.pack_mps` (N equal shares per GPU, memory
  admission), replicas sharing a GPU only where GPU-let's interference model keeps every one of
  them within its own SLO (:mod:`.mps_check`; a server's own replicas included). Without
  interference data for the models, a GPU's shares go to replicas of one server only (no
  co-location of different models), and the report says so.

It reports the GPUs used per accelerator type (whole-GPU replicas + packed GPUs), each GPU's
layout, the stranded slices and shares, and a total cost of whole GPUs × their cost. Under capacity
limits the caller re-solves with the difference between packed and relaxed units taken off
(:func:`packing_excess`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..partitions.catalogue import mps_pool
from ..partitions.interference import Constants, CoRunner, UtilisationTable, batch_factor
from ..system import Accelerator, System
from .allocation_columns import AllocationColumns
from .candidates import CandidateTable
from .mps_check import pool_check
from .packing import SliceRequest, pack_mig
from .packing_mps import MB_PER_GB, MpsProcess, pack_mps
from .result import Solution

__all__ = ["GpuUse", "colocation_slowdowns", "pack_solution", "packing_excess", "utilisation_table"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GpuUse:
    """The physical GPUs of one accelerator type after packing."""

    type: str
    whole: int  # GPUs held whole by replicas on whole GPUs
    packed: int  # GPUs holding partitions
    gpu_cost: float
    stranded_compute: int = 0  # MIG compute slices no instance uses (of 7 per GPU)
    stranded_memory: int = 0  # MIG memory slices no instance covers (of 8 per GPU)
    stranded_shares: int = 0  # MPS shares no process uses
    relaxed: float = 0.0  # the GPUs the solver counted for the partitions (Σ shares)
    layout: tuple[Mapping[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    #: (server, MPS accelerator) whose co-location was refused and whose GPUs have free shares:
    #: the servers :mod:`.mps_resolve` solves again without that pool
    refused: tuple[tuple[str, str], ...] = ()

    @property
    def used(self) -> int:
        return self.whole + self.packed


def _whole_gpu_cost(acc: Accelerator) -> float:
    return acc.cost / acc.fraction if acc.fraction > 0 else 0.0


def pack_solution(table: CandidateTable, solution: Solution) -> Solution:
    """``solution`` (solved from ``table``) with its partitions packed (unchanged when it uses
    none)."""
    system = table.system
    accs = system.accelerators
    allocations = solution.allocations
    if isinstance(allocations, AllocationColumns):  # every accelerator used, from its column
        used = allocations.accelerators()
    else:
        used = {p.accelerator for a in allocations.values() for p in a.parts or ()}
    if not any(accs[name].partition for name in used if name in accs):
        return solution
    acc_count = {(p.model, p.accelerator): max(p.acc_count, 1) for p in system.profiles}
    servers = {s.name: s for s in system.servers}
    whole: dict[str, int] = {}
    costs: dict[str, float] = {}
    whole_cost = 0.0
    mig: dict[tuple[str, str], list[SliceRequest]] = {}  # (type, product) → slices
    mps: dict[tuple[str, str, int], list[MpsProcess]] = {}  # (type, product, N) → processes
    relaxed: dict[str, float] = {}
    mps_constants: dict[tuple[str, str, int], tuple[float, ...]] = {}
    mps_acc: dict[tuple[tuple[str, str, int], str], str] = {}  # (pool, server) → accelerator
    for name, alloc in solution.allocations.items():
        model = servers[name].model if name in servers else ""
        for part in alloc.parts:
            acc = accs[part.accelerator]
            n = part.replicas * acc_count.get((model, acc.name), 1)
            if not acc.partition:
                whole[acc.type] = whole.get(acc.type, 0) + n * acc.multiplicity
                whole_cost += part.cost
                continue
            costs[acc.type] = _whole_gpu_cost(acc)
            relaxed[acc.type] = relaxed.get(acc.type, 0.0) + n * acc.fraction
            if acc.partition.startswith("mps-"):
                mem = _model_gb(system, model, acc.name)
                key = (acc.type, acc.product, int(acc.partition.removeprefix("mps-")))
                mps_constants[key] = acc.interference
                mps_acc[(key, name)] = acc.name
                mps.setdefault(key, []).extend(MpsProcess(name, mem * MB_PER_GB) for _ in range(n))
            else:
                mig.setdefault((acc.type, acc.product), []).extend(
                    SliceRequest(acc.partition, name) for _ in range(n)
                )
    uses: dict[str, dict[str, Any]] = {}
    table_util: UtilisationTable | None = None

    def use(kind: str) -> dict[str, Any]:
        return uses.setdefault(
            kind,
            {
                "packed": 0,
                "compute": 0,
                "memory": 0,
                "shares": 0,
                "layout": [],
                "notes": [],
                "refused": [],
            },
        )

    for (kind, prod), slices in sorted(mig.items()):
        packing = pack_mig(prod, slices)
        u = use(kind)
        u["packed"] += packing.gpus_used
        u["compute"] += packing.stranded_compute
        u["memory"] += packing.stranded_memory
        for gpu in packing.gpus:
            u["layout"].append(
                {
                    "product": prod,
                    "mode": "mig",
                    "slices": [
                        {"profile": s.profile, "start": s.start, "server": s.owner}
                        for s in gpu.slices
                    ],
                    "freeComputeSlices": gpu.free_compute,
                    "freeMemorySlices": list(gpu.free_memory),
                }
            )
        if not packing.optimal:
            u["notes"].append(f"{prod} MIG packing not proven minimal ({packing.message})")
    for (kind, prod, n), processes in sorted(mps.items()):
        constants = mps_constants.get((kind, prod, n), ())
        key = (kind, prod, n)
        victims: set[str] = set()
        owners = {s: a for (k, s), a in mps_acc.items() if k == key}
        if table_util is None:
            table_util = utilisation_table(system)
        check = pool_check(table, solution, constants, 1.0 / n, owners, table_util)
        packed = pack_mps(
            mps_pool(prod, n),
            processes,
            compatible=check.compatible if check else _same_server_only(victims),
        )
        if check is not None:
            victims = check.victims
        u = use(kind)
        stranded = {p.owner for g in packed.gpus if g.free_shares for p in g.processes}
        u["refused"].extend((s, mps_acc[(key, s)]) for s in sorted(victims & stranded))
        u["packed"] += packed.gpus_used
        u["shares"] += packed.stranded_shares
        for shared in packed.gpus:
            u["layout"].append(
                {
                    "product": prod,
                    "mode": "mps",
                    "shares": n,
                    "servers": [p.owner for p in shared.processes],
                    "freeShares": shared.free_shares,
                }
            )
        if check is None:
            u["notes"].append(
                f"{prod}:mps-{n}: no interference constants for the GPU, so a GPU's shares go "
                "to one server's replicas"
            )
        else:
            u["notes"].append(
                f"{prod}:mps-{n}: replicas share a GPU only where GPU-let's interference model "
                "predicts each stays within its SLO, percentiles included (and has utilisation "
                "data)"
            )
            together = {p.owner for g in packed.gpus if len(g.processes) > 1 for p in g.processes}
            for name in sorted(check.unchecked & together):
                u["notes"].append(
                    f"{name} on {prod}:mps-{n}: its replicas share GPUs but have no utilisation "
                    "data, so their interference with each other is not checked"
                )
        for proc, why in packed.refused:
            u["notes"].append(f"{proc.owner} on {prod}:mps-{n} not admitted: {why}")
    gpus: dict[str, GpuUse] = {}
    for kind in sorted(set(uses) | set(whole) & set(costs)):
        u = use(kind)
        gpus[kind] = GpuUse(
            type=kind,
            whole=whole.get(kind, 0),
            packed=u["packed"],
            gpu_cost=costs.get(kind, 0.0),
            stranded_compute=u["compute"],
            stranded_memory=u["memory"],
            stranded_shares=u["shares"],
            relaxed=relaxed.get(kind, 0.0),
            layout=tuple(MappingProxyType(x) for x in u["layout"]),
            notes=tuple(u["notes"]),
            refused=tuple(u["refused"]),
        )
    units = dict(solution.units_used)
    for kind, g in gpus.items():
        units[kind] = g.used
    total = whole_cost + sum(g.packed * g.gpu_cost for g in gpus.values())
    return replace(
        solution,
        units_used=MappingProxyType(dict(sorted(units.items()))),
        total_cost=total,
        gpus=MappingProxyType(gpus),
    )


def _same_server_only(victims: set[str]) -> Callable[[MpsProcess, MpsProcess], bool]:
    """Co-location without a prediction: replicas of one server only (both sides of a refused
    pair go into ``victims``)."""

    def ok(a: MpsProcess, b: MpsProcess) -> bool:
        if a.owner == b.owner:
            return True
        victims.update((a.owner, b.owner))
        return False

    return ok


def utilisation_table(system: System) -> UtilisationTable:
    """The models' L2 and DRAM utilisation from the model data (the first row that has it)."""
    rows: dict[str, dict[int, tuple[float, float]]] = {}
    shares: dict[str, float] = {}
    for p in system.profiles:
        if p.utilization and p.model not in rows:
            rows[p.model] = {b: (l2, dram) for b, l2, dram in p.utilization}
            shares[p.model] = p.gpu_share
    return UtilisationTable(rows, shares)


def colocation_slowdowns(
    system: System, layout: Mapping[str, Any], batch_of: Mapping[str, int]
) -> tuple[dict[str, float], list[str]]:
    """Per server on a shared MPS GPU of ``layout`` (a solution JSON's ``layout`` section), the
    factor GPU-let's model predicts on its batch time next to its co-runners at the batches in
    ``batch_of`` (the worst over its GPUs; replicas alone on their GPUs are left out), and notes
    on the GPUs whose servers it cannot predict (taken as 1: the packing co-locates them only
    when they are one server's replicas without utilisation data). A server's other replicas on
    the same GPU are co-runners too (the same network next to itself), as in the packing's
    check."""
    models = {s.name: s.model for s in system.servers}
    constants = {
        (a.type, a.partition): a.interference
        for a in system.accelerators.values()
        if a.partition.startswith("mps-")
    }
    table = utilisation_table(system)
    out: dict[str, float] = {}
    notes: list[str] = []
    for kind, entry in sorted(layout.items()):
        for gpu in entry.get("gpus", ()) if isinstance(entry, Mapping) else ():
            if gpu.get("mode") != "mps":
                continue
            processes = [str(o) for o in gpu.get("servers", ()) if str(o) in models]
            if len(processes) < 2:
                continue
            owners = sorted(set(processes))
            n = int(gpu.get("shares", 1))
            c = constants.get((kind, f"mps-{n}"), ())
            runners = {
                o: CoRunner(models[o], max(int(batch_of.get(o, 1)), 1), 1.0 / n) for o in owners
            }
            for o in owners:
                # every other process of the GPU: other servers', and its own other replicas
                others = [r for p, r in runners.items() if p != o or processes.count(o) > 1]
                factor = (
                    batch_factor(Constants(*c), table, runners[o], others) if len(c) == 5 else None
                )
                if factor is None:
                    with_ = ", ".join(p for p in owners if p != o) or "its own replicas"
                    notes.append(
                        f"{o} shares a {kind} MPS GPU with {with_} but the interference model "
                        "cannot predict it: no slowdown applied"
                    )
                    factor = 1.0
                out[o] = max(out.get(o, 1.0), factor)
    for note in notes:
        logger.warning("%s", note)
    return out, notes


def _model_gb(system: System, model: str, accelerator: str) -> float:
    for p in system.profiles:
        if p.model == model and p.accelerator == accelerator and p.mem_gb is not None:
            return p.mem_gb
    return 0.0


def packing_excess(solution: Solution, capacity: Mapping[str, int]) -> dict[str, int]:
    """GPUs of each type the packing needs beyond the capacity (empty when it fits)."""
    out = {}
    for kind, g in solution.gpus.items():
        if kind in capacity and g.used > capacity[kind]:
            out[kind] = g.used - capacity[kind]
    return out
