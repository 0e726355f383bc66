"""One settings object, read once from the environment (and command-line overrides).

Every value is checked when it is read; a bad one raises :class:`SettingsError` naming the
variable, the value and what was expected, so a misconfigured pod fails at start-up, loudly.
Environment names follow the Go original's where it had one (``INFERNO_CONTROL_PERIOD``,
``COLLECTOR_PORT``, ``INFERNO_PORT`` for the optimizer...).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from .errors import InfernoError

__all__ = ["Settings", "SettingsError"]

T = TypeVar("T")


class SettingsError(InfernoError):
    """A setting with a bad value."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the services read from their environment."""

    namespace: str = field(default="inferno", metadata={"env": "INFERNO_NAMESPACE"})
    watch_namespaces: tuple[str, ...] = field(default=(), metadata={"env": "WATCH_NAMESPACE"})
    control_period: float = field(default=60.0, metadata={"env": "INFERNO_CONTROL_PERIOD"})
    data_path: str = field(default="/etc/inferno/data", metadata={"env": "INFERNO_DATA_PATH"})
    # the collector, optimizer and actuator listen on the pod's loopback only: their callers are
    # their sibling containers; the controller listens on every interface (the Service's port)
    bind_host: str = field(default="127.0.0.1", metadata={"env": "INFERNO_BIND_HOST"})
    controller_bind_host: str = field(default="0.0.0.0", metadata={"env": "CONTROLLER_BIND_HOST"})
    # a sibling's metrics-only port on every interface (GET /metrics and nothing else; 0: none)
    metrics_port: int = field(default=0, metadata={"env": "INFERNO_METRICS_PORT"})
    controller_host: str = field(default="127.0.0.1", metadata={"env": "CONTROLLER_HOST"})
    controller_port: int = field(default=3300, metadata={"env": "CONTROLLER_PORT"})
    collector_host: str = field(default="127.0.0.1", metadata={"env": "COLLECTOR_HOST"})
    collector_port: int = field(default=3301, metadata={"env": "COLLECTOR_PORT"})
    optimizer_host: str = field(default="127.0.0.1", metadata={"env": "INFERNO_HOST"})
    optimizer_port: int = field(default=3302, metadata={"env": "INFERNO_PORT"})
    actuator_host: str = field(default="127.0.0.1", metadata={"env": "ACTUATOR_HOST"})
    actuator_port: int = field(default=3303, metadata={"env": "ACTUATOR_PORT"})
    invoke_token: str = field(default="", repr=False, metadata={"env": "INFERNO_INVOKE_TOKEN"})
    # a file holding the invoke token, re-read when it changes (a mounted Secret: rotation
    # needs no restart); takes the place of INFERNO_INVOKE_TOKEN
    invoke_token_file: str = field(default="", metadata={"env": "INFERNO_INVOKE_TOKEN_FILE"})
    # the pod's internal token, shared by the four containers through an emptyDir: created by
    # whichever container starts first; "" in one process (all-in-one): made in memory
    internal_token_file: str = field(default="", metadata={"env": "INFERNO_INTERNAL_TOKEN_FILE"})
    # no authentication at all (no invoke token, no internal token): local development only
    insecure: bool = field(default=False, metadata={"env": "INFERNO_INSECURE"})
    max_body_bytes: int = field(default=4 * 1024 * 1024, metadata={"env": "INFERNO_MAX_BODY_BYTES"})
    # seconds from a cycle's start after which the actuator applies nothing more
    cycle_deadline: float = field(default=30.0, metadata={"env": "INFERNO_CYCLE_DEADLINE"})
    # the most replicas one server may be given (a decision above is refused by the actuator)
    max_replicas: int = field(default=1000, metadata={"env": "INFERNO_MAX_REPLICAS"})
    # only the holder of a coordination.k8s.io Lease in INFERNO_NAMESPACE runs cycles
    leader_election: bool = field(default=True, metadata={"env": "INFERNO_LEADER_ELECTION"})
    lease_name: str = field(default="inferno-leader", metadata={"env": "INFERNO_LEASE_NAME"})
    lease_duration: float = field(default=15.0, metadata={"env": "INFERNO_LEASE_DURATION"})
    # who this instance is in the Lease (default: the host name and the process id)
    identity: str = field(default="", metadata={"env": "INFERNO_IDENTITY"})
    http_timeout: float = field(default=30.0, metadata={"env": "INFERNO_HTTP_TIMEOUT"})
    default_mode: str = field(default="auto", metadata={"env": "INFERNO_DEFAULT_MODE"})
    gpu_node_label: str = field(
        default="nvidia.com/gpu.product", metadata={"env": "INFERNO_GPU_NODE_LABEL"}
    )
    gpu_resource: str = field(default="nvidia.com/gpu", metadata={"env": "INFERNO_GPU_RESOURCE"})
    hpa_headroom: float = field(default=0.25, metadata={"env": "INFERNO_HPA_HEADROOM"})
    # keep the running batch size when a decision moves it by at most this fraction (same GPU)
    batch_tolerance: float = field(default=0.25, metadata={"env": "INFERNO_BATCH_TOLERANCE"})
    batch_env: str = field(default="INFERNO_MAX_BATCH_SIZE", metadata={"env": "INFERNO_BATCH_ENV"})
    # the load from Prometheus (docs/metrics.md); no URL: the load labels are used
    prometheus_url: str = field(default="", metadata={"env": "PROMETHEUS_URL"})
    prometheus_token: str = field(default="", repr=False, metadata={"env": "PROMETHEUS_TOKEN"})
    prometheus_token_file: str = field(default="", metadata={"env": "PROMETHEUS_TOKEN_FILE"})
    prometheus_ca_file: str = field(default="", metadata={"env": "PROMETHEUS_CA_FILE"})
    load_window: float = field(default=60.0, metadata={"env": "INFERNO_LOAD_WINDOW"})
    tokens_in_metric: str = field(
        default="vllm:prompt_tokens_total", metadata={"env": "INFERNO_TOKENS_IN_METRIC"}
    )
    tokens_out_metric: str = field(
        default="vllm:generation_tokens_total", metadata={"env": "INFERNO_TOKENS_OUT_METRIC"}
    )
    tokens_requests_metric: str = field(
        default="nv_inference_request_success", metadata={"env": "INFERNO_TOKENS_REQUESTS_METRIC"}
    )
    # online tuning of the profiles from the observations (docs/tuning.md); the optimizer reads them
    tuning_enabled: bool = field(default=True, metadata={"env": "INFERNO_TUNING_ENABLED"})
    tuning_bounds: float = field(default=4.0, metadata={"env": "INFERNO_TUNING_BOUNDS"})
    tuning_gate: float = field(default=0.999, metadata={"env": "INFERNO_TUNING_GATE"})
    tuning_process_noise: float = field(
        default=0.01, metadata={"env": "INFERNO_TUNING_PROCESS_NOISE"}
    )
    tuning_measurement_noise: float = field(
        default=0.05, metadata={"env": "INFERNO_TUNING_MEASUREMENT_NOISE"}
    )
    tuning_initial_uncertainty: float = field(
        default=0.5, metadata={"env": "INFERNO_TUNING_INITIAL_UNCERTAINTY"}
    )
    tuning_min_requests: float = field(
        default=20.0, metadata={"env": "INFERNO_TUNING_MIN_REQUESTS"}
    )
    tuning_reset_after: int = field(default=3, metadata={"env": "INFERNO_TUNING_RESET_AFTER"})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``env`` (default: ``os.environ``); ``overrides`` win."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = source.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _PARSERS[f.name](name, raw.strip())
        settings = cls(**values)
        settings = replace(settings, **overrides) if overrides else settings
        settings.check()
        return settings

    def check(self) -> None:
        """Cross-field and range checks (also for values given in code)."""
        _require(
            self.control_period >= 0, "INFERNO_CONTROL_PERIOD", self.control_period, ">= 0 seconds"
        )
        _require(self.http_timeout > 0, "INFERNO_HTTP_TIMEOUT", self.http_timeout, "> 0 seconds")
        _require(
            self.hpa_headroom >= 0 and math.isfinite(self.hpa_headroom),
            "INFERNO_HPA_HEADROOM",
            self.hpa_headroom,
            "a finite number >= 0",
        )
        _require(
            1024 <= self.max_body_bytes <= 1 << 30,
            "INFERNO_MAX_BODY_BYTES",
            self.max_body_bytes,
            "a size in bytes between 1024 and 1073741824",
        )
        _require(
            0 < self.cycle_deadline <= 3600 and math.isfinite(self.cycle_deadline),
            "INFERNO_CYCLE_DEADLINE",
            self.cycle_deadline,
            "seconds in (0, 3600]",
        )
        _require(
            1 <= self.max_replicas <= 1_000_000,
            "INFERNO_MAX_REPLICAS",
            self.max_replicas,
            "an integer in 1..1000000",
        )
        _require(
            1 <= self.lease_duration <= 600,
            "INFERNO_LEASE_DURATION",
            self.lease_duration,
            "seconds in [1, 600]",
        )
        _require(
            _DNS.fullmatch(self.lease_name) is not None,
            "INFERNO_LEASE_NAME",
            self.lease_name,
            "a DNS label",
        )
        if self.invoke_token and self.invoke_token_file:
            raise SettingsError(
                "INFERNO_INVOKE_TOKEN and INFERNO_INVOKE_TOKEN_FILE are both set: expected one"
            )
        _require(
            self.control_period == 0 or 0.01 <= self.control_period <= 86400,
            "INFERNO_CONTROL_PERIOD",
            self.control_period,
            "0 (only on POST /invoke) or 0.01 to 86400 seconds",
        )
        _require(
            0 <= self.batch_tolerance < 1,
            "INFERNO_BATCH_TOLERANCE",
            self.batch_tolerance,
            "a fraction in [0, 1)",
        )
        _require(
            self.default_mode in ("auto", "recommend"),
            "INFERNO_DEFAULT_MODE",
            self.default_mode,
            "'auto' or 'recommend'",
        )
        for env, port in (
            ("CONTROLLER_PORT", self.controller_port),
            ("COLLECTOR_PORT", self.collector_port),
            ("INFERNO_PORT", self.optimizer_port),
            ("ACTUATOR_PORT", self.actuator_port),
            ("INFERNO_METRICS_PORT", self.metrics_port),
        ):
            _require(0 <= port <= 65535, env, port, "a port number 0-65535")
        _require(self.load_window > 0, "INFERNO_LOAD_WINDOW", self.load_window, "> 0 seconds")
        if self.prometheus_url:
            _require(
                _URL.fullmatch(self.prometheus_url) is not None,
                "PROMETHEUS_URL",
                self.prometheus_url,
                "an http:// or https:// URL",
            )
        if self.prometheus_token and self.prometheus_token_file:
            raise SettingsError(
                "PROMETHEUS_TOKEN and PROMETHEUS_TOKEN_FILE are both set: expected one of them"
            )
        for env, name in (
            ("INFERNO_TOKENS_IN_METRIC", self.tokens_in_metric),
            ("INFERNO_TOKENS_OUT_METRIC", self.tokens_out_metric),
            ("INFERNO_TOKENS_REQUESTS_METRIC", self.tokens_requests_metric),
        ):
            _require(_METRIC.fullmatch(name) is not None, env, name, "a Prometheus metric name")
        for env, value, ok, expected in (
            ("INFERNO_TUNING_BOUNDS", self.tuning_bounds, self.tuning_bounds > 1, "a factor > 1"),
            ("INFERNO_TUNING_GATE", self.tuning_gate, 0 < self.tuning_gate < 1, "in (0, 1)"),
            (
                "INFERNO_TUNING_PROCESS_NOISE",
                self.tuning_process_noise,
                self.tuning_process_noise >= 0,
                ">= 0",
            ),
            (
                "INFERNO_TUNING_MEASUREMENT_NOISE",
                self.tuning_measurement_noise,
                self.tuning_measurement_noise > 0,
                "> 0",
            ),
            (
                "INFERNO_TUNING_INITIAL_UNCERTAINTY",
                self.tuning_initial_uncertainty,
                self.tuning_initial_uncertainty > 0,
                "> 0",
            ),
            (
                "INFERNO_TUNING_MIN_REQUESTS",
                self.tuning_min_requests,
                self.tuning_min_requests >= 0,
                ">= 0",
            ),
            (
                "INFERNO_TUNING_RESET_AFTER",
                self.tuning_reset_after,
                self.tuning_reset_after >= 1,
                ">= 1",
            ),
        ):
            _require(ok and math.isfinite(value), env, value, f"a finite number {expected}")

    def url(self, service: str) -> str:
        """Base URL of a sibling service: controller, collector, optimizer or actuator."""
        host = getattr(self, f"{service}_host")
        port = getattr(self, f"{service}_port")
        return f"http://{host}:{port}"


_DNS = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_URL = re.compile(r"https?://[^\s/?#]+(/\S*)?")
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _require(ok: bool, env: str, value: object, expected: str) -> None:
    if not ok:
        raise SettingsError(f"{env}={value!r}: expected {expected}")


def _number(kind: Callable[[str], T]) -> Callable[[str, str], T]:
    def parse(env: str, raw: str) -> T:
        try:
            return kind(raw)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise SettingsError(f"{env}={raw!r}: expected {noun}") from None

    return parse


def _text(env: str, raw: str) -> str:
    return raw


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _boolean(env: str, raw: str) -> bool:
    text = raw.casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"{env}={raw!r}: expected true or false")


def _names(env: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    f.name: (
        _number(int)
        if f.type == "int"
        else _number(float)
        if f.type == "float"
        else _boolean
        if f.type == "bool"
        else _names
        if f.name == "watch_namespaces"
        else _text
    )
    for f in fields(Settings)
}
