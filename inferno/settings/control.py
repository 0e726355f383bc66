"""How decisions are made and applied: the performance model the optimizer sizes with
(:class:`OptimizerOptions`), the control policy around it (:class:`PolicyOptions`) and how
decisions become patches (:class:`PlanOptions`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._group import Group, finite, option

__all__ = ["MODELS", "OptimizerOptions", "PlanOptions", "PolicyOptions"]

#: a container variable the sample Deployments' ``sh -c`` scripts can read: a POSIX shell name
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class PlanOptions(Group):
    """How decisions become patches (:mod:`inferno.cluster.plan`)."""

    gpu_resource: str = option(
        "nvidia.com/gpu", "INFERNO_GPU_RESOURCE", "the extended resource whose limit is set"
    )
    batch_env: str = option(
        "INFERNO_MAX_BATCH_SIZE", "INFERNO_BATCH_ENV", "the container variable of the batch size"
    )
    instances_env: str = option(
        "INFERNO_INSTANCES",
        "INFERNO_INSTANCES_ENV",
        "the container variable of the decided model instances (batch kind)",
    )
    queue_delay_env: str = option(
        "INFERNO_MAX_QUEUE_DELAY_US",
        "INFERNO_QUEUE_DELAY_ENV",
        "the container variable of the decided batching delay, in µs (batch kind)",
    )
    hpa_headroom: float = option(
        0.25, "INFERNO_HPA_HEADROOM", "HPA maxReplicas headroom above the decision"
    )
    batch_tolerance: float = option(
        0.25,
        "INFERNO_BATCH_TOLERANCE",
        "keep the running batch when a decision on the same GPU moves it by at most this",
    )

    def check(self) -> None:
        names = ("batch_env", "instances_env", "queue_delay_env")
        for name in names:
            value = getattr(self, name)
            self._require(
                name,
                isinstance(value, str) and ENV_NAME.fullmatch(value) is not None,
                "a container variable name (letters, digits and _, not starting with a digit)",
            )
        for j, name in enumerate(names[1:], start=1):
            value = getattr(self, name)
            for other in names[:j]:
                self._require(
                    name,
                    value != getattr(self, other),
                    f"a name other than {self.__dataclass_fields__[other].metadata['env']}'s",
                )
        self._require(
            "hpa_headroom",
            finite(self.hpa_headroom) and self.hpa_headroom >= 0,
            "a finite number >= 0",
        )
        self._require("batch_tolerance", 0 <= self.batch_tolerance < 1, "a fraction in [0, 1)")


@dataclass(frozen=True, slots=True)
class PolicyOptions(Group):
    """The control policy around the optimizer (:mod:`inferno.control.policy`), the same in the
    cluster and in ``inferno simulate`` (a scenario's ``inferno`` policy sets these names)."""

    headroom: float = option(
        0.0, "INFERNO_POLICY_HEADROOM", "size each server for its measured load × (1 + headroom)"
    )
    forecast: bool = option(
        True,
        "INFERNO_FORECAST",
        "size for the rate forecast at the horizon plus a margin (false: the measured rate)",
    )
    startup_time: float = option(
        60.0,
        "INFERNO_STARTUP_TIME",
        "seconds a new replica takes to become ready (part of the forecast horizon), when its "
        "pods show none",
    )
    measure_startup: bool = option(
        True,
        "INFERNO_MEASURE_STARTUP",
        "measure each server's start-up from its pods' Ready conditions (false: the setting)",
    )
    startup_max: float = option(
        1800.0,
        "INFERNO_STARTUP_MAX",
        "seconds: a pod's scheduling-to-Ready longer than this is not counted as a start-up",
    )
    margin_z: float = option(
        1.0, "INFERNO_MARGIN_Z", "margin, in standard deviations of the forecast error"
    )
    max_margin: float = option(
        1.0, "INFERNO_MAX_MARGIN", "the margin never exceeds this fraction of the rate"
    )
    forecast_alpha: float = option(0.7, "INFERNO_FORECAST_ALPHA", "level smoothing, in (0, 1]")
    forecast_beta: float = option(0.2, "INFERNO_FORECAST_BETA", "trend smoothing, in [0, 1]")
    forecast_damping: float = option(
        0.8, "INFERNO_FORECAST_DAMPING", "trend damping per control period, in [0, 1]"
    )
    residual_halflife: float = option(
        1200.0, "INFERNO_RESIDUAL_HALFLIFE", "seconds: half-life of the forecast error's variance"
    )
    forecast_season: float = option(
        0.0,
        "INFERNO_FORECAST_SEASON",
        "seconds: the load's seasonal period (86400: daily), learnt in 48 bins; 0: none",
    )
    forecast_pool: bool = option(
        True,
        "INFERNO_FORECAST_POOL",
        "forecast each server as its share of all servers' summed rate (less count noise), "
        "falling back to its own forecast where it departs from its share",
    )
    drain_time: float = option(
        60.0, "INFERNO_DRAIN_TIME", "seconds within which a reported backlog is to be drained"
    )
    token_halflife: float = option(
        300.0,
        "INFERNO_TOKEN_HALFLIFE",
        "seconds: half-life of the smoothed tokens per request the batch size follows (0: none)",
    )
    stabilization_window: float = option(
        0.0,
        "INFERNO_SCALE_DOWN_WINDOW",
        "seconds: a server keeps the most replicas decided in this window (same GPU and batch)",
    )
    max_scale_up_pods: int = option(
        0, "INFERNO_MAX_SCALE_UP_PODS", "replicas one server may gain per cycle (0: no limit)"
    )
    max_scale_up_percent: float = option(
        0.0, "INFERNO_MAX_SCALE_UP_PERCENT", "… or this % of its replicas, the larger (0: none)"
    )
    max_scale_down_pods: int = option(
        0, "INFERNO_MAX_SCALE_DOWN_PODS", "replicas one server may lose per cycle (0: no limit)"
    )
    max_scale_down_percent: float = option(
        0.0, "INFERNO_MAX_SCALE_DOWN_PERCENT", "… or this % of its replicas, the larger (0: none)"
    )
    max_total_gpus: int = option(
        0, "INFERNO_MAX_TOTAL_GPUS", "GPUs all managed servers may hold together (0: no ceiling)"
    )
    switch_min_saving: float = option(
        0.1,
        "INFERNO_SWITCH_MIN_SAVING",
        "a server changes GPU type only when that saves at least this fraction of its cost",
    )
    switch_delay: float = option(
        60.0,
        "INFERNO_SWITCH_DELAY",
        "… and the optimizer has preferred the other type for this many seconds",
    )
    max_rollouts: int = option(
        0,
        "INFERNO_MAX_ROLLOUTS",
        "servers whose GPU type or batch (a rollout of every pod) may change per cycle (0: all)",
    )

    def check(self) -> None:
        self._require(
            "headroom", finite(self.headroom) and 0 <= self.headroom <= 10, "a number in [0, 10]"
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
                name, finite(value) and lo <= value <= hi, f"a number in [{lo:g}, {hi:g}]"
            )
        self._require(
            "forecast_alpha",
            finite(self.forecast_alpha) and 0 < self.forecast_alpha <= 1,
            "a number in (0, 1]",
        )
        self._require(
            "drain_time",
            finite(self.drain_time) and 1 <= self.drain_time <= 86400,
            "seconds in [1, 86400]",
        )
        self._require(
            "stabilization_window",
            finite(self.stabilization_window) and 0 <= self.stabilization_window <= 86400,
            "seconds in [0, 86400]",
        )
        self._require(
            "switch_min_saving",
            finite(self.switch_min_saving) and 0 <= self.switch_min_saving < 1,
            "a fraction in [0, 1)",
        )
        self._require(
            "switch_delay",
            finite(self.switch_delay) and 0 <= self.switch_delay <= 86400,
            "seconds in [0, 86400]",
        )
        for name in ("max_scale_up_pods", "max_scale_down_pods", "max_total_gpus", "max_rollouts"):
            self._require(name, 0 <= getattr(self, name) <= 1_000_000, "an integer in 0..1000000")
        for name in ("max_scale_up_percent", "max_scale_down_percent"):
            value = getattr(self, name)
            self._require(name, finite(value) and 0 <= value <= 10_000, "a percentage >= 0")


#: the performance models the optimizer can size with (:class:`inferno.system.PerformanceModel`'s
#: values; this layer sits below it)
MODELS = ("inferno", "accurate")


@dataclass(frozen=True, slots=True)
class OptimizerOptions(Group):
    """What the optimizer sizes the servers with, when its data does not say
    (``optimizer-data.json``'s ``model`` wins: docs/model.md, "Accurate mode")."""

    model: str = option(
        "inferno",
        "INFERNO_MODEL",
        "the performance model: inferno (Inferno's chain) or accurate (iteration-level batching), "
        "unless the optimizer data names one",
    )

    def __post_init__(self) -> None:
        # as the optimizer data's ``model`` is read: in any case, spaces around ignored
        if isinstance(self.model, str):
            object.__setattr__(self, "model", self.model.strip().casefold())
        super(OptimizerOptions, self).__post_init__()

    def check(self) -> None:
        self._require("model", self.model in MODELS, " or ".join(repr(m) for m in MODELS))
