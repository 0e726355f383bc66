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
      - oracle                        # knows the future (never run unless listed)
      - hpa: {label: sweep, targets: [0.5, 0.7, 0.9]}   # sweep@0.5, sweep@0.7, sweep@0.9

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
``{kind: exponential, mean, max}``, ``{kind: lognormal, mean, cv, max}`` (mean default: the
server's average; ``max``, optional: the most tokens a request gets, its server's
``max_tokens``) or ``{kind: empirical, values: [...]}``. Default: fixed at the server's
``avgInTokens``/``avgOutTokens`` (``avgLength`` for G0 data, which is the output length). An
``out`` with a ``max`` is also the server's Deployment annotation
``inferno.server/max-output-tokens``, which the deployed collector tells the model as a cluster
operator's annotation would (docs/kubernetes.md).

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
  predicts it — the scaler is tuned to keep Inferno's initial operating point), ``target_factor``
  (default 1: a multiple of that target, or of the one given), ``tolerance``,
  ``stabilization_window``, ``min_replicas``, ``max_replicas`` as for ``hpa``.
- ``oracle``: sizes each coming control period for its true peak rate, with no start-up delay
  (:mod:`inferno.simulate.oracle`); ``label`` only.

HPA and queue scalers keep the accelerator and batch of the initial allocation.

Sweeps: a policy entry with the plural of an option, a list, runs one instance per value, named
``<label>@<value>`` (:data:`SWEEPS`): ``hpa: {targets: [...]}``, ``queue: {targets_per_replica:
[...]}`` or ``queue: {target_factors: [...]}`` (``queue@0.5x``); one sweep per entry, not with
the single option, values checked as the option is and distinct.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..data.documents import read_document
from ..data.limits import MAX_COUNT
from ..emulator import Lengths, Replay, Router, Service, Trace
from ..settings import OptimizerOptions, PolicyOptions
from ..system import Server, System
from ._fields import LENGTH_KINDS, TRACE_KINDS, _Fields, _key_path
from .limits import MAX_FACTOR

__all__ = [
    "DEFAULT_POLICIES",
    "INFERNO_SETTINGS",
    "LENGTH_KINDS",
    "POLICY_KINDS",
    "SWEEP_SEPARATOR",
    "TRACE_KINDS",
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

#: the deployed settings an ``inferno`` policy may set (the policy group, the plan's batch
#: tolerance and the optimizer's ``model``, INFERNO_MODEL); the control period and the
#: measurement window come from the scenario itself
INFERNO_SETTINGS: tuple[str, ...] = (
    *PolicyOptions.__dataclass_fields__,
    "batch_tolerance",
    *OptimizerOptions.__dataclass_fields__,
)


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
    parser = _Fields(source, file.parent)
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
    from ._parse import Parser  # it builds on this module

    return Parser(source, base).scenario(doc)
