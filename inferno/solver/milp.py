"""The exact allocation: a MILP solved by HiGHS through :func:`scipy.optimize.milp`.

Single-accelerator mode: a binary x_c per feasible candidate, at most one per server, capacity per
accelerator type; minimise Σ cost_c x_c. Mixed ("heterogeneous") mode: integer replicas y_c per
candidate with Σ_c λ*_c y_c ≥ demand_s for an allocated server, at least its minimum replicas,
capacity per type; minimise Σ unit_cost_c y_c. In both, the replica counts of the solution are
the ones used (Inferno's MILP dropped them).

When capacity cannot hold every server, the servers allocated are chosen lexicographically by
priority: first as many servers of priority 1 as possible, then of priority 2 with that count
held, and so on; the cost is minimised last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp

from .candidates import CandidateTable
from .greedy import Grants

F = NDArray[np.float64]

__all__ = ["MilpOutcome", "solve_milp"]


@dataclass
class MilpOutcome:
    grants: Grants
    mix: dict[int, list[tuple[int, int]]]  # server -> [(candidate, replicas)] in mixed mode
    proven_optimal: bool
    message: str


def solve_milp(table: CandidateTable, capacity: Mapping[str, int] | None) -> MilpOutcome:
    """Solve exactly; ``capacity`` None means unlimited."""
    system = table.system
    spec = system.optimizer
    n = len(system.servers)
    grants = Grants.empty(n, table.reason)
    cand = np.flatnonzero(table.feasible)
    # deterministic column order: server name, then accelerator name
    cand = np.array(
        sorted(
            cand, key=lambda c: (system.servers[table.server[c]].name, str(table.accelerator[c]))
        ),
        dtype=np.intp,
    )
    if cand.size == 0:
        return MilpOutcome(grants, {}, True, "no feasible candidates")
    owners = np.unique(table.server[cand])
    row_of = {int(s): i for i, s in enumerate(owners)}
    mixed = spec.heterogeneous
    nc, ns = cand.size, owners.size
    # variables: [y_c (nc)] + [z_s (ns)] in mixed mode, [x_c (nc)] in single mode
    nv = nc + (ns if mixed else 0)
    cost = np.zeros(nv)
    cost[:nc] = table.unit_cost[cand] if mixed else table.cost[cand]
    integrality = np.ones(nv)
    lb = np.zeros(nv)
    ub = np.ones(nv)
    if mixed:
        ub[:nc] = table.replicas[cand]  # one accelerator alone never needs more than its own count
    rows = np.array([row_of[int(s)] for s in table.server[cand]])
    constraints: list[LinearConstraint] = []
    if mixed:
        rate = table.rate[cand]
        demand = table.demand[owners]
        min_r = np.array([system.servers[s].min_replicas for s in owners], dtype=np.float64)
        need = np.maximum(min_r, (demand > 0).astype(np.float64))
        z = nc + np.arange(ns)
        # Σ λ*_c y_c − demand z ≥ 0 ;  Σ y_c − need z ≥ 0 ;  y_c − ub_c z ≤ 0
        a_rate = sp.csr_matrix(
            (
                np.concatenate([rate, -demand]),
                (np.concatenate([rows, np.arange(ns)]), np.concatenate([np.arange(nc), z])),
            ),
            shape=(ns, nv),
        )
        a_count = sp.csr_matrix(
            (
                np.concatenate([np.ones(nc), -need]),
                (np.concatenate([rows, np.arange(ns)]), np.concatenate([np.arange(nc), z])),
            ),
            shape=(ns, nv),
        )
        a_link = sp.csr_matrix(
            (
                np.concatenate([np.ones(nc), -ub[:nc]]),
                (
                    np.concatenate([np.arange(nc), np.arange(nc)]),
                    np.concatenate([np.arange(nc), z[rows]]),
                ),
            ),
            shape=(nc, nv),
        )
        constraints += [
            LinearConstraint(a_rate, 0.0, np.inf),
            LinearConstraint(a_count, 0.0, np.inf),
            LinearConstraint(a_link, -np.inf, 0.0),
        ]
        chosen_of = sp.csr_matrix((np.ones(ns), (np.arange(ns), z)), shape=(ns, nv))
    else:
        chosen_of = sp.csr_matrix((np.ones(nc), (rows, np.arange(nc))), shape=(ns, nv))
        constraints.append(LinearConstraint(chosen_of, 0.0, 1.0))
    units = table.units_per_replica[cand] * (1.0 if mixed else table.replicas[cand])
    if capacity is not None:
        kinds = sorted({str(k) for k in table.acc_type[cand]})
        kind_row = {k: i for i, k in enumerate(kinds)}
        a_cap = sp.csr_matrix(
            (units, (np.array([kind_row[str(k)] for k in table.acc_type[cand]]), np.arange(nc))),
            shape=(len(kinds), nv),
        )
        constraints.append(
            LinearConstraint(
                a_cap, -np.inf, np.array([capacity.get(k, 0) for k in kinds], dtype=np.float64)
            )
        )
    options = {"time_limit": spec.milp_time_limit, "disp": False}

    def run(objective: F, extra: list[LinearConstraint]) -> tuple[F | None, bool, str]:
        res = milp(
            objective,
            integrality=integrality,
            bounds=Bounds(lb, ub),
            constraints=constraints + extra,
            options=options,
        )
        if res.x is None:
            return None, False, str(res.message)
        return np.asarray(res.x), res.status == 0, str(res.message)

    # 1) everyone allocated, minimum cost
    everyone = [LinearConstraint(chosen_of, 1.0, np.inf)]
    x, optimal, message = run(cost, everyone)
    if x is None:
        # 2) lexicographic by priority: maximise the servers allocated, level by level
        prio = np.array([table.priority[int(s)] for s in owners])
        held: list[LinearConstraint] = []
        optimal = True
        for p in sorted(set(prio.tolist())):
            mask = (prio == p).astype(np.float64)
            weight = np.asarray(chosen_of.T @ mask).ravel()
            xp, opt_p, message = run(-weight, held)
            if xp is None:
                return MilpOutcome(grants, {}, False, message)
            optimal &= opt_p
            count = math.floor(float(weight @ xp) + 0.5)
            held.append(LinearConstraint(weight[None, :], count - 0.5, np.inf))
        x, opt_c, message = run(cost, held)
        if x is None:
            return MilpOutcome(grants, {}, False, message)
        optimal &= opt_c
    values = np.round(x[:nc]).astype(int)
    mix: dict[int, list[tuple[int, int]]] = {}
    for k, c in enumerate(cand):
        if values[k] <= 0:
            continue
        s = int(table.server[c])
        if mixed:
            mix.setdefault(s, []).append((int(c), int(values[k])))
        else:
            grants.grant(s, int(c), int(table.replicas[c]))
    for s, parts in mix.items():
        parts.sort(key=lambda cr: (-cr[1] * table.rate[cr[0]], str(table.accelerator[cr[0]])))
        main, _ = parts[0]
        grants.grant(s, main, sum(r for _, r in parts))
    for s in owners:
        if grants.choice[int(s)] < 0 and not grants.reason[int(s)]:
            grants.reason[int(s)] = "insufficient capacity: the exact solver could not fit it"
    return MilpOutcome(grants, mix, optimal, message)
