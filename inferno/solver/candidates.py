"""Candidates: every (server, accelerator) pair with a profile, sized against the server's SLOs.

Built column-wise with numpy, so that tens of thousands of servers size in one vectorised pass:
for each pair, λ* (the largest rate per replica meeting the SLOs), the replicas the demand needs,
their cost and accelerator units, and the predicted metrics at the rate each replica would receive.
The sizing itself is :func:`.sized_points.sized_points` (with a :class:`.sizing_memo.SizingMemo`,
kept across solves by its owner: the optimizer service).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from ..model.batching import knee_batches
from ..model.length_spread import LengthSpread
from ..model.points import Metrics, OperatingPoints
from ..model.profile_arrays import ProfileArrays, batch_limit
from ..model.sizing import SloArrays
from ..system import BatchPolicy, PerformanceModel, Server, System, Target
from ..units import MS_PER_MIN, MS_PER_S
from .batch_budget import within_batch_budget
from .candidate_reuse import StaticCandidates, static_key
from .lazy_sizing import LazySizing, size_contenders
from .replica_need import replicas_needed
from .running_batch import keep_running_batch
from .serving_config import ServingDecision
from .serving_config import decide as decide_serving
from .sized_points import LazyPoints, lazily_sized_points, sized_points
from .sizing_memo import SizingMemo
from .transition_value import values

F = NDArray[np.float64]
Idx = NDArray[np.intp]

__all__ = ["CandidateTable", "build_candidates", "server_demand"]

IDLE_RATE_FRACTION = 1e-9  # metrics of an idle server are taken at this fraction of μ(1)


@dataclass(frozen=True)
class CandidateTable:
    """Columns of C candidates (feasible or not) plus per-server columns of S servers."""

    system: System
    server: Idx  # owning server index
    accelerator: NDArray[np.object_]  # accelerator name
    acc_type: NDArray[np.object_]
    acc_count: F  # accelerators per replica
    multiplicity: F  # units of the type per accelerator
    unit_cost: F  # cost per replica (accelerator cost × acc_count)
    lazy: LazyPoints  # the operating points (built when needed: :attr:`points`)
    n_memory: F  # Inferno's batch limit
    rate: F  # λ* per replica, /ms (NaN if infeasible)
    feasible: NDArray[np.bool_]
    bound: NDArray[np.str_]
    replicas: F  # replicas the demand needs
    cost: F
    value: F  # transition-aware value (Inferno's): what the greedy ranks by
    rate_each: F  # the rate each replica of the candidate receives, /ms (idle: a tiny one)
    demand: F  # per server, /ms
    reason: list[str]  # per server: why it has no feasible candidate ("" if it has one)

    units_per_replica: F  # accelerator units of its type one replica takes
    priority: list[int]  # per server: its class's priority (1 = highest; unknown class: 100)
    _ranked: Idx  # feasible candidates sorted by (server, value, cost, accelerator name)
    _starts: Idx  # _ranked[_starts[s]:_starts[s+1]] are server s's
    #: candidate → its decided model instances and batching delay (opted-in batch-kind rows only:
    #: :mod:`.serving_config`)
    serving: Mapping[int, ServingDecision] = field(default_factory=dict)
    #: the rate-free columns it was rated from (to size the rest: :meth:`completed`)
    static: StaticCandidates | None = None
    #: every candidate was sized when this table was made (an unlimited solve with the
    #: accurate model sizes only those that can win: :mod:`.lazy_sizing`)
    complete: bool = True

    def completed(self) -> CandidateTable:
        """This table with every candidate sized: itself when :attr:`complete`."""
        if self.complete:
            return self
        assert self.static is not None and self.static.sizing is not None
        self.static.sizing.ensure()
        return _rated(self.system, self.static, self.demand)

    @property
    def points(self) -> OperatingPoints:
        """Every candidate's operating point (built on first use)."""
        return self.lazy.full

    def of_server(self, s: int) -> Idx:
        """Feasible candidates of server ``s``, best first: value, then cost, then name."""
        return self._ranked[self._starts[s] : self._starts[s + 1]]

    def best_of_servers(self) -> tuple[Idx, Idx]:
        """(servers with a feasible candidate, the best candidate of each): ``of_server(s)[0]``
        for every server at once."""
        has = np.flatnonzero(self._starts[1:] > self._starts[:-1])
        return has, self._ranked[self._starts[has]]

    def excluding(self, drop: NDArray[np.bool_]) -> CandidateTable:
        """This table, completed, with the candidates where ``drop`` is true made infeasible
        (the ranking kept for the others)."""
        if not self.complete:
            return self.completed().excluding(drop)
        feasible = self.feasible & ~drop
        ranked = self._ranked[feasible[self._ranked]]
        bounds = np.arange(len(self.system.servers) + 1)
        starts = np.searchsorted(self.server[ranked], bounds).astype(np.intp)
        return replace(self, feasible=feasible, _ranked=ranked, _starts=starts)

    def all_of_server(self, s: int) -> Idx:
        idx = np.flatnonzero(self.server == s)
        order = sorted(idx, key=lambda c: str(self.accelerator[c]))
        return np.asarray(order, dtype=np.intp)

    @cached_property
    def metrics(self) -> Metrics:
        """Every candidate's metrics at demand / replicas (computed when first asked: the solver
        needs only the chosen ones' — :meth:`metrics_of` —, and for the batch kind's exact model
        each is a solve of its own)."""
        return self.metrics_of(np.arange(self.server.size, dtype=np.intp))

    def metrics_of(self, idx: Idx) -> Metrics:
        """The metrics of the candidates ``idx`` at demand / replicas."""
        idx = np.asarray(idx, dtype=np.intp)
        m = self.lazy.of(idx, same_width=True).metrics(self.rate_each[idx])
        idle = self.demand[self.server[idx]] <= 0
        if idle.any():
            m.rate[idle] = 0.0
            m.throughput[idle] = 0.0
        return m

    def metrics_at(self, c: int, replicas: int) -> dict[str, float]:
        """Metrics of candidate ``c`` when its server's demand is spread over ``replicas``."""
        demand = float(self.demand[self.server[c]])
        idle = demand <= 0 or replicas <= 0
        return self.metrics_at_rate(c, 0.0 if idle else demand / replicas)

    def metrics_at_rate(self, c: int, rate: float) -> dict[str, float]:
        """Metrics of candidate ``c`` with each replica offered ``rate`` (/ms; 0 = idle)."""
        one = self.lazy.of(np.array([c], dtype=np.intp))
        lam = rate if rate > 0 else IDLE_RATE_FRACTION * float(one.mu_1[0])
        m = one.metrics(np.array([lam])).take(0)
        if rate <= 0:
            m["rate"] = 0.0
            m["throughput"] = 0.0
        return m


