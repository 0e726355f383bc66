"""What a simulation run shows: SLO attainment, rejections, GPU-hours, cost, changes, and the
time series behind the files and plots (:mod:`.tables`, :mod:`.plots`).

**SLO attainment** is per request, against the targets of the server's class for its model
(:mod:`.slo`): attainment = requests meeting their SLO / requests judged, per policy, class and
server (a server *meets its SLO* when at least the scenario's sizing quantile, or
:data:`SWEEP_ATTAINMENT` without one, of its requests do). The p95 columns are the 95th
percentile of value / target over the completed requests (≤ 1: the p95 meets the target).

**GPU-hours** = Σ over replicas of the time it is provisioned (from its creation, start-up
included, until it is gone after draining, within the run) × GPUs per replica (accelerators per
replica × the accelerator's multiplicity; × its share of one GPU for a GPU partition, a MIG slice
or MPS share). **Cost** = the same replica time × the accelerator's
cost × accelerators per replica, in ``accelerator-data.json``'s units per hour. **Changes** counts
the Deployment updates that changed a server's replicas or configuration, **rollouts** those that
changed its accelerator, batch size, model instances or batching delay (every pod of the server
is replaced).

**× oracle**: a policy's cost / the oracle's (:mod:`.oracle`), when the run has one. A **sweep**
(``hpa: {targets: [...]}``) runs one instance per value; its **best** is the cheapest instance
that meets the SLO of at least :data:`SWEEP_ATTAINMENT` of the requests judged or, when none
does, the one with the highest attainment (:func:`best_of_sweep`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..system import Target
from ..units import MS_PER_S
from .run import PolicyRun, RunResult
from .slo import METRICS, Judged, judge

__all__ = [
    "SWEEP_ATTAINMENT",
    "ClassStat",
    "Comparison",
    "MetricStat",
    "PolicyStat",
    "Report",
    "ServerStat",
    "Sweep",
    "best_of_sweep",
    "build_report",
    "judge",
    "times_oracle",
]

logger = logging.getLogger(__name__)

F = NDArray[np.float64]

MS_PER_HOUR = 3_600_000.0
BASELINES = ("static", "hpa", "queue", "oracle")
#: the share of requests a sweep's best instance must meet the SLO of (else: the best share)
SWEEP_ATTAINMENT = 0.99


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricStat:
    name: str  # wait, ttft, itl, latency
    share_ok: float  # among completed requests with this target
    p95_ratio: float  # 95th percentile of value / target over them


@dataclass(frozen=True, slots=True)
class ClassStat:
    service_class: str
    requests: int
    judged: int
    met: int
    rejected: int
    metrics: tuple[MetricStat, ...]

    @property
    def attainment(self) -> float:
        return self.met / self.judged if self.judged else math.nan


@dataclass(frozen=True, slots=True)
class ServerStat:
    """One server's requests judged and meeting every target of its class."""

    server: str
    judged: int
    met: int

    @property
    def attainment(self) -> float:
        return self.met / self.judged if self.judged else math.nan


@dataclass(frozen=True, slots=True)
class PolicyStat:
    name: str
    kind: str
    requests: int
    judged: int
    met: int
    rejected: int
    in_flight: int
    gpu_hours: float
    cost: float
    changes: int
    replicas_started: int
    mean_replicas: float
    wall_s: float
    classes: tuple[ClassStat, ...]
    rollouts: int = 0  # changes of accelerator, batch, instances or delay: every pod replaced
    sweep: str = ""  # the sweep this policy is an instance of (empty: none)
    servers: tuple[ServerStat, ...] = ()  # per server, in the cluster's order

    @property
    def attainment(self) -> float:
        return self.met / self.judged if self.judged else math.nan

    def servers_meeting(self, bar: float = SWEEP_ATTAINMENT) -> int:
        """How many servers have at least ``bar`` of their judged requests within the SLO (a
        server with no judged request counts as meeting it)."""
        return sum(1 for s in self.servers if not s.judged or s.attainment >= bar)

    @property
    def worst_server(self) -> ServerStat | None:
        """The server with the lowest share of its requests within the SLO (None: none judged)."""
        judged = [s for s in self.servers if s.judged]
        return min(judged, key=lambda s: (s.attainment, s.server)) if judged else None


