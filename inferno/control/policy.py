"""The control policy around the optimizer: the same code in the cluster's cycle and in
``inferno simulate``'s ``inferno`` policy, configured by :class:`inferno.settings.PolicyOptions`.

Before the solve, :meth:`Policy.loads` smooths each server's measured tokens per request
(``token_halflife``: the memory-bound batch follows them, and a noisy window must not roll every
pod) and sizes it for the rate its forecaster (:mod:`inferno.control.forecast`) expects over
the decision's horizon — the next period, the measurement's lag and a new replica's start-up
(measured or set: :mod:`inferno.control.startup`) — plus a margin from the forecast's tracked
error and the count's Poisson noise, plus what drains a reported backlog (``forecast: false``: the
measured rate; either way × (1 + ``headroom``)). After it,
:func:`~inferno.control.guards.guard` bounds the decisions, as trusted autoscalers do: GPU-type
hysteresis, a rollout budget, scale-down stabilisation, step limits and a ceiling
(:mod:`inferno.control.guards`; each bound that changes a decision is a
:class:`~inferno.control.guards.Clamp`). Pure: :class:`Policy` only holds its
:class:`PolicyState` across cycles, and its clock is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard

from ..cluster.inventory import ManagedDeployment
from ..cluster.plan import Decision, PlanSettings, holders
from ..settings import PolicyOptions, Settings
from ..system import cv_beyond_cap
from .forecast import Forecast, ForecastParams, Track, observe, plan_rate
from .guards import Entry, Guarded, Switches, guard
from .pool import Pool, observe_pool, pooled_forecast
from .startup import Startup, choose_startup

__all__ = ["Policy", "PolicyState", "forecast_params"]


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
    #: the pooled forecaster (``forecast_pool``: the sum of the rates and each server's share)
    pool: Pool = field(default_factory=Pool)


def _finite_number(v: object) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _rate_of(row: Mapping[str, Any]) -> float | None:
    current = row.get("currentAlloc")
    load = current.get("load") if isinstance(current, Mapping) else None
    rate = load.get("arrivalRate") if isinstance(load, Mapping) else None
    return float(rate) if _finite_number(rate) else None


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
    if not all(_finite_number(v) and v >= 0 for v in values):
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


def _within_cap(
    row: Mapping[str, Any], smoothed: tuple[float, float, float], now: float
) -> tuple[tuple[float, float, float], dict[str, float]]:
    """The smoothed tokens made to hold with the row's cap (``outTokensMax``, the Deployment's
    most output tokens), as the optimizer's data check them: served lengths never exceed the
    cap, so a smoothed mean above it is of lengths the server no longer serves (the cap was
    lowered), and the smoothing restarts from this window's measurement (the collector told
    the cap only with a mean and CV that hold with it); a smoothed mean the window's CV cannot
    have under the cap (the mean moved with the window's CV) keeps the mean and takes the most
    CV the cap allows at it. Returns the tokens and the load's keys to replace."""
    load = row["currentAlloc"]["load"]
    most, cv = load.get("outTokensMax"), load.get("outTokensCOV")
    if not _finite_number(most):
        return smoothed, {}
    mean = smoothed[1]
    if mean > most:
        measured = load.get("avgOutTokens")
        if _finite_number(measured) and measured <= most:
            return (float(load["avgInTokens"]), float(measured), now), {}
        return smoothed, {}  # the row contradicts its cap: the optimizer says so
    if _finite_number(cv) and cv_beyond_cap(cv, mean, most):
        # just under the largest, so that the check's own rounding cannot find it above
        return smoothed, {"outTokensCOV": math.sqrt(max(most / mean - 1.0, 0.0)) * (1 - 1e-12)}
    return smoothed, {}


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
    period = settings.service.control_period
    return options_params(
        settings.policy,
        period_s=period if period > 0 else 60.0,
        window_s=settings.prometheus.load_window,
    )


def options_params(
    o: PolicyOptions, period_s: float = 60.0, window_s: float = 60.0
) -> ForecastParams:
    """The forecaster's constants from the policy group, for a control period and a load
    window of these lengths."""
    return ForecastParams(
        alpha=o.forecast_alpha,
        beta=o.forecast_beta,
        damping=o.forecast_damping,
        period_s=period_s,
        window_s=window_s,
        startup_s=o.startup_time,
        margin_z=o.margin_z,
        halflife_s=o.residual_halflife,
        drain_s=o.drain_time,
        max_margin=o.max_margin,
        season_s=o.forecast_season,
    )


class Policy:
    """The policy of one controller (or one simulated one): its options, the forecaster's
    constants and its :class:`PolicyState`, across cycles. ``clock`` gives seconds."""

    def __init__(
        self,
        opts: PolicyOptions,
        clock: Callable[[], float],
        plan: PlanSettings | None = None,
        params: ForecastParams | None = None,
    ) -> None:
        self.opts = opts
        self.clock = clock
        #: the actuator's settings (None: no batch hysteresis, serving values unread): the batch
        #: tolerance, and the variables the guard reads the running instances and delay from
        self.plan = plan
        self.batch_tolerance = plan.batch_tolerance if plan is not None else 0.0
        self.params = params if params is not None else options_params(opts)
        self.state = PolicyState()
        #: the last cycle's forecasts, by server (for the report), and the start-ups they took
        self.forecasts: dict[str, Forecast] = {}
        self.startups: dict[str, Startup] = {}
        #: the servers the last cycle sized by the pooled forecast (``forecast_pool``)
        self.pooled: set[str] = set()
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
        return cls(settings.policy, clock, settings.plan, forecast_params(settings))

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
        sized: list[tuple[Mapping[str, Any], str, float, PolicyOptions]] = []
        rates: dict[str, float] = {}
        plans: dict[str, tuple[ForecastParams, float]] = {}
        for row in rows:
            name, rate = row.get("name"), _rate_of(row)
            if not isinstance(name, str) or rate is None or rate < 0:
                sized.append((row, "", -1.0, self.opts))
                continue
            cls = str(row.get("class") or "")
            opts = self.options_for(cls)
            sized.append((row, name, rate, opts))
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
                excess = _backlog_excess(row, backlog.get(name))
                forecasts[name] = plan_rate(track, rate, params, excess)
                rates[name] = rate
                plans[name] = (params, excess)
        pool = self.state.pool
        self.pooled = set()
        if self.opts.forecast and self.opts.forecast_pool and rates:
            pool = observe_pool(pool, rates, tracks, now, self.params)
            for name, (params, excess) in plans.items():
                f = pooled_forecast(pool, name, tracks[name], rates[name], params, now, excess)
                if f is not None:
                    forecasts[name] = f
                    self.pooled.add(name)
        out: list[dict[str, Any]] = []
        for row, name, rate, opts in sized:
            if rate < 0:
                out.append(dict(row))
                continue
            target = forecasts[name].target if name in forecasts else rate
            target *= 1.0 + opts.headroom
            smoothed = _smooth_tokens(
                row, self.state.tokens.get(name), now, self.opts.token_halflife
            )
            if smoothed is None:
                out.append(_with_rate(row, target))
                continue
            smoothed, more = _within_cap(row, smoothed, now)
            tokens[name] = smoothed
            kept = dict(zip(_TOKEN_KEYS, smoothed[:2], strict=True))
            out.append(_with_rate(row, target, **kept, **more))
        self.state = replace(self.state, tracks=tracks, tokens=tokens, pool=pool)
        self.forecasts = forecasts
        if self.batch_tolerance > 0:
            # the solver keeps each running batch within the tolerance and sizes for it
            # (solver/running_batch.py: the actuator's hysteresis alone keeps it unsized)
            for row in out:
                row["batchTolerance"] = self.batch_tolerance
        return out

    def guard(
        self, decisions: Iterable[Decision], deployments: Iterable[ManagedDeployment]
    ) -> Guarded:
        current = holders(deployments)
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
            self.plan,
        )
        self.state = replace(self.state, history=result.history, switches=result.switches)
        return result
