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

With a seasonal period ``Q`` (``INFERNO_FORECAST_SEASON``, e.g. a day), the filter works on the
deseasonalised rate ``y / s(t)``: per bin of ``Q / SEASON_BINS`` the rate seen there (set on the
first visit, then moved by :data:`SEASON_GAIN` per full visit, so a season weighs about a third),
and ``s`` = a bin's rate over the mean of the bins. Forecasts are multiplied by the index of the
time they are for. The indices are used only after one whole season has been observed; before,
the filter is the plain one.

The forecast anticipates a rise (the replicas added now serve only after their start-up, so the
horizon covers it), but a fall is followed, never anticipated: removing replicas needs no
start-up, and a rate measured over a window ramps for a whole window after a step, so a trend
extrapolated down would overshoot below the rate (``S`` is the floor).

Pure: no clock (times are given), no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Forecast",
    "ForecastParams",
    "Track",
    "error_sigma",
    "observe",
    "plan_rate",
    "rate_at",
]

#: relative residuals are taken against at least this rate (req/min), so an idle server's
#: first requests are not a 10⁶ % surprise
_FLOOR_RPM = 1.0
#: a single relative residual counts at most this much (one outlier cannot blow the margin up)
_MAX_RESIDUAL = 3.0
#: an under-forecast beyond this many standard deviations of the noise is a surprise (a jump)
SURPRISE_SIGMAS = 2.0
#: the seasonal indices per season, and how far one full visit of a bin moves its index
SEASON_BINS = 48
SEASON_GAIN = 0.3


@dataclass(frozen=True, slots=True)
class ForecastParams:
    """The forecaster's constants (from :class:`inferno.settings.PolicyOptions`)."""

    alpha: float = 0.7  # level smoothing
    beta: float = 0.2  # trend smoothing
    damping: float = 0.8  # φ, per control period
    period_s: float = 60.0  # the control period P
    window_s: float = 60.0  # the measurement window
    startup_s: float = 60.0  # a new replica's start-up time
    margin_z: float = 1.0  # z: margins in standard deviations of the forecast error
    halflife_s: float = 1200.0  # of the residual variance
    drain_s: float = 60.0  # a backlog is sized to drain within this
    max_margin: float = 1.0  # the margin never exceeds this fraction of the rate
    season_s: float = 0.0  # the seasonal period Q (0: none)

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
    #: the seasonal indices (empty: no season) and the seconds of history they have seen
    season: tuple[float, ...] = ()
    seen_s: float = 0.0

    def is_valid(self) -> bool:
        values = (self.level, self.trend, self.t, self.variance, self.smooth, self.jump)
        return (
            all(math.isfinite(x) for x in values)
            and self.level >= 0.0
            and self.smooth >= 0.0
            and self.jump >= 0.0
            and self.variance >= 0.0
            and self.n >= 1
            and len(self.season) in (0, SEASON_BINS)
            and all(math.isfinite(x) and x >= 0.0 for x in self.season)
            and math.isfinite(self.seen_s)
            and self.seen_s >= 0.0
        )

    def index(self, t: float, p: ForecastParams) -> float:
        """The seasonal index at time ``t``: its bin's rate over the mean of the bins (1 without
        a season, or before a whole season was seen)."""
        if p.season_s <= 0 or len(self.season) != SEASON_BINS or self.seen_s < p.season_s:
            return 1.0
        mean = sum(self.season) / SEASON_BINS
        if mean <= 0:
            return 1.0
        # linear between the bins' centres (a step per bin would look like a trend to the filter)
        x = (t % p.season_s) / p.season_s * SEASON_BINS - 0.5
        k = math.floor(x)
        w = x - k
        a, b = self.season[k % SEASON_BINS], self.season[(k + 1) % SEASON_BINS]
        return ((1.0 - w) * a + w * b) / mean


def _bin(t: float, p: ForecastParams) -> int:
    return int((t % p.season_s) / p.season_s * SEASON_BINS) % SEASON_BINS


def _learn_season(
    track: Track, y: float, t: float, dt: float, p: ForecastParams
) -> tuple[tuple[float, ...], float]:
    """The bins' rates with ``y`` taken into ``t``'s bin: set on a bin's first visit, then moved
    by :data:`SEASON_GAIN` per full visit (a raw rate per bin, so the indices — each bin over
    the bins' mean — do not depend on the level filter, which follows the rate too closely to
    separate a season from a trend)."""
    if p.season_s <= 0:
        return (), 0.0
    season = list(track.season) if len(track.season) == SEASON_BINS else [0.0] * SEASON_BINS
    k = _bin(t, p)
    if season[k] <= 0.0:
        season[k] = max(y, _FLOOR_RPM)
    else:
        gain = 1.0 - (1.0 - SEASON_GAIN) ** min(dt / (p.season_s / SEASON_BINS), 1.0)
        season[k] = (1.0 - gain) * season[k] + gain * max(y, _FLOOR_RPM)
    return tuple(season), track.seen_s + dt


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
        season = _learn_season(Track(rate, 0.0, t), rate, t - p.lag_s, 0.0, p)[0]
        return Track(level=rate, trend=0.0, t=t, smooth=rate, season=season)
    dt = t - track.t
    at = t - p.lag_s  # the centre of the window the rate was measured over
    index = track.index(at, p)
    raw = rate
    rate = rate / index  # the filter runs on the deseasonalised rate
    predicted = max(track.level + track.trend * dt, 0.0)
    # the error that matters is against what was sized for: the larger of the prediction and
    # the smoothed rate (a trend overshooting below the rate after a fall is no under-forecast)
    sized = max(predicted, track.smooth / index)
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
    smooth = p.alpha * raw + (1.0 - p.alpha) * track.smooth
    season, seen = _learn_season(track, raw, at, dt, p)
    return Track(level, trend, t, variance, track.n + 1, smooth, jump, season, seen)


def rate_at(track: Track, ahead_s: float, p: ForecastParams) -> float:
    """F(``ahead_s``): the level plus the damped trend (never below 0), times the seasonal index
    of the time it is for."""
    index = track.index(track.t - p.lag_s + ahead_s, p)
    if ahead_s <= 0 or track.trend == 0.0:
        return max(track.level, 0.0) * index
    steps = ahead_s / p.period_s
    phi = p.damping
    if phi >= 1.0:
        gain = steps
    elif phi <= 0.0:
        gain = 0.0
    else:
        gain = phi * (1.0 - phi**steps) / (1.0 - phi)
    return max(track.level + track.trend * p.period_s * gain, 0.0) * index


def error_sigma(track: Track, base: float, p: ForecastParams) -> float:
    """σ: the relative error of the forecast at the horizon, the tracked one-step error grown
    to it, at least the Poisson noise of counting ``base``·window/60 arrivals (smoothed)."""
    steps = max(p.horizon_s / p.period_s, 1.0)
    grown = track.variance * (1.0 + (steps - 1.0) * p.alpha * p.alpha)
    poisson = 60.0 / (max(base, 1e-9) * p.window_s) * p.smoothing
    return math.sqrt(max(grown, poisson))


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
    margin = min(max(p.margin_z * error_sigma(track, base, p), track.jump), p.max_margin)
    return Forecast(measured, now, ahead, margin, drain, base * (1.0 + margin) + drain)
