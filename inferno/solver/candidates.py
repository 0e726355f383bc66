"""Candidates: every (server, accelerator) pair with a profile, sized against the server's SLOs.

Built column-wise with numpy, so that tens of thousands of servers size in one vectorised pass:
for each pair, λ* (the largest rate per replica meeting the SLOs), the replicas the demand needs,
their cost and accelerator units, and the predicted metrics at the rate each replica would receive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..model.batching import knee_batches
from ..model.points import Metrics, OperatingPoints, ProfileArrays, batch_limit
from ..model.sizing import SloArrays, size
from ..system import Accelerator, BatchPolicy, Server, System, Target

F = NDArray[np.float64]
I = NDArray[np.intp]

__all__ = ["CandidateTable", "build_candidates", "server_demand"]

MS_PER_MIN = 60_000.0
IDLE_RATE_FRACTION = 1e-9  # metrics of an idle server are taken at this fraction of μ(1)


@dataclass(frozen=True)
class CandidateTable:
    """Columns of C candidates (feasible or not) plus per-server columns of S servers."""

    system: System
    server: I  # owning server index
    accelerator: NDArray[np.object_]  # accelerator name
    acc_type: NDArray[np.object_]
    acc_count: F  # accelerators per replica
    multiplicity: F  # units of the type per accelerator
    unit_cost: F  # cost per replica (accelerator cost × acc_count)
    points: OperatingPoints
    n_memory: F  # Inferno's batch limit
    rate: F  # λ* per replica, /ms (NaN if infeasible)
    feasible: NDArray[np.bool_]
    bound: NDArray[np.str_]
    replicas: F  # replicas the demand needs
    cost: F
    value: F  # transition-aware value (Inferno's): what the greedy ranks by
    metrics: Metrics  # at demand / replicas
    demand: F  # per server, /ms
    reason: list[str]  # per server: why it has no feasible candidate ("" if it has one)

    @property
    def units_per_replica(self) -> F:
        out: F = self.acc_count * self.multiplicity
        return out

    def of_server(self, s: int) -> I:
        """Feasible candidates of server ``s``, best first: value, then cost, then name."""
        idx = np.flatnonzero((self.server == s) & self.feasible)
        order = sorted(idx, key=lambda c: (self.value[c], self.cost[c], self.accelerator[c]))
        return np.asarray(order, dtype=np.intp)

    def all_of_server(self, s: int) -> I:
        idx = np.flatnonzero(self.server == s)
        order = sorted(idx, key=lambda c: str(self.accelerator[c]))
        return np.asarray(order, dtype=np.intp)

    def metrics_at(self, c: int, replicas: int) -> dict[str, float]:
        """Metrics of candidate ``c`` when its server's demand is spread over ``replicas``."""
        return _metrics_at(self.points, c, float(self.demand[self.server[c]]), replicas)


def _metrics_at(points: OperatingPoints, c: int, demand: float, replicas: int) -> dict[str, float]:
    one = points.subset(np.array([c], dtype=np.intp))
    idle = demand <= 0 or replicas <= 0
    rate = IDLE_RATE_FRACTION * float(one.mu_1[0]) if idle else demand / replicas
    m = one.metrics(np.array([rate])).take(0)
    if idle:
        m["rate"] = 0.0
        m["throughput"] = 0.0
    return m


def server_demand(server: Server, tps: float | None) -> float:
    """Offered load in requests per ms: TPS / tokens for a throughput class, else arrivalRate."""
    if tps is not None and server.load.out_tokens > 0:
        return tps / server.load.out_tokens / 1000.0
    return server.load.arrival_rate / MS_PER_MIN


