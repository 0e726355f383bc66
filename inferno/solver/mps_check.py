"""Which replicas may share an MPS GPU: GPU-let's interference model against each server's SLO.

The packing of MPS shares (:mod:`.gpulets`, :func:`~inferno.solver.packing_mps.pack_mps`) asks,
for two replicas, whether they may run on one GPU. Next to its co-runners a replica's batches take
α times longer, α the largest factor GPU-let's model predicts next to any of them (at their
batches and shares, :mod:`inferno.partitions.interference`). A pair is accepted only when each
side still meets **its own targets** at the rate each of its replicas receives with its batch
times × α, judged by the model the solver sized it with (:func:`inferno.model.slowdown.
meets_slowed`: mean targets, exact wait / TTFT quantiles and the exact latency quantile of a
percentile SLO). Slower batches also queue longer, so this is stricter than comparing α with
target / predicted mean, and unlike that it holds for percentile targets.

Two replicas of **one server** are two co-runners of the same network: they are checked the same
way (α of the model next to itself). Where the model cannot predict (no utilisation for it) they
still share, as without interference data (the pool's profile stands for a replica on its share),
and the packing's notes say so; two different servers then never share.

A server that misses its targets even alone (a partial grant under a capacity limit) is not
judged: its replicas share among themselves (spreading them would only cost GPUs) and never with
other servers'.

Each side is judged at its decided (largest) batch next to the other's. At the decided load
batches are mostly smaller, so this is conservative (7–9 % of latency on a bert_large/yolov5s pair);
the time-weighted mean batch would be too lax on a p95, which comes from busy periods of full
batches (``tests/solver/test_mps_batch.py``, docs/gpu-partitions.md "At which batch").

Per server, the factors it can meet in the pool are found once: the distinct α it would see next
to each kind of co-runner (model and batch) in the pool, sorted, and a vectorised binary search
over them (a few model evaluations for all servers at once); every pair test is then a lookup.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..model.sizing import SloArrays
from ..model.slowdown import meets_slowed
from ..partitions.interference import Constants, CoRunner, UtilisationTable, batch_factor
from ..system import PerformanceModel
from ..units import MS_PER_MIN
from .candidates import IDLE_RATE_FRACTION, CandidateTable, slo_row
from .packing_mps import MpsProcess
from .result import ServerStatus, Solution

__all__ = ["PoolCheck", "pool_check"]

logger = logging.getLogger(__name__)

F = NDArray[np.float64]


@dataclass(slots=True)
class PoolCheck:
    """The co-location test of one MPS pool and what it found."""

    #: the predicate for :func:`~inferno.solver.packing_mps.pack_mps`
    compatible: Callable[[MpsProcess, MpsProcess], bool]
    #: servers a refusal was made for (whose SLO the slowdown breaks, or both without prediction)
    victims: set[str] = field(default_factory=set)
    #: servers whose own replicas share GPUs without a prediction (no utilisation for the model)
    unchecked: set[str] = field(default_factory=set)


def pool_check(
    table: CandidateTable,
    solution: Solution,
    constants: Sequence[float],
    share: float,
    accelerator_of: Mapping[str, str],
    utilisation: UtilisationTable,
) -> PoolCheck | None:
    """The co-location test of the servers in ``accelerator_of`` (server → its accelerator in the
    pool, an MPS share of ``share`` of the GPU); None without the GPU type's five constants."""
    if len(constants) != 5:
        return None
    c = Constants(*constants)
    system = table.system
    servers = {s.name: s for s in system.servers}
    names = sorted(accelerator_of)
    runner: dict[str, CoRunner] = {}
    for name in names:
        part = next(
            p for p in solution.allocations[name].parts if p.accelerator == accelerator_of[name]
        )
        runner[name] = CoRunner(servers[name].model, max(part.max_batch, 1), share)
    kinds = sorted({(r.model, r.batch) for r in runner.values()})
    factor: dict[tuple[str, tuple[str, int]], float | None] = {}
    for name in names:
        for kind in kinds:
            you = CoRunner(kind[0], kind[1], share)
            factor[(name, kind)] = batch_factor(c, utilisation, runner[name], [you])
    limit = _tolerable(table, solution, names, accelerator_of, factor)
    check = PoolCheck(compatible=lambda a, b: True)
    cache: dict[tuple[str, str], bool] = {}

    def hurts(me: str, you: str) -> bool:
        """Whether ``you`` next to ``me`` breaks ``me``'s targets (or cannot be predicted)."""
        f = factor[(me, _kind(runner[you]))]
        most = limit[me]
        if me == you:  # its own replicas: judged when predicted and when it meets alone
            if f is None:
                check.unchecked.add(me)
            return f is not None and most is not None and f > most
        return f is None or most is None or f > most

    def ok(a: MpsProcess, b: MpsProcess) -> bool:
        key = (min(a.owner, b.owner), max(a.owner, b.owner))
        if key not in cache:
            hurt = {me for me, you in (key, key[::-1]) if hurts(me, you)}
            check.victims.update(hurt)
            cache[key] = not hurt
        return cache[key]

    check.compatible = ok
    return check