@dataclass(frozen=True, slots=True)
class Sweep:
    """The instances of one sweep and its best (:func:`best_of_sweep`); ``meets``: the best
    meets the SLO of at least :data:`SWEEP_ATTAINMENT` of the requests."""

    name: str
    members: tuple[str, ...]
    best: str
    meets: bool

    def describe(self) -> str:
        n = len(self.members)
        bar = f"{100 * SWEEP_ATTAINMENT:g}%"
        if self.meets:
            return f"best {self.name}: {self.best} (the cheapest of {n} meeting {bar})"
        return (
            f"best {self.name}: {self.best} (none of {n} meets {bar}: the highest SLO attainment)"
        )


def best_of_sweep(
    stats: Sequence[PolicyStat], attainment: float = SWEEP_ATTAINMENT
) -> tuple[PolicyStat, bool]:
    """The best of a sweep's instances and whether it meets ``attainment``: the cheapest of those
    whose SLO attainment is at least ``attainment`` (ties: the higher attainment), else the one
    with the highest attainment (ties: the cheaper)."""
    if not stats:
        raise ValueError("a sweep has at least one instance")

    def share(p: PolicyStat) -> float:
        a = p.attainment
        return a if math.isfinite(a) else -1.0

    meeting = [p for p in stats if share(p) >= attainment]
    if meeting:
        return min(meeting, key=lambda p: (p.cost, -share(p))), True
    return max(stats, key=lambda p: (share(p), -p.cost)), False


@dataclass(frozen=True, slots=True)
class Comparison:
    """An Inferno policy against a baseline: relative differences (−0.25 = 25% less)."""

    policy: str
    baseline: str
    gpu_hours: float
    cost: float
    attainment_policy: float
    attainment_baseline: float


@dataclass
class Report:
    result: RunResult
    policies: list[PolicyStat]
    comparisons: list[Comparison]
    accelerators: list[str]
    timeseries: list[dict[str, object]] = field(default_factory=list)
    server_rows: list[dict[str, object]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)

    def policy(self, name: str) -> PolicyStat:
        for p in self.policies:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def oracle(self) -> PolicyStat | None:
        """The (first) oracle policy of the run, if any."""
        return next((p for p in self.policies if p.kind == "oracle"), None)

    def best(self, sweep: str) -> PolicyStat:
        """The best instance of the sweep named ``sweep``."""
        for s in self.sweeps:
            if s.name == sweep:
                return self.policy(s.best)
        raise KeyError(sweep)


def _relative(a: float, b: float) -> float:
    return a / b - 1.0 if b > 0 else math.nan


def _replica_time(
    run: PolicyRun, edges: Sequence[float], accelerators: Sequence[str]
) -> dict[str, NDArray[np.float64]]:
    """Per server: replica-ms provisioned per (period, accelerator), shape (P, A)."""
    lo = np.asarray(edges[:-1])
    hi = np.asarray(edges[1:])
    col = {a: i for i, a in enumerate(accelerators)}
    end = run.sim.now
    out = {}
    for name in run.cluster.server_names():
        infos = run.sim.replicas(name)
        m = np.zeros((lo.size, len(accelerators)))
        if infos:
            created = np.array([r.created_at for r in infos])
            gone = np.minimum(np.array([r.gone_at for r in infos]), end)
            acc = np.array(
                [col[run.cluster.config_at(name, r.created_at).accelerator] for r in infos]
            )
            overlap = np.clip(
                np.minimum(gone[:, None], hi[None, :]) - np.maximum(created[:, None], lo[None, :]),
                0.0,
                None,
            )
            for a in np.unique(acc):
                m[:, a] = overlap[acc == a].sum(axis=0)
        out[name] = m
    return out