def server_demand(server: Server, tps: float | None) -> float:
    """Offered load in requests per ms: TPS / tokens for a throughput class, else arrivalRate."""
    if tps is not None and server.load.out_tokens > 0:
        return tps / server.load.out_tokens / MS_PER_S
    return server.load.arrival_rate / MS_PER_MIN


def _pairs(system: System, reasons: list[str], targets: list[Target | None]) -> tuple[Idx, Idx]:
    """(server, profile) index pairs of every server that can have candidates."""
    by_model: dict[str, list[int]] = {}
    for j, mp in enumerate(system.profiles):
        by_model.setdefault(mp.model, []).append(j)
    plain: dict[str, list[int]] = {}
    pair_s: list[Idx] = []
    pair_p: list[Idx] = []
    for s, srv in enumerate(system.servers):
        rows = by_model.get(srv.model, [])
        if not rows:
            reasons[s] = f"no performance profile for model {srv.model!r} on any accelerator"
        elif targets[s] is None:
            reasons[s] = (
                f"service class {srv.service_class!r} has no targets for model {srv.model!r}"
            )
        elif srv.keep_accelerator and srv.current.accelerator:
            kept = [j for j in rows if system.profiles[j].accelerator == srv.current.accelerator]
            if not kept:
                reasons[s] = (
                    f"keepAccelerator: model {srv.model!r} has no profile on "
                    f"{srv.current.accelerator!r}"
                )
            pair_s.append(np.full(len(kept), s, dtype=np.intp))
            pair_p.append(np.asarray(kept, dtype=np.intp))
        else:
            plain.setdefault(srv.model, []).append(s)
    for model, members in plain.items():
        rows = by_model[model]
        pair_s.append(np.repeat(np.asarray(members, dtype=np.intp), len(rows)))
        pair_p.append(np.tile(np.asarray(rows, dtype=np.intp), len(members)))
    if not pair_s:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    server_idx, profile_idx = np.concatenate(pair_s), np.concatenate(pair_p)
    order = np.lexsort((profile_idx, server_idx))
    return server_idx[order], profile_idx[order]


