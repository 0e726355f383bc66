"""The control policy around the optimizer: the same code in the cluster's cycle and in
``inferno simulate``'s ``inferno`` policy, configured by :class:`inferno.settings.PolicyOptions`.

Before the solve, :meth:`Policy.loads` smooths each server's measured tokens per request
(``token_halflife``: the memory-bound batch follows them, and a noisy window must not roll every
pod) and sizes it for the rate its forecaster (:mod:`inferno.control.forecast`) expects over
the decision's horizon — the next period, the measurement's lag and a new replica's start-up
(measured or set: :mod:`inferno.control.startup`) — plus a margin from the forecast's tracked
error and the count's Poisson noise, plus what drains a reported backlog (``forecast: false``: the
measured rate; either way × (1 + ``headroom``)). After it, :func:`guard` bounds the decisions, as
trusted autoscalers do (the Kubernetes HPA's ``behavior``):

0. **GPU-type hysteresis and a rollout budget** — a server moves to another accelerator only when
   that saves at least ``switch_min_saving`` of its cost and the optimizer has preferred it for
   ``switch_delay`` seconds (until then it gets the decision's ``stay``: the cheapest on its
   running accelerator); at most ``max_rollouts`` servers change accelerator or batch size (which
   replaces every pod) per cycle, the others keep their configuration for now;
1. **scale-down stabilisation** — a server keeps the most replicas decided for it in the last
   ``stabilization_window`` seconds on the same accelerator and batch; scaling up is immediate;
2. **step limits** — a server on the same accelerator gains at most ``max(max_scale_up_pods,
   replicas × max_scale_up_percent / 100)`` replicas per cycle, and loses at most the like;
3. **a ceiling** — all servers together hold at most ``max_total_gpus`` GPUs: increases are cut,
   in server-name order, to what is left.

Every bound that changes a decision is a :class:`Clamp` (reported by the cycle, counted in
``/metrics``, and written into the decision's note, which the actuator's Event carries). Pure:
:class:`Policy` only holds its :class:`PolicyState` across cycles, and its clock is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..cluster.inventory import ManagedDeployment
from ..cluster.plan import Decision, steady_batch
from ..settings import PolicyOptions, Settings
from .forecast import Forecast, ForecastParams, Track, observe, plan_rate
from .startup import Startup, choose_startup

__all__ = [
    "Clamp",
    "Guarded",
    "Policy",
    "PolicyState",
    "forecast_params",
    "guard",
]

#: (time in s, accelerator, batch, replicas decided)
Entry = tuple[float, str, int, int]


@dataclass(frozen=True, slots=True)
class Clamp:
    """A bound that changed a decision: ``rule`` is gpu-switch-saving, gpu-switch-delay,
    max-rollouts, scale-down-window, max-scale-up, max-scale-down or max-total-gpus."""

    server: str
    rule: str
    wanted: int
    got: int
    note: str = ""  # what was deferred, for the rules that keep a configuration

    @property
    def message(self) -> str:
        return f"{self.rule}: {self.note or f'{self.wanted} → {self.got} replicas'}"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "server": self.server,
            "rule": self.rule,
            "wanted": self.wanted,
            "got": self.got,
        }
        if self.note:
            body["note"] = self.note
        return body


#: per server, the accelerator the optimizer prefers to the running one, and since when (s)
Switches = Mapping[str, tuple[str, float]]


@dataclass(frozen=True)
class Guarded:
    decisions: list[Decision]
    history: Mapping[str, tuple[Entry, ...]]
    clamps: list[Clamp] = field(default_factory=list)
    switches: Switches = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyState:
    """What the policy carries from cycle to cycle (and across a restart, in the ConfigMap
    ``inferno-state``): the decisions of the scale-down window and each server's forecaster."""

    history: Mapping[str, tuple[Entry, ...]] = field(default_factory=dict)
    tracks: Mapping[str, Track] = field(default_factory=dict)
    switches: Switches = field(default_factory=dict)
    #: per server, the smoothed (input, output) tokens per request and when last updated (s)
    tokens: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    #: the optimizer's tuner filters (inferno.tuning.persist), kept for its next start
    tuner: Mapping[str, Any] | None = None


