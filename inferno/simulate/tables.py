"""A simulation report as tables and files: the terminal's tables (:func:`summary_rows`,
:func:`class_rows`, :func:`comparison_lines`, :func:`sweep_lines`, :func:`server_lines`: how
many servers meet their SLO: ≥ the sizing quantile, or 99%, of their requests within it) and the
CSV files (:func:`write_csv`: ``timeseries.csv``, one row per policy and control period, totals over
servers, replicas per accelerator, and ``servers.csv``, one row per policy, period and server;
:func:`write_summary`: ``summary.csv``, one row per policy, the summary table's figures with
× oracle, rollouts, the sweeps' best and the servers meeting their SLO). See :mod:`.report` for
what the figures mean.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from .report import SWEEP_ATTAINMENT, Report, times_oracle
from .slo import METRICS

__all__ = [
    "class_rows",
    "comparison_lines",
    "server_bar",
    "server_lines",
    "summary_records",
    "summary_rows",
    "sweep_lines",
    "write_csv",
    "write_summary",
]

_LABEL = {"wait": "wait", "ttft": "TTFT", "itl": "ITL", "latency": "latency"}


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100.0 * x:.2f}%"


def _signed(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100.0 * x:+.1f}%"


def _times(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.2f}×"


def summary_rows(report: Report) -> tuple[list[str], list[list[object]]]:
    """The comparison table: one row per policy (with a ``× oracle`` column when the run has an
    oracle; the best of each sweep is marked ``*``, see :func:`sweep_lines`)."""
    class_names = [c.service_class for c in report.policies[0].classes] if report.policies else []
    has_oracle = report.oracle is not None
    best = {s.best for s in report.sweeps}
    headers = ["policy", "requests", "SLO met"]
    headers += [f"{c} met" for c in class_names]
    headers += ["rejected", "GPU-hours", "cost"]
    headers += ["× oracle"] if has_oracle else []
    headers += ["mean replicas", "changes", "wall s"]
    rows: list[list[object]] = []
    for p in report.policies:
        by = {c.service_class: c for c in p.classes}
        name = f"{p.name} *" if p.name in best else p.name
        row: list[object] = [name, p.requests, _pct(p.attainment)]
        row += [_pct(by[c].attainment) if c in by else "-" for c in class_names]
        row += [p.rejected, p.gpu_hours, p.cost]
        row += [_times(times_oracle(report, p))] if has_oracle else []
        row += [p.mean_replicas, p.changes, p.wall_s]
        rows.append(row)
    return headers, rows


def sweep_lines(report: Report) -> list[str]:
    """One line per sweep naming its best instance and why (``*`` in the summary table)."""
    return [f"{s.describe()} [* in the table]" for s in report.sweeps]


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


def server_bar(report: Report) -> float:
    """The share of its requests a server must have within the targets to meet its SLO: the
    scenario's sizing quantile when it sizes on one (a p95 target lets 5% of requests above it),
    else :data:`SWEEP_ATTAINMENT`."""
    q = report.result.scenario.sizing_quantile
    return q if q is not None else SWEEP_ATTAINMENT


def server_lines(report: Report) -> list[str]:
    """Per policy: how many servers meet their SLO (:func:`server_bar` of their requests within
    the targets), and the worst one."""
    bar = server_bar(report)
    lines = []
    for p in report.policies:
        worst = p.worst_server
        if worst is None:
            continue
        lines.append(
            f"{p.name}: {p.servers_meeting(bar)}/{len(p.servers)} servers meet their SLO for "
            f"≥ {100 * bar:g}% of their requests (worst: {worst.server} "
            f"{_pct(worst.attainment)})"
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
        _write_rows(path, rows)
        files.append(path)
    report.files.extend(files)
    return files


def summary_records(report: Report) -> list[dict[str, object]]:
    """The summary as records (``summary.csv``): one per policy."""
    best = {s.best for s in report.sweeps}
    out: list[dict[str, object]] = []
    for p in report.policies:
        row: dict[str, object] = {
            "policy": p.name,
            "kind": p.kind,
            "sweep": p.sweep,
            "best_of_sweep": ("true" if p.name in best else "false") if p.sweep else "",
            "requests": p.requests,
            "judged": p.judged,
            "met": p.met,
            "slo_attainment": p.attainment,
            "rejected": p.rejected,
            "in_flight": p.in_flight,
            "gpu_hours": p.gpu_hours,
            "cost": p.cost,
            "cost_x_oracle": times_oracle(report, p),
            "mean_replicas": p.mean_replicas,
            "changes": p.changes,
            "rollouts": p.rollouts,
            "replicas_started": p.replicas_started,
            "wall_s": p.wall_s,
        }
        worst = p.worst_server
        row["servers_meeting_slo"] = p.servers_meeting(server_bar(report))
        row["worst_server"] = worst.server if worst is not None else ""
        row["worst_server_attainment"] = worst.attainment if worst is not None else math.nan
        for c in p.classes:
            row[f"slo_attainment_{c.service_class}"] = c.attainment
        out.append(row)
    return out


def write_summary(report: Report, out_dir: str | Path) -> Path:
    """``summary.csv`` in ``out_dir`` (created): :func:`summary_records`."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "summary.csv"
    _write_rows(path, summary_records(report))
    report.files.append(path)
    return path


def _write_rows(path: Path, rows: Sequence[dict[str, object]]) -> None:
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


def _fmt(v: object) -> object:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else ""
    return v
