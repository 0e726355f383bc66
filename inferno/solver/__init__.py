"""The allocation solver: pure functions from a :class:`~inferno.system.System` to a
:class:`Solution` (no Kubernetes, HTTP or Prometheus here).

- unlimited: each server takes its cheapest feasible candidate;
- ``greedy``: Inferno's limited greedy with priorities and a saturation policy;
- ``milp``: the exact MILP (single accelerator per server, or mixed with ``heterogeneous``).

Infeasibility is a status, never an exception: servers that cannot be allocated are listed with a
reason, and partially granted servers carry metrics recomputed at the replicas granted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Literal

import numpy as np

from ..model.points import Metrics
from ..system import System
from ..units import MS_PER_MIN
from .allocation_columns import AllocationColumns
from .candidates import CandidateTable, build_candidates
from .gpulets import pack_solution, packing_excess
from .greedy import Grants, solve_greedy, solve_unlimited
from .mps_resolve import resolve_refused
from .result import Allocation, Part, ServerStatus, Solution, Status, Unallocated
from .sizing_memo import SizingMemo

__all__ = [
    "Allocation",
    "CandidateTable",
    "Part",
    "ServerStatus",
    "SizingMemo",
    "Solution",
    "Status",
    "Unallocated",
    "build_candidates",
    "solve",
    "solve_table",
]

SolverName = Literal["greedy", "milp"]


def solve(
    system: System, solver: SolverName | None = None, *, memo: SizingMemo | None = None
) -> Solution:
    """Allocate every server of ``system``.

    ``solver`` overrides the optimizer data's choice (``milpSolver``); capacity limits apply unless
    the optimizer data says ``unlimited``. ``memo``: candidates' sizing kept across solves
    (:class:`SizingMemo`; the same answers, bit for bit, for the servers it was filled with).
    """
    table = build_candidates(system, memo)
    return solve_table(table, solver)


#: re-solves when packing GPU partitions needs more GPUs than the capacity has
_PACKING_ROUNDS = 3


def solve_table(table: CandidateTable, solver: SolverName | None = None) -> Solution:
    """Solve, then pack GPU partitions onto whole GPUs; under capacity limits, when the packing
    needs more GPUs of a type than exist, solve again with the excess taken off that type's
    capacity (a few rounds; what still does not fit is said in the message). Servers whose MPS
    co-location the interference model refused are solved again without that pool, and the
    cheapest packed solution kept (:mod:`.mps_resolve`). Under capacity limits or with the MILP
    every candidate counts: a table sized lazily is completed first (:mod:`.lazy_sizing`)."""
    spec = table.system.optimizer
    if solver == "milp" or (solver is None and spec.milp) or not spec.unlimited:
        table = table.completed()
    return resolve_refused(table, lambda t: _solve_packed(t, solver))


def _solve_packed(table: CandidateTable, solver: SolverName | None) -> Solution:
    """One solve and its packing, re-solved under capacity when the packing exceeds it."""
    capacity = None if table.system.optimizer.unlimited else dict(table.system.capacity)
    solution = pack_solution(table, _solve_once(table, solver, capacity))
    for _ in range(_PACKING_ROUNDS):
        excess = packing_excess(solution, capacity) if capacity is not None else {}
        if not excess:
            return solution
        assert capacity is not None
        for kind, n in excess.items():
            capacity[kind] = max(0, capacity[kind] - n)
        solution = pack_solution(table, _solve_once(table, solver, capacity))
    excess = packing_excess(solution, dict(table.system.capacity)) if capacity else {}
    if excess:
        over = ", ".join(f"{k} by {n}" for k, n in sorted(excess.items()))
        return replace(
            solution,
            message=(solution.message + "; " if solution.message else "")
            + f"the packed GPU partitions exceed the capacity: {over}",
        )
    return solution


def _solve_once(
    table: CandidateTable, solver: SolverName | None, capacity: Mapping[str, int] | None
) -> Solution:
    system = table.system
    spec = system.optimizer
    use_milp = solver == "milp" or (solver is None and spec.milp)
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
    """The solution of ``grants``: its allocations as columns (:class:`AllocationColumns`),
    gathered for every allocated server at once; a mixed allocation, or one granted other than
    the replicas required (its metrics evaluated again), is built as an object."""
    system = table.system
    unallocated: dict[str, Unallocated] = {}
    choice = grants.choice
    granted_of = grants.granted
    # the columns of every candidate referred to, taken at once
    refs = sorted({c for c in choice if c >= 0} | {pc for parts in mix.values() for pc, _ in parts})
    ref_idx = np.asarray(refs, dtype=np.intp)
    names = list(Metrics.__dataclass_fields__)
    chosen = table.metrics_of(ref_idx)  # only the candidates the solution refers to
    servers = system.servers
    rows = [s for s, c in enumerate(choice) if c >= 0]
    for s, c in enumerate(choice):
        if c < 0:
            name = servers[s].name
            unallocated[name] = Unallocated(name, grants.reason[s] or "not allocated")
    s_idx = np.asarray(rows, dtype=np.intp)
    c_idx = np.asarray([choice[s] for s in rows], dtype=np.intp)
    k_idx = np.searchsorted(ref_idx, c_idx)  # each row's place among the referred candidates
    granted = [granted_of[s] for s in rows]
    g = np.asarray(granted, dtype=np.int64)
    required = table.replicas[c_idx].astype(np.int64).tolist()
    demand = table.demand[s_idx]
    unit_cost = table.unit_cost[c_idx]
    cost = (0.0 + unit_cost * g).tolist()
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(g > 0, demand / g * MS_PER_MIN, 0.0).tolist()
    accelerator = table.accelerator[c_idx].tolist()
    acc_type = table.acc_type[c_idx].tolist()
    units_per_replica = table.units_per_replica[c_idx].tolist()
    notes = grants.notes
    columns = AllocationColumns(
        server=[servers[s].name for s in rows],
        accelerator=[str(a) for a in accelerator],
        replicas=list(granted),
        max_batch=table.lazy.n_batch[c_idx].astype(np.int64).tolist(),
        cost=cost,
        partial=[n < r for n, r in zip(granted, required, strict=True)],
        demand=(demand * MS_PER_MIN).tolist(),
        max_rate=(table.rate[c_idx] * MS_PER_MIN).tolist(),
        bound=[str(b) for b in table.bound[c_idx].tolist()],
        required=required,
        metrics={n: getattr(chosen, n)[k_idx].tolist() for n in names},
        max_batch_memory=table.n_memory[c_idx].astype(np.int64).tolist(),
        batch_policy=str(system.optimizer.batch_policy),
        rate_per_replica=per,
        note=[notes[s] for s in rows] if notes else [""] * len(rows),
        serving=[table.serving.get(c) for c in c_idx.tolist()]
        if table.serving
        else [None] * len(rows),
    )
    units_used: dict[str, float] = {}
    for i, s in enumerate(rows):
        if s in mix:
            columns.set_built(i, _mixed(table, columns, i, choice[s], mix[s], units_used))
            continue
        kind = acc_type[i]
        units_used[kind] = units_used.get(kind, 0.0) + granted[i] * units_per_replica[i]
        if granted[i] != required[i]:  # its metrics at the replicas granted
            metrics = table.metrics_at(int(c_idx[i]), granted[i])
            columns.set_built(i, replace(columns.row(i), metrics=MappingProxyType(metrics)))
    any_partial = any(columns.partial)
    if not columns:
        status_all = Status.INFEASIBLE
    elif unallocated or any_partial:
        status_all = Status.PARTIAL
    else:
        status_all = Status.OPTIMAL if proven else Status.FEASIBLE
    return Solution(
        status=status_all,
        allocations=columns,
        unallocated=MappingProxyType(unallocated),
        solver=solver,
        total_cost=sum(columns.cost),
        # whole units; GPU partitions' shares summed, rounded up (packing replaces them)
        units_used=MappingProxyType(
            {k: math.ceil(v - 1e-9) for k, v in sorted(units_used.items())}
        ),
        message=message,
    )


def _mixed(
    table: CandidateTable,
    columns: AllocationColumns,
    i: int,
    c: int,
    parts_in: list[tuple[int, int]],
    units_used: dict[str, float],
) -> Allocation:
    """Row ``i``'s allocation (its server's chosen candidate ``c``) over the candidates and
    replicas of ``parts_in`` (the MILP's mix); the units its parts use added to
    ``units_used``."""
    parts = []
    total_cost = 0.0
    for pc, pr in parts_in:
        pcost = float(table.unit_cost[pc]) * pr
        total_cost += pcost
        kind = str(table.acc_type[pc])
        units_used[kind] = units_used.get(kind, 0.0) + pr * float(table.units_per_replica[pc])
        parts.append(
            Part(
                accelerator=str(table.accelerator[pc]),
                replicas=pr,
                max_batch=int(table.lazy.n_batch[pc]),
                cost=pcost,
                rate_per_replica=0.0,
            )
        )
    granted = sum(p.replicas for p in parts)
    required = columns.required[i]
    demand = float(table.demand[table.server[c]])
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
    else:  # a mix of one part
        if granted != required:
            metrics = table.metrics_at(c, granted)
        else:
            metrics = {n: v[i] for n, v in columns.metrics.items()}
        status = ServerStatus.PARTIAL if granted < required else ServerStatus.ALLOCATED
        per = demand / granted * MS_PER_MIN if granted else 0.0
        parts = [Part(p.accelerator, p.replicas, p.max_batch, p.cost, per) for p in parts]
    return replace(
        columns.row(i),
        replicas=granted,
        cost=total_cost,
        status=status,
        required_replicas=required,
        metrics=MappingProxyType(metrics),
        parts=tuple(parts),
    )