def _kind(r: CoRunner) -> tuple[str, int]:
    return (r.model, r.batch)


def _tolerable(
    table: CandidateTable,
    solution: Solution,
    names: Sequence[str],
    accelerator_of: Mapping[str, str],
    factor: Mapping[tuple[str, tuple[str, int]], float | None],
) -> dict[str, float | None]:
    """Per server, the largest factor it may see in the pool and still meet its targets (among
    those it can see there; 1 when it meets only alone), or None when it misses even alone."""
    system = table.system
    index = {s.name: i for i, s in enumerate(system.servers)}
    wanted = {(index[n], accelerator_of[n]) for n in names}
    cand: dict[str, int] = {}
    for k in np.flatnonzero(np.isin(table.accelerator, sorted({a for _, a in wanted}))):
        key = (int(table.server[k]), str(table.accelerator[k]))
        if key in wanted:
            cand[system.servers[key[0]].name] = int(k)
    idx = np.array([cand[n] for n in names], dtype=np.intp)
    points = table.points.subset(idx)
    rate = np.empty(len(names))
    for i, name in enumerate(names):
        part = next(
            p for p in solution.allocations[name].parts if p.accelerator == accelerator_of[name]
        )
        rate[i] = part.rate_per_replica / MS_PER_MIN
    rate = np.where(rate > 0, rate, IDLE_RATE_FRACTION * points.mu_1)
    slo = _slo_arrays(table, names)
    # each server's candidate factors, sorted; 1 (alone) first
    seen: dict[str, list[float]] = {name: [1.0] for name in names}
    for (name, _), f in factor.items():
        if f is not None:
            seen[name].append(f)
    values = [np.unique(seen[name]) for name in names]
    # 1 meets for a server granted all the replicas it needs (its rate is at most its λ*); the
    # largest factor first (a loose target meets it and is done), then a binary search
    whole = [solution.allocations[n].status is ServerStatus.ALLOCATED for n in names]
    lo = np.where(whole, 0, -1)  # the largest index known to meet
    hi = np.array([v.size for v in values])  # the smallest index known to miss
    memo = _memo(table)
    first = True
    while True:
        active = np.flatnonzero(lo + 1 < hi)
        if active.size == 0:
            break
        mid = hi[active] - 1 if first else (lo[active] + hi[active]) // 2
        first = False
        at = np.array([values[i][m] for i, m in zip(active, mid, strict=True)])
        keys = [(int(idx[i]), float(rate[i]), float(a)) for i, a in zip(active, at, strict=True)]
        todo = np.array([k not in memo for k in keys], dtype=bool)
        if todo.any():
            sel = active[todo]
            met = meets_slowed(points.subset(sel), rate[sel], slo.take(sel), at[todo])
            fresh = [k for k, t in zip(keys, todo, strict=True) if t]
            memo.update(zip(fresh, met.tolist(), strict=True))
        met = np.array([memo[k] for k in keys], dtype=bool)
        lo[active] = np.where(met, mid, lo[active])
        hi[active] = np.where(met, hi[active], mid)
    out: dict[str, float | None] = {}
    for i, name in enumerate(names):
        out[name] = float(values[i][lo[i]]) if lo[i] >= 0 else None
        if lo[i] < 0:
            logger.info("%s misses its SLO even alone on its MPS share: not co-located", name)
    return out


#: per candidate table's points: (candidate, rate, factor) → met; the re-solves of
#: :mod:`.mps_resolve` pack the same candidates again, mostly at the same rates
_MEMOS: weakref.WeakKeyDictionary[object, dict[tuple[int, float, float], bool]] = (
    weakref.WeakKeyDictionary()
)


def _memo(table: CandidateTable) -> dict[tuple[int, float, float], bool]:
    try:
        return _MEMOS.setdefault(table.points, {})
    except TypeError:  # points that take no weak reference: no memo
        return {}


def _slo_arrays(table: CandidateTable, names: Sequence[str]) -> SloArrays:
    """The servers' targets as the solver sizes them (:mod:`.candidates`)."""
    system = table.system
    spec = system.optimizer
    servers = {s.name: s for s in system.servers}
    rows = []
    for name in names:
        srv = servers[name]
        cls = system.classes.get(srv.service_class)
        target = cls.targets.get(srv.model) if cls is not None else None
        rows.append(slo_row(target))
    cols = np.array(rows, dtype=np.float64).reshape(len(names), 8)
    return SloArrays.of_columns(
        [cols[:, k] for k in range(8)],
        exact_wait_quantile=spec.exact_wait_quantile or spec.model is PerformanceModel.ACCURATE,
    )
