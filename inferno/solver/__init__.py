"""The allocation solver: pure functions from a :class:`~inferno.system.System` to a
:class:`Solution` (no Kubernetes, HTTP or Prometheus here).

- unlimited: each server takes its cheapest feasible candidate;
- ``greedy``: Inferno's limited greedy with priorities and a saturation policy;
- ``milp``: the exact MILP (single accelerator per server, or mixed with ``heterogeneous``).

Infeasibility is a status, never an exception: servers that cannot be allocated are listed with a
reason, and partially granted servers carry metrics recomputed at the replicas granted.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from ..system import System
from ..units import MS_PER_MIN
from .candidates import CandidateTable, build_candidates
from .greedy import Grants, solve_greedy, solve_unlimited
from .result import Allocation, Part, ServerStatus, Solution, Status, Unallocated

__all__ = [
    "Allocation",
    "CandidateTable",
    "Part",
    "ServerStatus",
    "Solution",
    "Status",
    "Unallocated",
    "build_candidates",
    "solve",
    "solve_table",
]

SolverName = Literal["greedy", "milp"]


def solve(system: System, solver: SolverName | None = None) -> Solution:
    """Allocate every server of ``system``.

    ``solver`` overrides the optimizer data's choice (``milpSolver``); capacity limits apply unless
    the optimizer data says ``unlimited``.
    """
    table = build_candidates(system)
    return solve_table(table, solver)


def solve_table(table: CandidateTable, solver: SolverName | None = None) -> Solution:
    system = table.system
    spec = system.optimizer
    use_milp = solver == "milp" or (solver is None and spec.milp)
    capacity = None if spec.unlimited else system.capacity
    mix: dict[int, list[tuple[int, int]]] = {}
    message = ""
    if use_milp:
        from .milp import solve_milp  # scipy's MILP: imported only when the MILP runs

        outcome = solve_milp(table, capacity)
        grants, mix, proven, message = (
            outcome.grants,
            outcome.mix,
            outcome.proven_optimal,
            outcome.message,
        )
        name = "milp-mixed" if spec.heterogeneous else "milp"
    elif capacity is None:
        grants, proven, name = solve_unlimited(table), True, "unlimited"
    else:
        grants, proven, name = solve_greedy(table, capacity), False, "greedy"
    if use_milp and capacity is None and not spec.heterogeneous:
        name = "milp-unlimited"
    return _assemble(table, grants, mix, proven, name, message)


def _assemble(
    table: CandidateTable,
    grants: Grants,
    mix: dict[int, list[tuple[int, int]]],
    proven: bool,
    solver: str,
    message: str,
) -> Solution:
    system = table.system
    allocations: dict[str, Allocation] = {}
    unallocated: dict[str, Unallocated] = {}
    units_used: dict[str, int] = {}
    any_partial = False
    for s, srv in enumerate(system.servers):
        c = grants.choice[s]
        if c < 0:
            reason = grants.reason[s] or "not allocated"
            unallocated[srv.name] = Unallocated(srv.name, reason)
            continue
        parts_in = mix.get(s, [(c, grants.granted[s])])
        parts = []
        total_cost = 0.0
        for pc, pr in parts_in:
            pcost = float(table.unit_cost[pc]) * pr
            total_cost += pcost
            kind = str(table.acc_type[pc])
            units_used[kind] = units_used.get(kind, 0) + int(
                round(pr * table.units_per_replica[pc])
            )
            parts.append(
                Part(
                    accelerator=str(table.accelerator[pc]),
                    replicas=pr,
                    max_batch=int(table.points.n_batch[pc]),
                    cost=pcost,
                    rate_per_replica=0.0,
                )
            )
        granted = sum(p.replicas for p in parts)
        required = int(table.replicas[c])
        demand = float(table.demand[s])
        if len(parts) > 1:
            # mixed: each replica gets a share of the load proportional to its λ*
            capacity_sum = sum(float(table.rate[pc]) * pr for pc, pr in parts_in)
            parts = [
                Part(
                    p.accelerator,
                    p.replicas,
                    p.max_batch,
                    p.cost,
                    demand * float(table.rate[pc]) / capacity_sum * MS_PER_MIN,
                )
                for p, (pc, _) in zip(parts, parts_in, strict=True)
            ]
            metrics = table.metrics_at_rate(c, demand * float(table.rate[c]) / capacity_sum)
            status = ServerStatus.ALLOCATED
            required = granted  # the mix covers the demand: its count is what the SLOs need
        else:
            metrics = table.metrics_at(c, granted) if granted != required else table.metrics.take(c)
            status = ServerStatus.PARTIAL if granted < required else ServerStatus.ALLOCATED
            per = demand / granted * MS_PER_MIN if granted else 0.0
            parts = [Part(p.accelerator, p.replicas, p.max_batch, p.cost, per) for p in parts]
        any_partial |= status is ServerStatus.PARTIAL
        allocations[srv.name] = Allocation(
            server=srv.name,
            accelerator=str(table.accelerator[c]),
            replicas=granted,
            max_batch=int(table.points.n_batch[c]),
            cost=total_cost,
            status=status,
            demand=demand * MS_PER_MIN,
            max_rate_per_replica=float(table.rate[c]) * MS_PER_MIN,
            bound=str(table.bound[c]),
            required_replicas=required,
            metrics=MappingProxyType(metrics),
            max_batch_memory=int(table.n_memory[c]),
            batch_policy=str(system.optimizer.batch_policy),
            parts=tuple(parts),
            note=grants.notes[s] if grants.notes else "",
        )
    if not allocations:
        status_all = Status.INFEASIBLE
    elif unallocated or any_partial:
        status_all = Status.PARTIAL
    else:
        status_all = Status.OPTIMAL if proven else Status.FEASIBLE
    return Solution(
        status=status_all,
        allocations=MappingProxyType(allocations),
        unallocated=MappingProxyType(unallocated),
        solver=solver,
        total_cost=sum(a.cost for a in allocations.values()),
        units_used=MappingProxyType(dict(sorted(units_used.items()))),
        message=message,
    )
