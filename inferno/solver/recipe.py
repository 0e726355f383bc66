"""A serving container's CPU/memory requests and limits and an HPA's bounds, from the resources
its profile measured and the optimizer's decision (pure).

``inferno profile --pid`` samples the server process's CPU (cores) and memory at each load level
it runs: :class:`ResourceLevel` rows, each at the rate (req/s) the server served during it, an
idle level at rate 0 first. For a replica that receives ``rate`` req/s and may receive up to
``max_rate`` (λ*, the most one replica serves within the SLO, past which the decision needs
another replica), each quantity is interpolated linearly between the levels (by rate) and:

- CPU request = the p95 of the CPU samples at ``rate`` (a high quantile of use: the pod gets
  what it uses 95 % of the time); CPU limit = the p95 at ``max_rate`` × (1 + ``cpu_headroom``),
  and at least the request.
- memory request = the peak memory at ``rate`` (memory cannot be throttled: request what the
  pod holds); memory limit = the highest peak at any rate up to ``max_rate`` ×
  (1 + ``memory_headroom``), so always ≥ every measured peak it may reach.
- HPA (autoscaling/v2): minReplicas = the decision's replicas, maxReplicas = ⌈replicas ×
  (1 + ``hpa_headroom``)⌉ (as :mod:`inferno.cluster.plan` sets an existing HPA's bounds), and a
  CPU utilisation target = the mean CPU at ``max_rate`` / the CPU request: the HPA adds a
  replica when the replicas' mean load passes λ*. When CPU hardly grows with the rate, CPU
  cannot tell the load and a note says so.

Rates above the highest level are extrapolated from the two highest levels (never below the
highest level's value) and said so. Errors (:class:`~inferno.errors.InputError`): no levels for
the instance count, a request beyond the node's allocatable CPU or memory when given.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import InputError

__all__ = [
    "Recipe",
    "RecipeOptions",
    "ResourceLevel",
    "interpolate",
    "recipe",
]

logger = logging.getLogger(__name__)

#: below this share of the CPU at λ*, growth of CPU with the rate is too small for a CPU HPA
FLAT_CPU = 0.10


@dataclass(frozen=True, slots=True)
class ResourceLevel:
    """What the server process used while it served ``rate`` req/s (0: idle) with
    ``instances`` model instances: CPU in cores (mean and p95 of the samples), memory in MiB
    (the peak of the samples)."""

    rate: float
    cpu_mean: float
    cpu_p95: float
    memory_peak_mib: float
    instances: int = 1
    samples: int = 0

    def __post_init__(self) -> None:
        for name in ("rate", "cpu_mean", "cpu_p95", "memory_peak_mib"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
        if self.instances < 1:
            raise ValueError(f"instances must be ≥ 1, got {self.instances}")


@dataclass(frozen=True, slots=True)
class RecipeOptions:
    cpu_headroom: float = 0.5  # CPU limit above the p95 at λ*
    memory_headroom: float = 0.25  # memory limit above the highest peak up to λ*
    hpa_headroom: float = 0.25  # HPA maxReplicas above the decision
    node_cpu: float | None = None  # a node's allocatable CPU (cores), when known
    node_memory_mib: float | None = None  # a node's allocatable memory (MiB), when known

    def __post_init__(self) -> None:
        for name in ("cpu_headroom", "memory_headroom", "hpa_headroom"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 10):
                raise InputError(f"{name.replace('_', '-')} must be in [0, 10], got {value!r}")
        for name in ("node_cpu", "node_memory_mib"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(f"{name.replace('_', '-')} must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Recipe:
    """Requests and limits (CPU in millicores, memory in MiB, whole numbers rounded up) and the
    HPA's bounds and CPU target (%), with the interpolated use behind them."""

    cpu_request_m: int
    cpu_limit_m: int
    memory_request_mib: int
    memory_limit_mib: int
    hpa_min: int
    hpa_max: int
    hpa_cpu_utilization: int
    rate: float  # req/s per replica (the decision's)
    max_rate: float  # λ*, req/s per replica
    instances: int
    use: dict[str, float] = field(default_factory=dict)  # the interpolated use behind it
    notes: tuple[str, ...] = ()


def _levels(levels: Iterable[ResourceLevel], instances: int) -> list[ResourceLevel]:
    mine = [lv for lv in levels if lv.instances == instances]
    if not mine:
        measured = sorted({lv.instances for lv in levels})
        got = (
            f"resources were measured with {', '.join(map(str, measured))} instance(s) only"
            if measured
            else "no resources were measured"
        )
        raise InputError(
            f"{got}, not with {instances}: profile the server with --pid (and --instances-run "
            f"{instances} when it runs {instances} instances)"
        )
    return sorted(mine, key=lambda lv: lv.rate)