def _rate_of(row: Mapping[str, Any]) -> float | None:
    current = row.get("currentAlloc")
    load = current.get("load") if isinstance(current, Mapping) else None
    rate = load.get("arrivalRate") if isinstance(load, Mapping) else None
    if isinstance(rate, int | float) and not isinstance(rate, bool) and math.isfinite(rate):
        return float(rate)
    return None


def _with_rate(row: Mapping[str, Any], rate: float, **more: float) -> dict[str, Any]:
    current = row["currentAlloc"]
    load = {**current["load"], "arrivalRate": rate, **more}
    return {**row, "currentAlloc": {**current, "load": load}}


_TOKEN_KEYS = ("avgInTokens", "avgOutTokens")


def _smooth_tokens(
    row: Mapping[str, Any], prior: tuple[float, float, float] | None, now: float, halflife: float
) -> tuple[float, float, float] | None:
    """The row's measured tokens per request, smoothed with ``prior`` (an exponential average
    with ``halflife`` seconds; None when the row has no usable token counts)."""
    load = (row.get("currentAlloc") or {}).get("load")
    if not isinstance(load, Mapping):
        return None
    values = [load.get(k) for k in _TOKEN_KEYS]
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in values
    ):
        return None
    measured = (float(values[0]), float(values[1]))  # type: ignore[arg-type]
    if prior is None or halflife <= 0 or now <= prior[2]:
        return (*measured, now)
    w = 1.0 - 0.5 ** ((now - prior[2]) / halflife)
    return (
        w * measured[0] + (1.0 - w) * prior[0],
        w * measured[1] + (1.0 - w) * prior[1],
        now,
    )


def _backlog_excess(row: Mapping[str, Any], backlog: float | None) -> float:
    """Requests waiting beyond what the running replicas take in their next batches."""
    if backlog is None or not math.isfinite(backlog) or backlog <= 0:
        return 0.0
    current = row.get("currentAlloc")
    replicas: object = 0
    batch: object = 0
    if isinstance(current, Mapping):
        replicas = current.get("numReplicas") or 0
        batch = current.get("maxBatch") or 0
    if not isinstance(replicas, int) or not isinstance(batch, int):
        return backlog
    return max(backlog - max(replicas, 0) * max(batch, 1), 0.0)


def forecast_params(settings: Settings) -> ForecastParams:
    """The forecaster's constants from the deployed settings (the control period, the load
    window and the policy group)."""
    o = settings.policy
    period = settings.service.control_period
    return ForecastParams(
        alpha=o.forecast_alpha,
        beta=o.forecast_beta,
        damping=o.forecast_damping,
        period_s=period if period > 0 else 60.0,
        window_s=settings.prometheus.load_window,
        startup_s=o.startup_time,
        margin_z=o.margin_z,
        halflife_s=o.residual_halflife,
        drain_s=o.drain_time,
        max_margin=o.max_margin,
        season_s=o.forecast_season,
    )


def _step(now: int, limit_pods: int, limit_percent: float) -> int | None:
    """The largest change allowed from ``now`` replicas (None: no limit)."""
    if limit_pods <= 0 and limit_percent <= 0:
        return None
    return max(limit_pods, math.ceil(now * limit_percent / 100.0))


