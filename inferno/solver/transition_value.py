"""Inferno's transition value of a candidate: what the solver ranks a server's candidates by.

1.1 × its cost for a server allocated nothing yet; for one already running, 0 to stay as it is,
the change in cost to rescale on its accelerator, and the change plus a tenth of both costs to
move. :func:`value_floor` is a lower bound on it from a lower bound on the replicas
(:mod:`.lazy_sizing`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..system import System

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["value_floor", "values"]


def values(system: System, server_idx: Idx, names: NDArray[np.object_], replicas: F, cost: F) -> F:
    """Inferno's transition value: 1.1 × cost from nothing; 0 to stay; a penalty to move."""
    value = 1.1 * cost
    current_cost = _current_costs(system)
    if not current_cost:
        return value
    for c, s in enumerate(server_idx):
        if s not in current_cost:
            continue
        cur = system.servers[s].current
        was = current_cost[s]
        if names[c] == cur.accelerator:
            value[c] = 0.0 if replicas[c] == cur.replicas else cost[c] - was
        else:
            value[c] = cost[c] - was + 0.1 * (was + cost[c])
    return value


def value_floor(
    system: System, server_idx: Idx, names: NDArray[np.object_], replicas: F, unit_cost: F
) -> F:
    """The least value a candidate can have with at least ``replicas`` replicas. The value grows
    with the replicas (the cost does), except where staying as it is counts 0: on the current
    accelerator the floor is the change in cost at ``replicas`` (a current cost given apart from
    the replicas may make it negative), or 0 if the current replicas are at least ``replicas``
    and that is less. A floor that is not a number is −inf (never a reason to leave a candidate
    out)."""
    cost = unit_cost * replicas
    floor = values(system, server_idx, names, replicas, cost)
    current = _current_costs(system)
    for c, s in enumerate(server_idx):
        if s in current:
            cur = system.servers[s].current
            if names[c] == cur.accelerator:
                stay = 0.0 if cur.replicas >= replicas[c] else np.inf
                floor[c] = min(cost[c] - current[s], stay)
    return np.where(np.isnan(floor), -np.inf, floor)


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
