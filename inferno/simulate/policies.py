"""The policies ``inferno simulate`` compares, each acting on an :class:`EmulatedCluster`.

- :class:`InfernoPolicy`: every control period, the measured loads (:mod:`.metrics`) go through
  the cluster's own cycle code: :func:`~inferno.control.collect` (the Deployments, with the
  measured loads and the start-up their pods show), :func:`~inferno.control.optimize` (the
  static data + what was collected) and :func:`~inferno.control.actuate` (the plan's JSON
  patches, applied by the emulated cluster).
  ``headroom`` sizes for the measured rate × (1 + headroom). The performance model is the
  deployed default (``INFERNO_MODEL``: inferno), or the scenario's ``model`` for this policy,
  unless the system's optimizer data names one.
- :class:`StaticPolicy`: the allocation the optimizer gives for each server's *peak* rate over the
  run (:func:`peak_rate`), set at t = 0 and never changed.
- :class:`HpaPolicy`: the Kubernetes HPA algorithm (:class:`HpaAlgorithm`) on utilisation, busy /
  ready replicas (or the batch occupancy); accelerator and batch fixed at the initial allocation.
- :class:`QueuePolicy`: a KEDA-style scaler on requests held, desired = ⌈held / target per
  replica⌉, through the same HPA algorithm (an ``AverageValue`` metric); accelerator and batch
  fixed.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..cluster.plan import Decision, PlanSettings
from ..cluster.validate import Guards, StaticLimits
from ..control import actuate, collect, optimize
from ..control.actuate import ActuatorConfig, CycleStamp, Target
from ..control.policy import Policy as ControlPolicy
from ..control.startup import measured_startups
from ..emulator import Bursts, Diurnal, Poisson, Replay, Steps, Trace
from ..settings import Settings
from ..system import Load, Server
from ..units import MS_PER_MIN, MS_PER_S
from .cluster import (
    GPU_NODE_LABEL,
    NAMESPACE,
    EmulatedCluster,
    deployment_name,
    replicas_patch,
)
from .metrics import MetricsSource
from .scenario import HpaOptions, InfernoOptions, PolicySpec, QueueOptions, Scenario

__all__ = [
    "HpaAlgorithm",
    "HpaPolicy",
    "InfernoPolicy",
    "Policy",
    "QueuePolicy",
    "Sizing",
    "StaticPolicy",
    "build_policy",
    "peak_rate",
    "size_servers",
]

logger = logging.getLogger(__name__)

#: Kubernetes' scale-up limit without ``behavior``: at most max(2 × current, 4) replicas
SCALE_UP_FACTOR = 2.0
SCALE_UP_MINIMUM = 4


# --- sizing with the optimizer -----------------------------------------------------------------


def server_rows(
    servers: Sequence[Server], loads: Mapping[str, Load], keep: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """``server-data.json`` rows of ``servers`` at the given loads (no current allocation; with
    ``keep``, the servers it names are kept on the accelerator it gives)."""
    rows: list[dict[str, Any]] = []
    keep = keep or {}
    for s in servers:
        load = loads[s.name]
        row: dict[str, Any] = {
            "name": s.name,
            "class": s.service_class,
            "model": s.model,
            "minNumReplicas": s.min_replicas,
            "currentAlloc": {"load": load.to_json()},
        }
        if s.max_replicas is not None:
            row["maxNumReplicas"] = s.max_replicas
        if s.max_batch_size is not None:
            row["maxBatchSize"] = s.max_batch_size
        if s.max_queue_size is not None:
            row["maxQueueSize"] = s.max_queue_size
        if s.name in keep:
            row["currentAlloc"]["accelerator"] = keep[s.name]
            row["keepAccelerator"] = True
        rows.append(row)
    return rows


@dataclass(frozen=True, slots=True)
class Sizing:
    """The optimizer's decisions, and per server the mean requests a replica holds (waiting + in
    service) at that decision, as the model predicts it."""

    decisions: dict[str, Decision]
    held_per_replica: dict[str, float]
    #: the solution's GPU layout (partitions packed onto GPUs; {} without partitions)
    layout: dict[str, Any] = field(default_factory=dict)


def size_servers(
    static_docs: Mapping[str, Any],
    servers: Sequence[Server],
    loads: Mapping[str, Load],
    *,
    origin: str = "system data",
    keep: Mapping[str, str] | None = None,
) -> Sizing:
    """The optimizer's decision for each server at the given loads (the cycle's optimize step;
    ``keep``: server → the accelerator it must stay on)."""
    result = optimize(static_docs, server_rows(servers, loads, keep), [], origin=origin)
    held: dict[str, float] = {}
    for name, a in (result.solution.get("allocations") or {}).items():
        try:
            replicas = float(a["numReplicas"])
            in_service = float(a["avgNumInServ"])
            wait = float(a.get("waitAverage") or 0.0)
            rate = float(a["load"]["arrivalRate"]) / MS_PER_MIN / replicas  # per ms per replica
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue
        if math.isfinite(in_service):
            held[name] = in_service + (rate * wait if math.isfinite(wait) else 0.0)
    layout = dict(result.solution.get("layout") or {})
    return Sizing({d.server: d for d in result.decisions}, held, layout)


def peak_rate(trace: Trace, duration_ms: float) -> float:
    """The highest rate ``trace`` offers during [0, duration), requests per minute.

    Poisson: its rate. Steps: the highest step in force during the run. Bursts: the burst rate.
    Replay: the busiest minute. Diurnal (and any other trace): the rate on a grid of 10,001
    points over the run, within 0.01% of the true peak for a diurnal run of up to 20 periods.
    """
    if isinstance(trace, Poisson):
        return trace.rate_per_min
    if isinstance(trace, Bursts):
        return max(trace.base_per_min, trace.burst_per_min)
    if isinstance(trace, Steps):
        starts = [s * MS_PER_S for s, _ in trace.steps]
        ends = [*starts[1:], math.inf]
        live = [
            r
            for (_, r), lo, hi in zip(trace.steps, starts, ends, strict=True)
            if lo < duration_ms and hi > 0.0
        ]
        return max(live, default=0.0)
    if isinstance(trace, Replay):
        minutes = np.floor(trace.times_ms[trace.times_ms < duration_ms] / MS_PER_MIN)
        if minutes.size == 0:
            return 0.0
        return float(np.bincount(minutes.astype(np.int64)).max())
    grid = np.linspace(0.0, duration_ms, 10_001)
    if isinstance(trace, Diurnal):
        omega = 2.0 * math.pi / (trace.period_s * MS_PER_S)
        wave = np.sin(omega * (grid - trace.phase_s * MS_PER_S))
        return float((trace.mean_per_min * (1.0 + trace.amplitude * wave)).max())
    return max(trace.rate_at(float(t)) for t in grid) * MS_PER_MIN


# --- the HPA algorithm -------------------------------------------------------------------------


@dataclass
class HpaAlgorithm:
    """The Kubernetes HPA replica calculation (``autoscaling/v2`` without ``behavior``).

    At each evaluation (time ``t_s``, ``current`` replicas, ``metric`` per replica):

    1. ratio = metric / target; if |ratio − 1| ≤ tolerance the recommendation is ``current``,
       else ⌈current × ratio⌉ (with no metric, or no replica, nothing changes);
    2. scale-down stabilisation: the result is the largest recommendation made during the last
       ``stabilization_window_s`` seconds, this one included (so it scales down only to what
       every recent recommendation allowed; scale-up is immediate);
    3. the scale-up limit max(2 × current, 4), then ``min_replicas``/``max_replicas``.
    """

    target: float
    tolerance: float = 0.1
    stabilization_window_s: float = 300.0
    min_replicas: int = 1
    max_replicas: int | None = None
    history: deque[tuple[float, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if not self.target > 0:
            raise ValueError(f"target must be > 0, got {self.target}")
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be ≥ min_replicas")

    def raw(self, current: int, metric: float) -> int:
        """Step 1: the unstabilised recommendation."""
        ratio = metric / self.target
        if abs(ratio - 1.0) <= self.tolerance:
            return current
        # a hair of slack so that 2 × 1.5 / 1.5 is 2, not 3, in floating point
        return max(math.ceil(current * ratio - 1e-9), 0)

    def recommend(self, t_s: float, current: int, metric: float) -> int:
        if current <= 0 or not math.isfinite(metric):
            return current
        desired = self.raw(current, metric)
        cutoff = t_s - self.stabilization_window_s
        while self.history and self.history[0][0] <= cutoff:
            self.history.popleft()
        stabilised = max([desired, *(r for _, r in self.history)])
        self.history.append((t_s, desired))
        top = max(int(SCALE_UP_FACTOR * current), SCALE_UP_MINIMUM)
        out = min(stabilised, top)
        out = max(out, self.min_replicas)
        if self.max_replicas is not None:
            out = min(out, self.max_replicas)
        return out


# --- policies ----------------------------------------------------------------------------------


class Policy(ABC):
    """Acts on the cluster at the end of each control period."""

    def __init__(self, spec: PolicySpec, cluster: EmulatedCluster) -> None:
        self.spec = spec
        self.cluster = cluster
        self.measured: dict[str, float] = {}  # the last measured arrival rate per server
        self.notes: list[str] = []

    @property
    def name(self) -> str:
        return self.spec.name

    @abstractmethod
    def step(self, t_ms: float) -> None:
        """The control step at ``t_ms`` (the simulation is there)."""


class StaticPolicy(Policy):
    def step(self, t_ms: float) -> None:
        return None


class InfernoPolicy(Policy):
    """collect → optimize → actuate on measured loads, as the controller does in a cluster."""

    def __init__(
        self,
        spec: PolicySpec,
        cluster: EmulatedCluster,
        metrics: MetricsSource,
        static_docs: Mapping[str, Any],
        control_period_s: float,
    ) -> None:
        super().__init__(spec, cluster)
        opts = spec.options
        assert isinstance(opts, InfernoOptions)
        # the deployed settings, with the scenario's values for the deployed names it sets;
        # the control period and the load window are the scenario's own
        settings = Settings.from_env({}, **opts.overrides()).with_overrides(
            control_period=control_period_s, load_window=metrics.window_ms / MS_PER_S
        )
        self.batch_tolerance = settings.plan.batch_tolerance
        self.now_s = 0.0
        self.clamps = 0
        self.policy = ControlPolicy.from_settings(settings, lambda: self.now_s)
        self.options = settings.policy
        self.model = settings.optimizer.model  # INFERNO_MODEL, unless the system data names one
        self.lengths_window = settings.prometheus.lengths_window  # INFERNO_LENGTHS_WINDOW
        self.metrics = metrics
        self.static_docs = dict(static_docs)
        self.failures = 0
        self.sequence = 0
        # the actuator's own checks, as in the cluster (the plan keeps the policy's tolerance)
        self.actuator = ActuatorConfig(
            plan=PlanSettings(batch_tolerance=self.batch_tolerance),
            limits=StaticLimits.from_system(cluster.system),
            guards=Guards(gpu_node_label=GPU_NODE_LABEL),
            namespaces=(NAMESPACE,),
        )

    def step(self, t_ms: float) -> None:
        loads: dict[str, Load] = {}
        backlog: dict[str, float] = {}
        for server in self.cluster.server_names():
            m = self.metrics.measure(server, t_ms, lengths_window_s=self.lengths_window)
            self.measured[server] = m.arrival_rate
            # with the lengths' spread fitted from the window's histograms, as the deployed
            # collector reports it (a Load of the means alone left the accurate model its
            # defaults)
            loads[server] = m.load
            backlog[server] = m.backlog
        self.now_s = t_ms / 1000.0
        found = collect(self.cluster, [NAMESPACE], loads=loads, policy=self.options)
        self.policy.set_classes(found.service_classes)
        servers = self.policy.loads(found.servers, backlog, measured_startups(found.deployments))
        result = optimize(self.static_docs, servers, found.service_classes, model=self.model)
        for name, reason in (result.solution.get("unallocated") or {}).items():
            note = f"{t_ms / 1000.0:.0f} s: {name} not allocated ({reason}); kept as is"
            if len(self.notes) < 20:
                self.notes.append(note)
            logger.info("%s", note)
        guarded = self.policy.guard(result.decisions, found.deployments)
        self.clamps += len(guarded.clamps)
        targets = [Target(d.namespace, d.name, d.server) for d in found.deployments]
        self.sequence += 1
        stamp = CycleStamp(f"sim-{self.sequence}", self.sequence, math.inf)
        report = actuate(self.cluster, targets, guarded.decisions, self.actuator, stamp)
        # MPS co-runners slow each other down as the decision's layout places them
        self.cluster.apply_layout(result.solution.get("layout") or {})
        for o in report.outcomes:
            if o.error:
                self.failures += 1
                logger.warning(
                    "%s: %s/%s not applied: %s", self.name, o.namespace, o.deployment, o.error
                )


class _ScalerPolicy(Policy):
    """An HPA-algorithm scaler per server, on a metric from the metrics source."""

    def __init__(
        self,
        spec: PolicySpec,
        cluster: EmulatedCluster,
        metrics: MetricsSource,
        scalers: Mapping[str, HpaAlgorithm],
    ) -> None:
        super().__init__(spec, cluster)
        self.metrics = metrics
        self.scalers = dict(scalers)

    @abstractmethod
    def metric(self, server: str, t_ms: float) -> tuple[float, float]:
        """(metric per replica, measured arrival rate) of ``server`` now."""

    def step(self, t_ms: float) -> None:
        for server, algo in self.scalers.items():
            value, rate = self.metric(server, t_ms)
            self.measured[server] = rate
            current = self.cluster.replicas(server)
            desired = algo.recommend(t_ms / MS_PER_S, current, value)
            if desired != current:
                self.cluster.patch_deployment(
                    NAMESPACE, deployment_name(server), replicas_patch(desired)
                )


class HpaPolicy(_ScalerPolicy):
    def __init__(
        self,
        spec: PolicySpec,
        cluster: EmulatedCluster,
        metrics: MetricsSource,
        scalers: Mapping[str, HpaAlgorithm],
    ) -> None:
        super().__init__(spec, cluster, metrics, scalers)
        opts = spec.options
        assert isinstance(opts, HpaOptions)
        self.kind = opts.metric

    def metric(self, server: str, t_ms: float) -> tuple[float, float]:
        m = self.metrics.measure(server, t_ms)
        value = m.utilisation if self.kind == "busy" else m.batch_utilisation
        return value, m.arrival_rate


class QueuePolicy(_ScalerPolicy):
    def metric(self, server: str, t_ms: float) -> tuple[float, float]:
        m = self.metrics.measure(server, t_ms)
        current = self.cluster.replicas(server)
        per_replica = m.held / current if current > 0 else math.nan
        return per_replica, m.arrival_rate


def build_policy(
    spec: PolicySpec,
    cluster: EmulatedCluster,
    metrics: MetricsSource,
    static_docs: Mapping[str, Any],
    *,
    servers: Mapping[str, Server],
    initial: Mapping[str, Decision],
    peak: Mapping[str, Decision],
    held: Mapping[str, float] | None = None,
    control_period_s: float = 60.0,
    scenario: Scenario | None = None,
    peak_kept: Mapping[str, Decision] | None = None,
) -> Policy:
    """The policy of ``spec`` over ``cluster``. ``initial`` and ``peak`` are the optimizer's
    decisions at the first period's load and at the peak, ``peak_kept`` at the peak on each
    server's initial accelerator, ``held`` the model's requests held per replica at the initial
    decision: the defaults of the scalers' bounds and targets. The oracle (:mod:`.oracle`) reads
    the ``scenario`` (its traces, period and duration)."""
    if spec.kind == "oracle":
        from .oracle import OraclePolicy  # the oracle builds on this module's Policy

        if scenario is None:
            raise ValueError("the oracle policy needs the scenario")
        return OraclePolicy(spec, cluster, scenario)
    if spec.kind == "inferno":
        return InfernoPolicy(spec, cluster, metrics, static_docs, control_period_s)
    if spec.kind == "static":
        return StaticPolicy(spec, cluster)
    opts = spec.options
    assert isinstance(opts, HpaOptions | QueueOptions)
    scalers: dict[str, HpaAlgorithm] = {}
    for name in cluster.server_names():
        srv = servers[name]
        lo = opts.min_replicas if opts.min_replicas is not None else max(srv.min_replicas, 1)
        if opts.max_replicas is not None:
            hi = opts.max_replicas
        else:
            # as an operator would: what the peak needs on the scaler's own accelerator (the
            # peak allocation may be on another, with far fewer replicas)
            need = peak[name].replicas if name in peak else 0
            if peak_kept is not None and name in peak_kept and peak_kept[name].allocated:
                need = max(need, peak_kept[name].replicas)
            hi = max(need, cluster.replicas(name), lo)
            if srv.max_replicas is not None:
                hi = min(hi, srv.max_replicas)
        hi = max(hi, lo)
        if isinstance(opts, HpaOptions):
            target = opts.target
        elif opts.target_per_replica is not None:
            target = opts.target_per_replica * opts.target_factor
        elif held is not None and name in held and held[name] > 0:
            target = held[name] * opts.target_factor
        else:
            target = float(cluster.config(name).batch) * opts.target_factor
        scalers[name] = HpaAlgorithm(target, opts.tolerance, opts.stabilization_window, lo, hi)
    if isinstance(opts, HpaOptions):
        return HpaPolicy(spec, cluster, metrics, scalers)
    return QueuePolicy(spec, cluster, metrics, scalers)
