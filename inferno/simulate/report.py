"""What a simulation run shows: SLO attainment, rejections, GPU-hours, cost, changes; a CSV time
series and PNG plots.

**SLO attainment** is per request, against the targets of the server's class for its model:

- ``slo-ttw`` (G0 data): the request's wait (start of service − arrival) ≤ slo-ttw;
- ``slo-itl``: the request's ITL, (last token − first token) / (output tokens − 1), ≤ slo-itl
  (requests with one output token have no ITL);
- ``slo-ttft``: first token − arrival ≤ slo-ttft; ``slo-latency``: completion − arrival ≤ it;
- a throughput class (``slo-tps``) has no per-request target: a request meets it when served.

A request meets its SLO when it meets every target its class has. Rejected requests are misses.
A request still in flight at the end is a miss if it has already overrun a target (waited longer
than slo-ttw, no first token after slo-ttft, in the system longer than slo-latency) and is not
judged otherwise. Attainment = requests meeting their SLO / requests judged. The p95 columns are
the 95th percentile of value / target over the completed requests (≤ 1: the p95 meets the target).

**GPU-hours** = Σ over replicas of the time it is provisioned (from its creation, start-up
included, until it is gone after draining, within the run) × GPUs per replica (accelerators per
replica × the accelerator's multiplicity). **Cost** = the same replica time × the accelerator's
cost × accelerators per replica, in ``accelerator-data.json``'s units per hour. **Changes** counts
the Deployment updates that changed a server's replicas or configuration.

Files (:func:`write_csv`, :func:`write_plots`): ``timeseries.csv`` (one row per policy and
control period, totals over servers, replicas per accelerator), ``servers.csv`` (one row per
policy, period and server), ``load.png``, ``replicas.png``, ``latency.png``, ``cost.png``.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..emulator import RequestRecords
from ..system import Target
from ..units import MS_PER_S, S_PER_HOUR, S_PER_MIN
from .run import PolicyRun, RunResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ClassStat",
    "Comparison",
    "MetricStat",
    "PolicyStat",
    "Report",
    "build_report",
    "class_rows",
    "comparison_lines",
    "summary_rows",
    "write_csv",
    "write_plots",
]

logger = logging.getLogger(__name__)

F = NDArray[np.float64]
B = NDArray[np.bool_]

MS_PER_HOUR = 3_600_000.0
METRICS = ("wait", "ttft", "itl", "latency")
_LABEL = {"wait": "wait", "ttft": "TTFT", "itl": "ITL", "latency": "latency"}
BASELINES = ("static", "hpa", "queue")


# --- per-request SLO judgement -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Judged:
    """Per request of one server: judged or not, met or not, value/target per metric, score."""

    arrival: F
    judged: B
    met: B
    rejected: B
    ratios: dict[str, F]  # value / target, NaN where not applicable or not known
    score: F  # max ratio over the metrics (inf: rejected or overran while in flight)


def _targets(target: Target | None) -> dict[str, float]:
    if target is None:
        return {}
    pairs = {
        "wait": target.ttw,
        "ttft": target.ttft,
        "itl": target.itl,
        "latency": target.latency,
    }
    return {k: float(v) for k, v in pairs.items() if v is not None and v > 0}


def judge(rec: RequestRecords, target: Target | None, now_ms: float) -> Judged:
    """The SLO judgement of every arrived request of one server (see the module docstring)."""
    goals = _targets(target)
    n = len(rec)
    rejected = rec.rejected
    done = rec.completed
    in_flight = ~done & ~rejected
    elapsed = now_ms - rec.arrival
    overran = np.zeros(n, dtype=bool)
    ratios: dict[str, F] = {}
    ok = np.ones(n, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, goal in goals.items():
            if name == "wait":
                value = rec.wait
                pending = np.isnan(rec.start)
            elif name == "ttft":
                value = rec.ttft
                pending = np.isnan(rec.first_token)
            elif name == "latency":
                value = rec.latency
                pending = ~done
            else:
                steps = rec.output_tokens.astype(np.float64) - 1.0
                value = np.where(steps > 0, (rec.completion - rec.first_token) / steps, np.nan)
                pending = np.zeros(n, dtype=bool)  # never decided before completion
            ratio = value / goal
            ratios[name] = np.where(done, ratio, np.nan)
            known_bad = ratio > 1.0
            ok &= ~known_bad
            if name != "itl":
                overran |= in_flight & ((known_bad & ~pending) | (pending & (elapsed > goal)))
    judged = done | rejected | overran
    met = done & ok
    score = np.zeros(n)
    for r in ratios.values():
        score = np.fmax(score, np.where(np.isnan(r), 0.0, r))
    score = np.where(rejected | overran, np.inf, score)
    score = np.where(judged, score, np.nan)
    return Judged(rec.arrival, judged, met, rejected, ratios, score)


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

    @property
    def attainment(self) -> float:
        return self.met / self.judged if self.judged else math.nan


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

    def policy(self, name: str) -> PolicyStat:
        for p in self.policies:
            if p.name == name:
                return p
        raise KeyError(name)


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
            n: np.array([cluster.gpus_per_replica(cluster.model(n), a) for a in accelerators])
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
            )
        )
        timeseries.extend(_series(run, judged, rt, gpus, price, edges, period_len, accelerators))
        server_rows.extend(_server_rows(run, rt, price, targets, period_len))
    comparisons = []
    for p in policies:
        if p.kind != "inferno":
            continue
        for b in policies:
            if b.kind in BASELINES:
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
    return Report(result, policies, comparisons, accelerators, timeseries, server_rows)


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


# --- text --------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100.0 * x:.2f}%"


def _signed(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100.0 * x:+.1f}%"


def summary_rows(report: Report) -> tuple[list[str], list[list[object]]]:
    """The comparison table: one row per policy."""
    class_names = [c.service_class for c in report.policies[0].classes] if report.policies else []
    headers = ["policy", "requests", "SLO met"]
    headers += [f"{c} met" for c in class_names]
    headers += ["rejected", "GPU-hours", "cost", "mean replicas", "changes", "wall s"]
    rows: list[list[object]] = []
    for p in report.policies:
        by = {c.service_class: c for c in p.classes}
        row: list[object] = [p.name, p.requests, _pct(p.attainment)]
        row += [_pct(by[c].attainment) if c in by else "-" for c in class_names]
        row += [p.rejected, p.gpu_hours, p.cost, p.mean_replicas, p.changes, p.wall_s]
        rows.append(row)
    return headers, rows


def class_rows(report: Report) -> tuple[list[str], list[list[object]]]:
    """Per policy and class: attainment and, per target, the share met and p95 / target."""
    present = [
        m
        for m in METRICS
        if any(s.name == m for p in report.policies for c in p.classes for s in c.metrics)
    ]
    headers = ["policy", "class", "requests", "SLO met", "rejected"]
    for m in present:
        headers += [f"{_LABEL[m]} ok", f"p95 {_LABEL[m]}/SLO"]
    rows: list[list[object]] = []
    for p in report.policies:
        for c in p.classes:
            stats = {s.name: s for s in c.metrics}
            row: list[object] = [
                p.name,
                c.service_class,
                c.requests,
                _pct(c.attainment),
                c.rejected,
            ]
            for m in present:
                s = stats.get(m)
                row += [_pct(s.share_ok), s.p95_ratio] if s is not None else ["-", None]
            rows.append(row)
    return headers, rows


def comparison_lines(report: Report) -> list[str]:
    lines = []
    for c in report.comparisons:
        p = report.policy(c.policy)
        b = report.policy(c.baseline)
        lines.append(
            f"{c.policy} vs {c.baseline}: {_signed(c.gpu_hours)} GPU-hours "
            f"({p.gpu_hours:.2f} vs {b.gpu_hours:.2f}), {_signed(c.cost)} cost, "
            f"SLO met {_pct(c.attainment_policy)} vs {_pct(c.attainment_baseline)}"
        )
    return lines


# --- files -------------------------------------------------------------------------------------


def write_csv(report: Report, out_dir: str | Path) -> list[Path]:
    """``timeseries.csv`` and ``servers.csv`` in ``out_dir`` (created)."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for name, rows in (("timeseries.csv", report.timeseries), ("servers.csv", report.server_rows)):
        path = root / name
        fields: list[str] = []
        for r in rows:
            for k in r:
                if k not in fields:
                    fields.append(k)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, restval="")
            writer.writeheader()
            for r in rows:
                writer.writerow({k: _fmt(v) for k, v in r.items()})
        files.append(path)
    report.files.extend(files)
    return files


