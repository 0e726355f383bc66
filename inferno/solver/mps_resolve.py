"""Re-solving the servers whose MPS co-location was refused (docs/gpu-partitions.md).

Packing MPS shares (:mod:`.gpulets`) lets two servers share a GPU only where GPU-let's interference
model keeps both within their SLO; a refused pair falls back to one server per GPU, paying for the
shares it leaves free. That is honest but may not be the cheapest honest option: the server might
fit a MIG slice (isolated, no interference) next to other slices, or another pool.

So, after a solve, the servers a refusal hurt (the one whose SLO the predicted slowdown would
break, or both without a prediction) and whose GPUs have free shares are solved again without that
MPS pool, and packed again; up to :data:`ROUNDS` rounds, the excluded pairs accumulating. The
cheapest solution is kept (fewest unallocated servers, then fewest partial ones, then the total
cost of whole GPUs): never worse than the fallback, and every co-location in it passed the
interference check. A server whose only feasible candidates would be excluded stays where it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from types import MappingProxyType

import numpy as np

from .candidates import CandidateTable
from .result import ServerStatus, Solution

__all__ = ["ROUNDS", "resolve_refused", "without"]

logger = logging.getLogger(__name__)

#: re-solves of the servers whose MPS co-location was refused
ROUNDS = 3


def without(table: CandidateTable, excluded: Iterable[tuple[int, str]]) -> CandidateTable:
    """``table`` with the candidates of (server index, accelerator name) made infeasible."""
    drop = set(excluded)
    if not drop:
        return table
    mask = np.array(
        [(int(s), str(a)) in drop for s, a in zip(table.server, table.accelerator, strict=True)],
        dtype=bool,
    )
    out = table.excluding(mask)
    reason = list(out.reason)
    for s, acc in sorted(drop):
        if out.of_server(s).size == 0 and not reason[s]:
            reason[s] = f"its MPS co-location on {acc} was refused and it has no other candidate"
    return replace(out, reason=reason)


def _refused(solution: Solution) -> set[tuple[str, str]]:
    return {pair for use in solution.gpus.values() for pair in use.refused}


def _rank(solution: Solution) -> tuple[int, int, float]:
    partial = sum(a.status is ServerStatus.PARTIAL for a in solution.allocations.values())
    return (len(solution.unallocated), partial, solution.total_cost)


def resolve_refused(
    table: CandidateTable, solve_packed: Callable[[CandidateTable], Solution]
) -> Solution:
    """Solve and pack, then re-solve the servers whose MPS co-location was refused without that
    pool (up to :data:`ROUNDS` rounds); the cheapest solution, annotated with what moved."""
    first = best = current = solve_packed(table)
    if _refused(first):  # the servers' other candidates count now: every one sized
        table = table.completed()
    index = {srv.name: s for s, srv in enumerate(table.system.servers)}
    excluded: set[tuple[int, str]] = set()
    best_excluded: set[tuple[int, str]] = set()
    masked = table
    for round_no in range(1, ROUNDS + 1):
        new = set()
        for name, acc in _refused(current):
            pair = (index[name], acc)
            if pair in excluded:
                continue
            others = [c for c in masked.of_server(pair[0]) if str(masked.accelerator[c]) != acc]
            if others:  # keep a server's last candidate: no re-solve can leave it out
                new.add(pair)
        if not new:
            break
        excluded |= new
        masked = without(table, excluded)
        current = solve_packed(masked)
        logger.info(
            "MPS re-solve round %d: %d servers off a refused pool, cost %.6g → %.6g",
            round_no,
            len(new),
            best.total_cost,
            current.total_cost,
        )
        if _rank(current) < _rank(best):
            best, best_excluded = current, set(excluded)
    if best is first:
        return first
    return _annotate(best, table, best_excluded, first.total_cost)


def _annotate(
    solution: Solution, table: CandidateTable, excluded: set[tuple[int, str]], was: float
) -> Solution:
    """Notes on the servers that moved: on their allocation and on their GPU type's packing."""
    servers = table.system.servers
    accs = table.system.accelerators
    allocations = dict(solution.allocations)
    notes: dict[str, list[str]] = {}
    for s, acc in sorted(excluded):
        name = servers[s].name
        alloc = allocations.get(name)
        if alloc is None or alloc.accelerator == acc:
            continue
        why = (
            f"re-solved off {acc}: its MPS co-location was refused by the interference model "
            f"(cost of the packed solution {was:.6g} → {solution.total_cost:.6g})"
        )
        note = f"{alloc.note}; {why}" if alloc.note else why
        allocations[name] = replace(alloc, note=note)
        kind = accs[acc].type if acc in accs else ""
        notes.setdefault(kind, []).append(f"{name} moved to {alloc.accelerator}: {why}")
    gpus = dict(solution.gpus)
    message = solution.message
    for kind, lines in notes.items():
        if kind in gpus:
            gpus[kind] = replace(gpus[kind], notes=(*gpus[kind].notes, *lines))
        else:
            message = "; ".join([*([message] if message else []), *lines])
    return replace(
        solution,
        allocations=MappingProxyType(allocations),
        gpus=MappingProxyType(gpus),
        message=message,
    )
