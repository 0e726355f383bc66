"""Inferno's allocation heuristics: unlimited min-cost and the limited greedy with saturation.

Both work on a :class:`CandidateTable` and return :class:`Grants`: per server the chosen candidate
and the replicas granted (fewer than needed only under a saturation policy).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..system import SaturationPolicy
from .candidates import CandidateTable

__all__ = ["Grants", "solve_greedy", "solve_unlimited"]


@dataclass
class Grants:
    """Chosen candidate (−1: none) and granted replicas per server; reasons for the rest."""

    choice: list[int]
    granted: list[int]
    reason: list[str]
    notes: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, n: int, reasons: list[str]) -> Grants:
        return cls([-1] * n, [0] * n, list(reasons), [""] * n)

    def grant(self, s: int, c: int, replicas: int, note: str = "") -> None:
        self.choice[s] = c
        self.granted[s] = replicas
        self.reason[s] = ""
        self.notes[s] = note


def solve_unlimited(table: CandidateTable) -> Grants:
    """Each server takes its best candidate (lowest value, then cost, then accelerator name)."""
    n = len(table.system.servers)
    grants = Grants.empty(n, table.reason)
    # each server's first ranked candidate, for all servers at once (of_server(s)[0])
    has, first = table.best_of_servers()
    if has.size:
        replicas = table.replicas[first].astype(np.int64)
        for s, c, r in zip(has.tolist(), first.tolist(), replicas.tolist(), strict=True):
            grants.grant(s, c, r)
    return grants


@dataclass(order=True)
class _Entry:
    key: tuple[int, float, float, str]
    server: int = field(compare=False)
    position: int = field(compare=False)


def _key(
    table: CandidateTable, s: int, cands: list[int], pos: int, priority: int
) -> tuple[int, float, float, str]:
    value = float(table.value[cands[pos]])
    regret = float(table.value[cands[pos + 1]]) - value if pos + 1 < len(cands) else math.inf
    # priority ascending, regret descending, value descending, name ascending
    return (priority, -regret, -value, table.system.servers[s].name)


def solve_greedy(table: CandidateTable, capacity: Mapping[str, int]) -> Grants:
    """Inferno's limited greedy, by priority group, regret and value; then the saturation policy."""
    system = table.system
    spec = system.optimizer
    n = len(system.servers)
    grants = Grants.empty(n, table.reason)
    available = {k: int(v) for k, v in capacity.items()}
    units = table.units_per_replica
    priority = table.priority
    cands = {s: [int(c) for c in table.of_server(s)] for s in range(n)}
    active = [s for s in range(n) if cands[s]]
    groups: list[list[int]]
    if spec.delayed_best_effort:
        groups = [sorted(active, key=lambda s: priority[s])]
    else:
        levels = sorted({priority[s] for s in active})
        groups = [[s for s in active if priority[s] == p] for p in levels]
    leftovers: list[int] = []
    for group in groups:
        failed = _allocate(table, group, cands, priority, available, units, grants)
        if spec.delayed_best_effort:
            leftovers.extend(failed)
        else:
            _saturate(table, failed, cands, priority, available, grants)
    if spec.delayed_best_effort:
        _saturate(table, leftovers, cands, priority, available, grants)
    return grants


def _allocate(
    table: CandidateTable,
    group: Iterable[int],
    cands: dict[int, list[int]],
    priority: list[int],
    available: dict[str, int],
    units: np.ndarray,
    grants: Grants,
) -> list[int]:
    """Allocate a group; returns the servers that found no room, in the order they failed."""
    heap = [_Entry(_key(table, s, cands[s], 0, priority[s]), s, 0) for s in group]
    heapq.heapify(heap)
    failed: list[int] = []
    while heap:
        top = heapq.heappop(heap)
        s, pos = top.server, top.position
        c = cands[s][pos]
        need = int(round(table.replicas[c] * units[c]))
        kind = str(table.acc_type[c])
        if available.get(kind, 0) >= need:
            available[kind] = available.get(kind, 0) - need
            grants.grant(s, c, int(table.replicas[c]))
            continue
        if pos + 1 < len(cands[s]):
            heapq.heappush(heap, _Entry(_key(table, s, cands[s], pos + 1, priority[s]), s, pos + 1))
        else:
            failed.append(s)
            grants.reason[s] = _capacity_reason(table, cands[s], available, units)
    return failed


def _capacity_reason(
    table: CandidateTable, cands: list[int], available: Mapping[str, int], units: np.ndarray
) -> str:
    c = cands[0]
    need = int(round(table.replicas[c] * units[c]))
    kind = str(table.acc_type[c])
    return (
        f"insufficient capacity on all {len(cands)} feasible accelerators "
        f"(best: {table.accelerator[c]} needs {need} {kind} units, {available.get(kind, 0)} free)"
    )


def _saturate(
    table: CandidateTable,
    failed: list[int],
    cands: dict[int, list[int]],
    priority: list[int],
    available: dict[str, int],
    grants: Grants,
) -> None:
    policy = table.system.optimizer.saturation_policy
    if not failed or policy is SaturationPolicy.NONE:
        return
    units = table.units_per_replica
    if policy is SaturationPolicy.PRIORITY_EXHAUSTIVE:
        for s in failed:
            for c in cands[s]:
                per = int(round(units[c]))
                kind = str(table.acc_type[c])
                r = min(available.get(kind, 0) // per, int(table.replicas[c]))
                if r > 0:
                    available[kind] -= r * per
                    grants.grant(
                        s, c, r, f"{policy}: granted {r} of {int(table.replicas[c])} replicas"
                    )
                    break
        return
    if policy is SaturationPolicy.PRIORITY_ROUND_ROBIN:
        for p in sorted({priority[s] for s in failed}):
            _round_robin(
                table, [s for s in failed if priority[s] == p], cands, available, grants, policy
            )
        return
    _round_robin(table, failed, cands, available, grants, policy)


def _round_robin(
    table: CandidateTable,
    members: list[int],
    cands: dict[int, list[int]],
    available: dict[str, int],
    grants: Grants,
    policy: SaturationPolicy,
) -> None:
    """Bind each member to its first candidate with room for one replica, then deal replicas one
    at a time in turn, up to each member's need, until capacity or needs run out."""
    units = table.units_per_replica
    ticket: dict[int, int] = {}
    count: dict[int, int] = {}
    live = list(members)
    first_pass = True
    while live:
        still: list[int] = []
        for s in live:
            if first_pass:
                room = [
                    c
                    for c in cands[s]
                    if available.get(str(table.acc_type[c]), 0) >= int(round(units[c]))
                ]
                if not room:
                    continue
                ticket[s] = room[0]
                count[s] = 0
            c = ticket[s]
            per = int(round(units[c]))
            kind = str(table.acc_type[c])
            if count[s] < int(table.replicas[c]) and available.get(kind, 0) >= per:
                available[kind] -= per
                count[s] += 1
                still.append(s)
        live = still
        first_pass = False
    for s, c in ticket.items():
        if count[s] > 0:
            need = int(table.replicas[c])
            grants.grant(s, c, count[s], f"{policy}: granted {count[s]} of {need} replicas")
