"""Inferno's transition value of a candidate: what the solver ranks a server's candidates by.

1.1 × its cost for a server allocated nothing yet; for one already running, 0 to stay as it is,
the change in cost to rescale on its accelerator, and the change plus a tenth of both costs to
move. Apart from staying, the value grows with the replicas (the cost does): :func:`value_floor`
bounds it from below given the fewest replicas a candidate can need, and :func:`most_replicas`
gives the most replicas at which it is still within a value (both for :mod:`.lazy_sizing`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..system import System

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["most_replicas", "value_floor", "values"]

_NEW, _RESCALE, _MOVE = 0, 1, 2


@dataclass(frozen=True)
class _Moves:
    """Per candidate: from nothing, a rescale on the current accelerator, or a move; what the
    server pays now (``was``) and its current replicas."""

    kind: NDArray[np.int8]
    was: F
    current: F

    @classmethod
    def of(cls, system: System, server_idx: Idx, names: NDArray[np.object_]) -> _Moves:
        costs = _current_costs(system)
        kind = np.full(server_idx.size, _NEW, dtype=np.int8)
        was = np.zeros(server_idx.size)
        current = np.full(server_idx.size, -1.0)
        if costs:
            running = np.array([s in costs for s in range(len(system.servers))], dtype=bool)
            for c in np.flatnonzero(running[server_idx]).tolist():
                s = int(server_idx[c])
                cur = system.servers[s].current
                kind[c] = _RESCALE if names[c] == cur.accelerator else _MOVE
                was[c] = costs[s]
                current[c] = cur.replicas
        return cls(kind, was, current)

    def affine(self, cost: F) -> F:
        """The value of ``cost`` without the rule that staying counts 0 (the same arithmetic
        as Inferno's, term by term)."""
        return np.where(
            self.kind == _NEW,
            1.1 * cost,
            np.where(
                self.kind == _RESCALE, cost - self.was, cost - self.was + 0.1 * (self.was + cost)
            ),
        )


def values(system: System, server_idx: Idx, names: NDArray[np.object_], replicas: F, cost: F) -> F:
    """Inferno's transition value: 1.1 × cost from nothing; 0 to stay; a penalty to move."""
    moves = _Moves.of(system, server_idx, names)
    stay = (moves.kind == _RESCALE) & (replicas == moves.current)
    return np.where(stay, 0.0, moves.affine(cost))


def value_floor(
    system: System, server_idx: Idx, names: NDArray[np.object_], replicas: F, unit_cost: F
) -> F:
    """The least value a candidate can have with at least ``replicas`` replicas: its value
    there without the staying rule, or 0 if staying is within reach (the current accelerator,
    with current replicas at least ``replicas``) and less. A floor that is not a number is −inf
    (never a reason to leave a candidate out)."""
    moves = _Moves.of(system, server_idx, names)
    floor = moves.affine(unit_cost * replicas)
    reach = (moves.kind == _RESCALE) & (moves.current >= replicas)
    floor = np.where(reach, np.minimum(floor, 0.0), floor)
    return np.where(np.isnan(floor), -np.inf, floor)


def most_replicas(
    system: System, server_idx: Idx, names: NDArray[np.object_], unit_cost: F, best: F
) -> F:
    """The most replicas at which each candidate's value is at most ``best`` (−1: none; inf:
    any count, a candidate that costs nothing). The value without the staying rule is affine in
    the replicas: its inverse, then corrected by the value itself so that rounding cannot move
    the answer by one; staying (value 0) counts where it is within ``best``."""
    moves = _Moves.of(system, server_idx, names)
    slope = np.where(moves.kind == _MOVE, 1.1, np.where(moves.kind == _RESCALE, 1.0, 1.1))
    offset = np.where(moves.kind == _NEW, 0.0, np.where(moves.kind == _RESCALE, -1.0, -0.9))
    offset = offset * moves.was
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        guess = np.floor((best - offset) / (slope * unit_cost))
    free = ~(unit_cost > 0) & np.isfinite(best)
    r = np.where(np.isfinite(guess), np.clip(guess, -1.0, 2.0**53), -1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        for _ in range(3):  # at most a step or two off
            r = np.where((r >= 0) & (moves.affine(unit_cost * r) > best), r - 1.0, r)
        for _ in range(3):
            r = np.where(moves.affine(unit_cost * (r + 1.0)) <= best, r + 1.0, r)
    stay = (moves.kind == _RESCALE) & (best >= 0.0)
    r = np.where(stay, np.maximum(r, moves.current), r)
    return np.where(free & (moves.affine(unit_cost) <= best), np.inf, r)


def _current_costs(system: System) -> dict[int, float]:
    """What each server with a current allocation pays for it now."""
    acc_count = {(p.model, p.accelerator): max(p.acc_count, 1) for p in system.profiles}
    current_cost: dict[int, float] = {}
    for s, srv in enumerate(system.servers):
        cur = srv.current
        if not cur.accelerator:
            continue
        if cur.cost is not None:
            current_cost[s] = cur.cost
        else:
            acc = system.accelerators.get(cur.accelerator)
            count = acc_count.get((srv.model, cur.accelerator), 1)
            current_cost[s] = acc.cost * count * cur.replicas if acc else 0.0
    return current_cost
