"""The settings tree, :class:`Settings`: one field per option group, read from the environment
(and keyword overrides) by :meth:`Settings.from_env`; :func:`variables` lists every variable."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any

from ._group import Group, SettingsError
from .control import OptimizerOptions, PlanOptions, PolicyOptions
from .mig import MigApplyOptions
from .prometheus import PrometheusOptions
from .service import Endpoints, LeaderOptions, SecurityOptions, ServiceOptions
from .tuning import TuningOptions

__all__ = ["Settings", "variables"]


_GROUPS: dict[str, type[Group]] = {
    "service": ServiceOptions,
    "ports": Endpoints,
    "security": SecurityOptions,
    "leader": LeaderOptions,
    "prometheus": PrometheusOptions,
    "tuning": TuningOptions,
    "plan": PlanOptions,
    "policy": PolicyOptions,
    "optimizer": OptimizerOptions,
    "mig": MigApplyOptions,
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
    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)
    mig: MigApplyOptions = field(default_factory=MigApplyOptions)

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
