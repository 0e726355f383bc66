"""The single-server analyzer (Inferno's queue-analysis): metrics at a rate, and sizing to targets.

Rates in requests per second as in queue-analysis's JSON; times in ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..units import MS_PER_S
from .points import OperatingPoints
from .profiles import Profile, Tokens
from .sizing import SloArrays, size

__all__ = ["Analysis", "analyze_rate", "analyze_targets", "operating_point"]


@dataclass(frozen=True, slots=True)
class Analysis:
    """queue-analysis's output fields (rates in req/s, times in ms)."""

    throughput: float
    avg_resp_time: float
    avg_wait_time: float
    avg_num_in_serv: float
    avg_ttft: float
    avg_itl: float
    max_rps: float
    rps_target_ttft: float
    rps_target_itl: float
    feasible: bool = True
    bound: str = ""
    utilization: float = math.nan
    blocking: float = math.nan

    def to_json(self) -> dict[str, float | bool | str | None]:
        def n(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "throughput": n(self.throughput),
            "avgRespTime": n(self.avg_resp_time),
            "avgWaitTime": n(self.avg_wait_time),
            "avgNumInServ": n(self.avg_num_in_serv),
            "avgTTFT": n(self.avg_ttft),
            "avgITL": n(self.avg_itl),
            "maxRPS": n(self.max_rps),
            "RPSTargetTTFT": n(self.rps_target_ttft),
            "RPSTargetITL": n(self.rps_target_itl),
            "feasible": self.feasible,
            "boundBy": self.bound,
            "utilization": n(self.utilization),
            "blocking": n(self.blocking),
        }


def operating_point(profile: Profile, tokens: Tokens, max_queue: int | None) -> OperatingPoints:
    """The one operating point of ``profile`` at its batch limit (what the analyzer solves)."""
    return OperatingPoints.of(
        [profile], [tokens], batch=[profile.max_batch_size], max_queue=[max_queue]
    )


def _at(
    points: OperatingPoints, rate_per_ms: float, rps_ttft: float, rps_itl: float, **kw: object
) -> Analysis:
    m = points.metrics(np.array([rate_per_ms])).take(0)
    return Analysis(
        throughput=m["throughput"] * MS_PER_S,
        avg_resp_time=m["response"],
        avg_wait_time=m["wait"],
        avg_num_in_serv=m["in_service"],
        avg_ttft=m["ttft"],
        avg_itl=m["itl"],
        max_rps=float(0.999 * points.mu_n[0]) * MS_PER_S,
        rps_target_ttft=rps_ttft,
        rps_target_itl=rps_itl,
        utilization=m["utilization"],
        blocking=m["blocking"],
        **kw,  # type: ignore[arg-type]
    )


def analyze_rate(
    profile: Profile, tokens: Tokens, rps: float, max_queue: int | None = None
) -> Analysis:
    """Metrics at ``rps`` requests per second (queue-analysis ``/solve``)."""
    if not rps > 0:
        raise ValueError("RPS must be > 0")
    return _at(operating_point(profile, tokens, max_queue), rps / MS_PER_S, 0.0, 0.0)


def analyze_targets(
    profile: Profile,
    tokens: Tokens,
    *,
    ttft: float | None,
    itl: float | None,
    max_queue: int | None = None,
) -> Analysis:
    """Sizing to the targets (queue-analysis ``/target``): each target's own largest rate, and the
    metrics at the smallest of them. A target missed even at the lowest rate makes the result
    infeasible (its rate 0)."""
    points = operating_point(profile, tokens, max_queue)
    slo = SloArrays.empty(1)
    if ttft is not None:
        slo.ttft[0] = ttft
    if itl is not None:
        slo.itl[0] = itl
    sizing = size(points, slo)
    top = float(sizing.high[0]) * MS_PER_S

    def per(name: str, given: float | None) -> float:
        if given is None:
            return top
        r = float(sizing.detail[name][0])
        return 0.0 if math.isnan(r) else r * MS_PER_S

    rps_ttft, rps_itl = per("ttft", ttft), per("itl", itl)
    if not bool(sizing.feasible[0]):
        return _at(
            points,
            float(sizing.low[0]),
            rps_ttft,
            rps_itl,
            feasible=False,
            bound=str(sizing.bound[0]),
        )
    return _at(points, float(sizing.rate[0]), rps_ttft, rps_itl, bound=str(sizing.bound[0]))
