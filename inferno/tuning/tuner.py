"""Online tuning of performance profiles: one extended Kalman filter per (model, accelerator).

Each cycle, :func:`update` takes what the collector observed on every server (its mean compute
time per request, at its mean batch and request shape), the base (static) profiles and the
filters' state, and returns the new state and a :class:`TuningReport`. It is pure: the caller
keeps the state between cycles.

**The observation model.** The observation of a server running model m on accelerator a is
z = ``compute_ms``, Triton's ``nv_inference_compute_infer_duration_us`` increase over the window
divided by the requests completed. Triton adds the *whole* execution time of a batch to the
counter of *each* request in it, so z is the request-weighted mean of the batch time,
Σ bₖ·τ(bₖ) / Σ bₖ over the window's executions k. The model's τ(b) is that batch time, and the
filter compares z with h(θ) = τ(b̄) at the mean batch b̄ = inferences / executions (Triton's
``avg_batch``). When batch sizes vary, the two differ (Jensen): for the batch kind,
z = α + β·(b̄ + Var(b)/b̄), so the filter sees a batch larger than b̄ and attributes the excess to
β (β biased up by β·Var(b)/b̄², α compensating). With a steady load the variance is small
and so is the bias; the bounds below cap what it can do.

For the token kinds (G0–G3) Triton's batch statistics do not see the engine's continuous batch
(a vLLM or TensorRT-LLM backend shows batches of 1), so b is the mean number of requests a
replica holds in service, by Little's law: (completions per ms per replica) × z, when the
observation carries the replica count; else ``avg_batch``. The same request-weighting bias
applies. The request shape (input and output tokens per request) is the measured load's.

**Guards**, each with a reason in the report:

a. no usable observation (missing, NaN or non-positive compute time or batch, no current
   accelerator, no profile for the pair) or fewer than ``min_requests`` requests in the window:
   the observation is skipped;
b. the innovation gate: the normalised innovation squared y²/S above the χ²(1) quantile
   ``gate`` (99.9%: 10.83) is implausible for the filter's own uncertainty and is rejected.
   After ``reset_after`` consecutive rejections in the same direction the filter re-initialises
   around the observations (θ scaled by the median of the factors that make τ(b) match each
   of them, the covariance back to the initial uncertainty): a real change of hardware or
   software (a new driver, another quantisation) is then learned instead of being rejected for
   ever, while a single wild outlier never moves θ;
c. the updated θ must be positive (parameters whose base value is 0 stay 0) and within
   [base/``bounds``, base·``bounds``]; otherwise the update is rejected and θ kept.

The fourth guard — a tuned profile must not make a server infeasible that the base profile
allocates — needs the solver and is :func:`inferno.control.optimize.solve_prepared`'s.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from statistics import median
from types import MappingProxyType
from typing import Any

import numpy as np

from ..model.profiles import Kind, Profile, Tokens
from ..settings import TuningOptions
from . import ekf
from .measure import Theta, base_theta, evaluate, scale_to

__all__ = [
    "FilterState",
    "Observation",
    "PairKey",
    "PairReport",
    "TunerState",
    "TuningEntry",
    "TuningOptions",
    "TuningReport",
    "tuned_parameters",
    "update",
]

logger = logging.getLogger(__name__)

PairKey = tuple[str, str]  # (model, accelerator)

ACCEPTED = "accepted"
RESET = "reset"
REJECTED = "rejected"
SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Observation:
    """What the collector saw on one server over its window, tied to the server's model and
    current accelerator. None: not measured."""

    server: str
    model: str
    accelerator: str
    compute_ms: float | None  # mean compute time per request
    avg_batch: float | None  # Triton's inferences / executions
    tokens: Tokens = field(default_factory=Tokens)
    requests: float | None = None  # requests completed in the window
    occupancy: float | None = None  # Little's law: requests in service per replica


@dataclass(frozen=True, slots=True)
class FilterState:
    """One (model, accelerator) filter."""

    kind: Kind
    base: Theta  # the base profile's (α, β) the filter started from
    theta: Theta
    cov: ekf.Covariance
    updates: int = 0  # accepted observations (resets included)
    rejections: int = 0
    resets: int = 0
    streak: int = 0  # consecutive gate rejections in one direction
    streak_sign: int = 0
    streak_scales: tuple[float, ...] = ()  # per rejected observation: θ's scale that fits it

    @property
    def std(self) -> Theta:
        return (math.sqrt(max(self.cov[0][0], 0.0)), math.sqrt(max(self.cov[1][1], 0.0)))


@dataclass(frozen=True, slots=True)
class TunerState:
    """Every filter, by (model, accelerator)."""

    filters: Mapping[PairKey, FilterState] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class TuningEntry:
    """What became of one observation."""

    server: str
    model: str
    accelerator: str
    outcome: str  # accepted, reset, rejected, skipped
    reason: str  # why (empty when accepted)
    reason_class: str  # gate, bounds, non-positive, no-data, few-requests, no-profile, ...
    kind: str | None = None
    observed_ms: float | None = None
    batch: float | None = None
    batch_source: str | None = None  # avgBatch or occupancy
    requests: float | None = None
    predicted_ms: float | None = None  # h(θ⁻)
    innovation_ms: float | None = None
    nis: float | None = None
    theta_before: Theta | None = None
    theta_after: Theta | None = None

    def to_json(self) -> dict[str, Any]:
        def theta(t: Theta | None) -> dict[str, float] | None:
            return None if t is None else {"alpha": t[0], "beta": t[1]}

        return {
            "server": self.server,
            "model": self.model,
            "accelerator": self.accelerator,
            "kind": self.kind,
            "outcome": self.outcome,
            "reason": self.reason,
            "reasonClass": self.reason_class,
            "observedMs": _finite(self.observed_ms),
            "batch": _finite(self.batch),
            "batchSource": self.batch_source,
            "requests": _finite(self.requests),
            "predictedMs": _finite(self.predicted_ms),
            "innovationMs": _finite(self.innovation_ms),
            "nis": _finite(self.nis),
            "before": theta(self.theta_before),
            "after": theta(self.theta_after),
        }


@dataclass(frozen=True, slots=True)
class PairReport:
    """A filter's parameters after the cycle."""

    model: str
    accelerator: str
    kind: str
    base: Theta
    tuned: Theta
    std: Theta
    updates: int
    rejections: int
    resets: int
    observed: bool  # had an observation this cycle

    @property
    def key(self) -> PairKey:
        return (self.model, self.accelerator)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "accelerator": self.accelerator,
            "kind": self.kind,
            "base": {"alpha": self.base[0], "beta": self.base[1]},
            "tuned": {"alpha": self.tuned[0], "beta": self.tuned[1]},
            "std": {"alpha": self.std[0], "beta": self.std[1]},
            "updates": self.updates,
            "rejections": self.rejections,
            "resets": self.resets,
            "observed": self.observed,
        }