def build_report(result: RunResult) -> Report:
    """Judge every request of every run, total the replica time, build the time series."""
    scenario = result.scenario
    system = scenario.system
    ends = scenario.period_ends_ms
    edges = [0.0, *ends]
    period_len = np.diff(np.asarray(edges))
    accelerators = sorted(
        {c.accelerator for run in result.runs for h in run.cluster.configs.values() for c in h}
    )
    targets: dict[str, Target | None] = {}
    for s in system.servers:
        cls = system.classes.get(s.service_class)
        targets[s.name] = cls.targets.get(s.model) if cls is not None else None
    policies: list[PolicyStat] = []
    timeseries: list[dict[str, object]] = []
    server_rows: list[dict[str, object]] = []
    for run in result.runs:
        cluster = run.cluster
        names = cluster.server_names()
        rt = _replica_time(run, edges, accelerators)
        gpus = {
            n: np.array([cluster.gpu_share_per_replica(cluster.model(n), a) for a in accelerators])
            for n in names
        }
        price = {
            n: np.array([cluster.cost_per_replica_hour(cluster.model(n), a) for a in accelerators])
            for n in names
        }
        judged = {n: judge(run.sim.records(n), targets[n], run.sim.now) for n in names}
        # per class
        classes: dict[str, list[str]] = {}
        for n in names:
            classes.setdefault(scenario.server(n).service_class, []).append(n)
        class_stats = []
        for cls_name in sorted(classes, key=lambda c: (system.classes[c].priority, c)):
            members = [judged[n] for n in classes[cls_name]]
            metric_stats = []
            for metric in METRICS:
                vals = [j.ratios[metric] for j in members if metric in j.ratios]
                if not vals:
                    continue
                v = np.concatenate(vals)
                v = v[~np.isnan(v)]
                share = float((v <= 1.0).mean()) if v.size else math.nan
                p95 = float(np.percentile(v, 95.0)) if v.size else math.nan
                metric_stats.append(MetricStat(metric, share, p95))
            class_stats.append(
                ClassStat(
                    cls_name,
                    requests=sum(j.arrival.size for j in members),
                    judged=sum(int(j.judged.sum()) for j in members),
                    met=sum(int(j.met.sum()) for j in members),
                    rejected=sum(int(j.rejected.sum()) for j in members),
                    metrics=tuple(metric_stats),
                )
            )
        gpu_ms = sum(float((rt[n] * gpus[n]).sum()) for n in names)
        cost_ms = sum(float((rt[n] * price[n]).sum()) for n in names)
        totals = run.sim.totals()
        started = sum(1 for n in names for r in run.sim.replicas(n) if r.created_at > 0.0)
        total_rt = sum(float(rt[n].sum()) for n in names)
        policies.append(
            PolicyStat(
                name=run.spec.name,
                kind=run.spec.kind,
                requests=totals.arrivals,
                judged=sum(c.judged for c in class_stats),
                met=sum(c.met for c in class_stats),
                rejected=totals.rejected,
                in_flight=totals.in_flight,
                gpu_hours=gpu_ms / MS_PER_HOUR,
                cost=cost_ms / MS_PER_HOUR,
                changes=len(cluster.changes),
                replicas_started=started,
                mean_replicas=total_rt / scenario.duration_ms,
                wall_s=run.wall_s,
                classes=tuple(class_stats),
                rollouts=sum(1 for c in cluster.changes if c.config_changed),
                sweep=run.spec.sweep,
                servers=tuple(
                    ServerStat(n, int(judged[n].judged.sum()), int(judged[n].met.sum()))
                    for n in names
                ),
            )
        )
        timeseries.extend(_series(run, judged, rt, gpus, price, edges, period_len, accelerators))
        server_rows.extend(_server_rows(run, rt, price, targets, period_len))
    sweeps = _sweeps(policies)
    best = {s.best for s in sweeps}
    comparisons = []
    for p in policies:
        if p.kind != "inferno":
            continue
        for b in policies:
            # a sweep is compared through its best instance
            if b.kind in BASELINES and (not b.sweep or b.name in best):
                comparisons.append(
                    Comparison(
                        p.name,
                        b.name,
                        _relative(p.gpu_hours, b.gpu_hours),
                        _relative(p.cost, b.cost),
                        p.attainment,
                        b.attainment,
                    )
                )
    return Report(
        result, policies, comparisons, accelerators, timeseries, server_rows, sweeps=sweeps
    )


def _sweeps(policies: Sequence[PolicyStat]) -> list[Sweep]:
    groups: dict[str, list[PolicyStat]] = {}
    for p in policies:
        if p.sweep:
            groups.setdefault(p.sweep, []).append(p)
    out = []
    for name, members in groups.items():
        best, meets = best_of_sweep(members)
        out.append(Sweep(name, tuple(m.name for m in members), best.name, meets))
    return out