def _column(values: list[float | int | None], default: float = math.nan) -> F:
    return np.array([default if v is None else v for v in values], dtype=np.float64)


def build_candidates(system: System, memo: SizingMemo | None = None) -> CandidateTable:
    """Every candidate of ``system``, sized (with ``memo``: sizing found there is not
    computed again, :func:`~.sized_points.sized_points`; the rate-free columns of a solve of
    the same servers at other rates are reused whole, :mod:`.candidate_reuse`)."""
    servers = system.servers
    targets: list[Target | None] = []
    for srv in servers:
        cls = system.classes.get(srv.service_class)
        targets.append(cls.targets.get(srv.model) if cls else None)
    demand = np.array(
        [server_demand(srv, t.tps if t else None) for srv, t in zip(servers, targets, strict=True)]
    )
    floats = np.array(
        [
            [s.load.in_tokens for s in servers],
            [s.load.out_tokens for s in servers],
            _column([s.load.out_tokens_cov for s in servers]),
            [float(s.load.out_tokens_dist == "lognormal") for s in servers],
            _column([s.load.in_tokens_cov for s in servers]),
            [float(s.load.in_tokens_dist == "lognormal") for s in servers],
            _column([s.load.out_tokens_max for s in servers]),
        ],
        dtype=np.float64,
    ).reshape(7, len(servers))
    # the serving decision depends on the demand: never reused
    reuse = memo is not None and not system.optimizer.decide_serving
    key = static_key(system, floats) if reuse else None
    static = memo.tables.find(key) if memo is not None and key is not None else None
    if static is not None and memo is not None:
        memo.reused(static.looked_up)
    else:
        static = _static_columns(system, targets, floats, memo)
        if memo is not None and key is not None:
            memo.tables.keep(key, static, memo.max_entries)
    return _rated(system, static, demand)


