"""One settings object, read once from the environment (and command-line overrides): a tree of
option groups.

``Settings`` has one field per group — :class:`ServiceOptions` (``service``),
:class:`Endpoints` (``ports``), :class:`SecurityOptions` (``security``),
:class:`LeaderOptions` (``leader``), :class:`PrometheusOptions` (``prometheus``),
:class:`TuningOptions` (``tuning``), :class:`PlanOptions` (``plan``) and
:class:`PolicyOptions` (``policy``). Every field of a group
names its environment variable and says what it means (``metadata``: ``env`` and ``doc``); the
group checks its own values when it is made, so a group given in code is checked exactly like one
read from the environment, and a bad value raises :class:`SettingsError` naming the variable, the
value and what was expected: a misconfigured pod fails at start-up, loudly.

Environment names follow the Go original's where it had one (``INFERNO_CONTROL_PERIOD``,
``COLLECTOR_PORT``, ``INFERNO_PORT`` for the optimizer...). The tuning and plan groups are the
very objects the tuner (:mod:`inferno.tuning`) and the planner (:mod:`inferno.cluster.plan`) take.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from statistics import NormalDist
from typing import Any, ClassVar

from .errors import InfernoError

__all__ = [
    "Endpoints",
    "LeaderOptions",
    "PlanOptions",
    "PolicyOptions",
    "PrometheusOptions",
    "SecurityOptions",
    "ServiceOptions",
    "Settings",
    "SettingsError",
    "TuningOptions",
    "variables",
]


class SettingsError(InfernoError, ValueError):
    """A setting with a bad value."""


def _opt(default: Any, env: str, doc: str, *, flat: str = "", secret: bool = False) -> Any:
    """A field of an option group: its default, variable and meaning (``flat``: its name among
    :meth:`Settings.from_env`'s keyword overrides, when not the field's own)."""
    meta = {"env": env, "doc": doc, "flat": flat}
    return field(default=default, repr=not secret, metadata=meta)


class _Group:
    """Checks of an option group, run when it is made."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise SettingsError for a bad value (subclasses)."""

    def _require(self, name: str, ok: bool, expected: str) -> None:
        if not ok:
            f = self.__dataclass_fields__[name]
            value = getattr(self, name)
            raise SettingsError(f"{f.metadata['env']}={value!r}: expected {expected}")


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


_DNS = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_URL = re.compile(r"https?://[^\s/?#]+(/\S*)?")
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True, slots=True)
class ServiceOptions(_Group):
    """What Inferno manages and how often."""

    namespace: str = _opt("inferno", "INFERNO_NAMESPACE", "Inferno's own namespace")
    watch_namespaces: tuple[str, ...] = _opt(
        (), "WATCH_NAMESPACE", "namespaces to manage, comma-separated (none: all)"
    )
    control_period: float = _opt(
        60.0, "INFERNO_CONTROL_PERIOD", "seconds between cycles; 0: only on POST /invoke"
    )
    cycle_deadline: float = _opt(
        30.0,
        "INFERNO_CYCLE_DEADLINE",
        "seconds from a cycle's start after which the actuator applies nothing more",
    )
    data_path: str = _opt("/etc/inferno/data", "INFERNO_DATA_PATH", "the static data directory")
    default_mode: str = _opt(
        "auto", "INFERNO_DEFAULT_MODE", "auto or recommend, for servers without the annotation"
    )
    gpu_node_label: str = _opt(
        "nvidia.com/gpu.product", "INFERNO_GPU_NODE_LABEL", "the node label of the GPU type"
    )
    max_replicas: int = _opt(
        1000, "INFERNO_MAX_REPLICAS", "the most replicas one server may be given"
    )
    http_timeout: float = _opt(
        30.0, "INFERNO_HTTP_TIMEOUT", "seconds, for the calls between the services"
    )

    def check(self) -> None:
        self._require(
            "control_period",
            self.control_period == 0 or 0.01 <= self.control_period <= 86400,
            "0 (only on POST /invoke) or 0.01 to 86400 seconds (>= 0)",
        )
        self._require(
            "cycle_deadline",
            _finite(self.cycle_deadline) and 0 < self.cycle_deadline <= 3600,
            "seconds in (0, 3600]",
        )
        self._require(
            "default_mode", self.default_mode in ("auto", "recommend"), "'auto' or 'recommend'"
        )
        self._require(
            "max_replicas", 1 <= self.max_replicas <= 1_000_000, "an integer in 1..1000000"
        )
        self._require(
            "http_timeout",
            _finite(self.http_timeout) and self.http_timeout > 0,
            "> 0 seconds",
        )


