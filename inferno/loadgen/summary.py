"""What a load run achieved, per model (pure): offered and achieved rates, errors by kind,
latency percentiles and the generator's own lag (open loop); per model of a closed loop, its
users' requests and errors; and for either, siege's statistics (:mod:`.transactions`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..units import MS_PER_MIN, MS_PER_S, S_PER_MIN
from .driver import LoadRun
from .transactions import TransactionStats, transaction_stats
from .users import UserRun

__all__ = [
    "PERCENTILES",
    "ModelSummary",
    "UserSummary",
    "open_transactions",
    "summarize",
    "summarize_users",
]

PERCENTILES = (50.0, 90.0, 95.0, 99.0)


@dataclass(frozen=True)
class ModelSummary:
    model: str
    target_rps: float  # the trace's mean rate over the run
    scheduled: int
    sent: int
    ok: int
    errors: int
    offered_rps: float  # requests sent per second of the run
    achieved_rps: float  # answers per second of the run
    mean_ms: float
    percentiles_ms: dict[float, float]
    max_lag_ms: float  # the worst delay between a request's scheduled and actual send
    error_kinds: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "targetRps": self.target_rps,
            "scheduled": self.scheduled,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "offeredRps": self.offered_rps,
            "achievedRps": self.achieved_rps,
            "meanMs": _finite(self.mean_ms),
            "percentilesMs": {f"p{q:g}": _finite(v) for q, v in self.percentiles_ms.items()},
            "maxLagMs": _finite(self.max_lag_ms),
            "errorKinds": dict(self.error_kinds),
        }


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def summarize(run: LoadRun) -> list[ModelSummary]:
    """One summary per load of ``run`` (in order), then one for all of them when there are
    several (model ``*``)."""
    groups = [(load.model, run.which == i) for i, load in enumerate(run.loads)]
    if len(run.loads) > 1:
        groups.append(("*", np.ones(run.which.size, dtype=bool)))
    out = []
    for index, (model, mask) in enumerate(groups):
        lat = run.latency_ms[mask]
        good = lat[np.isfinite(lat)]
        sent_mask = np.isfinite(run.sent[mask])
        lag = (run.sent[mask] - run.scheduled[mask])[sent_mask] * MS_PER_S
        errs = Counter(e for e, m in zip(run.errors, mask, strict=True) if m and e)
        if model == "*":
            target = sum(load.trace.mean_rate(0.0, run.duration * MS_PER_S) for load in run.loads)
        else:
            target = run.loads[index].trace.mean_rate(0.0, run.duration * MS_PER_S)
        out.append(
            ModelSummary(
                model=model,
                target_rps=target * MS_PER_MIN / S_PER_MIN,
                scheduled=int(mask.sum()),
                sent=int(sent_mask.sum()),
                ok=int(good.size),
                errors=int(sum(errs.values())),
                offered_rps=float(sent_mask.sum()) / run.duration,
                achieved_rps=float(good.size) / run.duration,
                mean_ms=float(good.mean()) if good.size else float("nan"),
                percentiles_ms={
                    q: float(np.percentile(good, q)) if good.size else float("nan")
                    for q in PERCENTILES
                },
                max_lag_ms=float(lag.max()) if lag.size else float("nan"),
                error_kinds=dict(errs.most_common()),
            )
        )
    return out


def _groups(models: Sequence[str], which: NDArray[np.intp]) -> list[tuple[str, NDArray[np.bool_]]]:
    """A mask per model, then one for all of them (``*``) when there are several."""
    groups = [(model, which == i) for i, model in enumerate(models)]
    if len(models) > 1:
        groups.append(("*", np.ones(which.size, dtype=bool)))
    return groups


def _payload(
    which: NDArray[np.intp], sizes: Sequence[float | None] | None
) -> NDArray[np.float64] | None:
    """Each request's payload from its model's (NaN when that model's is unknown)."""
    if sizes is None:
        return None
    known = [float("nan") if s is None else float(s) for s in sizes]
    return np.asarray(known, dtype=np.float64)[which]


def open_transactions(
    run: LoadRun, payload: Sequence[float | None] | None = None
) -> list[TransactionStats]:
    """Siege's statistics of an open-loop run, in :func:`summarize`'s order; ``payload[i]`` is
    the request size of load i in bytes (None: unknown). A request never sent (dropped) is a
    failed transaction, as is one that failed or timed out."""
    models = [load.model for load in run.loads]
    sent = np.where(np.isfinite(run.sent), run.sent, run.scheduled)
    end = sent + run.latency_ms / MS_PER_S
    ok = np.isfinite(run.latency_ms)
    size = _payload(run.which, payload)
    return [
        transaction_stats(
            sent[mask],
            end[mask],
            ok[mask],
            run.wall,
            payload=None if size is None else size[mask],
        )
        for _, mask in _groups(models, run.which)
    ]


@dataclass(frozen=True)
class UserSummary:
    """One model of a closed-loop run (model ``*``: all of them)."""

    model: str
    users: int
    sent: int
    ok: int
    errors: int
    stats: TransactionStats
    error_kinds: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        s = self.stats
        return {
            "model": self.model,
            "users": self.users,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "achievedRps": s.transaction_rate,
            "meanMs": _finite(s.response_time_s * MS_PER_S),
            "percentilesMs": {f"p{q:g}": _finite(v * MS_PER_S) for q, v in s.percentiles_s.items()},
            "concurrency": s.concurrency,
            "errorKinds": dict(self.error_kinds),
            "siege": s.to_json(),
        }


def summarize_users(
    run: UserRun, payload: Sequence[float | None] | None = None
) -> list[UserSummary]:
    """One summary per model of a closed-loop run, then one for all (``*``) when several."""
    ok = run.ok
    size = _payload(run.which, payload)
    out = []
    for model, mask in _groups(run.models, run.which):
        errs = Counter(e for e, m in zip(run.errors, mask, strict=True) if m and e)
        stats = transaction_stats(
            run.start[mask],
            run.end[mask],
            ok[mask],
            run.wall,
            payload=None if size is None else size[mask],
        )
        out.append(
            UserSummary(
                model=model,
                users=run.users * (len(run.models) if model == "*" else 1),
                sent=int(mask.sum()),
                ok=stats.transactions,
                errors=stats.failed,
                stats=stats,
                error_kinds=dict(errs.most_common()),
            )
        )
    return out
