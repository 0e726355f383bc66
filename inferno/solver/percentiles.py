"""Percentiles of each allocation's wait, TTFT and latency, at the rate its replicas receive."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import numpy as np

from ..model.points import OperatingPoints
from ..model.quantiles import latency_quantiles, ttft_quantiles, wait_quantiles_of
from .candidates import CandidateTable
from .result import Solution

__all__ = ["QUANTILES", "add_percentiles"]

QUANTILES = (0.5, 0.95, 0.99)


def add_percentiles(table: CandidateTable, solution: Solution, *, latency: bool = True) -> Solution:
    """A copy of ``solution`` whose allocations' metrics also hold ``wait_p50`` … ``wait_p99``,
    ``ttft_p50`` … (LLM kinds) and, with ``latency``, ``latency_p50`` … ``latency_p99``.

    The latency quantiles solve the exact response-time chain per allocation (tens of ms each).
    """
    names = [s.name for s in table.system.servers]
    chosen = sorted(solution.allocations)
    if not chosen:
        return solution
    cands = []
    for name in chosen:
        s = names.index(name)
        accelerator = solution.allocations[name].accelerator
        cands.append(
            next(int(c) for c in table.all_of_server(s) if table.accelerator[c] == accelerator)
        )
    points = table.points.subset(np.asarray(cands, dtype=np.intp))
    rate = np.array([solution.allocations[n].metrics["rate"] for n in chosen])
    idle = rate <= 0
    rate = np.where(idle, 1e-9 * points.mu_1, rate)
    base = points.metrics(rate)
    extra: dict[str, np.ndarray] = {}
    waits = wait_quantiles_of(points, rate, QUANTILES, metrics=base)
    # TTFT is the wait + a constant, unless the model has its own TTFT distribution (the
    # accurate mode's mixture over what an arrival finds and over its own prompt)
    own_ttft = type(points).ttft_sf is not OperatingPoints.ttft_sf
    for j, q in enumerate(QUANTILES):
        w = waits[:, j]
        extra[f"wait_p{round(q * 100)}"] = w
        extra[f"ttft_p{round(q * 100)}"] = (
            ttft_quantiles(points, rate, q) if own_ttft else w + (base.ttft - base.wait)
        )
    if latency:
        lat = latency_quantiles(points, rate, QUANTILES, metrics=base)
        for j, q in enumerate(QUANTILES):
            extra[f"latency_p{round(q * 100)}"] = lat[:, j]
    allocations = dict(solution.allocations)
    for i, name in enumerate(chosen):
        metrics = dict(allocations[name].metrics)
        metrics.update({k: float(v[i]) for k, v in extra.items()})
        allocations[name] = replace(allocations[name], metrics=MappingProxyType(metrics))
    return replace(solution, allocations=MappingProxyType(allocations))
