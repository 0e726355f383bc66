"""One settings object, read once from the environment (and command-line overrides).

Every value is checked when it is read; a bad one raises :class:`SettingsError` naming the
variable, the value and what was expected, so a misconfigured pod fails at start-up, loudly.
Environment names follow the Go original's where it had one (``INFERNO_CONTROL_PERIOD``,
``COLLECTOR_PORT``, ``INFERNO_PORT`` for the optimizer...).
"""

from __future__ import annotations

import os
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
    bind_host: str = field(default="0.0.0.0", metadata={"env": "INFERNO_BIND_HOST"})
    controller_host: str = field(default="localhost", metadata={"env": "CONTROLLER_HOST"})
    controller_port: int = field(default=3300, metadata={"env": "CONTROLLER_PORT"})
    collector_host: str = field(default="localhost", metadata={"env": "COLLECTOR_HOST"})
    collector_port: int = field(default=3301, metadata={"env": "COLLECTOR_PORT"})
    optimizer_host: str = field(default="localhost", metadata={"env": "INFERNO_HOST"})
    optimizer_port: int = field(default=3302, metadata={"env": "INFERNO_PORT"})
    actuator_host: str = field(default="localhost", metadata={"env": "ACTUATOR_HOST"})
    actuator_port: int = field(default=3303, metadata={"env": "ACTUATOR_PORT"})
    invoke_token: str = field(default="", metadata={"env": "INFERNO_INVOKE_TOKEN"})
    http_timeout: float = field(default=30.0, metadata={"env": "INFERNO_HTTP_TIMEOUT"})
    default_mode: str = field(default="auto", metadata={"env": "INFERNO_DEFAULT_MODE"})
    gpu_node_label: str = field(
        default="nvidia.com/gpu.product", metadata={"env": "INFERNO_GPU_NODE_LABEL"}
    )
    gpu_resource: str = field(default="nvidia.com/gpu", metadata={"env": "INFERNO_GPU_RESOURCE"})
    hpa_headroom: float = field(default=0.25, metadata={"env": "INFERNO_HPA_HEADROOM"})
    batch_env: str = field(default="INFERNO_MAX_BATCH_SIZE", metadata={"env": "INFERNO_BATCH_ENV"})

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
        _require(self.hpa_headroom >= 0, "INFERNO_HPA_HEADROOM", self.hpa_headroom, ">= 0")
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
        ):
            _require(0 <= port <= 65535, env, port, "a port number 0-65535")

    def url(self, service: str) -> str:
        """Base URL of a sibling service: controller, collector, optimizer or actuator."""
        host = getattr(self, f"{service}_host")
        port = getattr(self, f"{service}_port")
        return f"http://{host}:{port}"


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


def _names(env: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    f.name: (
        _number(int)
        if f.type == "int"
        else _number(float)
        if f.type == "float"
        else _names
        if f.name == "watch_namespaces"
        else _text
    )
    for f in fields(Settings)
}
