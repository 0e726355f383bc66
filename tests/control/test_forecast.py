"""The control policy's forecaster: a trend is anticipated, a step up is caught and widens the
margin, a fall is followed without overshooting below the rate, noise costs a bounded margin."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferno.control.forecast import ForecastParams, Track, observe, plan_rate, rate_at
from inferno.control.policy import Policy
from inferno.data import SYSTEM_FILES, system_from_documents
from inferno.settings import PolicyOptions
from inferno.system import Load

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"

#: the filter's mechanics at fixed constants (α 0.5, φ 0.9, a 600 s error half-life: the defaults
#: until the pooled forecast became the default; the deployed defaults are judged by the
#: closed-loop bench, bench/closed_loop.py)
P = ForecastParams(
    alpha=0.5, damping=0.9, halflife_s=600.0, period_s=30.0, window_s=60.0, startup_s=60.0
)


def feed(rates: list[float], p: ForecastParams = P, t0: float = 0.0) -> Track:
    track: Track | None = None
    for k, r in enumerate(rates):
        track = observe(track, r, t0 + k * p.period_s, p)
    assert track is not None
    return track


def test_the_horizon_is_period_plus_lag_plus_startup() -> None:
    assert P.horizon_s == 30.0 + 30.0 + 60.0


def test_a_first_observation_gets_the_poisson_margin_only() -> None:
    t = feed([300.0])
    f = plan_rate(t, 300.0, P)
    # 300 req/min over 60 s is 300 arrivals: relative standard deviation 1/√300, of which the
    # smoothed level keeps √(α/(2 − α) × window/period) = √(2/3)
    assert P.smoothing == pytest.approx(2 / 3)
    assert f.margin == pytest.approx(P.margin_z * math.sqrt(2 / 3 / 300.0))
    assert f.target == pytest.approx(300.0 * (1 + f.margin))
    assert f.drain == 0.0


def test_a_rising_trend_is_anticipated_over_the_horizon() -> None:
    slope = 0.5  # req/min per second: +15 per period
    rates = [100.0 + slope * 30.0 * k for k in range(20)]
    t = feed(rates)
    # the damped trend under-reads a long ramp (that is the price of not chasing noise) ...
    assert 0.6 * slope < t.trend <= slope
    now = rates[-1]
    ahead = rate_at(t, P.horizon_s, P)
    assert now + 0.4 * slope * P.horizon_s < ahead <= now + slope * P.horizon_s
    # ... and the margin covers most of the rest: the rate the ramp reaches at the horizon is
    # sized for within 1%
    f = plan_rate(t, now, P)
    assert f.ahead == ahead and f.target >= 0.99 * (now + slope * P.horizon_s)


def test_the_filters_defaults_are_the_deployed_ones() -> None:
    """ForecastParams' defaults repeat PolicyOptions' (the pure module cannot read settings):
    they must not drift apart."""
    from inferno.control.policy import options_params

    assert ForecastParams() == options_params(PolicyOptions())
    assert options_params(PolicyOptions(forecast_alpha=0.3)).alpha == 0.3


def test_the_deployed_defaults_trade_some_of_a_clean_ramp_for_less_noise() -> None:
    """docs/control-policy.md: the deployed φ damps the trend harder than ``P``'s, so a clean
    ramp is sized for less far ahead (within 5% of its rate at the horizon, not 1.5%)."""
    o = PolicyOptions()
    deployed = replace(
        P, alpha=o.forecast_alpha, damping=o.forecast_damping, halflife_s=o.residual_halflife
    )
    slope = 0.5
    rates = [100.0 + slope * 30.0 * k for k in range(20)]
    need = rates[-1] + slope * P.horizon_s
    short = {
        name: 1.0 - plan_rate(feed(rates, p), rates[-1], p).target / need
        for name, p in (("P", P), ("deployed", deployed))
    }
    assert 0.0 < short["P"] < 0.015
    assert short["P"] < short["deployed"] < 0.05


def test_a_step_up_is_caught_within_two_cycles() -> None:
    steady = feed([200.0] * 10)
    # a +30% step, seen through a 60 s window: half of it, then all of it
    stepped = observe(steady, 230.0, 300.0, P)
    stepped = observe(stepped, 260.0, 330.0, P)
    f = plan_rate(stepped, 260.0, P)
    assert f.target >= 260.0 * 1.05
    assert stepped.variance > steady.variance == 0.0


def test_unpredictable_rises_widen_the_margin_beyond_the_poisson_noise() -> None:
    quiet = plan_rate(feed([260.0] * 20), 260.0, P)
    jumpy = feed([200.0] * 10 + [200.0, 260.0] * 10)
    f = plan_rate(jumpy, 260.0, P)
    # the count's noise, as smoothed
    assert quiet.margin == pytest.approx(P.margin_z * math.sqrt(P.smoothing / 260.0))
    assert f.margin > 1.8 * quiet.margin
    assert f.target > 260.0 * (1 + quiet.margin)


def test_a_fall_is_followed_but_never_below_the_smoothed_rate() -> None:
    falling = [400.0] * 6 + [280.0, 160.0, 160.0]
    t = feed(falling)
    # the window's ramp made a steep negative trend: the forecast alone would overshoot low
    assert rate_at(t, P.horizon_s, P) < 160.0
    assert plan_rate(t, 160.0, P).target >= 160.0
    settled = feed(falling + [160.0] * 5)
    f = plan_rate(settled, 160.0, P)
    assert 160.0 <= f.target < 1.25 * 160.0  # followed down (not held at 400)
    # a fall is no under-forecast of what was sized for: it does not widen the margin
    assert settled.variance == pytest.approx(0.0, abs=1e-12)


def test_noise_costs_a_bounded_margin_and_is_mostly_covered() -> None:
    rng = np.random.default_rng(3)
    true = 500.0
    sigma = 0.05
    rates = list(true * np.exp(sigma * rng.standard_normal(200) - sigma * sigma / 2))
    track: Track | None = None
    targets = []
    for k, r in enumerate(rates):
        track = observe(track, r, k * P.period_s, P)
        targets.append(plan_rate(track, r, P).target)
    late = np.array(targets[20:])
    assert (late >= true).mean() > 0.85
    assert late.mean() < 1.15 * true


def test_a_backlog_is_sized_to_drain_within_the_drain_time() -> None:
    t = feed([120.0] * 3)
    base = plan_rate(t, 120.0, P)
    drained = plan_rate(t, 120.0, P, backlog_excess=30.0)
    assert drained.drain == pytest.approx(30.0 * 60.0 / P.drain_s)
    assert drained.target == pytest.approx(base.target + drained.drain)


@pytest.mark.parametrize(
    "bad",
    [
        Track(math.nan, 0.0, 0.0),
        Track(10.0, math.inf, 0.0),
        Track(-1.0, 0.0, 0.0),
        Track(10.0, 0.0, 0.0, variance=-1.0),
    ],
)
def test_an_unusable_or_future_state_starts_afresh(bad: Track) -> None:
    t = observe(bad, 50.0, 100.0, P)
    assert (t.level, t.trend, t.n, t.smooth) == (50.0, 0.0, 1, 50.0)
    future = Track(10.0, 1.0, 500.0)
    assert observe(future, 50.0, 100.0, P).n == 1  # time went backwards (a restored clock)


def rows(out_tokens: float | None = None, **rates: Any) -> list[dict[str, Any]]:
    load: dict[str, Any] = {}
    if out_tokens is not None:
        load = {"avgInTokens": 0, "avgOutTokens": out_tokens}
    return [
        {
            "name": name,
            "currentAlloc": {
                "numReplicas": 2,
                "maxBatch": 4,
                "load": {"arrivalRate": rate, **load},
            },
        }
        for name, rate in rates.items()
    ]


def test_the_tokens_per_request_are_smoothed_so_noise_does_not_move_the_batch() -> None:
    """The memory-bound batch follows the tokens per request: a noisy window (here +40%) moves
    the sized tokens by a few percent only, and a lasting change is followed within minutes."""
    clock = [0.0]
    policy = Policy(PolicyOptions(token_halflife=300), lambda: clock[0], params=P)
    policy.loads(rows(out_tokens=1000.0, a=100.0))
    clock[0] = 30.0
    noisy = policy.loads(rows(out_tokens=1400.0, a=100.0))[0]["currentAlloc"]["load"]
    assert 1000.0 < noisy["avgOutTokens"] < 1000.0 * 1.05
    for k in range(2, 42):  # 20 minutes at the new length: followed
        clock[0] = 30.0 * k
        last = policy.loads(rows(out_tokens=1400.0, a=100.0))[0]["currentAlloc"]["load"]
    assert last["avgOutTokens"] == pytest.approx(1400.0, rel=0.02)
    assert policy.state.tokens["a"][2] == clock[0]
    # without smoothing the measurement is used as it is
    raw = Policy(PolicyOptions(token_halflife=0), lambda: clock[0], params=P)
    raw.loads(rows(out_tokens=1000.0, a=100.0))
    clock[0] += 30
    assert (
        raw.loads(rows(out_tokens=1400.0, a=100.0))[0]["currentAlloc"]["load"]["avgOutTokens"]
        == 1400.0
    )


def test_the_policy_sizes_rows_for_the_forecast_and_keeps_one_track_per_server() -> None:
    clock = [0.0]
    policy = Policy(PolicyOptions(), lambda: clock[0], params=P)
    out = policy.loads(rows(a=100.0, b=None))
    assert out[0]["currentAlloc"]["load"]["arrivalRate"] == policy.forecasts["a"].target > 100.0
    assert out[1]["currentAlloc"]["load"]["arrivalRate"] is None  # no rate: left as it is
    assert set(policy.state.tracks) == {"a"}
    clock[0] = 30.0
    # a backlog of 20 beyond the 2 × 4 requests the replicas take next: drained in drain_time
    out = policy.loads(rows(c=100.0, a=100.0), backlog={"a": 28.0})
    assert set(policy.state.tracks) == {"a", "c"}  # servers gone are forgotten
    assert policy.state.tracks["a"].n == 2
    assert policy.forecasts["a"].drain == pytest.approx(20.0 * 60.0 / P.drain_s)
    assert policy.forecasts["c"].drain == 0.0


def test_without_the_forecast_the_measured_rate_and_headroom_are_used() -> None:
    policy = Policy(PolicyOptions(forecast=False, headroom=0.5), lambda: 0.0, params=P)
    out = policy.loads(rows(a=100.0))
    assert out[0]["currentAlloc"]["load"]["arrivalRate"] == 150.0
    assert not policy.state.tracks and not policy.forecasts


def test_a_surprise_is_held_as_a_margin_and_then_decays() -> None:
    """A +12.5% window (half of a +25% step) on a steady 400 req/min — 2.5 standard deviations
    of its count — is held as margin for the horizon's half-life; steady load lets it go."""
    steady = feed([400.0] * 10)
    assert steady.jump == 0.0
    t = observe(steady, 450.0, 300.0, P)
    assert t.jump == pytest.approx(0.125)
    f = plan_rate(t, 450.0, P)
    assert f.margin >= 0.125 and f.target >= 0.98 * 1.25 * 400.0  # the whole step, nearly
    for k in range(1, 9):  # four horizons at the new rate
        t = observe(t, 450.0, 300.0 + 30.0 * k, P)
    assert t.jump == pytest.approx(0.125 / 4, rel=0.01)
    # a rise within the count's noise is no surprise
    assert observe(steady, 415.0, 300.0, P).jump == 0.0