@dataclass(frozen=True, slots=True)
class TuningReport:
    """One cycle's tuning: every observation's fate and every filter's parameters."""

    entries: tuple[TuningEntry, ...] = ()
    pairs: tuple[PairReport, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "observations": [e.to_json() for e in self.entries],
            "profiles": [p.to_json() for p in self.pairs],
            "notes": list(self.notes),
        }


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _ok(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def _new_filter(profile: Profile, options: TuningOptions) -> FilterState:
    base = base_theta(profile)
    u = options.initial_uncertainty
    return FilterState(
        kind=profile.kind,
        base=base,
        theta=base,
        cov=ekf.diagonal(((u * base[0]) ** 2, (u * base[1]) ** 2)),
    )


def _guard(theta: Theta, base: Theta, options: TuningOptions) -> tuple[str, str] | None:
    """(reason class, reason) when θ may not be used, else None (guard c)."""
    for name, value, b in (("alpha", theta[0], base[0]), ("beta", theta[1], base[1])):
        if b <= 0:  # not tuned: held at 0
            if value != 0:
                return "non-positive", f"{name} has base 0 and must stay 0 (got {value:.6g})"
            continue
        if not math.isfinite(value) or value <= 0:
            return "non-positive", f"{name} would be {value:.6g} (must be > 0)"
        lo, hi = b / options.bounds, b * options.bounds
        if not lo <= value <= hi:
            return (
                "bounds",
                f"{name} would be {value:.6g}, outside [{lo:.6g}, {hi:.6g}] "
                f"(base {b:.6g} within a factor {options.bounds:g})",
            )
    return None


def _batch(profile: Profile, obs: Observation) -> tuple[float, str] | None:
    """The batch the observation is taken at (at least 1), and where it came from."""
    if profile.kind is not Kind.BATCH and obs.occupancy is not None and _ok(obs.occupancy):
        return max(obs.occupancy, 1.0), "occupancy"
    if obs.avg_batch is not None and _ok(obs.avg_batch):
        return max(obs.avg_batch, 1.0), "avgBatch"
    return None


def _step(
    f: FilterState,
    profile: Profile,
    obs: Observation,
    at: tuple[float, str],
    options: TuningOptions,
) -> tuple[FilterState, TuningEntry]:
    """One observation at batch ``at`` (value, source) against one (already predicted) filter:
    guards b and c."""
    z = float(obs.compute_ms or 0.0)
    batch, source = at
    entry = TuningEntry(
        server=obs.server,
        model=obs.model,
        accelerator=obs.accelerator,
        outcome=SKIPPED,
        reason="",
        reason_class="",
        kind=str(profile.kind),
        observed_ms=z,
        batch=batch,
        batch_source=source,
        requests=obs.requests,
        theta_before=f.theta,
    )
    predicted, jac = evaluate(profile, f.theta, batch, obs.tokens)
    if not (math.isfinite(predicted) and predicted > 0 and np.all(np.isfinite(jac))):
        why = f"the profile predicts {predicted:.6g} ms at this batch and request shape"
        return f, replace(entry, reason=why, reason_class="degenerate", theta_after=f.theta)
    noise = (options.measurement_noise * predicted) ** 2
    inn = ekf.innovate(f.cov, predicted, jac, z, noise)
    entry = replace(entry, predicted_ms=predicted, innovation_ms=inn.residual, nis=_finite(inn.nis))
    threshold = options.gate_threshold
    if not inn.nis <= threshold:  # NaN too
        same = inn.sign == f.streak_sign and f.streak > 0
        streak = f.streak + 1 if same else 1
        scale = scale_to(profile, f.theta, batch, obs.tokens, z)
        scales = (*f.streak_scales, scale) if same else (scale,)
        direction = "above" if inn.sign > 0 else "below"
        gated = replace(
            f,
            rejections=f.rejections + 1,
            streak=streak,
            streak_sign=inn.sign,
            streak_scales=scales,
        )
        why = (
            f"implausible: observed {z:.6g} ms vs predicted {predicted:.6g} ms, "
            f"NIS {inn.nis:.3g} > {threshold:.3g} (χ²(1) at {options.gate:g}); "
            f"{streak} consecutive {direction}"
        )
        if streak < options.reset_after:
            return gated, replace(
                entry, outcome=REJECTED, reason=why, reason_class="gate", theta_after=f.theta
            )
        good = [s for s in scales if math.isfinite(s) and s > 0]
        if not good:
            why += "; no positive scale of (alpha, beta) fits them: not re-initialised"
            return gated, replace(
                entry, outcome=REJECTED, reason=why, reason_class="gate", theta_after=f.theta
            )
        g = median(good)  # robust to one wild outlier that started the streak
        theta = (f.theta[0] * g, f.theta[1] * g)
        bad = _guard(theta, f.base, options)
        if bad is not None:
            why += f"; re-initialising at {g:.3g}× rejected: {bad[1]}"
            return gated, replace(
                entry, outcome=REJECTED, reason=why, reason_class=bad[0], theta_after=f.theta
            )
        u = options.initial_uncertainty
        reset = replace(
            f,
            theta=theta,
            cov=ekf.diagonal(((u * theta[0]) ** 2, (u * theta[1]) ** 2)),
            updates=f.updates + 1,
            resets=f.resets + 1,
            streak=0,
            streak_sign=0,
            streak_scales=(),
        )
        why = (
            f"{streak} consecutive implausible observations {direction} the prediction: "
            f"re-initialised at {g:.3g}× (alpha, beta) with the initial uncertainty"
        )
        logger.info("tuning %s on %s: %s", obs.model, obs.accelerator, why)
        return reset, replace(
            entry, outcome=RESET, reason=why, reason_class="reset", theta_after=theta
        )
    theta, cov = ekf.correct(f.theta, f.cov, jac, inn, noise)
    bad = _guard(theta, f.base, options)
    if bad is not None:
        return replace(f, rejections=f.rejections + 1), replace(
            entry, outcome=REJECTED, reason=bad[1], reason_class=bad[0], theta_after=f.theta
        )
    accepted = replace(
        f,
        theta=theta,
        cov=cov,
        updates=f.updates + 1,
        streak=0,
        streak_sign=0,
        streak_scales=(),
    )
    return accepted, replace(entry, outcome=ACCEPTED, theta_after=theta)


def _skip(obs: Observation, reason_class: str, reason: str, kind: Kind | None) -> TuningEntry:
    return TuningEntry(
        server=obs.server,
        model=obs.model,
        accelerator=obs.accelerator,
        outcome=SKIPPED,
        reason=reason,
        reason_class=reason_class,
        kind=None if kind is None else str(kind),
        observed_ms=obs.compute_ms,
        requests=obs.requests,
    )


def _usable(
    obs: Observation, profile: Profile | None, options: TuningOptions
) -> tuple[float, str] | TuningEntry:
    """The observation's batch and its source, or the entry saying why it is skipped
    (guard a)."""
    if not obs.accelerator:
        return _skip(obs, "no-accelerator", "the server has no current accelerator", None)
    if profile is None:
        why = f"no profile of model {obs.model!r} on accelerator {obs.accelerator!r}"
        return _skip(obs, "no-profile", why, None)
    if not _ok(obs.compute_ms):
        why = f"no usable compute time per request ({obs.compute_ms!r})"
        return _skip(obs, "no-data", why, profile.kind)
    if obs.requests is None or not math.isfinite(obs.requests):
        return _skip(obs, "few-requests", "no request count in the window", profile.kind)
    if obs.requests < options.min_requests:
        why = f"{obs.requests:.6g} requests in the window (< {options.min_requests:g})"
        return _skip(obs, "few-requests", why, profile.kind)
    at = _batch(profile, obs)
    if at is None:
        why = f"no usable batch size (avgBatch {obs.avg_batch!r}, occupancy {obs.occupancy!r})"
        return _skip(obs, "no-data", why, profile.kind)
    return at


def update(
    state: TunerState,
    observations: Iterable[Observation],
    base_profiles: Mapping[PairKey, Profile],
    options: TuningOptions | None = None,
) -> tuple[TunerState, TuningReport]:
    """One cycle: predict every observed filter once, then correct it with each of its
    observations in server-name order. Filters whose base profile disappeared are dropped; a
    filter whose base profile changed (the static data was edited) starts again from it."""
    opts = TuningOptions() if options is None else options
    filters = dict(state.filters)
    notes: list[str] = []
    for key in sorted(filters):
        profile = base_profiles.get(key)
        if profile is None:
            del filters[key]
            notes.append(f"{key[0]} on {key[1]}: no base profile any more; its filter is dropped")
        elif filters[key].base != base_theta(profile) or filters[key].kind is not profile.kind:
            filters[key] = _new_filter(profile, opts)
            notes.append(f"{key[0]} on {key[1]}: the base profile changed; tuning restarts from it")
    entries: list[TuningEntry] = []
    predicted: set[PairKey] = set()
    for obs in sorted(observations, key=lambda o: (o.server, o.model, o.accelerator)):
        key = (obs.model, obs.accelerator)
        profile = base_profiles.get(key)
        at = _usable(obs, profile, opts)
        if isinstance(at, TuningEntry) or profile is None:
            if isinstance(at, TuningEntry):
                entries.append(at)
            continue
        f = filters.get(key) or _new_filter(profile, opts)
        if key not in predicted:
            q = opts.process_noise
            f = replace(f, cov=ekf.predict(f.cov, ((q * f.base[0]) ** 2, (q * f.base[1]) ** 2)))
            predicted.add(key)
        f, entry = _step(f, profile, obs, at, opts)
        filters[key] = f
        entries.append(entry)
        logger.debug("tuning %s: %s %s", key, entry.outcome, entry.reason)
    pairs = tuple(
        PairReport(
            model=key[0],
            accelerator=key[1],
            kind=str(f.kind),
            base=f.base,
            tuned=f.theta,
            std=f.std,
            updates=f.updates,
            rejections=f.rejections,
            resets=f.resets,
            observed=key in predicted,
        )
        for key, f in sorted(filters.items())
    )
    new_state = TunerState(MappingProxyType(filters))
    return new_state, TuningReport(tuple(entries), pairs, tuple(notes))


def tuned_parameters(
    state: TunerState, base_profiles: Mapping[PairKey, Profile]
) -> dict[PairKey, Theta]:
    """(α, β) to use per pair: the filters that accepted at least one observation and whose
    base profile is still the one they started from."""
    out: dict[PairKey, Theta] = {}
    for key, f in state.filters.items():
        profile = base_profiles.get(key)
        if profile is None or f.updates == 0:
            continue
        if f.base != base_theta(profile) or f.kind is not profile.kind:
            continue
        out[key] = f.theta
    return out
