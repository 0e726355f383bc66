"""A pooled load forecast (``INFERNO_FORECAST_POOL``, on by default): each server as its share
of the summed rate of all servers, which carries far less count noise than one server's rate.

The loads of one cluster are often driven by the same users and the same day. The sum ``Y`` of
every server's measured rate then moves as each of them does, with the Poisson noise of all
their arrivals together, and a step shows in it at once. So the sum runs through the same
damped-trend Holt filter as a server (:mod:`inferno.control.forecast`: level, trend, smoothed
rate, tracked error, held surprise), and each server keeps a :class:`Share` of it. Each cycle,
``dt`` seconds after the last::

    pooled prediction  pᵢ = sᵢ · max(F_Y(dt), S_Y)        (what the pool sized server i for)
    pooled error       Vᵢ ← (1 − γ)·Vᵢ + γ·max((yᵢ − pᵢ)/pᵢ, 0)²   (as a server's own filter)
    share residual     oᵢ = (yᵢ − sᵢ·Y) / (sᵢ·Y)          (against the sum measured now)
    share              sᵢ ← sᵢ + g·(yᵢ / Y − sᵢ)           g = max(w, 1/n): a running mean of
                                                         the n windows seen, then an average
                                                         with w = 1 − 2^(−dt/SHARE_HALFLIFE_S)

and the pooled forecast of server ``i`` is the sum's, scaled by its share::

    base    = sᵢ · max(S_Y, F_Y(lag), F_Y(lag + P + startup))
    σᵢ²     = σ_Y² + max(Vᵢ − π/2 − V_Y, Eᵢ)      σ_Y: the sum's error at the horizon
                                                 (forecast.error_sigma); π = 60/(base·window):
                                                 the count's Poisson variance (Vᵢ is a
                                                 semi-variance: half of it); Eᵢ: the share's
                                                 estimation variance
    margin  = min(max(z·σᵢ, SURPRISE_GAIN·J_Y), max_margin)

A step of the sum is a surprise of the sum's filter (``J_Y``), sure where one server's would be
lost in its noise; a window shows about half of a step at first, so it counts twice.

A server whose load is its own falls back to its own filter (today's forecast, margin and held
surprise), in two ways:

- **A departure**: a share residual beyond :data:`DEPART_SIGMAS` standard deviations of its
  noise, or their running mean (half-life :data:`DRIFT_HALFLIFE_S`) beyond :data:`DRIFT_SIGMAS`
  of the mean's — a server-specific step. The server then uses its own filter for one horizon;
  its share starts over from its own level over the sum's (as uncertain as that level), and
  the other servers' shares make up the rest of the sum, so their rates do not move with it.
- **A larger error**: the pooled forecast is used only while its σᵢ is at most the server's own
  filter's σ (forecast.error_sigma). Where the loads are not correlated, the shares wander,
  ``Vᵢ`` grows and the server keeps its own forecast.

The pool starts over (every server on its own filter for :data:`MIN_OBSERVATIONS` cycles) when
the set of servers changes, since the sum then jumps with no change in any load. It is kept
across a restart with the other forecasters (:mod:`.state`).

Pure: no clock (times are given), no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .forecast import (
    _FLOOR_RPM,
    _MAX_RESIDUAL,
    Forecast,
    ForecastParams,
    Track,
    error_sigma,
    observe,
    plan_rate,
    rate_at,
)

__all__ = ["Pool", "Share", "observe_pool", "pooled_forecast"]

#: half-life of the share's smoothing: shares of correlated loads move slowly
SHARE_HALFLIFE_S = 600.0
#: half-life of the residuals' running mean that detects a moderate, lasting departure
DRIFT_HALFLIFE_S = 60.0
#: a single residual beyond this many standard deviations of its noise is a departure
DEPART_SIGMAS = 3.0
#: the running mean beyond this many of its standard deviations is a departure
DRIFT_SIGMAS = 3.0
#: the sum's held surprise counts this many times (a step seen through a window shows half)
SURPRISE_GAIN = 2.0
#: observations of a share before the pooled forecast is used
MIN_OBSERVATIONS = 4


@dataclass(frozen=True, slots=True)
class Share:
    """One server's part of the pool: its share of the sum, the semi-variance of the pooled
    forecast's under-forecasts (relative²), the variance of the share's own residuals and their
    running mean (the departure test), the share's estimation variance, the time until which
    the server uses its own filter (a departure), the observations and the departures seen."""

    share: float
    variance: float = 0.0
    share_variance: float = 0.0
    drift: float = 0.0
    estimate: float = 0.0
    hold_until: float = 0.0
    n: int = 1
    departures: int = 0
    weight: float = 1.0  # windows the share averages (a running mean until 1/w of them)
    persist: float = 0.0  # the running mean's mean square: noise averaged, lasting moves not


@dataclass(frozen=True, slots=True)
class Pool:
    """The sum's filter and every member's share (an empty pool has no filter yet)."""

    total: Track | None = None
    shares: Mapping[str, Share] = field(default_factory=dict)


def _share_factor(p: ForecastParams) -> float:
    """What the share's average leaves of one window's variance."""
    return _smoothing(1.0 - 0.5 ** (p.period_s / SHARE_HALFLIFE_S), p)


def _smoothing(gain: float, p: ForecastParams) -> float:
    """What an exponential average with ``gain`` per cycle leaves of one window's variance
    (overlapping windows, when the window is longer than the period, count as one)."""
    overlap = max(1.0, p.window_s / p.period_s)
    return min(1.0, gain / (2.0 - gain) * overlap)


def observe_pool(
    pool: Pool,
    rates: Mapping[str, float],
    own: Mapping[str, Track],
    t: float,
    p: ForecastParams,
) -> Pool:
    """``pool`` updated with the rates measured at ``t`` (by server), ``own`` the servers' own
    filters already updated with them (a departing server's share is set from its own level)."""
    rates = {k: max(v, 0.0) for k, v in rates.items() if math.isfinite(v)}
    total_rate = sum(rates.values())
    prior = pool.total
    if prior is None or set(rates) != set(pool.shares) or t <= prior.t or total_rate <= 0:
        total = observe(None, total_rate, t, p)
        fresh = {
            k: Share(
                v / total_rate if total_rate > 0 else 0.0,
                estimate=60.0 / (max(v, _FLOOR_RPM) * p.window_s),
                hold_until=t,
            )
            for k, v in rates.items()
        }
        return Pool(total, fresh)
    dt = t - prior.t
    sized_total = max(rate_at(prior, dt, p), prior.smooth)
    total = observe(prior, total_rate, t, p)
    w = 1.0 - 0.5 ** (dt / SHARE_HALFLIFE_S)
    g = 1.0 - 0.5 ** (dt / DRIFT_HALFLIFE_S)
    gamma = 1.0 - 0.5 ** (dt / p.halflife_s) if p.halflife_s > 0 else 1.0
    f_share = _smoothing(w, p)
    f_drift = _smoothing(g, p)
    now_total = rate_at(total, p.lag_s, p)
    shares: dict[str, Share] = {}
    moved: set[str] = set()
    for name, y in rates.items():
        s = pool.shares[name]
        # against the pool's forecast (its error, the margin's), and against the share of the
        # sum measured now (the departure test: a load that moves with the others does not)
        predicted = s.share * sized_total
        residual = min((y - predicted) / max(predicted, _FLOOR_RPM), _MAX_RESIDUAL)
        expected = s.share * total_rate
        off = max(min((y - expected) / max(expected, _FLOOR_RPM), _MAX_RESIDUAL), -_MAX_RESIDUAL)
        poisson = 60.0 / (max(expected, _FLOOR_RPM) * p.window_s)
        noise = math.sqrt(max(s.share_variance, poisson * (1.0 + f_share)) + s.estimate)
        drift = (1.0 - g) * s.drift + g * off
        departed = abs(off) > DEPART_SIGMAS * noise or abs(drift) > (
            DRIFT_SIGMAS * noise * math.sqrt(f_drift)
        )
        variance = (1.0 - gamma) * s.variance + gamma * max(residual, 0.0) ** 2
        persist = (1.0 - gamma) * s.persist + gamma * drift**2
        # a departure is a change of the share, not its noise
        share_variance = (
            s.share_variance if departed else ((1.0 - gamma) * s.share_variance + gamma * off**2)
        )
        hold_until, departures = s.hold_until, s.departures
        estimate, weight = s.estimate, s.weight
        track = own.get(name)
        if departed and track is not None and now_total > 0:
            # the share starts over from the server's own (faster) level, as uncertain as it
            hold_until = t + p.horizon_s
            drift = 0.0
            departures += 1
            moved.add(name)
            share = rate_at(track, p.lag_s, p) / now_total
            estimate = poisson * p.smoothing
            weight = 1.0 / p.smoothing
        else:
            # a running mean while young (after a start or a departure), then slow
            weight += 1.0
            gain = max(w, 1.0 / weight)
            share = s.share + gain * (y / total_rate - s.share)
            overlap = max(1.0, p.window_s / p.period_s)
            estimate = (1.0 - gain) ** 2 * estimate + gain**2 * poisson * overlap
        shares[name] = Share(
            share,
            variance,
            share_variance,
            drift,
            estimate,
            hold_until,
            s.n + 1,
            departures,
            weight,
            persist,
        )
    if moved:
        # the others keep their rates: their shares make up the rest of the sum
        rest = 1.0 - sum(shares[k].share for k in moved)
        others = sum(v.share for k, v in shares.items() if k not in moved)
        if rest > 0 and others > 0:
            shares = {
                k: v if k in moved else replace(v, share=v.share * rest / others)
                for k, v in shares.items()
            }
    return Pool(total, shares)


def pooled_forecast(
    pool: Pool,
    name: str,
    own: Track,
    measured: float,
    p: ForecastParams,
    t: float,
    backlog_excess: float = 0.0,
) -> Forecast | None:
    """Server ``name``'s pooled forecast, or None where it should use its own filter (not in
    the pool, too few observations, a departure held, or a worse record than its own)."""
    s = pool.shares.get(name)
    if pool.total is None or s is None or s.n < MIN_OBSERVATIONS or t < s.hold_until:
        return None
    whole = plan_rate(pool.total, 0.0, p)  # the sum's forecast (its measured rate unused)
    # the sum's level, not its trend-free smoothed rate, is the floor: the sum's is not noisy
    # enough to need the smoothed rate's protection against a trend extrapolated down
    base_total = max(rate_at(pool.total, 0.0, p), whole.now, whole.ahead)
    now = s.share * whole.now
    ahead = s.share * whole.ahead
    base = s.share * base_total
    drain = max(backlog_excess, 0.0) * 60.0 / p.drain_s if p.drain_s > 0 else 0.0
    if base <= 0.0:
        return Forecast(measured, now, ahead, 0.0, drain, drain)
    poisson = 60.0 / (max(base, _FLOOR_RPM) * p.window_s)
    # the share's error: its estimation variance (what its average leaves of the measured
    # noise), and what moves of the share last beyond the noise (the running mean's square
    # beyond what the noise leaves in it)
    g = 1.0 - 0.5 ** (p.period_s / DRIFT_HALFLIFE_S)
    noise = max(s.share_variance, poisson)
    share_var = max(s.estimate, _share_factor(p) * noise) + max(
        s.persist - _smoothing(g, p) * noise, 0.0
    )
    sigma = math.sqrt(error_sigma(pool.total, base_total, p) ** 2 + share_var)
    own_base = max(own.smooth, rate_at(own, p.lag_s, p), rate_at(own, p.horizon_s, p))
    if sigma > error_sigma(own, own_base, p):  # its own filter has the smaller error
        return None
    # a step of the sum shows about half of itself in the first window: its surprise counts
    # twice (a step of the server's own is a departure: its own filter, surprise and all)
    held = SURPRISE_GAIN * pool.total.jump
    margin = min(max(p.margin_z * sigma, held), p.max_margin)
    return Forecast(measured, now, ahead, margin, drain, base * (1.0 + margin) + drain)