def _static_columns(
    system: System, targets: list[Target | None], floats: F, memo: SizingMemo | None
) -> StaticCandidates:
    """The candidates' rate-free columns: pairs, sizing, points, costs per replica."""
    servers = system.servers
    spec = system.optimizer
    reasons = [""] * len(servers)
    server_idx, profile_idx = _pairs(system, reasons, targets)
    all_profiles = ProfileArrays.of([mp.profile for mp in system.profiles])
    overrides = _column([srv.max_batch_size for srv in servers])
    server_idx, profile_idx = within_batch_budget(
        all_profiles, server_idx, profile_idx, floats[1], overrides, reasons
    )
    prof = all_profiles.take(profile_idx)
    in_tok = floats[0][server_idx]
    out_tok = floats[1][server_idx]
    batch_override = overrides[server_idx]
    max_queue = _column([srv.max_queue_size for srv in servers])[server_idx]
    min_r = _column([srv.min_replicas for srv in servers])[server_idx]
    max_r = _column([srv.max_replicas for srv in servers], math.inf)[server_idx]
    # one row per distinct target (a class's target is shared by its model's servers)
    distinct: dict[Target | None, int] = {}
    which = np.array([distinct.setdefault(t, len(distinct)) for t in targets], dtype=np.intp)
    slo_rows = [slo_row(t) for t in distinct]
    slo_matrix = np.array(slo_rows, dtype=np.float64).reshape(-1, 8)[which]
    slo = SloArrays.of_columns(
        [slo_matrix[server_idx, k] if len(servers) else np.zeros(0) for k in range(8)],
        # the accurate model judges slo-ttw on its true quantile (docs/model.md, "Accurate mode")
        exact_wait_quantile=spec.exact_wait_quantile or spec.model is PerformanceModel.ACCURATE,
    )
    acc_names = sorted(system.accelerators)
    acc_of_profile = np.array(
        [acc_names.index(p.accelerator) for p in system.profiles], dtype=np.intp
    )
    acc_i = acc_of_profile[profile_idx] if profile_idx.size else profile_idx
    acc_table = [system.accelerators[n] for n in acc_names]
    acc_count = np.array([max(p.acc_count, 1) for p in system.profiles], dtype=np.float64)[
        profile_idx
    ]
    n_memory = batch_limit(prof, out_tok)
    batch = np.where(np.isfinite(batch_override), batch_override, n_memory)
    # the accurate model (spec.model) reads each server's output-length CV, outTokensCOV (not
    # serviceCOV, Inferno's service-time CV: docs/model.md, "Accurate mode")
    # and its input lengths' (inTokensCOV, inTokensDist; none: fixed) and the most output
    # tokens a request gets (outTokensMax; none: no cap)
    lengths = (
        LengthSpread(
            out_cv=floats[2][server_idx],
            out_lognormal=floats[3][server_idx] > 0.5,
            in_cv=floats[4][server_idx],
            in_lognormal=floats[5][server_idx] > 0.5,
            out_max=floats[6][server_idx],
        )
        if spec.model is PerformanceModel.ACCURATE
        else None
    )
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
                model=spec.model.value,  # the knee of the model the servers are sized with
                lengths=None if lengths is None else lengths.take(sel),
            )
            batch[sel] = np.where(np.isfinite(chosen), chosen, n_memory[sel])
    batch = keep_running_batch(system, server_idx, acc_i, acc_names, prof, out_tok, batch)
    # model instances and batching delay of the opted-in batch-kind rows (.serving_config),
    # when the optimizer data asks for it (decideServing: ~0.4 s per such server)
    serving: dict[int, ServingDecision] = {}
    if spec.decide_serving:
        demand = np.array(
            [
                server_demand(srv, t.tps if t else None)
                for srv, t in zip(servers, targets, strict=True)
            ]
        )
        prof, serving = decide_serving(
            [system.profiles[j].profile for j in profile_idx.tolist()],
            prof,
            batch,
            max_queue,
            spec.queue_factor,
            slo,
            slo_matrix[server_idx],
            demand[server_idx],
            min_r,
            max_r,
            np.array([system.accelerators[n].cost for n in acc_names], dtype=np.float64)[acc_i]
            * acc_count,
            spec.model.value,
            no_delay=spec.offer_no_delay,
        )
    asked = memo.stats() if memo is not None else None
    lazy: LazySizing | None = None
    inputs = (prof, in_tok, out_tok, batch, max_queue, spec.queue_factor, slo)
    model = spec.model.value
    if spec.model is PerformanceModel.ACCURATE and spec.unlimited and not spec.milp:
        # only the best of each server is asked for: the others are sized if ever needed
        points, lazy = lazily_sized_points(
            *inputs, slo_matrix[server_idx], model=model, lengths=lengths
        )
        rate, feasible, bound = lazy.rate, lazy.feasible, lazy.bound
    else:
        points, sizing = sized_points(
            *inputs, slo_matrix[server_idx], model=model, lengths=lengths, memo=memo
        )
        rate, feasible, bound = sizing.rate, sizing.feasible, sizing.bound
    looked_up = 0
    if memo is not None and asked is not None:
        now = memo.stats()
        looked_up = now.hits + now.misses - asked.hits - asked.misses
    # units of the type: a GPU partition takes its share of one GPU
    multiplicity = np.array([a.multiplicity * a.fraction for a in acc_table], dtype=np.float64)[
        acc_i
    ]
    return StaticCandidates(
        server_idx=server_idx,
        acc_i=acc_i,
        names=np.array([a.name for a in acc_table], dtype=object)[acc_i],
        acc_type=np.array([a.type for a in acc_table], dtype=object)[acc_i],
        acc_count=acc_count,
        multiplicity=multiplicity,
        unit_cost=np.array([a.cost for a in acc_table], dtype=np.float64)[acc_i] * acc_count,
        points=points,
        n_memory=n_memory,
        rate=rate,
        feasible=feasible,
        bound=bound,
        min_r=min_r,
        max_r=max_r,
        out_tok=floats[1],
        reasons=tuple(reasons),
        priority=tuple(
            cls.priority if (cls := system.classes.get(srv.service_class)) else 100
            for srv in servers
        ),
        serving=serving,
        looked_up=looked_up,
        sizing=lazy,
    )