def _fmt(v: object) -> object:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else ""
    return v


def write_plots(report: Report, out_dir: str | Path) -> list[Path]:
    """``load.png``, ``replicas.png``, ``latency.png`` and ``cost.png`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    series: dict[str, list[dict[str, object]]] = {}
    for row in report.timeseries:
        series.setdefault(str(row["policy"]), []).append(row)
    names = [p.name for p in report.policies]
    colors = {n: f"C{i}" for i, n in enumerate(names)}
    styles = {n: ("-", "--", "-.", ":")[i % 4] for i, n in enumerate(names)}

    def col(rows: list[dict[str, object]], key: str) -> F:
        return np.array([_float(r[key]) for r in rows])

    def edges(rows: list[dict[str, object]]) -> F:
        """Period boundaries in minutes (one more than the periods)."""
        return np.append(col(rows, "t_start_s"), col(rows, "t_end_s")[-1]) / S_PER_MIN

    def steps(rows: list[dict[str, object]], key: str) -> F:
        v = col(rows, key)
        return np.append(v, v[-1])  # for drawstyle steps-post over the edges

    files: list[Path] = []
    # load
    fig, ax = plt.subplots(figsize=(9, 4))
    first = series[names[0]]
    x = edges(first)
    ax.step(x, steps(first, "offered_rpm"), where="post", color="k", label="offered (trace)")
    ax.step(x, steps(first, "arrived_rpm"), where="post", color="0.6", lw=1, label="arrived")
    measuring = [n for n in names if np.isfinite(col(series[n], "measured_rpm")).any()]
    if measuring:
        rows = series[measuring[0]]
        window = report.result.scenario.metrics
        ax.plot(
            col(rows, "t_end_s") / S_PER_MIN,
            col(rows, "measured_rpm"),
            ls="--",
            marker=".",
            color="C0",
            label=f"measured ({window.window_s:g} s window, {window.noise:.0%} noise)",
        )
    ax.set_xlabel("time (min)")
    ax.set_ylabel("requests / min (all servers)")
    ax.set_title("Load")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    files.append(_save(fig, root / "load.png"))
    # replicas per accelerator
    fig, axes = plt.subplots(
        len(names), 1, figsize=(9, 2.2 * len(names) + 0.8), sharex=True, squeeze=False
    )
    top = max(float(np.nanmax(col(series[n], "replicas"))) for n in names) * 1.1
    for ax, n in zip(axes[:, 0], names, strict=True):
        rows = series[n]
        stacks = [steps(rows, f"replicas_{a}") for a in report.accelerators]
        ax.stackplot(edges(rows), *stacks, labels=report.accelerators, step="post")
        ax.set_ylim(0, top)
        ax.set_ylabel("replicas")
        ax.set_title(n, fontsize="medium", loc="left")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="x-small", ncol=min(len(report.accelerators), 6), loc="upper right")
    axes[-1, 0].set_xlabel("time (min)")
    fig.suptitle("Replicas per accelerator (provisioned, start-up included; mean per period)")
    files.append(_save(fig, root / "replicas.png"))
    # latency against SLO
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for n in names:
        rows = series[n]
        x = edges(rows)
        ratio = np.minimum(steps(rows, "slo_p95_ratio"), 1e3)
        kw = {"color": colors[n], "ls": styles[n], "lw": 1.5}
        ax1.step(x, ratio, where="post", label=n, **kw)
        met = 100 * steps(rows, "slo_attainment")
        ax2.step(x, met, where="post", label=n, **kw)
    ax1.axhline(1.0, color="k", ls=":", lw=1, label="SLO")
    ax1.set_yscale("log")
    ax1.set_ylabel("p95 of latency / SLO")
    ax1.set_title(
        "Latency against SLO, requests by arrival period (latency / SLO: the worst of wait, "
        "TTFT, ITL, latency against its target)",
        fontsize="small",
    )
    ax1.legend(fontsize="small")
    ax1.grid(alpha=0.3, which="both")
    ax2.set_ylabel("requests meeting SLO (%)")
    ax2.set_xlabel("time (min)")
    ax2.grid(alpha=0.3)
    files.append(_save(fig, root / "latency.png"))
    # cost
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for n in names:
        rows = series[n]
        kw = {"color": colors[n], "ls": styles[n], "lw": 1.5}
        ax1.step(edges(rows), steps(rows, "cost_per_hour"), where="post", label=n, **kw)
        span_h = (col(rows, "t_end_s") - col(rows, "t_start_s")) / S_PER_HOUR
        gpu_h = np.concatenate([[0.0], np.cumsum(col(rows, "gpus") * span_h)])
        ax2.plot(edges(rows), gpu_h, label=n, **kw)
    ax1.set_ylabel("cost per hour")
    ax1.set_ylim(bottom=0)
    ax1.set_title("Cost rate and cumulative GPU-hours")
    ax1.legend(fontsize="small")
    ax1.grid(alpha=0.3)
    ax2.set_ylabel("GPU-hours (cumulative)")
    ax2.set_xlabel("time (min)")
    ax2.grid(alpha=0.3)
    files.append(_save(fig, root / "cost.png"))
    report.files.extend(files)
    return files


def _float(v: object) -> float:
    if isinstance(v, int | float):
        return float(v)
    return math.nan


def _save(fig: Figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