def interpolate(
    points: Sequence[tuple[float, float]], x: float, notes: list[str] | None = None
) -> float:
    """y at ``x`` on the piecewise-linear curve through ``points`` (x, y), x ascending with
    equal x merged by their largest y; flat below the first point; above the last, the line
    through the last two (never below the last y), noted in ``notes``."""
    merged: dict[float, float] = {}
    for px, py in points:
        merged[px] = max(py, merged.get(px, -math.inf))
    xs = sorted(merged)
    if not xs:
        raise ValueError("no points to interpolate")
    if x <= xs[0]:
        return merged[xs[0]]
    if x > xs[-1]:
        last = merged[xs[-1]]
        if len(xs) < 2:
            return last
        x0, x1 = xs[-2], xs[-1]
        slope = (last - merged[x0]) / (x1 - x0)
        if notes is not None:
            notes.append(
                f"{x:.1f} req/s is above the highest level measured ({x1:.1f} req/s): extrapolated"
            )
        return max(last, last + slope * (x - x1))
    for x0, x1 in itertools.pairwise(xs):
        if x0 <= x <= x1:
            t = (x - x0) / (x1 - x0)
            return merged[x0] + t * (merged[x1] - merged[x0])
    raise AssertionError("unreachable")  # pragma: no cover


def _millicores(cores: float) -> int:
    return max(1, math.ceil(round(cores * 1000.0, 6)))


def _mib(mib: float) -> int:
    return max(1, math.ceil(round(mib, 6)))


def recipe(
    levels: Sequence[ResourceLevel],
    *,
    rate: float,
    max_rate: float,
    replicas: int,
    instances: int = 1,
    options: RecipeOptions | None = None,
) -> Recipe:
    """The recipe of a replica receiving ``rate`` req/s and at most ``max_rate`` (λ*), for a
    decision of ``replicas`` replicas with ``instances`` model instances each."""
    opts = options or RecipeOptions()
    if not (math.isfinite(rate) and rate >= 0 and math.isfinite(max_rate) and max_rate >= 0):
        raise InputError(f"rates must be finite and ≥ 0, got {rate!r} and {max_rate!r}")
    if replicas < 0:
        raise InputError(f"replicas must be ≥ 0, got {replicas}")
    top = max(rate, max_rate)
    mine = _levels(levels, instances)
    notes: list[str] = []
    p95 = [(lv.rate, lv.cpu_p95) for lv in mine]
    mean = [(lv.rate, lv.cpu_mean) for lv in mine]
    peak = [(lv.rate, lv.memory_peak_mib) for lv in mine]
    cpu_p95 = interpolate(p95, rate, notes)
    cpu_p95_top = interpolate(p95, top, notes)
    cpu_mean_top = interpolate(mean, top, None)
    cpu_mean_idle = interpolate(mean, 0.0, None)
    memory = interpolate(peak, rate, None)
    memory_top = max(
        [interpolate(peak, top, None)] + [lv.memory_peak_mib for lv in mine if lv.rate <= top]
    )
    cpu_request = _millicores(cpu_p95)
    cpu_limit = max(cpu_request, _millicores(cpu_p95_top * (1.0 + opts.cpu_headroom)))
    memory_request = _mib(memory)
    memory_limit = max(memory_request, _mib(memory_top * (1.0 + opts.memory_headroom)))
    if opts.node_memory_mib is not None:
        if memory_request > opts.node_memory_mib:
            raise InputError(
                f"the server's measured peak memory {memory_request} MiB exceeds the node's "
                f"allocatable {opts.node_memory_mib:g} MiB: no node can hold a replica"
            )
        if memory_limit > opts.node_memory_mib:
            memory_limit = max(memory_request, math.floor(opts.node_memory_mib))
            notes.append(f"memory limit cut to the node's allocatable {memory_limit} MiB")
    if opts.node_cpu is not None:
        node_m = math.floor(opts.node_cpu * 1000.0)
        if cpu_request > node_m:
            raise InputError(
                f"the server's CPU request {cpu_request}m (p95 at {rate:.1f} req/s) exceeds the "
                f"node's allocatable {opts.node_cpu:g} cores"
            )
        if cpu_limit > node_m:
            cpu_limit = max(cpu_request, node_m)
            notes.append(f"CPU limit cut to the node's allocatable {cpu_limit}m")
    hpa_min = max(replicas, 1)  # an HPA's minReplicas is at least 1
    hpa_max = max(hpa_min, math.ceil(replicas * (1.0 + opts.hpa_headroom)))
    target = max(1, round(100.0 * cpu_mean_top / (cpu_request / 1000.0)))
    if cpu_mean_top <= 0 or cpu_mean_top - cpu_mean_idle < FLAT_CPU * cpu_mean_top:
        notes.append(
            f"CPU hardly grows with the load ({cpu_mean_idle:.3f} cores idle, "
            f"{cpu_mean_top:.3f} at λ* {top:.1f} req/s): a CPU-utilisation HPA cannot see the "
            "load; scale on the request rate (a custom metric) instead"
        )
    use = {
        "cpuP95": cpu_p95,
        "cpuP95AtMaxRate": cpu_p95_top,
        "cpuMeanAtMaxRate": cpu_mean_top,
        "cpuMeanIdle": cpu_mean_idle,
        "memoryPeakMiB": memory,
        "memoryPeakUpToMaxRateMiB": memory_top,
    }
    logger.debug("recipe at %.2f req/s (λ* %.2f): %s", rate, top, use)
    return Recipe(
        cpu_request_m=cpu_request,
        cpu_limit_m=cpu_limit,
        memory_request_mib=memory_request,
        memory_limit_mib=memory_limit,
        hpa_min=hpa_min,
        hpa_max=hpa_max,
        hpa_cpu_utilization=target,
        rate=rate,
        max_rate=top,
        instances=instances,
        use=use,
        notes=tuple(dict.fromkeys(notes)),
    )