_SERVICES = ("controller", "collector", "optimizer", "actuator")


@dataclass(frozen=True, slots=True)
class Endpoints(_Group):
    """Where each service listens and where its siblings are."""

    # the collector, optimizer and actuator listen on the pod's loopback only: their callers are
    # their sibling containers; the controller listens on every interface (the Service's port)
    bind_host: str = _opt(
        "127.0.0.1",
        "INFERNO_BIND_HOST",
        "the address the collector, optimizer and actuator (and the all-in-one controller) bind",
    )
    controller_bind_host: str = _opt(
        "0.0.0.0", "CONTROLLER_BIND_HOST", "the address the controller binds"
    )
    metrics_port: int = _opt(
        0, "INFERNO_METRICS_PORT", "a sibling's metrics-only port on every interface (0: none)"
    )
    controller_host: str = _opt("127.0.0.1", "CONTROLLER_HOST", "where the controller is")
    controller_port: int = _opt(3300, "CONTROLLER_PORT", "the controller's port")
    collector_host: str = _opt("127.0.0.1", "COLLECTOR_HOST", "where the collector is")
    collector_port: int = _opt(3301, "COLLECTOR_PORT", "the collector's port")
    optimizer_host: str = _opt("127.0.0.1", "INFERNO_HOST", "where the optimizer is")
    optimizer_port: int = _opt(3302, "INFERNO_PORT", "the optimizer's port")
    actuator_host: str = _opt("127.0.0.1", "ACTUATOR_HOST", "where the actuator is")
    actuator_port: int = _opt(3303, "ACTUATOR_PORT", "the actuator's port")

    def check(self) -> None:
        for name in (*(f"{s}_port" for s in _SERVICES), "metrics_port"):
            self._require(name, 0 <= getattr(self, name) <= 65535, "a port number 0-65535")

    def url(self, service: str) -> str:
        """Base URL of a sibling service: controller, collector, optimizer or actuator."""
        if service not in _SERVICES:
            raise ValueError(f"unknown service {service!r}")
        return f"http://{getattr(self, f'{service}_host')}:{getattr(self, f'{service}_port')}"


@dataclass(frozen=True, slots=True)
class SecurityOptions(_Group):
    """Who may call what (docs/security.md)."""

    invoke_token: str = _opt(
        "",
        "INFERNO_INVOKE_TOKEN",
        "the token /invoke and /report require (at least 16 characters)",
        secret=True,
    )
    invoke_token_file: str = _opt(
        "", "INFERNO_INVOKE_TOKEN_FILE", "a file holding the invoke token, re-read when it changes"
    )
    internal_token_file: str = _opt(
        "",
        "INFERNO_INTERNAL_TOKEN_FILE",
        "the pod's internal token, created by the first container to start",
    )
    insecure: bool = _opt(False, "INFERNO_INSECURE", "no tokens at all: development only")
    max_body_bytes: int = _opt(
        4 * 1024 * 1024, "INFERNO_MAX_BODY_BYTES", "the largest request body a service reads"
    )

    def check(self) -> None:
        self._require(
            "max_body_bytes",
            1024 <= self.max_body_bytes <= 1 << 30,
            "a size in bytes between 1024 and 1073741824",
        )
        if self.invoke_token and self.invoke_token_file:
            raise SettingsError(
                "INFERNO_INVOKE_TOKEN and INFERNO_INVOKE_TOKEN_FILE are both set: expected one"
            )


