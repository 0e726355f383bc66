"""Scenario files for ``inferno simulate``: read, validate, resolve against the system data.

A scenario is a YAML or JSON mapping (``.json`` files are read as JSON, anything else as YAML).
Times are seconds, rates requests per minute (as in ``server-data.json``). Every key is checked:
an unknown key, a wrong type or a value out of range raises :class:`~inferno.errors.InputError`
naming the scenario file and the field (``$.policies[1].hpa.target``); every number is finite
and bounded (:mod:`inferno.simulate.limits`, :mod:`inferno.data.limits`). Only ``system`` and
``duration`` are required::

    system: ../large            # the system data directory, relative to the scenario file
    duration: 600               # simulated seconds (> 0)
    seed: 1                     # default 0: one seed for arrivals, tokens, routing, noise
    control_period: 30          # s between control steps (default 30)
    startup_delay: 60           # s a new replica takes to become ready (default 60)
    router: random              # random (default) | round-robin | least-loaded
    service: deterministic      # deterministic (default) | exponential iteration times
    max_queue: null             # waiting room per replica; null (default): unbounded
    servers: [Premium-llama_7b] # the servers of server-data.json to simulate (default: all)
    initial: inferno            # inferno (default) | peak: how the replicas start
    traces:                     # per server name, or ``default`` for the others
      default: {kind: poisson}  # default: Poisson at the server's arrivalRate
      Premium-llama_7b: {kind: steps, steps: [[0, 120], [120, 360], [300, 120]]}
    tokens:                     # per server name, or ``default``
      default: {in: 0, out: {kind: exponential}}
    metrics: {window: 30, noise: 0.05}
    sizing: {quantile: 0.99}    # optional: size on this quantile (every policy that sizes)
    policies:                   # default: [inferno, static, hpa, queue]
      - inferno                       # or {inferno: {headroom: 0.1}}
      - static
      - hpa: {target: 0.7, tolerance: 0.1, stabilization_window: 300}
      - queue: {target_per_replica: 16}

Traces (``kind`` is required; rates default to the server's ``arrivalRate``; with
``relative: true`` every rate is a multiple of it instead):

- ``poisson``: ``rate``;
- ``steps``: ``steps: [[start_s, rate], ...]``, starts increasing (rate 0 before the first);
- ``diurnal``: ``mean``, ``amplitude`` (0–1, default 0.5), ``period`` (s, required),
  ``phase`` (s, default 0);
- ``bursts``: ``base``, ``burst`` (required), ``base_mean``, ``burst_mean`` (mean sojourns, s,
  default 300 and 60);
- ``replay``: ``file`` (a CSV of ``timestamp, server, input_tokens, output_tokens``, relative to
  the scenario file) and ``server`` (the name in the CSV, default the server's own).

Token lengths (``in``, ``out``): a number (every request has that many), ``{kind: fixed, n}``,
``{kind: exponential, mean}`` (mean default: the server's average) or ``{kind: empirical,
values: [...]}``. Default: fixed at the server's ``avgInTokens``/``avgOutTokens`` (``avgLength``
for G0 data, which is the output length).

Metrics (what the policies measure, never the ground truth): ``window`` (s, default the control
period) over which rates and means are taken, ``noise`` (relative standard deviation of the
multiplicative, mean-one log-normal noise on each measured value, default 0.05).

Sizing: by default the optimizer applies the system's own rules (for G0 data Inferno's
``slo-ttw`` rule on the mean wait, which lets about 5% of requests wait longer). ``quantile: q``
sizes every ``slo-ttw``, ``slo-ttft`` and ``slo-latency`` target on the true q-quantile instead
(``slo-*-quantile: q`` and ``exactWaitQuantile``), for every policy that uses the optimizer (the
initial allocation, static, inferno); the targets requests are judged against do not change.

Policies: a name, or a one-key mapping from the name to its options (every option optional;
``label`` names a second instance of the same policy):

- ``inferno``: ``headroom`` (default 0): size for the measured rate × (1 + headroom);
  ``batch_tolerance`` (default 0.25): keep the running batch size when the optimizer keeps the
  accelerator and moves the batch by at most this fraction (a new batch size restarts every
  replica, and the memory-bound batch follows the measured token count, noise included).
- ``static``: the allocation the optimizer gives for the peak rate of each server's trace over the
  run, never changed. ``headroom`` as above.
- ``hpa``: the Kubernetes HPA algorithm on utilisation (busy/ready replicas; ``metric: batch``
  uses the batch occupancy, requests in service / (ready replicas × batch size)): ``target``
  (default 0.7), ``tolerance`` (0.1), ``stabilization_window`` (s, 300, for scale-down),
  ``min_replicas`` (default the server's minimum), ``max_replicas`` (default the static policy's
  replicas for the server).
- ``queue``: a KEDA-style scaler on requests held (waiting + in service): ``target_per_replica``
  (default: the requests a replica holds on average at the initial allocation, as the model
  predicts it — the scaler is tuned to keep Inferno's initial operating point), ``tolerance``,
  ``stabilization_window``, ``min_replicas``, ``max_replicas`` as for ``hpa``.

HPA and queue scalers keep the accelerator and batch of the initial allocation.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from ..control.optimize import read_static_data
from ..data import load_system
from ..data.documents import read_document
from ..data.limits import MAX_ARRIVAL_RATE, MAX_COUNT, MAX_TOKENS
from ..emulator import (
    ROUTERS,
    Bursts,
    Diurnal,
    Empirical,
    Exponential,
    Fixed,
    Lengths,
    Poisson,
    Replay,
    Router,
    Service,
    Steps,
    Trace,
    read_replay,
)
from ..errors import InputError
from ..model.profiles import BatchProfile
from ..settings import PolicyOptions, Settings, SettingsError
from ..system import Server, System
from .limits import (
    MAX_DURATION_S,
    MAX_FACTOR,
    MAX_SEED,
    MAX_TIME_S,
    MIN_CONTROL_PERIOD_S,
)

__all__ = [
    "DEFAULT_POLICIES",
    "INFERNO_SETTINGS",
    "POLICY_KINDS",
    "SWEEP_SEPARATOR",
    "HpaOptions",
    "InfernoOptions",
    "MetricsSpec",
    "OracleOptions",
    "PolicySpec",
    "QueueOptions",
    "Scenario",
    "StaticOptions",
    "load_scenario",
    "load_traces",
    "parse_scenario",
]

logger = logging.getLogger(__name__)

PolicyKind = Literal["inferno", "static", "hpa", "queue", "oracle"]
POLICY_KINDS: tuple[PolicyKind, ...] = ("inferno", "static", "hpa", "queue", "oracle")
#: the policies of a scenario without ``policies``
DEFAULT_POLICIES: tuple[PolicyKind, ...] = ("inferno", "static", "hpa", "queue")
#: a sweep's instances are named ``<label>@<value>``
SWEEP_SEPARATOR = "@"
#: per policy kind, its sweep keys: the key → (the option each value sets, the values' upper
#: bound, the suffix of the instances' names)
SWEEPS: dict[str, dict[str, tuple[str, float, str]]] = {
    "hpa": {"targets": ("target", MAX_FACTOR, "")},
    "queue": {
        "targets_per_replica": ("target_per_replica", MAX_COUNT, ""),
        "target_factors": ("target_factor", MAX_FACTOR, "x"),
    },
}
#: the most values a sweep may have
MAX_SWEEP = 100
INITIAL = ("inferno", "peak")
SERVICES: tuple[Service, ...] = ("deterministic", "exponential")
TRACE_KINDS = ("poisson", "steps", "diurnal", "bursts", "replay")
LENGTH_KINDS = ("fixed", "exponential", "empirical")

_TOP_KEYS = (
    "system",
    "duration",
    "seed",
    "control_period",
    "startup_delay",
    "router",
    "service",
    "max_queue",
    "servers",
    "initial",
    "traces",
    "tokens",
    "metrics",
    "policies",
    "sizing",
)
#: the deployed settings an ``inferno`` policy may set (the policy group, and the plan's batch
#: tolerance); the control period and the measurement window come from the scenario itself
INFERNO_SETTINGS: tuple[str, ...] = (*PolicyOptions.__dataclass_fields__, "batch_tolerance")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- the resolved scenario ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InfernoOptions:
    """Deployed settings the scenario sets for its ``inferno`` policy, by their flat names
    (:data:`INFERNO_SETTINGS`); every other setting keeps its deployed default."""

    settings: tuple[tuple[str, Any], ...] = ()

    def overrides(self) -> dict[str, Any]:
        return dict(self.settings)


@dataclass(frozen=True, slots=True)
class StaticOptions:
    headroom: float = 0.0


@dataclass(frozen=True, slots=True)
class HpaOptions:
    target: float = 0.7
    tolerance: float = 0.1
    stabilization_window: float = 300.0
    min_replicas: int | None = None
    max_replicas: int | None = None
    metric: Literal["busy", "batch"] = "busy"


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """``target_per_replica`` (None: the model's requests held per replica at the initial
    allocation, per server) × ``target_factor``."""

    target_per_replica: float | None = None
    tolerance: float = 0.1
    stabilization_window: float = 300.0
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_factor: float = 1.0


@dataclass(frozen=True, slots=True)
class OracleOptions:
    """The oracle has no option (but ``label``)."""


Options = InfernoOptions | StaticOptions | HpaOptions | QueueOptions | OracleOptions


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """One policy to run: its kind, the name it is reported under, its options, and the name of
    the sweep it is an instance of (empty: not a sweep's)."""

    kind: PolicyKind
    name: str
    options: Options
    sweep: str = ""


@dataclass(frozen=True, slots=True)
class MetricsSpec:
    window_s: float
    noise: float


@dataclass(frozen=True)
class Scenario:
    """A validated scenario, resolved against its system data (servers restricted to
    ``servers``)."""

    source: str
    system_dir: Path
    system: System
    static_docs: Mapping[str, Any]
    duration_s: float
    seed: int
    control_period_s: float
    startup_delay_s: float
    router: Router
    service: Service
    max_queue: int | None
    servers: tuple[str, ...]
    initial: str
    traces: Mapping[str, Trace]
    input_tokens: Mapping[str, Lengths]
    output_tokens: Mapping[str, Lengths]
    metrics: MetricsSpec
    policies: tuple[PolicySpec, ...]
    sizing_quantile: float | None = None

    @property
    def duration_ms(self) -> float:
        return self.duration_s * 1000.0

    @property
    def period_ends_ms(self) -> list[float]:
        """The end of every control period, the last one at the end of the run."""
        step = self.control_period_s * 1000.0
        n = max(math.ceil(self.duration_ms / step - 1e-9), 1)
        return [min((k + 1) * step, self.duration_ms) for k in range(n)]

    def server(self, name: str) -> Server:
        for s in self.system.servers:
            if s.name == name:
                return s
        raise KeyError(name)


def with_quantile(static_docs: Mapping[str, Any], q: float) -> dict[str, Any]:
    """The static documents sized on the ``q``-quantile: every ``slo-ttw``, ``slo-ttft`` and
    ``slo-latency`` target gets ``slo-*-quantile: q`` and the optimizer data
    ``exactWaitQuantile: true`` (the targets themselves are unchanged)."""
    docs = copy.deepcopy(dict(static_docs))
    opt = docs.get("optimizer-data.json")
    if not isinstance(opt, dict):
        opt = {}
    inner = opt.get("optimizer")
    inner = inner if isinstance(inner, dict) else {}
    inner["exactWaitQuantile"] = True
    opt["optimizer"] = inner
    docs["optimizer-data.json"] = opt
    classes = docs.get("serviceclass-data.json")
    rows = classes.get("serviceClasses") if isinstance(classes, dict) else None
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        entries = [row, *(e for e in row.get("modelTargets") or [] if isinstance(e, dict))]
        for entry in entries:
            keys = {str(k).casefold(): k for k in entry}
            for slo in ("slo-ttw", "slo-ttft", "slo-latency"):
                if slo in keys and entry[keys[slo]]:
                    old = keys.get(f"{slo}-quantile")
                    if old is not None:
                        del entry[old]
                    entry[f"{slo}-quantile"] = q
    return docs


# --- reading -----------------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate the scenario file at ``path`` (InputError naming the field)."""
    file = Path(path)
    return parse_scenario(_read_document(file), source=str(file), base=file.parent)


def load_traces(path: str | Path, names: Sequence[str], base: float = 0.0) -> dict[str, Trace]:
    """The traces of ``names`` in a traces file (YAML or JSON): ``{traces: {<name>: <trace>,
    default: <trace>}}`` with the trace kinds of a scenario's ``traces`` (rates in req/min;
    ``relative`` rates are multiples of ``base``). A name without an entry takes ``default``;
    without either it is an InputError naming the file."""
    file = Path(path)
    source = str(file)
    parser = _Parser(source, file.parent)
    top = parser.mapping(_read_document(file), "$")
    parser.only(top, "$", ("traces",))
    given = parser.mapping(top.get("traces"), "$.traces")
    replays: dict[Path, dict[str, Replay]] = {}
    out: dict[str, Trace] = {}
    for name in names:
        if name in given:
            spec, where = given[name], _key_path("$.traces", name)
        elif "default" in given:
            spec, where = given["default"], "$.traces.default"
        else:
            known = ", ".join(sorted(given)) or "none"
            raise parser.error("$.traces", f"no trace for {name!r} and no default (has: {known})")
        out[name] = parser.trace(spec, where, name, base, replays)
    return out


def _read_document(file: Path) -> object:
    return read_document(file, str(file))


def parse_scenario(doc: object, *, source: str, base: Path) -> Scenario:
    """Validate an already-parsed scenario; relative paths are resolved against ``base``."""
    return _Parser(source, base).scenario(doc)


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


class _Parser:
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

    # the scenario -------------------------------------------------------------------------------

    def scenario(self, doc: object) -> Scenario:
        top = self.mapping(doc, "$")
        self.only(top, "$", _TOP_KEYS)
        system_dir, system = self.system(top)
        duration = self.number(
            top, "duration", "$", above=0.0, maximum=MAX_DURATION_S, required=True
        )
        seed = self.integer(top, "seed", "$", 0, minimum=0, maximum=MAX_SEED)
        assert seed is not None
        period = self.number(
            top,
            "control_period",
            "$",
            30.0,
            above=0.0,
            minimum=MIN_CONTROL_PERIOD_S,
            maximum=MAX_DURATION_S,
        )
        startup = self.number(top, "startup_delay", "$", 60.0, minimum=0.0, maximum=MAX_TIME_S)
        router = self.choice(top, "router", "$", ROUTERS, "random")
        service = self.choice(top, "service", "$", SERVICES, "deterministic")
        max_queue = self.integer(top, "max_queue", "$", None, minimum=0, maximum=MAX_COUNT)
        initial = self.choice(top, "initial", "$", INITIAL, "inferno")
        names = self.servers(top.get("servers"), system)
        system = replace(system, servers=tuple(s for s in system.servers if s.name in names))
        traces = self.traces(top.get("traces"), system)
        ins, outs = self.tokens(top.get("tokens"), system)
        metrics = self.metrics(top.get("metrics"), period)
        policies = self.policies(top.get("policies"))
        quantile = self.sizing(top.get("sizing"))
        docs = read_static_data(system_dir)
        if quantile is not None:
            docs = with_quantile(docs, quantile)
        return Scenario(
            source=self.source,
            system_dir=system_dir,
            system=system,
            static_docs=docs,
            duration_s=duration,
            seed=seed,
            control_period_s=period,
            startup_delay_s=startup,
            router=router,  # type: ignore[arg-type]
            service=service,  # type: ignore[arg-type]
            max_queue=max_queue,
            servers=tuple(s.name for s in system.servers),
            initial=initial,
            traces=traces,
            input_tokens=ins,
            output_tokens=outs,
            metrics=metrics,
            policies=policies,
            sizing_quantile=quantile,
        )

    def system(self, top: Mapping[str, object]) -> tuple[Path, System]:
        value = top.get("system")
        if value is None:
            raise self.error("$.system", "required field is missing (the system data directory)")
        if not isinstance(value, str) or not value.strip():
            raise self.error("$.system", f"expected a directory name, got {_show(value)}")
        directory = (self.base / value).resolve()
        if not directory.is_dir():
            raise self.error("$.system", f"system data directory {str(directory)!r} not found")
        return directory, load_system(directory)

    def servers(self, value: object, system: System) -> set[str]:
        known = [s.name for s in system.servers]
        if value is None:
            if not known:
                raise self.error("$.servers", "the system data has no servers")
            return set(known)
        if not isinstance(value, list) or not value:
            raise self.error("$.servers", f"expected a non-empty list of names, got {_show(value)}")
        chosen: set[str] = set()
        for i, item in enumerate(value):
            where = f"$.servers[{i}]"
            if not isinstance(item, str):
                raise self.error(where, f"expected a server name, got {_show(item)}")
            if item not in known:
                raise self.error(where, f"unknown server {item!r}; known: {', '.join(known)}")
            if item in chosen:
                raise self.error(where, f"server {item!r} is listed twice")
            chosen.add(item)
        return chosen

    def per_server(
        self, value: object, path: str, system: System
    ) -> tuple[dict[str, object], object]:
        """A mapping of server name (or ``default``) to a value: (per server, default)."""
        if value is None:
            return {}, None
        obj = self.mapping(value, path)
        names = {s.name for s in system.servers}
        out: dict[str, object] = {}
        for k, v in obj.items():
            if k == "default":
                continue
            if k not in names:
                raise self.error(
                    _key_path(path, k),
                    f"unknown server {k!r} (not among the simulated servers; "
                    "use 'default' for every server)",
                )
            out[k] = v
        return out, obj.get("default")

    # traces -------------------------------------------------------------------------------------

    def traces(self, value: object, system: System) -> dict[str, Trace]:
        given, default = self.per_server(value, "$.traces", system)
        traces: dict[str, Trace] = {}
        replays: dict[Path, dict[str, Replay]] = {}
        for srv in system.servers:
            if srv.name in given:
                spec, path = given[srv.name], _key_path("$.traces", srv.name)
            elif default is not None:
                spec, path = default, "$.traces.default"
            else:
                spec, path = {"kind": "poisson"}, "$.traces.default"
            traces[srv.name] = self.trace(spec, path, srv.name, srv.load.arrival_rate, replays)
        return traces

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

    # tokens -------------------------------------------------------------------------------------

    def tokens(
        self, value: object, system: System
    ) -> tuple[dict[str, Lengths], dict[str, Lengths]]:
        given, default = self.per_server(value, "$.tokens", system)
        ins: dict[str, Lengths] = {}
        outs: dict[str, Lengths] = {}
        profiles = {(p.model, p.accelerator): p.profile for p in system.profiles}
        llm = {m for (m, _), prof in profiles.items() if not isinstance(prof, BatchProfile)}
        for srv in system.servers:
            if srv.name in given:
                spec, path = given[srv.name], _key_path("$.tokens", srv.name)
            else:
                spec, path = default, "$.tokens.default"
            obj = {} if spec is None else self.mapping(spec, path)
            self.only(obj, path, ("in", "out"))
            ins[srv.name] = self.length(obj.get("in"), f"{path}.in", srv.load.in_tokens)
            out_default = max(srv.load.out_tokens, 1.0) if srv.model in llm else srv.load.out_tokens
            out = self.length(obj.get("out"), f"{path}.out", out_default)
            if srv.model in llm and out.minimum < 1:
                raise self.error(f"{path}.out", "LLM requests need at least one output token")
            outs[srv.name] = out
        return ins, outs

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
            self.only(obj, path, ("kind", "mean"))
            m = self.number(
                obj, "mean", path, mean if mean > 0 else None, above=0.0, maximum=MAX_TOKENS
            )
            return Exponential(m)
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

    # metrics and policies -----------------------------------------------------------------------

    def sizing(self, value: object) -> float | None:
        if value is None:
            return None
        obj = self.mapping(value, "$.sizing")
        self.only(obj, "$.sizing", ("quantile",))
        if obj.get("quantile") is None:
            return None
        q = self.number(obj, "quantile", "$.sizing", above=0.0, maximum=math.inf)  # < 1 below
        if not q < 1.0:
            raise self.error("$.sizing.quantile", f"must be < 1, got {q!r}")
        return q

    def metrics(self, value: object, period: float) -> MetricsSpec:
        obj = {} if value is None else self.mapping(value, "$.metrics")
        self.only(obj, "$.metrics", ("window", "noise"))
        window = self.number(obj, "window", "$.metrics", period, above=0.0, maximum=MAX_TIME_S)
        noise = self.number(obj, "noise", "$.metrics", 0.05, minimum=0.0, maximum=1.0)
        return MetricsSpec(window, noise)

    def policies(self, value: object) -> tuple[PolicySpec, ...]:
        if value is None:
            value = list(DEFAULT_POLICIES)
        if not isinstance(value, list) or not value:
            raise self.error(
                "$.policies", f"expected a non-empty list of policies, got {_show(value)}"
            )
        out: list[PolicySpec] = []
        names: set[str] = set()
        for i, item in enumerate(value):
            path = f"$.policies[{i}]"
            if isinstance(item, str):
                kind, opts, opath = item, None, path
            elif isinstance(item, dict) and len(item) == 1:
                kind, opts = next(iter(item.items()))
                opath = _key_path(path, str(kind))
            else:
                raise self.error(
                    path,
                    f"expected a policy name or a one-key mapping {{name: options}}, "
                    f"got {_show(item)}",
                )
            if kind not in POLICY_KINDS:
                raise self.error(
                    path, f"unknown policy {_show(kind)}; expected one of {', '.join(POLICY_KINDS)}"
                )
            obj = {} if opts is None else self.mapping(opts, opath)
            for spec in self.sweep(kind, obj, opath):
                if spec.name in names:
                    raise self.error(
                        path, f"policy name {spec.name!r} is used twice; give one a 'label'"
                    )
                names.add(spec.name)
                out.append(spec)
        return tuple(out)

    def sweep(self, kind: PolicyKind, obj: Mapping[str, object], path: str) -> list[PolicySpec]:
        """The policy of ``obj``, or one instance per value of its sweep key (:data:`SWEEPS`),
        named ``<label>@<value>`` and tagged with the sweep's name (the label)."""
        keys = [k for k in SWEEPS.get(kind, {}) if k in obj]
        if not keys:
            return [self.policy(kind, obj, path)]
        if len(keys) > 1:
            raise self.error(
                _key_path(path, keys[1]), f"one sweep per policy: {keys[0]} is given already"
            )
        key = keys[0]
        single, maximum, suffix = SWEEPS[kind][key]
        where = _key_path(path, key)
        if single in obj:
            raise self.error(where, f"give {single} (one instance) or {key} (a sweep), not both")
        values = obj[key]
        if not isinstance(values, list) or not values:
            raise self.error(where, f"expected a non-empty list of numbers, got {_show(values)}")
        if len(values) > MAX_SWEEP:
            raise self.error(where, f"at most {MAX_SWEEP} values, got {len(values)}")
        label = obj.get("label", kind)
        if not isinstance(label, str) or not label.strip():
            raise self.error(f"{path}.label", f"expected a name, got {_show(label)}")
        label = label.strip()
        out: list[PolicySpec] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(values):
            value = self.bounded(item, f"{where}[{i}]", above=0.0, maximum=maximum)
            text = f"{value:g}" if float(f"{value:g}") == value else repr(value)
            if text in seen:
                raise self.error(f"{where}[{i}]", f"{text} is already at [{seen[text]}]")
            seen[text] = i
            one = {k: v for k, v in obj.items() if k != key}
            one[single] = value
            one["label"] = f"{label}{SWEEP_SEPARATOR}{text}{suffix}"
            spec = self.policy(kind, one, path)
            out.append(replace(spec, sweep=label))
        return out

    def inferno_options(self, obj: Mapping[str, object], path: str) -> InfernoOptions:
        """The deployed settings a scenario may set, checked as the services check them."""
        self.only(obj, path, ("label", *INFERNO_SETTINGS))
        values = {k: v for k, v in obj.items() if k != "label"}
        flags = {k for k, f in PolicyOptions.__dataclass_fields__.items() if f.type == "bool"}
        for key, value in values.items():
            if key in flags:
                if not isinstance(value, bool):
                    raise self.error(
                        _key_path(path, key), f"expected true or false, got {_show(value)}"
                    )
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise self.error(_key_path(path, key), f"expected a number, got {_show(value)}")
        try:
            Settings.from_env({}, **values)
        except SettingsError as exc:
            raise self.error(path, str(exc)) from None
        return InfernoOptions(tuple(sorted(values.items())))

    def policy(self, kind: PolicyKind, obj: Mapping[str, object], path: str) -> PolicySpec:
        label = obj.get("label", kind)
        if not isinstance(label, str) or not label.strip():
            raise self.error(f"{path}.label", f"expected a name, got {_show(label)}")
        options: Options
        if kind == "inferno":
            options = self.inferno_options(obj, path)
        elif kind == "oracle":
            self.only(obj, path, ("label",))
            options = OracleOptions()
        elif kind == "static":
            self.only(obj, path, ("label", "headroom"))
            options = StaticOptions(
                headroom=self.number(obj, "headroom", path, 0.0, minimum=0.0, maximum=MAX_FACTOR)
            )
        else:
            common = ("label", "tolerance", "stabilization_window", "min_replicas", "max_replicas")
            extra = (
                ("target", "metric")
                if kind == "hpa"
                else ("target_per_replica", "target_factor")
            )
            self.only(obj, path, common + extra + tuple(SWEEPS[kind]))
            tolerance = self.number(obj, "tolerance", path, 0.1, minimum=0.0, maximum=MAX_FACTOR)
            window = self.number(
                obj, "stabilization_window", path, 300.0, minimum=0.0, maximum=MAX_TIME_S
            )
            lo = self.integer(obj, "min_replicas", path, None, minimum=1, maximum=MAX_COUNT)
            hi = self.integer(obj, "max_replicas", path, None, minimum=1, maximum=MAX_COUNT)
            if lo is not None and hi is not None and hi < lo:
                raise self.error(f"{path}.max_replicas", f"must be ≥ min_replicas ({lo}), got {hi}")
            if kind == "hpa":
                options = HpaOptions(
                    target=self.number(obj, "target", path, 0.7, above=0.0, maximum=MAX_FACTOR),
                    tolerance=tolerance,
                    stabilization_window=window,
                    min_replicas=lo,
                    max_replicas=hi,
                    metric=self.choice(obj, "metric", path, ("busy", "batch"), "busy"),  # type: ignore[arg-type]
                )
            else:
                target = obj.get("target_per_replica")
                options = QueueOptions(
                    target_per_replica=None
                    if target is None
                    else self.number(obj, "target_per_replica", path, above=0.0, maximum=MAX_COUNT),
                    tolerance=tolerance,
                    stabilization_window=window,
                    min_replicas=lo,
                    max_replicas=hi,
                    target_factor=self.number(
                        obj, "target_factor", path, 1.0, above=0.0, maximum=MAX_FACTOR
                    ),
                )
        return PolicySpec(kind, label.strip(), options)
