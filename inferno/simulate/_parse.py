"""The scenario parser: a parsed YAML/JSON document checked key by key and resolved against the
system data into a :class:`~inferno.simulate.scenario.Scenario`. See
:mod:`inferno.simulate.scenario` for the format; :func:`~inferno.simulate.scenario.load_scenario`
and :func:`~inferno.simulate.scenario.parse_scenario` are the entry points."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from ..control.optimize import read_static_data
from ..data import load_system
from ..data.limits import MAX_COUNT
from ..emulator import ROUTERS, Lengths, Replay, Trace
from ..model.profiles import BatchProfile
from ..settings import OptimizerOptions, PolicyOptions, Settings, SettingsError
from ..system import System
from ._fields import _Fields, _key_path, _show
from .limits import (
    MAX_DURATION_S,
    MAX_FACTOR,
    MAX_SEED,
    MAX_TIME_S,
    MIN_CONTROL_PERIOD_S,
)
from .scenario import (
    DEFAULT_POLICIES,
    INFERNO_SETTINGS,
    INITIAL,
    MAX_SWEEP,
    POLICY_KINDS,
    SERVICES,
    SWEEP_SEPARATOR,
    SWEEPS,
    HpaOptions,
    InfernoOptions,
    MetricsSpec,
    Options,
    OracleOptions,
    PolicyKind,
    PolicySpec,
    QueueOptions,
    Scenario,
    StaticOptions,
    with_quantile,
)

__all__ = ["Parser"]

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


class Parser(_Fields):
    """Checks a scenario document (:meth:`scenario`) or a trace (:meth:`trace`)."""

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
        names = set(OptimizerOptions.__dataclass_fields__)  # the model: a name, not a number
        for key, value in values.items():
            if key in names:
                if not isinstance(value, str):
                    raise self.error(_key_path(path, key), f"expected a name, got {_show(value)}")
            elif key in flags:
                if not isinstance(value, bool):
                    raise self.error(
                        _key_path(path, key), f"expected true or false, got {_show(value)}"
                    )
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise self.error(_key_path(path, key), f"expected a number, got {_show(value)}")
            try:
                Settings.from_env({}, **{key: value})
            except SettingsError as exc:
                raise self.error(_key_path(path, key), str(exc)) from None
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
                ("target", "metric") if kind == "hpa" else ("target_per_replica", "target_factor")
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
