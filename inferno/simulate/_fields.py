"""The typed getters of the scenario parser (:mod:`._parse`), and the values of a load: a trace
(:meth:`_Fields.trace`, also for a traces file) and a token-length distribution
(:meth:`_Fields.length`). Every value is checked; the first bad one is an
:class:`~inferno.errors.InputError` naming the file and the field (``$.policies[1].hpa.target``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..data.limits import MAX_ARRIVAL_RATE, MAX_TOKENS
from ..emulator import (
    Bursts,
    Diurnal,
    Empirical,
    Exponential,
    Fixed,
    Lengths,
    LogNormal,
    Poisson,
    Replay,
    Steps,
    Trace,
    read_replay,
)
from ..errors import InputError
from .limits import MAX_LENGTH_CV, MAX_TIME_S

__all__ = ["LENGTH_KINDS", "TRACE_KINDS"]  # and the private parts of the scenario parser

TRACE_KINDS = ("poisson", "steps", "diurnal", "bursts", "replay")
LENGTH_KINDS = ("fixed", "exponential", "lognormal", "empirical")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _key_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if _IDENT.match(key) else f"{parent}[{json.dumps(key)}]"


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, int) and abs(value) > 10**18:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_YAML_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _yaml_hint(value: object) -> str:
    """Why a number such as ``1e9`` is a string: YAML 1.1 wants a dot and a signed exponent."""
    if isinstance(value, str) and _YAML_EXPONENT.match(value.strip()):
        return " (YAML reads this as text: write it as 1.0e+9, with a dot and a sign)"
    return ""


class _Fields:
    """Reads typed values out of a parsed document; errors name ``source`` and the field."""

    def __init__(self, source: str, base: Path) -> None:
        self.source = source
        self.base = base

    def error(self, path: str, problem: str) -> InputError:
        return InputError(problem, source=self.source, path=path)

    # typed getters ------------------------------------------------------------------------------

    def mapping(self, value: object, path: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_show(value)}")
        for k in value:
            if not isinstance(k, str):
                raise self.error(path, f"keys must be strings, got {_show(k)}")
        return value

    def only(self, obj: Mapping[str, object], path: str, allowed: Sequence[str]) -> None:
        for k in obj:
            if k not in allowed:
                raise self.error(
                    _key_path(path, k), f"unknown field; expected one of {', '.join(allowed)}"
                )

    def number(
        self,
        obj: Mapping[str, object],
        key: str,
        path: str,
        default: float | None = None,
        *,
        maximum: float,
        minimum: float | None = None,
        above: float | None = None,
        required: bool = False,
    ) -> float:
        where = _key_path(path, key)
        value = obj.get(key)
        if value is None:
            if required or default is None:
                raise self.error(where, "required field is missing")
            return default
        return self.bounded(value, where, maximum=maximum, minimum=minimum, above=above)

    def bounded(
        self,
        value: object,
        where: str,
        *,
        maximum: float,
        minimum: float | None = None,
        above: float | None = None,
    ) -> float:
        """``value``, checked to be a finite number within the bounds."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(where, f"expected a number, got {_show(value)}{_yaml_hint(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(where, f"expected a finite number, got {value!r}")
        # an int compares exactly with the bounds, however large (float() could overflow)
        if above is not None and value <= above:
            raise self.error(where, f"must be > {above:g}, got {_show(value)}")
        if minimum is not None and value < minimum:
            raise self.error(where, f"must be ≥ {minimum:g}, got {_show(value)}")
        if value > maximum:
            raise self.error(where, f"must be ≤ {maximum:g}, got {_show(value)}")
        return float(value)

    def integer(
        self,
        obj: Mapping[str, object],
        key: str,
        path: str,
        default: int | None = None,
        *,
        maximum: int,
        minimum: int | None = None,
    ) -> int | None:
        where = _key_path(path, key)
        value = obj.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise self.error(where, f"expected an integer, got {_show(value)}")
        if minimum is not None and value < minimum:
            raise self.error(where, f"must be ≥ {minimum}, got {_show(value)}")
        if value > maximum:
            raise self.error(where, f"must be ≤ {maximum}, got {_show(value)}")
        return value

    def boolean(self, obj: Mapping[str, object], key: str, path: str, default: bool) -> bool:
        value = obj.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(_key_path(path, key), f"expected true or false, got {_show(value)}")
        return value

    def choice(
        self, obj: Mapping[str, object], key: str, path: str, allowed: Sequence[str], default: str
    ) -> str:
        value = obj.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or value not in allowed:
            raise self.error(
                _key_path(path, key), f"expected one of {', '.join(allowed)}, got {_show(value)}"
            )
        return value

    # traces -------------------------------------------------------------------------------------

    def trace(
        self,
        value: object,
        path: str,
        name: str,
        base: float,
        replays: dict[Path, dict[str, Replay]],
    ) -> Trace:
        """The trace ``value`` describes for server ``name`` (base rate ``base`` req/min)."""
        obj = self.mapping(value, path)
        kind = obj.get("kind")
        if kind is None:
            raise self.error(
                f"{path}.kind", f"required field is missing ({', '.join(TRACE_KINDS)})"
            )
        if kind not in TRACE_KINDS:
            raise self.error(
                f"{path}.kind",
                f"unknown trace kind {_show(kind)}; expected one of {', '.join(TRACE_KINDS)}",
            )
        if kind == "replay":
            self.only(obj, path, ("kind", "file", "server"))
            return self.replay(obj, path, name, replays)
        relative = self.boolean(obj, "relative", path, False)
        scale = base if relative else 1.0
        unit = "× base" if relative else "req/min"

        def rate(key: str, default: float | None) -> float:
            d = None if default is None else (1.0 if relative else default)
            r = self.number(obj, key, path, d, minimum=0.0, maximum=MAX_ARRIVAL_RATE) * scale
            return self.rate_bound(r, _key_path(path, key))

        try:
            if kind == "poisson":
                self.only(obj, path, ("kind", "relative", "rate"))
                r = rate("rate", base)
                return Poisson(r)
            if kind == "steps":
                self.only(obj, path, ("kind", "relative", "steps"))
                steps = self.steps(obj.get("steps"), f"{path}.steps", scale)
                return Steps(steps)
            if kind == "diurnal":
                self.only(obj, path, ("kind", "relative", "mean", "amplitude", "period", "phase"))
                mean = rate("mean", base)
                amp = self.number(obj, "amplitude", path, 0.5, minimum=0.0, maximum=1.0)
                per = self.number(obj, "period", path, above=0.0, maximum=MAX_TIME_S, required=True)
                phase = self.number(
                    obj, "phase", path, 0.0, minimum=-MAX_TIME_S, maximum=MAX_TIME_S
                )
                return Diurnal(mean, amp, per, phase)
            self.only(obj, path, ("kind", "relative", "base", "burst", "base_mean", "burst_mean"))
            lo = rate("base", base)
            if obj.get("burst") is None:
                raise self.error(f"{path}.burst", f"required field is missing ({unit})")
            hi = rate("burst", None)
            base_mean = self.number(obj, "base_mean", path, 300.0, above=0.0, maximum=MAX_TIME_S)
            burst_mean = self.number(obj, "burst_mean", path, 60.0, above=0.0, maximum=MAX_TIME_S)
            return Bursts(lo, hi, base_mean, burst_mean)
        except ValueError as exc:  # a check of the emulator's own
            raise self.error(path, str(exc)) from None

    def steps(self, value: object, path: str, scale: float) -> list[tuple[float, float]]:
        if not isinstance(value, list) or not value:
            raise self.error(
                path, f"expected a non-empty list of [start_s, rate] pairs, got {_show(value)}"
            )
        out: list[tuple[float, float]] = []
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            if not isinstance(item, list | tuple) or len(item) != 2:
                raise self.error(where, f"expected [start_s, rate], got {_show(item)}")
            start = self.bounded(item[0], f"{where}[0]", minimum=-MAX_TIME_S, maximum=MAX_TIME_S)
            if isinstance(item[1], int | float) and not isinstance(item[1], bool) and item[1] < 0:
                raise self.error(f"{where}[1]", f"a rate must be ≥ 0, got {_show(item[1])}")
            r = self.bounded(item[1], f"{where}[1]", minimum=0.0, maximum=MAX_ARRIVAL_RATE)
            if out and start <= out[-1][0]:
                raise self.error(
                    f"{where}[0]", f"starts must increase ({start:g} after {out[-1][0]:g})"
                )
            out.append((start, self.rate_bound(r * scale, f"{where}[1]")))
        return out

    def rate_bound(self, rate: float, where: str) -> float:
        """A rate (req/min) after a relative one is scaled by the server's arrivalRate."""
        if rate > MAX_ARRIVAL_RATE:
            raise self.error(
                where, f"the rate is {rate:g} req/min, more than the limit of {MAX_ARRIVAL_RATE:g}"
            )
        return rate

    def replay(
        self,
        obj: Mapping[str, object],
        path: str,
        server: str,
        replays: dict[Path, dict[str, Replay]],
    ) -> Trace:
        file = obj.get("file")
        if not isinstance(file, str) or not file:
            raise self.error(f"{path}.file", f"expected a CSV file name, got {_show(file)}")
        name = obj.get("server", server)
        if not isinstance(name, str):
            raise self.error(f"{path}.server", f"expected a server name, got {_show(name)}")
        full = (self.base / file).resolve()
        if full not in replays:
            if not full.is_file():
                raise self.error(f"{path}.file", f"replay file {str(full)!r} not found")
            replays[full] = read_replay(full)
        found = replays[full]
        if name not in found:
            raise self.error(
                f"{path}.server",
                f"no requests of server {name!r} in {file} (it has: {', '.join(found) or 'none'})",
            )
        return found[name]

    # token lengths ------------------------------------------------------------------------------

    def length(self, value: object, path: str, mean: float) -> Lengths:
        if value is None:
            return Fixed(int(round(mean)))
        if isinstance(value, int | float) and not isinstance(value, bool):
            count = self.bounded(value, path, minimum=0.0, maximum=MAX_TOKENS)
            if not count.is_integer():
                raise self.error(path, f"expected a whole number of tokens ≥ 0, got {value!r}")
            return Fixed(int(count))
        obj = self.mapping(value, path)
        kind = self.choice(obj, "kind", path, LENGTH_KINDS, "")
        if not kind:
            raise self.error(
                f"{path}.kind", f"required field is missing ({', '.join(LENGTH_KINDS)})"
            )
        if kind == "fixed":
            self.only(obj, path, ("kind", "n"))
            n = self.integer(obj, "n", path, int(round(mean)), minimum=0, maximum=int(MAX_TOKENS))
            assert n is not None
            return Fixed(n)
        if kind == "exponential":
            self.only(obj, path, ("kind", "mean", "max"))
            m = self.number(
                obj, "mean", path, mean if mean > 0 else None, above=0.0, maximum=MAX_TOKENS
            )
            return Exponential(
                m, self.integer(obj, "max", path, None, minimum=1, maximum=int(MAX_TOKENS))
            )
        if kind == "lognormal":
            self.only(obj, path, ("kind", "mean", "cv", "max"))
            m = self.number(
                obj, "mean", path, mean if mean > 0 else None, above=0.0, maximum=MAX_TOKENS
            )
            cv = self.number(obj, "cv", path, None, above=0.0, maximum=MAX_LENGTH_CV)
            return LogNormal(
                m, cv, self.integer(obj, "max", path, None, minimum=1, maximum=int(MAX_TOKENS))
            )
        self.only(obj, path, ("kind", "values"))
        values = obj.get("values")
        if not isinstance(values, list) or not values:
            raise self.error(f"{path}.values", f"expected a non-empty list, got {_show(values)}")
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_TOKENS:
                raise self.error(
                    f"{path}.values[{i}]",
                    f"expected an integer in [0, {MAX_TOKENS:g}], got {_show(v)}",
                )
        return Empirical(values)