@dataclass(frozen=True, slots=True)
class LeaderOptions(_Group):
    """Leader election: only the holder of a Lease in ``INFERNO_NAMESPACE`` runs cycles."""

    leader_election: bool = _opt(
        True, "INFERNO_LEADER_ELECTION", "only the holder of the Lease runs cycles"
    )
    lease_name: str = _opt("inferno-leader", "INFERNO_LEASE_NAME", "the Lease")
    lease_duration: float = _opt(
        15.0, "INFERNO_LEASE_DURATION", "seconds a silent holder keeps the Lease"
    )
    identity: str = _opt("", "INFERNO_IDENTITY", "this instance in the Lease (default: host, pid)")

    def check(self) -> None:
        self._require(
            "lease_duration",
            _finite(self.lease_duration) and 1 <= self.lease_duration <= 600,
            "seconds in [1, 600]",
        )
        self._require("lease_name", _DNS.fullmatch(self.lease_name) is not None, "a DNS label")


@dataclass(frozen=True, slots=True)
class PrometheusOptions(_Group):
    """Where the collector measures the load (docs/metrics.md); no URL: the load labels."""

    prometheus_url: str = _opt("", "PROMETHEUS_URL", "the Prometheus to read the load from")
    prometheus_token: str = _opt(
        "", "PROMETHEUS_TOKEN", "a bearer token for Prometheus", secret=True
    )
    prometheus_token_file: str = _opt(
        "", "PROMETHEUS_TOKEN_FILE", "a file holding that bearer token"
    )
    prometheus_ca_file: str = _opt("", "PROMETHEUS_CA_FILE", "a CA bundle for Prometheus")
    load_window: float = _opt(
        60.0, "INFERNO_LOAD_WINDOW", "seconds of history behind each measured rate"
    )
    tokens_in_metric: str = _opt(
        "vllm:prompt_tokens_total", "INFERNO_TOKENS_IN_METRIC", "the input-token counter"
    )
    tokens_out_metric: str = _opt(
        "vllm:generation_tokens_total", "INFERNO_TOKENS_OUT_METRIC", "the output-token counter"
    )
    tokens_requests_metric: str = _opt(
        "nv_inference_request_success",
        "INFERNO_TOKENS_REQUESTS_METRIC",
        "the request counter of the token means",
    )

    def check(self) -> None:
        self._require(
            "load_window", _finite(self.load_window) and self.load_window > 0, "> 0 seconds"
        )
        if self.prometheus_url:
            self._require(
                "prometheus_url",
                _URL.fullmatch(self.prometheus_url) is not None,
                "an http:// or https:// URL",
            )
        if self.prometheus_token and self.prometheus_token_file:
            raise SettingsError(
                "PROMETHEUS_TOKEN and PROMETHEUS_TOKEN_FILE are both set: expected one of them"
            )
        for name in ("tokens_in_metric", "tokens_out_metric", "tokens_requests_metric"):
            self._require(
                name, _METRIC.fullmatch(getattr(self, name)) is not None, "a Prometheus metric name"
            )