def guard(
    decisions: Iterable[Decision],
    current: Mapping[str, ManagedDeployment],
    history: Mapping[str, tuple[Entry, ...]],
    now_s: float,
    opts: PolicyOptions,
    batch_tolerance: float = 0.0,
    switches: Switches | None = None,
    per_server: Mapping[str, PolicyOptions] | None = None,
) -> Guarded:
    """Bound ``decisions`` (see the module's docstring); ``current`` is each server's Deployment
    as collected, ``history`` what :class:`Guarded` returned last time. The running batch is
    kept first (:func:`~inferno.cluster.plan.steady_batch`, ``batch_tolerance``), so the window
    compares the batches that will run."""
    kept: dict[str, tuple[Entry, ...]] = {}
    clamps: list[Clamp] = []
    out: list[Decision] = []
    pending: dict[str, tuple[str, float]] = {}
    rollouts = 0
    cluster_wide = opts
    for d in sorted(decisions, key=lambda x: x.server):
        # the per-server rules take the server's class's overrides; the budget and the
        # ceiling are the cluster's
        opts = (per_server or {}).get(d.server, cluster_wide)
        dep = current.get(d.server)
        if dep is not None:
            d = _switch(d, dep, (switches or {}).get(d.server), now_s, opts, pending, clamps)
            d = steady_batch(dep.accelerator, dep.max_batch, d, batch_tolerance)
            if d.allocated and _rolls(d, dep):
                if 0 < cluster_wide.max_rollouts <= rollouts:
                    d = _defer_rollout(d, dep, clamps)
                else:
                    rollouts += int(_rolls(d, dep))
        if not d.allocated:
            out.append(d)
            if d.server in history:
                kept[d.server] = history[d.server]
            continue
        wanted = d.replicas
        past = [e for e in history.get(d.server, ()) if e[0] > now_s - opts.stabilization_window]
        kept[d.server] = (*past, (now_s, d.accelerator, d.max_batch, wanted))
        got = wanted
        if opts.stabilization_window > 0:
            same = [r for _, acc, b, r in past if (acc, b) == (d.accelerator, d.max_batch)]
            got = max([got, *same])
            if got != wanted:
                clamps.append(Clamp(d.server, "scale-down-window", wanted, got))
        if dep is not None and dep.accelerator == d.accelerator:
            up = _step(dep.replicas, opts.max_scale_up_pods, opts.max_scale_up_percent)
            down = _step(dep.replicas, opts.max_scale_down_pods, opts.max_scale_down_percent)
            if up is not None and got > dep.replicas + up:
                clamps.append(Clamp(d.server, "max-scale-up", got, dep.replicas + up))
                got = dep.replicas + up
            if down is not None and got < dep.replicas - down:
                clamps.append(Clamp(d.server, "max-scale-down", got, dep.replicas - down))
                got = dep.replicas - down
        out.append(d if got == d.replicas else replace(d, replicas=got))
    if cluster_wide.max_total_gpus > 0:
        out = _ceiling(out, current, cluster_wide.max_total_gpus, clamps)
    by_server: dict[str, list[str]] = {}
    for c in clamps:
        by_server.setdefault(c.server, []).append(c.message)
    noted = [
        replace(d, reason="; ".join(filter(None, [d.reason, *by_server[d.server]])))
        if d.server in by_server and d.allocated
        else d
        for d in out
    ]
    return Guarded(noted, kept, clamps, pending)


def _rolls(d: Decision, dep: ManagedDeployment) -> bool:
    """Whether applying ``d`` replaces every pod (a new accelerator or batch size)."""
    return dep.replicas > 0 and (d.accelerator, d.max_batch) != (dep.accelerator, dep.max_batch)


def _switch(
    d: Decision,
    dep: ManagedDeployment,
    since: tuple[str, float] | None,
    now_s: float,
    opts: PolicyOptions,
    pending: dict[str, tuple[str, float]],
    clamps: list[Clamp],
) -> Decision:
    """The decision, or its ``stay`` (the same server kept on its running accelerator) while a
    switch saves less than ``switch_min_saving`` or has not been preferred for
    ``switch_delay`` seconds: a switch is a full rollout, not worth it for a passing gain."""
    stay = d.stay
    if (
        not d.allocated
        or stay is None
        or not stay.allocated
        or not dep.accelerator
        or dep.replicas <= 0
        or d.accelerator == dep.accelerator
    ):
        return d
    stay = replace(stay, stay=None)
    saving = 0.0
    if d.cost is not None and stay.cost is not None and stay.cost > 0:
        saving = 1.0 - d.cost / stay.cost
    if saving < opts.switch_min_saving:
        note = (
            f"{dep.accelerator} kept, {d.accelerator} would save {saving:.0%} "
            f"(< {opts.switch_min_saving:.0%})"
        )
        clamps.append(Clamp(d.server, "gpu-switch-saving", d.replicas, stay.replicas, note))
        return stay
    first = since[1] if since is not None and since[0] == d.accelerator else now_s
    if now_s - first < opts.switch_delay:
        pending[d.server] = (d.accelerator, first)
        note = (
            f"{dep.accelerator} kept, {d.accelerator} (saves {saving:.0%}) preferred for "
            f"{now_s - first:.0f} s of {opts.switch_delay:.0f} s"
        )
        clamps.append(Clamp(d.server, "gpu-switch-delay", d.replicas, stay.replicas, note))
        return stay
    return replace(d, stay=None)


