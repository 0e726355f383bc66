"""The metrics of each service, one class each, registered on the registry it is given.

Every metric is declared here and nowhere else; ``python -m inferno.services.metrics`` prints
the table of docs/service-metrics.md (a test checks that file matches it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase

from ..control.actuate import ActuationReport, Outcome
from ..control.cycle import PHASES, CycleReport
from ..control.guards import CLAMP_RULES

__all__ = [
    "ActuatorMetrics",
    "CollectorMetrics",
    "ControllerMetrics",
    "OptimizerMetrics",
    "SecurityMetrics",
    "markdown_table",
]

_SERVER = ["server", "accelerator"]
_PAIR = ["model", "accelerator"]
_OUTCOMES = ("applied", "failed", "refused", "skipped", "recommend", "keep", "unchanged")


class _Metrics:
    """A group of metrics on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def all(self) -> Iterator[MetricWrapperBase | PerServerGauge]:
        for value in vars(self).values():
            if isinstance(value, MetricWrapperBase | PerServerGauge):
                yield value
            elif isinstance(value, Mapping):
                yield from (
                    v for v in value.values() if isinstance(v, MetricWrapperBase | PerServerGauge)
                )


class PerServerGauge:
    """A gauge per (server, accelerator) of the last solve, exported from the solution's
    allocations when scraped. Setting a labelled :class:`~prometheus_client.Gauge` child per
    server and metric took 0.6 s of a 10,000-server answer (50,000 children made, each with its
    lock); here recording keeps a reference and a scrape builds the samples. Only what
    :func:`markdown_table` reads of a metric (its name, type, labels and help) is kept here."""

    _type = "gauge"
    _labelnames = tuple(_SERVER)

    def __init__(self, name: str, documentation: str, key: str, registry: CollectorRegistry):
        self._name = name
        self._documentation = documentation
        self._key = key  # the allocation's JSON key
        self._allocations: Mapping[str, Any] = {}
        registry.register(self)  # a collector: collect() and describe()

    def set_allocations(self, allocations: Mapping[str, Any]) -> None:
        """The solution's allocations (by server) the next scrape reports."""
        self._allocations = dict(allocations)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self._name, self._documentation, labels=_SERVER)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._documentation, labels=_SERVER)
        key = self._key
        for server, a in self._allocations.items():
            value = _finite(a.get(key))
            if value is not None:
                family.add_metric([str(server), str(a.get("accelerator", ""))], value)
        yield family


