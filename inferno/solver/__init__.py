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
    (:class:`SizingMemo`; the same answers, bit for bit).
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
    cheapest packed solution kept (:mod:`.mps_resolve`)."""
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
    system = table.system
    allocations: dict[str, Allocation] = {}
    unallocated: dict[str, Unallocated] = {}
    units_used: dict[str, float] = {}
    any_partial = False
    # the columns of every candidate referred to, as Python values, taken at once (a numpy
    # scalar per field and server was a third of a 10,000-server solve's assembly)
    refs = sorted(
        {c for c in grants.choice if c >= 0} | {pc for parts in mix.values() for pc, _ in parts}
    )
    at = {c: k for k, c in enumerate(refs)}
    ref_idx = np.asarray(refs, dtype=np.intp)
    unit_cost = table.unit_cost[ref_idx].tolist()
    acc_type = [str(x) for x in table.acc_type[ref_idx].tolist()]
    accelerator = [str(x) for x in table.accelerator[ref_idx].tolist()]
    units_per_replica = table.units_per_replica[ref_idx].tolist()
    n_batch = table.lazy.n_batch[ref_idx].tolist()
    required_of = table.replicas[ref_idx].tolist()
    rate = table.rate[ref_idx].tolist()
    bound = [str(x) for x in table.bound[ref_idx].tolist()]
    n_memory = table.n_memory[ref_idx].tolist()
    demand_of = table.demand.tolist()
    names = list(Metrics.__dataclass_fields__)
    chosen = table.metrics_of(ref_idx)  # only the candidates the solution refers to
    metric_rows = list(zip(*(getattr(chosen, n).tolist() for n in names), strict=True))
    batch_policy = str(system.optimizer.batch_policy)

    def metric_rows_of(k: int) -> dict[str, float]:
        return dict(zip(names, metric_rows[k], strict=True))

    for s, srv in enumerate(system.servers):
        c = grants.choice[s]
        if c < 0:
            reason = grants.reason[s] or "not allocated"
            unallocated[srv.name] = Unallocated(srv.name, reason)
            continue
        k = at[c]
        if s not in mix:  # one accelerator (the usual case): its part made once
            granted = grants.granted[s]
            cost = unit_cost[k] * granted
            kind = acc_type[k]
            units_used[kind] = units_used.get(kind, 0.0) + granted * units_per_replica[k]
            required = int(required_of[k])
            demand = demand_of[s]
            if granted != required:
                metrics = table.metrics_at(c, granted)
            else:
                metrics = dict(zip(names, metric_rows[k], strict=True))
            status = ServerStatus.PARTIAL if granted < required else ServerStatus.ALLOCATED
            per = demand / granted * MS_PER_MIN if granted else 0.0
            any_partial |= status is ServerStatus.PARTIAL
            allocations[srv.name] = Allocation(
                server=srv.name,
                accelerator=accelerator[k],
                replicas=0 + granted,  # as the sum of the parts' replicas below
                max_batch=int(n_batch[k]),
                cost=0.0 + cost,
                status=status,
                demand=demand * MS_PER_MIN,
                max_rate_per_replica=rate[k] * MS_PER_MIN,
                bound=bound[k],
                required_replicas=required,
                metrics=MappingProxyType(metrics),
                max_batch_memory=int(n_memory[k]),
                batch_policy=batch_policy,
                parts=(Part(accelerator[k], granted, int(n_batch[k]), cost, per),),
                note=grants.notes[s] if grants.notes else "",
                serving=table.serving.get(c),
            )
            continue
        parts_in = mix[s]
        parts = []
        total_cost = 0.0
        for pc, pr in parts_in:
            pk = at[pc]
            pcost = unit_cost[pk] * pr
            total_cost += pcost
            kind = acc_type[pk]
            units_used[kind] = units_used.get(kind, 0.0) + pr * units_per_replica[pk]
            parts.append(
                Part(
                    accelerator=accelerator[pk],
                    replicas=pr,
                    max_batch=int(n_batch[pk]),
                    cost=pcost,
                    rate_per_replica=0.0,
                )
            )
        granted = sum(p.replicas for p in parts)
        required = int(required_of[k])
        demand = demand_of[s]
        if len(parts) > 1:
            # mixed: each replica gets a share of the load proportional to its λ*
            capacity_sum = sum(rate[at[pc]] * pr for pc, pr in parts_in)
            parts = [
                Part(
                    p.accelerator,
                    p.replicas,
                    p.max_batch,
                    p.cost,
                    demand * rate[at[pc]] / capacity_sum * MS_PER_MIN,
                )
                for p, (pc, _) in zip(parts, parts_in, strict=True)
            ]
            metrics = table.metrics_at_rate(c, demand * rate[k] / capacity_sum)
            status = ServerStatus.ALLOCATED
            required = granted  # the mix covers the demand: its count is what the SLOs need
        else:  # a mix of one part
            metrics = table.metrics_at(c, granted) if granted != required else metric_rows_of(k)
            status = ServerStatus.PARTIAL if granted < required else ServerStatus.ALLOCATED
            per = demand / granted * MS_PER_MIN if granted else 0.0
            parts = [Part(p.accelerator, p.replicas, p.max_batch, p.cost, per) for p in parts]
        any_partial |= status is ServerStatus.PARTIAL
        allocations[srv.name] = Allocation(
            server=srv.name,
            accelerator=accelerator[k],
            replicas=granted,
            max_batch=int(n_batch[k]),
            cost=total_cost,
            status=status,
            demand=demand * MS_PER_MIN,
            max_rate_per_replica=rate[k] * MS_PER_MIN,
            bound=bound[k],
            required_replicas=required,
            metrics=MappingProxyType(metrics),
            max_batch_memory=int(n_memory[k]),
            batch_policy=batch_policy,
            parts=tuple(parts),
            note=grants.notes[s] if grants.notes else "",
            serving=table.serving.get(c),
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
        # whole units; GPU partitions' shares summed, rounded up (packing replaces them)
        units_used=MappingProxyType(
            {k: math.ceil(v - 1e-9) for k, v in sorted(units_used.items())}
        ),
        message=message,
    )