# -- seasonality ----------------------------------------------------------------------------------

SEASON = 3600.0  # an "hour-long day", for a short test (INFERNO_FORECAST_SEASON in seconds)


def daily(t: float) -> float:
    """A load that rises from 25% to 95% of 1,000 req/min and back every season."""
    return 1000.0 * (0.6 - 0.35 * math.cos(2 * math.pi * t / SEASON))


def horizon_errors(p: ForecastParams, seasons: int) -> list[float]:
    """The relative error of the forecast at the horizon over the last season's rising half."""
    track: Track | None = None
    errors = []
    steps = int(seasons * SEASON / p.period_s)
    for k in range(steps):
        t = k * p.period_s
        track = observe(track, daily(t - p.lag_s), t, p)  # a window's rate lags by half of it
        if t >= (seasons - 1) * SEASON and (t % SEASON) < SEASON / 2:
            truth = daily(t + p.horizon_s - p.lag_s)
            errors.append(abs(rate_at(track, p.horizon_s, p) - truth) / truth)
    return errors


def test_a_learnt_season_forecasts_the_daily_rise_better_than_the_trend() -> None:
    plain = horizon_errors(P, 3)
    seasonal_p = replace(P, season_s=SEASON)
    seasonal = horizon_errors(seasonal_p, 3)
    assert float(np.mean(seasonal)) < 0.5 * float(np.mean(plain))