class SecurityMetrics(_Metrics):
    """Requests refused before any work (every service)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        super().__init__(registry)
        self.rejected = Counter(
            f"inferno_{service}_requests_rejected",
            "Requests refused before any work: unauthorized, too_large (413), bad_request (400)",
            ["reason"],
            registry=registry,
        )
        for reason in ("unauthorized", "too_large", "bad_request"):
            self.rejected.labels(reason)


class CollectorMetrics(_Metrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.security = SecurityMetrics(registry, "collector")
        self.collections = Counter(
            "inferno_collector_collections",
            "Collections by outcome (ok, error)",
            ["outcome"],
            registry=registry,
        )
        self.managed = Gauge(
            "inferno_collector_managed_deployments",
            "Managed Deployments found by the last successful collection",
            registry=registry,
        )
        self.problems = Gauge(
            "inferno_collector_problems",
            "Objects the last successful collection had to leave out (bad labels, invalid classes)",
            registry=registry,
        )
        self.duration = Histogram(
            "inferno_collector_collect_seconds", "Time to collect", registry=registry
        )


class OptimizerMetrics(_Metrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.security = SecurityMetrics(registry, "optimizer")
        self.per_server = {
            key: PerServerGauge(name, text, "numReplicas" if key == "replicas" else key, registry)
            for key, name, text in (
                ("replicas", "inferno_optimizer_replicas", "Replicas decided per server"),
                (
                    "cost",
                    "inferno_optimizer_cost",
                    "Cost of the decided allocation per server (accelerator-data.json units)",
                ),
                (
                    "itlAverage",
                    "inferno_optimizer_predicted_itl_ms",
                    "Predicted mean inter-token latency at the decided allocation",
                ),
                (
                    "ttftAverage",
                    "inferno_optimizer_predicted_ttft_ms",
                    "Predicted mean time to first token at the decided allocation",
                ),
                (
                    "waitAverage",
                    "inferno_optimizer_predicted_wait_ms",
                    "Predicted mean queueing wait at the decided allocation",
                ),
            )
        }
        self.unallocated = Gauge(
            "inferno_optimizer_unallocated_servers",
            "Servers the last solve left unallocated (bad data included)",
            registry=registry,
        )
        self.solves = Counter(
            "inferno_optimizer_solves",
            "Solves by status (optimal, feasible, partially-allocated, infeasible, error; "
            "busy: refused while another ran)",
            ["status"],
            registry=registry,
        )
        self.duration = Histogram(
            "inferno_optimizer_solve_seconds",
            "Time to solve (including reading the static data)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.static_loads = Counter(
            "inferno_optimizer_static_data_loads",
            "Times the static data was (re-)read",
            registry=registry,
        )
        self.tuned_alpha = Gauge(
            "inferno_optimizer_tuned_alpha",
            "Tuned alpha of a (model, accelerator) profile (ms; the filter's estimate)",
            _PAIR,
            registry=registry,
        )
        self.tuned_beta = Gauge(
            "inferno_optimizer_tuned_beta",
            "Tuned beta of a (model, accelerator) profile (ms; the filter's estimate)",
            _PAIR,
            registry=registry,
        )
        self.tuning_applied = Gauge(
            "inferno_optimizer_tuning_applied",
            "1 if the last solve used the tuned profile, 0 if not (no accepted update yet, or "
            "the feasibility guard put the base profile back)",
            _PAIR,
            registry=registry,
        )
        self.tuning_updates = Counter(
            "inferno_optimizer_tuning_updates",
            "Observations by outcome (accepted, reset, rejected, skipped) and reason class",
            ["outcome", "reason"],
            registry=registry,
        )
        self.tuning_fallbacks = Counter(
            "inferno_optimizer_tuning_fallbacks",
            "Tuned (model, accelerator) profiles the feasibility guard replaced by the base",
            registry=registry,
        )

    def record_solution(self, solution: Mapping[str, Any]) -> None:
        allocations: Mapping[str, Any] = solution.get("allocations") or {}
        for gauge in self.per_server.values():
            # the last solve's servers only: those gone or moved leave no series
            gauge.set_allocations(allocations)
        self.unallocated.set(len(solution.get("unallocated") or {}))
        self.solves.labels(str(solution.get("status", "unknown"))).inc()


class ActuatorMetrics(_Metrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.security = SecurityMetrics(registry, "actuator")
        self.patches = Counter(
            "inferno_actuator_patches",
            "Deployment outcomes (" + ", ".join(_OUTCOMES) + ")",
            ["outcome"],
            registry=registry,
        )
        self.updates = Counter(
            "inferno_actuator_updates",
            "Update requests by result (ok: every Deployment fine, partial, stale: an older "
            "plan than one already applied)",
            ["result"],
            registry=registry,
        )
        for name in _OUTCOMES:
            self.patches.labels(name)  # every series exists from the start, at 0

    def record(self, report: ActuationReport) -> None:
        for o in report.outcomes:
            self.patches.labels(outcome_label(o)).inc()
        self.updates.labels("ok" if report.ok else "partial").inc()


def outcome_label(o: Outcome) -> str:
    """applied, failed, refused, skipped, recommend, keep or unchanged."""
    if o.kind in ("refused", "skipped"):
        return o.kind
    if o.error:
        return "failed"
    if o.kind == "update":
        return "applied" if o.applied else "failed"
    return o.kind


class ControllerMetrics(_Metrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.security = SecurityMetrics(registry, "controller")
        self.cycles = Counter(
            "inferno_controller_cycles",
            "Cycles by trigger (invoke, periodic) and status (ok, failed)",
            ["trigger", "status"],
            registry=registry,
        )
        self.phase_seconds = Histogram(
            "inferno_controller_phase_seconds",
            "Duration of each phase of a cycle",
            ["phase"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.phase_failures = Counter(
            "inferno_controller_phase_failures",
            "Cycles stopped by a failed phase",
            ["phase"],
            registry=registry,
        )
        self.deployment_failures = Counter(
            "inferno_controller_deployment_failures",
            "Deployments the actuator failed to update or refused",
            registry=registry,
        )
        self.rejected = Counter(
            "inferno_controller_invocations_rejected",
            "Invocations refused (busy: a cycle was running; not_leader)",
            ["reason"],
            registry=registry,
        )
        self.last_time = Gauge(
            "inferno_controller_last_cycle_timestamp_seconds",
            "When the last cycle finished (Unix time)",
            registry=registry,
        )
        self.last_ok = Gauge(
            "inferno_controller_last_cycle_ok",
            "1 if the last cycle was ok, else 0",
            registry=registry,
        )
        self.leader = Gauge(
            "inferno_controller_leader",
            "1 while this instance holds the leader Lease (or runs without election), else 0",
            registry=registry,
        )
        self.clamps = Counter(
            "inferno_controller_clamps",
            f"Decisions the control policy bounded, by rule ({', '.join(CLAMP_RULES)})",
            ["rule"],
            registry=registry,
        )
        for p in PHASES:
            self.phase_failures.labels(p)

    def record(self, report: CycleReport, finished: float) -> None:
        self.cycles.labels(report.trigger, report.status).inc()
        for p, s in report.seconds.items():
            self.phase_seconds.labels(p).observe(s)
        if report.failed_phase:
            self.phase_failures.labels(report.failed_phase).inc()
        self.deployment_failures.inc(len(report.failed_deployments))
        self.last_time.set(finished)
        self.last_ok.set(1 if report.ok else 0)
        for c in report.clamps:
            self.clamps.labels(c.rule).inc()


def _finite(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def markdown_table() -> str:
    """Every service metric as a Markdown table (what docs/service-metrics.md holds)."""
    rows = ["| service | metric | type | labels | meaning |", "|---|---|---|---|---|"]
    for service, cls in (
        ("controller", ControllerMetrics),
        ("collector", CollectorMetrics),
        ("optimizer", OptimizerMetrics),
        ("actuator", ActuatorMetrics),
    ):
        group = cls(CollectorRegistry())
        metrics = list(group.all()) + list(group.security.all())
        for m in metrics:
            kind = m._type
            name = m._name + ("_total" if kind == "counter" else "")
            labels = ", ".join(f"`{x}`" for x in m._labelnames) or "—"
            text = m._documentation.replace("|", "\\|")
            rows.append(f"| {service} | `{name}` | {kind} | {labels} | {text} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover - the docs' generator
    import sys

    sys.stdout.write(markdown_table())