def _series(
    run: PolicyRun,
    judged: dict[str, Judged],
    rt: dict[str, F],
    gpus: dict[str, F],
    price: dict[str, F],
    edges: Sequence[float],
    period_len: F,
    accelerators: Sequence[str],
) -> list[dict[str, object]]:
    names = run.cluster.server_names()
    n_periods = len(edges) - 1
    # requests by arrival period
    arrival = np.concatenate([judged[n].arrival for n in names])
    score = np.concatenate([judged[n].score for n in names])
    met = np.concatenate([judged[n].met for n in names])
    is_judged = np.concatenate([judged[n].judged for n in names])
    which = np.clip(np.searchsorted(np.asarray(edges), arrival, side="right") - 1, 0, n_periods - 1)
    per_acc: F = np.zeros((n_periods, len(accelerators)))
    gpu: F = np.zeros(n_periods)
    cost: F = np.zeros(n_periods)
    for n in names:
        per_acc += rt[n]
        gpu += rt[n] @ gpus[n]
        cost += rt[n] @ price[n]
    out: list[dict[str, object]] = []
    for k in range(n_periods):
        rows = run.rows[k * len(names) : (k + 1) * len(names)]
        span = float(period_len[k])
        sel = which == k
        j = sel & is_judged
        s = np.minimum(score[j], 1e9)  # inf (rejected, overran) sorts last
        measured = [r.measured_rpm for r in rows]
        row: dict[str, object] = {
            "policy": run.spec.name,
            "period": k,
            "t_start_s": edges[k] / MS_PER_S,
            "t_end_s": edges[k + 1] / MS_PER_S,
            "offered_rpm": sum(r.offered_rpm for r in rows),
            "arrived_rpm": sum(r.window.arrival_rate_per_min for r in rows),
            "measured_rpm": sum(measured) if all(math.isfinite(m) for m in measured) else "",
            "completed": sum(r.window.completions for r in rows),
            "rejected": sum(r.window.rejections for r in rows),
            "replicas_asked": sum(r.replicas for r in rows),
            "replicas": float(per_acc[k].sum()) / span,
            "ready": sum(r.window.ready for r in rows),
            "gpus": float(gpu[k]) / span,
            "cost_per_hour": float(cost[k]) / span,
            "slo_attainment": float(met[j].mean()) if j.any() else "",
            "slo_p95_ratio": float(np.percentile(s, 95.0)) if s.size else "",
        }
        for a, acc in enumerate(accelerators):
            row[f"replicas_{acc}"] = float(per_acc[k, a]) / span
        out.append(row)
    return out


def _num(x: float) -> object:
    return x if math.isfinite(x) else ""


def _server_rows(
    run: PolicyRun,
    rt: dict[str, F],
    price: dict[str, F],
    targets: dict[str, Target | None],
    period_len: F,
) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    scenario_servers = {n: run.cluster.model(n) for n in run.cluster.server_names()}
    for r in run.rows:
        w = r.window
        t = targets[r.server]
        span = float(period_len[r.period])
        out.append(
            {
                "policy": run.spec.name,
                "period": r.period,
                "t_start_s": r.t0_ms / MS_PER_S,
                "t_end_s": r.t1_ms / MS_PER_S,
                "server": r.server,
                "model": scenario_servers[r.server],
                "accelerator": r.accelerator,
                "batch": r.batch,
                "replicas_asked": r.replicas,
                "replicas": w.replicas,
                "ready": w.ready,
                "offered_rpm": r.offered_rpm,
                "arrived_rpm": w.arrival_rate_per_min,
                "measured_rpm": _num(r.measured_rpm),
                "completed": w.completions,
                "rejected": w.rejections,
                "utilisation": _num(w.busy / w.ready if w.ready > 0 else math.nan),
                "held": w.in_flight,
                "wait_p95_ms": _num(w.wait_p95),
                "ttft_p95_ms": _num(w.ttft_p95),
                "latency_p95_ms": _num(w.latency_p95),
                "itl_mean_ms": _num(w.itl_mean),
                "slo_ttw_ms": t.ttw if t is not None and t.ttw else "",
                "slo_ttft_ms": t.ttft if t is not None and t.ttft else "",
                "slo_itl_ms": t.itl if t is not None and t.itl else "",
                "slo_latency_ms": t.latency if t is not None and t.latency else "",
                "cost_per_hour": float(rt[r.server][r.period] @ price[r.server]) / span,
            }
        )
    return out


def times_oracle(report: Report, policy: PolicyStat) -> float:
    """``policy``'s cost / the oracle's (NaN without an oracle or when it cost nothing)."""
    oracle = report.oracle
    if oracle is None or not oracle.cost > 0:
        return math.nan
    return policy.cost / oracle.cost