def test_the_season_is_used_only_after_one_whole_season() -> None:
    seasonal_p = replace(P, season_s=SEASON)
    rates = [daily(k * 30.0) for k in range(int(0.9 * SEASON / 30.0))]
    with_season, without = feed(rates, seasonal_p), feed(rates, P)
    assert rate_at(with_season, P.horizon_s, seasonal_p) == pytest.approx(
        rate_at(without, P.horizon_s, P)
    )
    assert with_season.index(0.0, seasonal_p) == 1.0


def test_the_seasonal_indices_follow_the_shape_and_keep_mean_one() -> None:
    seasonal_p = replace(P, season_s=SEASON)
    track = feed([daily(k * 30.0 - 30.0) for k in range(int(3 * SEASON / 30.0))], seasonal_p)
    indices = [track.index(SEASON * (k + 0.5) / 48, seasonal_p) for k in range(48)]
    assert sum(indices) / 48 == pytest.approx(1.0)
    low, high = track.index(0.0, seasonal_p), track.index(SEASON / 2, seasonal_p)
    assert high / low > 2.5  # 950 / 250 = 3.8 at the extremes, smoothed by the bins


def test_the_season_survives_a_restart() -> None:
    from inferno.control.policy import PolicyState
    from inferno.control.state import state_from_json, state_to_json

    seasonal_p = replace(P, season_s=SEASON)
    track = feed([daily(k * 30.0) for k in range(150)], seasonal_p)
    back = state_from_json(state_to_json(PolicyState(tracks={"s": track})))
    assert back.tracks["s"] == track