@dataclass(frozen=True, slots=True)
class TuningOptions(_Group):
    """How the online tuning's filters behave (docs/tuning.md). Fractions are of the base
    parameter (or of the predicted time)."""

    enabled: bool = _opt(
        True,
        "INFERNO_TUNING_ENABLED",
        "tune the profiles from the observations",
        flat="tuning_enabled",
    )
    bounds: float = _opt(
        4.0,
        "INFERNO_TUNING_BOUNDS",
        "a tuned θ stays within [base / bounds, base · bounds]",
        flat="tuning_bounds",
    )
    gate: float = _opt(
        0.999, "INFERNO_TUNING_GATE", "χ²(1) probability of the innovation gate", flat="tuning_gate"
    )
    process_noise: float = _opt(
        0.01,
        "INFERNO_TUNING_PROCESS_NOISE",
        "random-walk std per observed cycle, fraction of base",
        flat="tuning_process_noise",
    )
    measurement_noise: float = _opt(
        0.05,
        "INFERNO_TUNING_MEASUREMENT_NOISE",
        "observation std, fraction of the predicted time",
        flat="tuning_measurement_noise",
    )
    initial_uncertainty: float = _opt(
        0.5,
        "INFERNO_TUNING_INITIAL_UNCERTAINTY",
        "prior std (and after a reset), fraction of θ",
        flat="tuning_initial_uncertainty",
    )
    min_requests: float = _opt(
        20.0,
        "INFERNO_TUNING_MIN_REQUESTS",
        "requests in the window below which an observation is skipped",
        flat="tuning_min_requests",
    )
    reset_after: int = _opt(
        3,
        "INFERNO_TUNING_RESET_AFTER",
        "consecutive same-direction gate rejections before re-initialising",
        flat="tuning_reset_after",
    )

    def check(self) -> None:
        f = _finite
        self._require("bounds", f(self.bounds) and self.bounds > 1, "a finite number > 1 (bounds)")
        self._require("gate", f(self.gate) and 0 < self.gate < 1, "a number in (0, 1) (gate)")
        self._require(
            "process_noise",
            f(self.process_noise) and self.process_noise >= 0,
            "a finite number >= 0",
        )
        self._require(
            "measurement_noise",
            f(self.measurement_noise) and self.measurement_noise > 0,
            "a finite number > 0",
        )
        self._require(
            "initial_uncertainty",
            f(self.initial_uncertainty) and self.initial_uncertainty > 0,
            "a finite number > 0",
        )
        self._require(
            "min_requests", f(self.min_requests) and self.min_requests >= 0, "a finite number >= 0"
        )
        self._require("reset_after", self.reset_after >= 1, "an integer >= 1")

    @property
    def gate_threshold(self) -> float:
        """The χ²(1) quantile of ``gate``: (Φ⁻¹((1 + gate)/2))²."""
        return float(NormalDist().inv_cdf((1.0 + self.gate) / 2.0) ** 2)


@dataclass(frozen=True, slots=True)
class PlanOptions(_Group):
    """How decisions become patches (:mod:`inferno.cluster.plan`)."""

    gpu_resource: str = _opt(
        "nvidia.com/gpu", "INFERNO_GPU_RESOURCE", "the extended resource whose limit is set"
    )
    batch_env: str = _opt(
        "INFERNO_MAX_BATCH_SIZE", "INFERNO_BATCH_ENV", "the container variable of the batch size"
    )
    hpa_headroom: float = _opt(
        0.25, "INFERNO_HPA_HEADROOM", "HPA maxReplicas headroom above the decision"
    )
    batch_tolerance: float = _opt(
        0.25,
        "INFERNO_BATCH_TOLERANCE",
        "keep the running batch when a decision on the same GPU moves it by at most this",
    )

    def check(self) -> None:
        self._require(
            "hpa_headroom",
            _finite(self.hpa_headroom) and self.hpa_headroom >= 0,
            "a finite number >= 0",
        )
        self._require("batch_tolerance", 0 <= self.batch_tolerance < 1, "a fraction in [0, 1)")


