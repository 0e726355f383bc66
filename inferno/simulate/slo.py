"""Per-request SLO judgement: does each request of a server meet its class's targets?

Against the targets of the server's class for its model:

- ``slo-ttw`` (G0 data): the request's wait (start of service − arrival) ≤ slo-ttw;
- ``slo-itl``: the request's ITL, (last token − first token) / (output tokens − 1), ≤ slo-itl
  (requests with one output token have no ITL);
- ``slo-ttft``: first token − arrival ≤ slo-ttft; ``slo-latency``: completion − arrival ≤ it;
- a throughput class (``slo-tps``) has no per-request target: a request meets it when served.

A request meets its SLO when it meets every target its class has. Rejected requests are misses.
A request still in flight at the end is a miss if it has already overrun a target (waited longer
than slo-ttw, no first token after slo-ttft, in the system longer than slo-latency) and is not
judged otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..emulator import RequestRecords
from ..system import Target

__all__ = ["METRICS", "Judged", "judge"]

F = NDArray[np.float64]
B = NDArray[np.bool_]

#: the per-request metrics a target may bound
METRICS = ("wait", "ttft", "itl", "latency")


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