def capped_rows(out_tokens: float, cv: float, most: float) -> list[dict[str, Any]]:
    out = rows(out_tokens=out_tokens, a=100.0)
    out[0]["currentAlloc"]["load"].update(outTokensCOV=cv, outTokensMax=most)
    return out


def solvable(row: dict[str, Any]) -> Load:
    """The row's load as the optimizer's data read it (InputError where they refuse it): the
    row as a server of the large sample."""
    docs = {f: json.loads((SAMPLE / f).read_text()) for f in SYSTEM_FILES if (SAMPLE / f).is_file()}
    server = {**row, "class": "Premium", "model": "llama3_8b"}
    docs["server-data.json"] = {"servers": [server]}
    return system_from_documents(docs, "policy").servers[0].load


def test_smoothed_tokens_keep_within_the_servers_cap() -> None:
    """The smoothed mean with this window's CV and cap is a row the optimizer's data accept.
    The lengths halve (mean 200 → 100, CV 1.2, cap 256): the smoothed mean lags, and the
    window's CV is more than lengths of that mean can have under the cap, so it takes the most
    they can (before: a row refused, the server left unsized for minutes). The cap lowered
    below the smoothed mean (1024 → 256): the smoothing restarts from the window."""
    clock = [0.0]
    policy = Policy(PolicyOptions(token_halflife=300), lambda: clock[0], params=P)
    solvable(policy.loads(capped_rows(200.0, 0.3, 256.0))[0])
    clock[0] = 30.0
    row = policy.loads(capped_rows(100.0, 1.2, 256.0))[0]
    load = row["currentAlloc"]["load"]
    assert 150.0 < load["avgOutTokens"] < 200.0  # still smoothed
    assert load["outTokensCOV"] == pytest.approx(math.sqrt(256.0 / load["avgOutTokens"] - 1.0))
    assert load["outTokensCOV"] < 1.2
    got = solvable(row)
    assert got.out_tokens_max == 256.0 and got.out_tokens == load["avgOutTokens"]
    # a CV that holds is left as measured
    clock[0] = 60.0
    held = policy.loads(capped_rows(150.0, 0.5, 256.0))[0]["currentAlloc"]["load"]
    assert held["outTokensCOV"] == 0.5

    cut = Policy(PolicyOptions(token_halflife=300), lambda: clock[0], params=P)
    cut.loads(capped_rows(600.0, 0.5, 1024.0))
    clock[0] += 30.0
    row = cut.loads(capped_rows(180.0, 0.3, 256.0))[0]
    assert row["currentAlloc"]["load"]["avgOutTokens"] == 180.0
    assert cut.state.tokens["a"] == (0.0, 180.0, clock[0])
    solvable(row)
    clock[0] += 30.0  # and smooths on from there
    nxt = cut.loads(capped_rows(200.0, 0.3, 256.0))[0]["currentAlloc"]["load"]
    assert 180.0 < nxt["avgOutTokens"] < 200.0