@dataclass(frozen=True, slots=True)
class PolicyOptions(_Group):
    """The control policy around the optimizer (:mod:`inferno.control.policy`), the same in the
    cluster and in ``inferno simulate`` (a scenario's ``inferno`` policy sets these names)."""

    headroom: float = _opt(
        0.0, "INFERNO_POLICY_HEADROOM", "size each server for its measured load × (1 + headroom)"
    )
    forecast: bool = _opt(
        True,
        "INFERNO_FORECAST",
        "size for the rate forecast at the horizon plus a margin (false: the measured rate)",
    )
    startup_time: float = _opt(
        60.0,
        "INFERNO_STARTUP_TIME",
        "seconds a new replica takes to become ready (part of the forecast horizon), when its "
        "pods show none",
    )
    measure_startup: bool = _opt(
        True,
        "INFERNO_MEASURE_STARTUP",
        "measure each server's start-up from its pods' Ready conditions (false: the setting)",
    )
    startup_max: float = _opt(
        1800.0,
        "INFERNO_STARTUP_MAX",
        "seconds: a pod's scheduling-to-Ready longer than this is not counted as a start-up",
    )
    margin_z: float = _opt(
        1.0, "INFERNO_MARGIN_Z", "margin, in standard deviations of the forecast error"
    )
    max_margin: float = _opt(
        1.0, "INFERNO_MAX_MARGIN", "the margin never exceeds this fraction of the rate"
    )
    forecast_alpha: float = _opt(0.5, "INFERNO_FORECAST_ALPHA", "level smoothing, in (0, 1]")
    forecast_beta: float = _opt(0.2, "INFERNO_FORECAST_BETA", "trend smoothing, in [0, 1]")
    forecast_damping: float = _opt(
        0.9, "INFERNO_FORECAST_DAMPING", "trend damping per control period, in [0, 1]"
    )
    residual_halflife: float = _opt(
        600.0, "INFERNO_RESIDUAL_HALFLIFE", "seconds: half-life of the forecast error's variance"
    )
    forecast_season: float = _opt(
        0.0,
        "INFERNO_FORECAST_SEASON",
        "seconds: the load's seasonal period (86400: daily), learnt in 48 bins; 0: none",
    )
    drain_time: float = _opt(
        60.0, "INFERNO_DRAIN_TIME", "seconds within which a reported backlog is to be drained"
    )
    token_halflife: float = _opt(
        300.0,
        "INFERNO_TOKEN_HALFLIFE",
        "seconds: half-life of the smoothed tokens per request the batch size follows (0: none)",
    )
    stabilization_window: float = _opt(
        0.0,
        "INFERNO_SCALE_DOWN_WINDOW",
        "seconds: a server keeps the most replicas decided in this window (same GPU and batch)",
    )
    max_scale_up_pods: int = _opt(
        0, "INFERNO_MAX_SCALE_UP_PODS", "replicas one server may gain per cycle (0: no limit)"
    )
    max_scale_up_percent: float = _opt(
        0.0, "INFERNO_MAX_SCALE_UP_PERCENT", "… or this % of its replicas, the larger (0: none)"
    )
    max_scale_down_pods: int = _opt(
        0, "INFERNO_MAX_SCALE_DOWN_PODS", "replicas one server may lose per cycle (0: no limit)"
    )
    max_scale_down_percent: float = _opt(
        0.0, "INFERNO_MAX_SCALE_DOWN_PERCENT", "… or this % of its replicas, the larger (0: none)"
    )
    max_total_gpus: int = _opt(
        0, "INFERNO_MAX_TOTAL_GPUS", "GPUs all managed servers may hold together (0: no ceiling)"
    )
    switch_min_saving: float = _opt(
        0.1,
        "INFERNO_SWITCH_MIN_SAVING",
        "a server changes GPU type only when that saves at least this fraction of its cost",
    )
    switch_delay: float = _opt(
        60.0,
        "INFERNO_SWITCH_DELAY",
        "… and the optimizer has preferred the other type for this many seconds",
    )
    max_rollouts: int = _opt(
        0,
        "INFERNO_MAX_ROLLOUTS",
        "servers whose GPU type or batch (a rollout of every pod) may change per cycle (0: all)",
    )

    def check(self) -> None:
        self._require(
            "headroom", _finite(self.headroom) and 0 <= self.headroom <= 10, "a number in [0, 10]"
        )
        for name, lo, hi in (
            ("startup_time", 0.0, 86400.0),
            ("startup_max", 1.0, 86400.0),
            ("margin_z", 0.0, 10.0),
            ("max_margin", 0.0, 10.0),
            ("forecast_beta", 0.0, 1.0),
            ("forecast_damping", 0.0, 1.0),
            ("residual_halflife", 0.0, 86400.0),
            ("forecast_season", 0.0, 7 * 86400.0),
            ("token_halflife", 0.0, 86400.0),
        ):
            value = getattr(self, name)
            self._require(
                name, _finite(value) and lo <= value <= hi, f"a number in [{lo:g}, {hi:g}]"
            )
        self._require(
            "forecast_alpha",
            _finite(self.forecast_alpha) and 0 < self.forecast_alpha <= 1,
            "a number in (0, 1]",
        )
        self._require(
            "drain_time",
            _finite(self.drain_time) and 1 <= self.drain_time <= 86400,
            "seconds in [1, 86400]",
        )
        self._require(
            "stabilization_window",
            _finite(self.stabilization_window) and 0 <= self.stabilization_window <= 86400,
            "seconds in [0, 86400]",
        )
        self._require(
            "switch_min_saving",
            _finite(self.switch_min_saving) and 0 <= self.switch_min_saving < 1,
            "a fraction in [0, 1)",
        )
        self._require(
            "switch_delay",
            _finite(self.switch_delay) and 0 <= self.switch_delay <= 86400,
            "seconds in [0, 86400]",
        )
        for name in ("max_scale_up_pods", "max_scale_down_pods", "max_total_gpus", "max_rollouts"):
            self._require(name, 0 <= getattr(self, name) <= 1_000_000, "an integer in 0..1000000")
        for name in ("max_scale_up_percent", "max_scale_down_percent"):
            value = getattr(self, name)
            self._require(name, _finite(value) and 0 <= value <= 10_000, "a percentage >= 0")


