"""Why a server got its allocation: every candidate accelerator, what bounds its λ*, its replicas
and cost, and why the chosen one won."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..units import MS_PER_MIN
from .candidates import CandidateTable
from .result import Solution
from .serving_config import fallback_note, prefetch_note

__all__ = ["CandidateRow", "Explanation", "explain"]


@dataclass(frozen=True, slots=True)
class CandidateRow:
    accelerator: str
    acc_count: int
    max_batch: int
    max_batch_memory: int
    max_rate: float  # λ* req/min (NaN: infeasible)
    bound: str
    replicas: int
    cost: float
    value: float
    feasible: bool
    chosen: bool
    why_not: str


@dataclass(frozen=True, slots=True)
class Explanation:
    server: str
    demand: float  # req/min
    rows: tuple[CandidateRow, ...]
    verdict: str


def explain(table: CandidateTable, solution: Solution, server: str) -> Explanation:
    """Explain ``server``'s decision (KeyError if no such server); every candidate is shown,
    sized (a lazily sized ``table`` is completed: :mod:`.lazy_sizing`)."""
    table = table.completed()
    names = [s.name for s in table.system.servers]
    s = names.index(server) if server in names else -1
    if s < 0:
        raise KeyError(server)
    alloc = solution.allocations.get(server)
    chosen = alloc.accelerator if alloc else None
    best = table.of_server(s)
    rank = {int(c): i for i, c in enumerate(best)}
    rows = []
    for c in table.all_of_server(s):
        c = int(c)
        feasible = bool(table.feasible[c])
        name = str(table.accelerator[c])
        if not feasible:
            why = (
                f"misses {table.bound[c]} even at the lowest load"
                if math.isnan(table.rate[c])
                else "needs more than maxNumReplicas"
            )
        elif name == chosen:
            why = ""
        elif rank.get(c, 0) > rank.get(_index_of(table, s, chosen), 0):
            why = (
                "costlier"
                if table.cost[c] > (alloc.cost if alloc else 0)
                else "equal cost, later by name"
            )
        else:
            why = "no capacity left for it"
        rows.append(
            CandidateRow(
                accelerator=name,
                acc_count=int(table.acc_count[c]),
                max_batch=int(table.lazy.n_batch[c]),
                max_batch_memory=int(table.n_memory[c]),
                max_rate=float(table.rate[c]) * MS_PER_MIN,
                bound=str(table.bound[c]),
                replicas=int(table.replicas[c]),
                cost=float(table.cost[c]),
                value=float(table.value[c]),
                feasible=feasible,
                chosen=name == chosen,
                why_not=why,
            )
        )
    rows.sort(key=lambda r: (not r.feasible, r.value, r.cost, r.accelerator))
    demand = float(table.demand[s]) * MS_PER_MIN
    if alloc is None:
        verdict = f"not allocated: {solution.unallocated[server].reason}"
    else:
        feas = [r for r in rows if r.feasible]
        cheaper = [r for r in feas if r.cost < alloc.cost - 1e-9]
        verdict = (
            f"{alloc.accelerator} × {alloc.replicas} at cost {alloc.cost:g}: "
            + (
                "the cheapest of "
                if not cheaper
                else "chosen over cheaper candidates (capacity or transition cost) among "
            )
            + f"{len(feas)} feasible candidates; λ* {alloc.max_rate_per_replica:.2f} req/min "
            f"per replica, bound by {alloc.bound}; demand {demand:.2f} req/min needs "
            f"{alloc.required_replicas} replica{'' if alloc.required_replicas == 1 else 's'}"
        )
        if alloc.note:
            verdict += f" ({alloc.note})"
        model = table.system.servers[s].model
        profile = next(
            (
                p.profile
                for p in table.system.profiles
                if p.model == model and p.accelerator == alloc.accelerator
            ),
            None,
        )
        if alloc.serving is not None:
            verdict += f". Serving: {alloc.serving.why()}"
        elif table.system.optimizer.decide_serving:
            fallback = fallback_note(profile)
            if fallback:
                verdict += f". Serving: {fallback}"
        prefetch = prefetch_note(profile, alloc.serving)
        if prefetch:
            verdict += f". Caution: {prefetch}"
        verdict += _partition_verdict(table, s, alloc.accelerator, rows)
    return Explanation(server=server, demand=demand, rows=tuple(rows), verdict=verdict)


def _partition_verdict(table: CandidateTable, s: int, chosen: str, rows: list[CandidateRow]) -> str:
    """Why a GPU partition beat whole GPUs (or the other way round), when the server had both."""
    system = table.system
    acc = system.accelerators.get(chosen)
    if acc is None:
        return ""
    model = system.servers[s].model
    profile = next(
        (p for p in system.profiles if p.model == model and p.accelerator == chosen), None
    )
    whole = [r for r in rows if r.feasible and not system.accelerators[r.accelerator].partition]
    if not acc.partition:
        parts = [r for r in rows if r.feasible and system.accelerators[r.accelerator].partition]
        return (
            f". The cheapest partition, {parts[0].accelerator}, costs {parts[0].cost:g}"
            if parts
            else ""
        )
    out = (
        f". {chosen} is {acc.fraction:.3g} of a {acc.type} GPU at that share of its cost; "
        f"its replicas are packed onto whole GPUs after the solve"
    )
    if profile is not None and profile.derived:
        out += (
            f"; its profile is derived from the whole GPU's (time × s + (1 − s)/f, "
            f"s = {profile.serial_fraction:.3g}, f = {acc.fraction:.3g})"
        )
    if whole:
        out += f"; the cheapest whole GPU, {whole[0].accelerator}, would cost {whole[0].cost:g}"
    return out


def _index_of(table: CandidateTable, s: int, accelerator: str | None) -> int:
    for c in table.of_server(s):
        if str(table.accelerator[c]) == accelerator:
            return int(c)
    return -1
