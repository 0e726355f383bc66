"""What a load run achieved, per model (pure): offered and achieved rates, errors by kind,
latency percentiles and the generator's own lag."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..units import MS_PER_MIN, MS_PER_S, S_PER_MIN
from .driver import LoadRun

__all__ = ["PERCENTILES", "ModelSummary", "summarize"]

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
