"""The load forecaster of the control policy: per server, a damped-trend Holt filter on the
measured arrival rate, and the rate a server must be sized for.

Each cycle a server's measured rate ``y`` (requests per minute, a Prometheus ``rate()`` over the
last ``window`` seconds) updates its :class:`Track`, ``dt`` seconds after the last one::

    prediction  p = L + T·dt                 (the level carried forward by the trend)
    residual    e = (y − max(p, S)) / max(p, S, floor)  (relative, against what was sized for)
    smoothed    S ← α·y + (1 − α)·S          (no trend: what the rate has been)
    level       L ← α·y + (1 − α)·p
    trend       T ← β·(L_new − L_old)/dt + (1 − β)·φ·T
    variance    V ← (1 − γ)·V + γ·max(e, 0)²  (γ = 1 − 2^(−dt / half-life))

The rate forecast ``h`` seconds ahead damps the trend (φ per control period of ``P`` seconds)::

    F(h) = L + T·P·(φ + φ² + … + φ^(h/P))

and the rate to size for is the largest of the smoothed rate and the forecasts now and at the
horizon, plus a margin::

    base   = max(S, F(lag), F(lag + P + startup))     lag = window / 2 (a rate over a window
                                                        lags the true rate by half of it)
    σ²     = max(V·(1 + (k − 1)·α²), f · 60 / (base·window))   k = horizon / P
    target = base·(1 + max(z·σ, J)) + backlog_excess · 60 / drain_time

``V`` is the semi-variance of the under-forecasts only: a margin guards against more load than
expected, while a drop is followed at the next cycle (removing replicas needs no start-up) and
must not inflate it. The first term of σ² is that one-step error grown to ``k`` steps (the
local-level model's formula); the second is the Poisson noise of counting ``base·window/60``
arrivals, reduced by the smoothing (``f`` = α/(2 − α) × window/period, at most 1: the level
averages several windows), which bounds the margin below when the history is short or quiet.
``J`` holds the last *surprise* — an under-forecast beyond :data:`SURPRISE_SIGMAS` standard
deviations of the noise (the tracked error, or the window's Poisson noise) — halving every
horizon: a step seen through a window shows half of itself first, and the level needs a few
periods to catch up, while replicas started now serve only after the start-up.
``backlog_excess`` is the requests waiting beyond what the running replicas take in their next
batches; sizing for it drains the queue in ``drain_time`` seconds.

The forecast anticipates a rise (the replicas added now serve only after their start-up, so the
horizon covers it), but a fall is followed, never anticipated: removing replicas needs no
start-up, and a rate measured over a window ramps for a whole window after a step, so a trend
extrapolated down would overshoot below the rate (``S`` is the floor).

Pure: no clock (times are given), no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Forecast", "ForecastParams", "Track", "observe", "plan_rate", "rate_at"]

#: relative residuals are taken against at least this rate (req/min), so an idle server's
#: first requests are not a 10⁶ % surprise
_FLOOR_RPM = 1.0
#: a single relative residual counts at most this much (one outlier cannot blow the margin up)
_MAX_RESIDUAL = 3.0
#: an under-forecast beyond this many standard deviations of the noise is a surprise (a jump)
SURPRISE_SIGMAS = 2.0


@dataclass(frozen=True, slots=True)
class ForecastParams:
    """The forecaster's constants (from :class:`inferno.settings.PolicyOptions`)."""

    alpha: float = 0.5  # level smoothing
    beta: float = 0.2  # trend smoothing
    damping: float = 0.9  # φ, per control period
    period_s: float = 60.0  # the control period P
    window_s: float = 60.0  # the measurement window
    startup_s: float = 60.0  # a new replica's start-up time
    margin_z: float = 1.0  # z: margins in standard deviations of the forecast error
    halflife_s: float = 600.0  # of the residual variance
    drain_s: float = 60.0  # a backlog is sized to drain within this
    max_margin: float = 1.0  # the margin never exceeds this fraction of the rate

    @property
    def smoothing(self) -> float:
        """The variance of the smoothed level relative to one window's: α/(2 − α) for
        independent windows, × window/period when consecutive windows overlap (at most 1)."""
        overlap = max(1.0, self.window_s / self.period_s)
        return min(1.0, self.alpha / (2.0 - self.alpha) * overlap)

    @property
    def lag_s(self) -> float:
        return self.window_s / 2.0

    @property
    def horizon_s(self) -> float:
        """How far ahead a decision must hold: the next period, plus the measurement's lag, plus
        the start-up of the replicas it adds."""
        return self.lag_s + self.period_s + self.startup_s