def build_candidates(system: System) -> CandidateTable:
    servers = system.servers
    spec = system.optimizer
    by_model: dict[str, list[int]] = {}
    for j, mp in enumerate(system.profiles):
        by_model.setdefault(mp.model, []).append(j)
    prof_all = ProfileArrays.of([mp.profile for mp in system.profiles])

    reasons = [""] * len(servers)
    demand = np.zeros(len(servers))
    pair_server: list[int] = []
    pair_profile: list[int] = []
    slo_rows: list[tuple[float, ...]] = []
    for s, srv in enumerate(servers):
        cls = system.classes.get(srv.service_class)
        target = cls.targets.get(srv.model) if cls else None
        demand[s] = server_demand(srv, target.tps if target else None)
        rows = by_model.get(srv.model, [])
        if not rows:
            reasons[s] = f"no performance profile for model {srv.model!r} on any accelerator"
            continue
        if target is None:
            reasons[s] = f"service class {srv.service_class!r} has no targets for model {srv.model!r}"
            continue
        if srv.keep_accelerator and srv.current.accelerator:
            rows = [j for j in rows if system.profiles[j].accelerator == srv.current.accelerator]
            if not rows:
                reasons[s] = (
                    f"keepAccelerator: model {srv.model!r} has no profile on "
                    f"{srv.current.accelerator!r}"
                )
                continue
        row = _slo_row(target)
        for j in rows:
            pair_server.append(s)
            pair_profile.append(j)
            slo_rows.append(row)

    server_idx = np.asarray(pair_server, dtype=np.intp)
    profile_idx = np.asarray(pair_profile, dtype=np.intp)
    prof = prof_all.take(profile_idx)
    in_tok = np.array([servers[s].load.in_tokens for s in pair_server], dtype=np.float64)
    out_tok = np.array([servers[s].load.out_tokens for s in pair_server], dtype=np.float64)
    nan = float("nan")
    batch_override = np.array(
        [nan if servers[s].max_batch_size is None else servers[s].max_batch_size for s in pair_server],
        dtype=np.float64,
    )
    max_queue = np.array(
        [nan if servers[s].max_queue_size is None else servers[s].max_queue_size for s in pair_server],
        dtype=np.float64,
    )
    slo = _slo_arrays(slo_rows, spec.exact_wait_quantile)
    n_memory = batch_limit(prof, out_tok)
    batch = np.where(np.isfinite(batch_override), batch_override, n_memory)
    if spec.batch_policy is BatchPolicy.KNEE and server_idx.size:
        free = ~np.isfinite(batch_override)
        if free.any():
            sel = np.flatnonzero(free)
            chosen = knee_batches(
                prof.take(sel),
                in_tok[sel],
                out_tok[sel],
                slo.take(sel),
                n_memory[sel],
                max_queue=max_queue[sel],
                queue_factor=spec.queue_factor,
            )
            batch[sel] = np.where(np.isfinite(chosen), chosen, n_memory[sel])
    points = OperatingPoints.build(
        prof, in_tok, out_tok, batch=batch, max_queue=max_queue, queue_factor=spec.queue_factor
    )
    sizing = size(points, slo)

    accs = [system.accelerators[system.profiles[j].accelerator] for j in pair_profile]
    acc_count = np.array([max(system.profiles[j].acc_count, 1) for j in pair_profile], dtype=np.float64)
    multiplicity = np.array([a.multiplicity for a in accs], dtype=np.float64)
    unit_cost = np.array([a.cost for a in accs], dtype=np.float64) * acc_count
    d = demand[server_idx]
    min_r = np.array([servers[s].min_replicas for s in pair_server], dtype=np.float64)
    feasible = sizing.feasible.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.ceil(d / sizing.rate * (1.0 - 1e-12))
    need = np.where(d > 0, np.maximum(need, 1.0), 0.0)
    replicas = np.where(feasible, np.maximum(need, min_r), 0.0)
    max_r = np.array(
        [math.inf if servers[s].max_replicas is None else servers[s].max_replicas for s in pair_server]
    )
    over = feasible & (replicas > max_r)
    feasible &= ~over
    cost = unit_cost * replicas
    value = _values(system, server_idx, accs, replicas, cost)

    idle = d <= 0
    rate_each = np.where(idle | (replicas <= 0), IDLE_RATE_FRACTION * points.mu_1, d / np.maximum(replicas, 1.0))
    metrics = points.metrics(rate_each)
    if idle.any():
        metrics.rate[idle] = 0.0
        metrics.throughput[idle] = 0.0

    _explain_missing(reasons, server_idx, feasible, sizing.bound, over, accs, servers)
    return CandidateTable(
        system=system,
        server=server_idx,
        accelerator=np.array([a.name for a in accs], dtype=object),
        acc_type=np.array([a.type for a in accs], dtype=object),
        acc_count=acc_count,
        multiplicity=multiplicity,
        unit_cost=unit_cost,
        points=points,
        n_memory=n_memory,
        rate=sizing.rate,
        feasible=feasible,
        bound=sizing.bound,
        replicas=replicas,
        cost=cost,
        value=value,
        metrics=metrics,
        demand=demand,
        reason=reasons,
    )


def _slo_row(t: Target) -> tuple[float, ...]:
    def f(v: float | None) -> float:
        return math.nan if v is None else float(v)

    return (
        f(t.itl),
        f(t.ttft),
        f(t.ttw),
        f(t.latency),
        f(t.tps),
        f(t.ttft_quantile),
        f(t.latency_quantile),
        f(t.ttw_quantile),
    )


def _slo_arrays(rows: list[tuple[float, ...]], exact_wait: bool) -> SloArrays:
    if not rows:
        return SloArrays.empty(0)
    cols = np.asarray(rows, dtype=np.float64).T
    return SloArrays(*cols, exact_wait_quantile=exact_wait)  # type: ignore[arg-type]


def _values(system: System, server_idx: I, accs: list[Accelerator], replicas: F, cost: F) -> F:
    """Inferno's transition value: 1.1 × cost from nothing; 0 to stay; a penalty to move."""
    value = 1.1 * cost
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
    if not current_cost:
        return value
    for c, s in enumerate(server_idx):
        if s not in current_cost:
            continue
        cur = system.servers[s].current
        was = current_cost[s]
        if accs[c].name == cur.accelerator:
            value[c] = 0.0 if replicas[c] == cur.replicas else cost[c] - was
        else:
            value[c] = cost[c] - was + 0.1 * (was + cost[c])
    return value


def _explain_missing(
    reasons: list[str],
    server_idx: I,
    feasible: NDArray[np.bool_],
    bound: NDArray[np.str_],
    over: NDArray[np.bool_],
    accs: list[Accelerator],
    servers: tuple[Server, ...],
) -> None:
    """Reason for servers that had candidates but none feasible."""
    has = np.zeros(len(servers), dtype=bool)
    has[server_idx[feasible]] = True
    for s in np.unique(server_idx):
        if has[s] or reasons[s]:
            continue
        mine = np.flatnonzero(server_idx == s)
        missed = sorted({str(bound[c]) for c in mine if not over[c]})
        parts = []
        if missed:
            parts.append(
                "no accelerator meets the SLO even at the lowest load "
                f"(target missed: {', '.join(missed)})"
            )
        if over[mine].any():
            parts.append(f"more replicas than maxNumReplicas={servers[s].max_replicas} needed")
        reasons[s] = "; ".join(parts)