_GROUPS: dict[str, type[_Group]] = {
    "service": ServiceOptions,
    "ports": Endpoints,
    "security": SecurityOptions,
    "leader": LeaderOptions,
    "prometheus": PrometheusOptions,
    "tuning": TuningOptions,
    "plan": PlanOptions,
    "policy": PolicyOptions,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the services read from their environment, by group."""

    service: ServiceOptions = field(default_factory=ServiceOptions)
    ports: Endpoints = field(default_factory=Endpoints)
    security: SecurityOptions = field(default_factory=SecurityOptions)
    leader: LeaderOptions = field(default_factory=LeaderOptions)
    prometheus: PrometheusOptions = field(default_factory=PrometheusOptions)
    tuning: TuningOptions = field(default_factory=TuningOptions)
    plan: PlanOptions = field(default_factory=PlanOptions)
    policy: PolicyOptions = field(default_factory=PolicyOptions)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``env`` (default: ``os.environ``); ``overrides`` (by a field's
        flat name, e.g. ``control_period=0`` or ``tuning_enabled=False``) win."""
        source = os.environ if env is None else env
        unknown = sorted(set(overrides) - set(_FLAT))
        if unknown:
            raise TypeError(f"unknown settings {unknown}")
        groups: dict[str, Any] = {}
        for group, kind in _GROUPS.items():
            values: dict[str, Any] = {}
            for f in fields(kind):
                raw = source.get(f.metadata["env"])
                if raw is not None and raw.strip() != "":
                    values[f.name] = _parse(f, raw.strip())
            for flat, (g, name) in _FLAT.items():
                if g == group and flat in overrides:
                    values[name] = overrides[flat]
            groups[group] = kind(**values)
        return cls(**groups)

    def url(self, service: str) -> str:
        """Base URL of a sibling service: controller, collector, optimizer or actuator."""
        return self.ports.url(service)

    def with_overrides(self, **overrides: Any) -> Settings:
        """These settings with some fields (by flat name) replaced, and checked again."""
        by_group: dict[str, dict[str, Any]] = {}
        for flat, value in overrides.items():
            if flat not in _FLAT:
                raise TypeError(f"unknown setting {flat!r}")
            group, name = _FLAT[flat]
            by_group.setdefault(group, {})[name] = value
        return replace(self, **{g: replace(getattr(self, g), **v) for g, v in by_group.items()})


def variables() -> list[tuple[str, str, str, Any, str]]:
    """Every variable: (group, field, variable, default, meaning)."""
    out = []
    for group, kind in _GROUPS.items():
        for f in fields(kind):
            out.append((group, f.name, f.metadata["env"], f.default, f.metadata["doc"]))
    return out


def _flat_names() -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    for group, kind in _GROUPS.items():
        for f in fields(kind):
            flat = f.metadata["flat"] or f.name
            if flat in names:
                raise AssertionError(f"two settings are called {flat!r}")
            names[flat] = (group, f.name)
    return names


_FLAT = _flat_names()

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _number(kind: Callable[[str], Any], env: str, raw: str) -> Any:
    try:
        return kind(raw)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise SettingsError(f"{env}={raw!r}: expected {noun}") from None


def _parse(f: Field[Any], raw: str) -> Any:
    env = f.metadata["env"]
    if f.type == "int":
        return _number(int, env, raw)
    if f.type == "float":
        return _number(float, env, raw)
    if f.type == "bool":
        text = raw.casefold()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise SettingsError(f"{env}={raw!r}: expected true or false")
    if f.type == "tuple[str, ...]":
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