def _rated(system: System, st: StaticCandidates, demand: F) -> CandidateTable:
    """The candidate table of ``system`` from its rate-free columns and its servers' demand
    (with lazy sizing, the candidates that can be a server's best sized first)."""
    servers = system.servers
    server_idx = st.server_idx
    points = st.points
    unit_cost = st.unit_cost
    d = demand[server_idx]
    lazy = st.sizing
    if lazy is not None and not lazy.complete:
        size_contenders(system, st, lazy, d)
    # a lazy sizing's arrays are filled in place: this table keeps what they are now
    rate, sized_feasible, bound, complete = (
        (st.rate, st.feasible, st.bound, True) if lazy is None else lazy.snapshot()
    )
    replicas, feasible, endless, over = replicas_needed(d, rate, sized_feasible, st.min_r, st.max_r)
    cost = unit_cost * replicas
    value = values(system, server_idx, st.names, replicas, cost)

    idle = d <= 0
    rate_each = np.where(
        idle | (replicas <= 0), IDLE_RATE_FRACTION * points.mu_1, d / np.maximum(replicas, 1.0)
    )

    reasons = list(st.reasons)
    _explain_missing(reasons, server_idx, feasible, bound, over, servers, endless)
    feas = np.flatnonzero(feasible)
    name_rank = st.acc_i[feas]  # accelerator names are sorted, so their index orders them
    ranked = feas[np.lexsort((name_rank, cost[feas], value[feas], server_idx[feas]))]
    starts = np.searchsorted(server_idx[ranked], np.arange(len(servers) + 1)).astype(np.intp)
    return CandidateTable(
        system=system,
        server=server_idx,
        accelerator=st.names,
        acc_type=st.acc_type,
        acc_count=st.acc_count,
        multiplicity=st.multiplicity,
        unit_cost=unit_cost,
        lazy=points,
        n_memory=st.n_memory,
        rate=rate,
        feasible=feasible,
        bound=bound,
        replicas=replicas,
        cost=cost,
        value=value,
        rate_each=rate_each,
        demand=demand,
        reason=reasons,
        units_per_replica=st.acc_count * st.multiplicity,
        priority=list(st.priority),
        _ranked=ranked,
        _starts=starts,
        serving=st.serving,
        static=st,
        complete=complete,
    )


def slo_row(t: Target | None) -> tuple[float, ...]:
    """A target's eight values in :class:`~inferno.model.sizing.SloArrays` order (NaN: none)."""
    if t is None:
        return (math.nan,) * 8

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


def _explain_missing(
    reasons: list[str],
    server_idx: Idx,
    feasible: NDArray[np.bool_],
    bound: NDArray[np.str_],
    over: NDArray[np.bool_],
    servers: tuple[Server, ...],
    endless: NDArray[np.bool_],
) -> None:
    """Reason for servers that had candidates but none feasible."""
    has = np.zeros(len(servers), dtype=bool)
    has[server_idx[feasible]] = True
    present = np.zeros(len(servers), dtype=bool)
    present[server_idx] = True
    for s in np.flatnonzero(present & ~has).tolist():  # servers with candidates, none feasible
        if reasons[s]:
            continue
        mine = np.flatnonzero(server_idx == s)
        missed = sorted({str(bound[c]) for c in mine if not over[c] and not endless[c]})
        parts = []
        if missed:
            parts.append(
                "no accelerator meets the SLO even at the lowest load "
                f"(target missed: {', '.join(missed)})"
            )
        if over[mine].any():
            parts.append(f"more replicas than maxNumReplicas={servers[s].max_replicas} needed")
        if endless[mine].any():
            parts.append("a replica's rate λ* too small to count the replicas needed")
        reasons[s] = "; ".join(parts)