@dataclass(frozen=True, slots=True)
class Track:
    """One server's filter state: level (req/min), trend (req/min per second), the time of the
    last observation (s), the under-forecast semi-variance (relative²), the observations seen
    and the trend-free smoothed rate (req/min)."""

    level: float
    trend: float
    t: float
    variance: float = 0.0
    n: int = 1
    smooth: float = 0.0
    jump: float = 0.0  # the last surprise (relative), decaying with a half-life of the horizon

    def is_valid(self) -> bool:
        values = (self.level, self.trend, self.t, self.variance, self.smooth, self.jump)
        return (
            all(math.isfinite(x) for x in values)
            and self.level >= 0.0
            and self.smooth >= 0.0
            and self.jump >= 0.0
            and self.variance >= 0.0
            and self.n >= 1
        )


@dataclass(frozen=True, slots=True)
class Forecast:
    """The rate to size for, and how it was reached (all req/min; ``margin`` a fraction)."""

    measured: float
    now: float  # F(lag)
    ahead: float  # F(lag + P + startup)
    margin: float
    drain: float  # added for the backlog
    target: float

    def to_json(self) -> dict[str, float]:
        return {
            "measured": self.measured,
            "now": self.now,
            "ahead": self.ahead,
            "margin": self.margin,
            "drain": self.drain,
            "target": self.target,
        }


def observe(track: Track | None, rate: float, t: float, p: ForecastParams) -> Track:
    """``track`` updated with the rate measured at ``t`` (a new track when None, when time went
    backwards, or when the state is unusable)."""
    rate = max(rate, 0.0)
    if track is None or not track.is_valid() or t <= track.t:
        return Track(level=rate, trend=0.0, t=t, smooth=rate)
    dt = t - track.t
    predicted = max(track.level + track.trend * dt, 0.0)
    # the error that matters is against what was sized for: the larger of the prediction and
    # the smoothed rate (a trend overshooting below the rate after a fall is no under-forecast)
    sized = max(predicted, track.smooth)
    residual = min((rate - sized) / max(sized, _FLOOR_RPM), _MAX_RESIDUAL)
    level = p.alpha * rate + (1.0 - p.alpha) * predicted
    phi = p.damping ** (dt / p.period_s)
    trend = p.beta * (level - track.level) / dt + (1.0 - p.beta) * phi * track.trend
    gamma = 1.0 - 0.5 ** (dt / p.halflife_s) if p.halflife_s > 0 else 1.0
    # only under-forecasts count: a margin guards against more load than expected, and a drop
    # (which the next cycle follows at once, no start-up needed) must not inflate it
    # an average from 0: one early surprise weighs γ, as any other (the Poisson floor covers a
    # short history)
    under = max(residual, 0.0) ** 2
    # a surprise — an under-forecast beyond what the count's noise and the tracked error
    # explain — is held as a margin while the level catches up (a step seen through a window
    # shows half of itself first)
    noise = math.sqrt(max(track.variance, 60.0 / (max(sized, _FLOOR_RPM) * p.window_s)))
    jump = track.jump * 0.5 ** (dt / p.horizon_s)
    if residual > SURPRISE_SIGMAS * noise:
        jump = max(jump, residual)
    variance = (1.0 - gamma) * track.variance + gamma * under
    smooth = p.alpha * rate + (1.0 - p.alpha) * track.smooth
    return Track(level, trend, t, variance, track.n + 1, smooth, jump)


def rate_at(track: Track, ahead_s: float, p: ForecastParams) -> float:
    """F(``ahead_s``): the level plus the damped trend (never below 0)."""
    if ahead_s <= 0 or track.trend == 0.0:
        return max(track.level, 0.0)
    steps = ahead_s / p.period_s
    phi = p.damping
    if phi >= 1.0:
        gain = steps
    elif phi <= 0.0:
        gain = 0.0
    else:
        gain = phi * (1.0 - phi**steps) / (1.0 - phi)
    return max(track.level + track.trend * p.period_s * gain, 0.0)


def plan_rate(
    track: Track, measured: float, p: ForecastParams, backlog_excess: float = 0.0
) -> Forecast:
    """The rate to size a server for (see the module's docstring)."""
    now = rate_at(track, p.lag_s, p)
    ahead = rate_at(track, p.horizon_s, p)
    base = max(track.smooth, now, ahead)
    drain = max(backlog_excess, 0.0) * 60.0 / p.drain_s if p.drain_s > 0 else 0.0
    if base <= 0.0:
        return Forecast(measured, now, ahead, 0.0, drain, drain)
    steps = max(p.horizon_s / p.period_s, 1.0)
    grown = track.variance * (1.0 + (steps - 1.0) * p.alpha * p.alpha)
    poisson = 60.0 / (base * p.window_s) * p.smoothing
    sigma = math.sqrt(max(grown, poisson))
    margin = min(max(p.margin_z * sigma, track.jump), p.max_margin)
    return Forecast(measured, now, ahead, margin, drain, base * (1.0 + margin) + drain)
