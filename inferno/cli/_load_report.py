"""The text of ``inferno load``'s reports: the open loop's table, the closed loop's, and siege's
summary block per model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..units import MS_PER_S
from ._table import render

if TYPE_CHECKING:
    from ..loadgen import LoadRun, ModelSummary, TransactionStats, UserRun, UserSummary

__all__ = ["format_siege", "format_summary", "format_users"]

QUANTILES = (50.0, 90.0, 95.0, 99.0)


def format_summary(summaries: list[ModelSummary], run: LoadRun) -> str:
    headers = [
        "model",
        "target/s",
        "sent",
        "ok",
        "errors",
        "achieved/s",
        "mean ms",
        "p50",
        "p90",
        "p95",
        "p99",
        "max lag ms",
    ]
    rows: list[list[Any]] = [
        [
            s.model,
            s.target_rps,
            s.sent,
            s.ok,
            s.errors,
            s.achieved_rps,
            s.mean_ms,
            *(s.percentiles_ms[q] for q in QUANTILES),
            s.max_lag_ms,
        ]
        for s in summaries
    ]
    out = [
        f"{run.duration:g} s of open-loop load ({run.wall:.1f} s with the drain)",
        "",
        render(headers, rows, right=set(range(1, len(headers)))),
    ]
    out += _error_lines((s.model, s.error_kinds) for s in summaries)
    return "\n".join(out)


def format_users(summaries: list[UserSummary], run: UserRun) -> str:
    """The closed loop's table: per model its users, requests, rate, latency, concurrency."""
    headers = ["model", "users", "sent", "ok", "errors", "trans/s", "mean ms"]
    headers += ["p50", "p90", "p95", "p99", "concurrency"]
    rows: list[list[Any]] = [
        [
            s.model,
            s.users,
            s.sent,
            s.ok,
            s.errors,
            s.stats.transaction_rate,
            s.stats.response_time_s * MS_PER_S,
            *(s.stats.percentiles_s[q] * MS_PER_S for q in QUANTILES),
            s.stats.concurrency,
        ]
        for s in summaries
    ]
    until = []
    if run.duration is not None:
        until.append(f"{run.duration:g} s")
    if run.reps is not None:
        until.append(f"{run.reps} request(s) per user")
    out = [
        f"closed loop: {run.users} user(s) per model, think time {run.think} "
        f"(measured mean {run.think_mean_s:.3f} s), "
        f"{' or '.join(until)} ({run.wall:.1f} s)",
        "",
        render(headers, rows, right=set(range(1, len(headers)))),
    ]
    out += _error_lines((s.model, s.error_kinds) for s in summaries)
    return "\n".join(out)


def _error_lines(kinds: Iterable[tuple[str, dict[str, int]]]) -> list[str]:
    return [
        f"{model}: {count} × {kind}"
        for model, by_kind in kinds
        if model != "*"
        for kind, count in by_kind.items()
    ]


def format_siege(named: list[tuple[str, TransactionStats]]) -> str:
    """Siege's block per model (``*``: all of them)."""
    out: list[str] = []
    for model, stats in named:
        title = "all models" if model == "*" else f"model {model}"
        out += ["", f"siege summary, {title}:", *stats.lines()]
    return "\n".join(out[1:])