def _defer_rollout(d: Decision, dep: ManagedDeployment, clamps: list[Clamp]) -> Decision:
    """``d`` without its change of configuration (the rollout budget of the cycle is spent):
    the running accelerator and batch, with the decision's replicas if it keeps the accelerator
    (else its ``stay``'s)."""
    if d.accelerator == dep.accelerator:
        kept = replace(d, max_batch=dep.max_batch, stay=None)
    elif d.stay is not None and d.stay.allocated:
        kept = replace(d.stay, stay=None)
    else:
        return d
    note = (
        f"{dep.accelerator} batch {dep.max_batch} kept this cycle "
        f"(wanted {d.accelerator} batch {d.max_batch})"
    )
    clamps.append(Clamp(d.server, "max-rollouts", d.replicas, kept.replicas, note))
    return kept


def _ceiling(
    decisions: list[Decision],
    current: Mapping[str, ManagedDeployment],
    ceiling: int,
    clamps: list[Clamp],
) -> list[Decision]:
    """Cut the increases (in server-name order) so that the GPUs held stay within ``ceiling``;
    decisions that do not add GPUs are never cut."""

    def held(d: Decision) -> int:
        return d.replicas * max(d.gpus_per_replica, 1) if d.allocated else 0

    def before(d: Decision) -> int:
        dep = current.get(d.server)
        if dep is None or not d.allocated or dep.accelerator != d.accelerator:
            return 0
        return dep.replicas * max(d.gpus_per_replica, 1)

    total = sum(held(d) for d in decisions)
    if total <= ceiling:
        return decisions
    out = list(decisions)
    for i in sorted(range(len(out)), key=lambda j: out[j].server):
        if total <= ceiling:
            break
        d = out[i]
        extra = held(d) - before(d)
        if extra <= 0:
            continue
        per = max(d.gpus_per_replica, 1)
        cut = min(extra, total - ceiling)
        replicas = d.replicas - math.ceil(cut / per)
        replicas = max(replicas, before(d) // per)
        total -= (d.replicas - replicas) * per
        clamps.append(Clamp(d.server, "max-total-gpus", d.replicas, replicas))
        out[i] = replace(d, replicas=replicas)
    return out


class Policy:
    """The policy of one controller (or one simulated one): its options, the forecaster's
    constants and its :class:`PolicyState`, across cycles. ``clock`` gives seconds."""

    def __init__(
        self,
        opts: PolicyOptions,
        clock: Callable[[], float],
        batch_tolerance: float = 0.0,
        params: ForecastParams | None = None,
    ) -> None:
        self.opts = opts
        self.clock = clock
        self.batch_tolerance = batch_tolerance
        self.params = params if params is not None else ForecastParams()
        self.state = PolicyState()
        #: the last cycle's forecasts, by server (for the report), and the start-ups they took
        self.forecasts: dict[str, Forecast] = {}
        self.startups: dict[str, Startup] = {}
        #: per service class (casefolded), its options with the class's overrides
        self._classes: dict[str, PolicyOptions] = {}
        self._class_startup: dict[str, float] = {}  # classes that set startupTime

    def set_classes(self, service_classes: Sequence[Mapping[str, Any]]) -> list[str]:
        """Take each class's ``policy`` overrides (a ``class_row``'s key, from the ServiceClass'
        ``spec.policy``) for the cycle; the problems of rows whose overrides are unusable (that
        class then runs the defaults)."""
        self._classes = {}
        self._class_startup = {}
        problems = []
        for row in service_classes:
            name, raw = row.get("name"), row.get("policy")
            if not isinstance(name, str) or not raw:
                continue
            try:
                opts = self._classes[name.casefold()] = replace(self.opts, **dict(raw))
            except (TypeError, ValueError) as exc:
                problems.append(f"ServiceClass {name}: policy overrides ignored: {exc}")
                continue
            if "startup_time" in raw:  # the class's own word on its start-up
                self._class_startup[name.casefold()] = opts.startup_time
        return problems

    def options_for(self, service_class: str) -> PolicyOptions:
        """The options of a server of ``service_class`` (the class's overrides on the deployed
        settings)."""
        return self._classes.get(service_class.casefold(), self.opts)

    def _params_for(self, opts: PolicyOptions, startup_s: float) -> ForecastParams:
        p = self.params if opts is self.opts else replace(self.params, margin_z=opts.margin_z)
        return p if p.startup_s == startup_s else replace(p, startup_s=startup_s)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float]) -> Policy:
        return cls(settings.policy, clock, settings.plan.batch_tolerance, forecast_params(settings))

    def loads(
        self,
        rows: Sequence[Mapping[str, Any]],
        backlog: Mapping[str, float] | None = None,
        startup: Mapping[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        """The server rows to solve: each rate replaced by the rate to size for (the forecast's
        target, or with ``forecast`` off the measured rate), × (1 + headroom), and its tokens
        per request by their smoothed values. ``backlog``: requests waiting now, by server (when
        the load source reports them); ``startup``: the start-up its pods show, by server
        (:mod:`inferno.control.startup` says which one the horizon takes). Updates the
        forecasters and the smoothed tokens."""
        now = self.clock()
        backlog = backlog or {}
        startup = startup or {}
        self.startups = {}
        tracks: dict[str, Track] = {}
        tokens: dict[str, tuple[float, float, float]] = {}
        forecasts: dict[str, Forecast] = {}
        out: list[dict[str, Any]] = []
        for row in rows:
            name, rate = row.get("name"), _rate_of(row)
            if not isinstance(name, str) or rate is None or rate < 0:
                out.append(dict(row))
                continue
            cls = str(row.get("class") or "")
            opts = self.options_for(cls)
            target = rate
            if self.opts.forecast:
                took = choose_startup(
                    self.params.startup_s,  # the deployed setting
                    self._class_startup.get(cls.casefold()),
                    startup.get(name),
                )
                self.startups[name] = took
                params = self._params_for(opts, took.seconds)
                track = observe(self.state.tracks.get(name), rate, now, params)
                tracks[name] = track
                f = plan_rate(track, rate, params, _backlog_excess(row, backlog.get(name)))
                forecasts[name] = f
                target = f.target
            target *= 1.0 + opts.headroom
            smoothed = _smooth_tokens(
                row, self.state.tokens.get(name), now, self.opts.token_halflife
            )
            if smoothed is None:
                out.append(_with_rate(row, target))
                continue
            tokens[name] = smoothed
            kept = dict(zip(_TOKEN_KEYS, smoothed[:2], strict=True))
            out.append(_with_rate(row, target, **kept))
        self.state = replace(self.state, tracks=tracks, tokens=tokens)
        self.forecasts = forecasts
        return out

    def guard(
        self, decisions: Iterable[Decision], deployments: Iterable[ManagedDeployment]
    ) -> Guarded:
        current = {d.server: d for d in deployments}
        per_server = {
            d.server: self.options_for(d.service_class)
            for d in current.values()
            if d.service_class.casefold() in self._classes
        }
        result = guard(
            decisions,
            current,
            self.state.history,
            self.clock(),
            self.opts,
            self.batch_tolerance,
            self.state.switches,
            per_server,
        )
        self.state = replace(self.state, history=result.history, switches=result.switches)
        return result
