"""Online tuning of performance profiles from what the collector observes (pure: numpy only, no
HTTP, Kubernetes or Prometheus).

One extended Kalman filter per (model, accelerator) estimates the profile's (α, β) from each
cycle's mean compute time per request at the mean batch; guards skip unusable observations,
reject implausible or out-of-bounds updates and re-initialise after a persistent change. See
:mod:`inferno.tuning.tuner` and ``docs/tuning.md``.
"""

from __future__ import annotations

from .apply import with_tuned_profiles
from .measure import Theta, base_theta, evaluate, scale_to, with_theta
from .observe import observations_from
from .persist import state_from_json, state_to_json
from .tuner import (
    FilterState,
    Observation,
    PairKey,
    PairReport,
    TunerState,
    TuningEntry,
    TuningOptions,
    TuningReport,
    tuned_parameters,
    update,
)

__all__ = [
    "FilterState",
    "Observation",
    "PairKey",
    "PairReport",
    "Theta",
    "TunerState",
    "TuningEntry",
    "TuningOptions",
    "TuningReport",
    "base_theta",
    "evaluate",
    "observations_from",
    "scale_to",
    "state_from_json",
    "state_to_json",
    "tuned_parameters",
    "update",
    "with_theta",
    "with_tuned_profiles",
]
