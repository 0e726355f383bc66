"""GPU partitions after the solve: the chosen MIG slices and MPS shares packed onto whole GPUs.

The solver sees a partition as an accelerator taking its share of one GPU (g/7 for a MIG slice,
1/N for an MPS share) at that share of the GPU's cost: a linear relaxation of the GPUs really
used. This step places the replicas on partitions onto physical GPUs, per product:

- MIG slices by :func:`~inferno.solver.packing.pack_mig` (placement rules, exact ILP or FFD);
- MPS shares by :func:`~inferno.solver.packing_mps.pack_mps` (N equal shares per GPU, memory
  admission). Without interference data for the models, a GPU's shares go to replicas of one
  server only (no co-location of different models), and the report says so.

It reports the GPUs used per accelerator type (whole-GPU replicas + packed GPUs), each GPU's
layout, the stranded slices and shares, and a total cost of whole GPUs × their cost. Under capacity
limits the caller re-solves with the difference between packed and relaxed units taken off
(:func:`packing_excess`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..partitions.catalogue import mps_pool
from ..partitions.interference import Constants, CoRunner, UtilisationTable, interference_factor
from ..system import Accelerator, System
from .packing import SliceRequest, pack_mig
from .packing_mps import MB_PER_GB, MpsProcess, pack_mps
from .result import Solution

__all__ = ["GpuUse", "pack_solution", "packing_excess"]


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

    @property
    def used(self) -> int:
        return self.whole + self.packed


def _whole_gpu_cost(acc: Accelerator) -> float:
    return acc.cost / acc.fraction if acc.fraction > 0 else 0.0


def pack_solution(system: System, solution: Solution) -> Solution:
    """``solution`` with its partitions packed (unchanged when it uses none)."""
    accs = system.accelerators
    if not any(
        accs[p.accelerator].partition
        for a in solution.allocations.values()
        for p in a.parts or ()
        if p.accelerator in accs
    ):
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
                mps.setdefault(key, []).extend(MpsProcess(name, mem * MB_PER_GB) for _ in range(n))
            else:
                mig.setdefault((acc.type, acc.product), []).extend(
                    SliceRequest(acc.partition, name) for _ in range(n)
                )
    uses: dict[str, dict[str, Any]] = {}

    def use(kind: str) -> dict[str, Any]:
        return uses.setdefault(
            kind,
            {"packed": 0, "compute": 0, "memory": 0, "shares": 0, "layout": [], "notes": []},
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
        check = _interference_check(system, solution, constants, 1.0 / n)
        packed = pack_mps(mps_pool(prod, n), processes, compatible=check or _same_server)
        u = use(kind)
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
                f"{prod}:mps-{n}: servers share a GPU only where GPU-let's interference model "
                "predicts both stay within their SLO (and have utilisation data)"
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


def _same_server(a: MpsProcess, b: MpsProcess) -> bool:
    return a.owner == b.owner


def _interference_check(
    system: System, solution: Solution, constants: tuple[float, ...], share: float
) -> Callable[[MpsProcess, MpsProcess], bool] | None:
    """Whether two replicas may share a GPU: one server's always; two servers' only when GPU-let's
    model predicts, from both models' utilisation, a slowdown that keeps each within its SLO.
    The slowdown is applied to the whole batch time, not only its GPU part (the profiles do not
    separate host time): conservative. None without constants (no co-location at all)."""
    if len(constants) != 5:
        return None
    c = Constants(*constants)
    servers = {s.name: s for s in system.servers}
    rows: dict[str, dict[int, tuple[float, float]]] = {}
    for p in system.profiles:
        if p.utilization and p.model not in rows:
            rows[p.model] = {b: (l2, dram) for b, l2, dram in p.utilization}
    table = UtilisationTable(rows)
    cache: dict[tuple[str, str], bool] = {}

    def slack(name: str) -> float:
        """target / prediction of the server's tightest mean target (≤ 1 misses)."""
        alloc, srv = solution.allocations[name], servers[name]
        cls = system.classes.get(srv.service_class)
        target = cls.targets.get(srv.model) if cls is not None else None
        if target is None:
            return 0.0
        m = alloc.metrics
        pairs = [(target.latency, m.get("response")), (target.itl, m.get("itl"))]
        pairs.append((target.ttft, m.get("ttft")))
        ratios = [t / v for t, v in pairs if t and v and math.isfinite(v) and v > 0]
        return min(ratios) if ratios else 0.0

    def ok(a: MpsProcess, b: MpsProcess) -> bool:
        if a.owner == b.owner:
            return True
        key = (min(a.owner, b.owner), max(a.owner, b.owner))
        if key not in cache:
            runners = [
                CoRunner(servers[o].model, max(solution.allocations[o].max_batch, 1), share)
                for o in key
            ]
            fits = True
            for me, you, owner in (
                (runners[0], runners[1], key[0]),
                (runners[1], runners[0], key[1]),
            ):
                factor = interference_factor(c, table, me, [you])
                if factor is None or factor > slack(owner):
                    fits = False
            cache[key] = fits
        return cache[key]

    return ok


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
