"""The pooled forecaster (inferno/control/pool.py, ``INFERNO_FORECAST_POOL``): on servers whose
loads move together it estimates each one's rate with less count noise than its own filter; a
server whose load is its own falls back to its own filter; a step of one server is caught."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from inferno.control.forecast import ForecastParams, Track, observe, plan_rate
from inferno.control.policy import Policy
from inferno.control.pool import Pool, observe_pool, pooled_forecast
from inferno.settings import Settings

# one window per period, so consecutive counts are independent Poisson draws
P = ForecastParams(period_s=60.0, window_s=60.0, startup_s=60.0)


def _run(
    rates: Callable[[str, float], float], names: list[str], cycles: int, seed: int = 1
) -> tuple[list[dict[str, float]], list[dict[str, float | None]], list[dict[str, float]], Pool]:
    """Measure Poisson counts of ``rates(name, t)`` (req/min) over each window; per cycle the
    true rates, the pooled forecasts' base (None: not pooled) and the own filters' base."""
    rng = np.random.default_rng(seed)
    tracks: dict[str, Track] = {}
    pool = Pool()
    truth: list[dict[str, float]] = []
    pooled: list[dict[str, float | None]] = []
    own: list[dict[str, float]] = []
    for k in range(1, cycles + 1):
        t = k * P.period_s
        centre = t - P.lag_s
        measured = {n: float(rng.poisson(rates(n, centre))) for n in names}
        for n in names:
            tracks[n] = observe(tracks.get(n), measured[n], t, P)
        pool = observe_pool(pool, measured, tracks, t, P)
        truth.append({n: rates(n, centre) for n in names})
        row: dict[str, float | None] = {}
        mine: dict[str, float] = {}
        for n in names:
            f = pooled_forecast(pool, n, tracks[n], measured[n], P, t)
            row[n] = None if f is None else f.now
            mine[n] = plan_rate(tracks[n], measured[n], P).now
        pooled.append(row)
        own.append(mine)
    return truth, pooled, own, pool


NAMES = [f"s{i}" for i in range(9)]
SCALE = {n: 30.0 * (1 + i) for i, n in enumerate(NAMES)}  # 30 to 270 requests per minute


def _day(t: float) -> float:
    return 0.6 + 0.35 * math.sin(2 * math.pi * (t - 900.0) / 3600.0)


def test_a_pooled_forecast_of_correlated_noisy_servers_is_closer_than_their_own() -> None:
    truth, pooled, own, _ = _run(lambda n, t: SCALE[n] * _day(t), NAMES, 60)
    small = "s0"  # 8 to 29 requests per minute: its own counts vary by 20-35%
    used = [(k, p) for k, row in enumerate(pooled) if (p := row[small]) is not None]
    assert len(used) >= 40  # the pooled forecast is taken most of the time
    err_pool = sum(abs(p / truth[k][small] - 1) for k, p in used) / len(used)
    err_own = sum(abs(own[k][small] / truth[k][small] - 1) for k, _ in used) / len(used)
    assert err_pool < 0.6 * err_own, (err_pool, err_own)


def _own_load(n: str, t: float) -> float:
    """Eight steady servers, and s8 jumping between 100 and 300 req/min every 10 minutes."""
    if n != "s8":
        return SCALE[n]
    return 300.0 if int(t // 600) % 2 else 100.0


def test_a_server_whose_load_is_its_own_falls_back_to_its_own_filter() -> None:
    truth, pooled, own, pool = _run(_own_load, NAMES, 60)
    assert pool.shares["s8"].departures >= 4  # each of its jumps was seen as its own
    # the three cycles after each jump (t = 600, 1200, ... is the window centre at cycle k)
    after = [k for k in range(60) if any(0 <= (k + 0.5) * 60 - j < 180 for j in (600, 1200))]
    assert after and all(pooled[k]["s8"] is None for k in after[1:])
    chosen = [p if (p := pooled[k]["s8"]) is not None else own[k]["s8"] for k in range(60)]
    err_chosen = sum(abs(c / truth[k]["s8"] - 1) for k, c in enumerate(chosen)) / 60
    err_own = sum(abs(own[k]["s8"] / truth[k]["s8"] - 1) for k in range(60)) / 60
    assert err_chosen <= 1.1 * err_own, (err_chosen, err_own)


def test_a_step_of_one_server_is_caught_and_its_share_catches_up() -> None:
    def load(n: str, t: float) -> float:
        return SCALE[n] * (1.5 if n == "s7" and t >= 1200.0 else 1.0)

    truth, pooled, _, pool = _run(load, NAMES, 40)
    step = next(k for k in range(40) if truth[k]["s7"] > SCALE["s7"])
    assert pool.shares["s7"].departures >= 1
    # within two cycles of the step, s7 is on its own filter
    assert any(pooled[k]["s7"] is None for k in (step, step + 1))
    # and by the end its share reflects the new load (pooled or not, within 10%)
    last = pooled[-1]["s7"]
    assert last is not None and abs(last / truth[-1]["s7"] - 1) < 0.1, last
    # the other servers' shares were not disturbed by it (their forecasts stay within 10%)
    others = [(pooled[-1][n], truth[-1][n]) for n in NAMES if n != "s7"]
    assert all(f is not None and abs(f / true - 1) < 0.1 for f, true in others), others


def test_the_policy_pools_only_with_the_setting() -> None:
    rows = [
        {
            "name": n,
            "class": "Premium",
            "currentAlloc": {"load": {"arrivalRate": SCALE[n]}, "numReplicas": 1},
        }
        for n in NAMES
    ]
    for pool_on in (False, True):
        settings = Settings.from_env({"INFERNO_FORECAST_POOL": "true" if pool_on else "false"})
        assert settings.policy.forecast_pool is pool_on
        clock = [0.0]
        policy = Policy.from_settings(settings, lambda c=clock: c[0])  # type: ignore[misc]
        for k in range(1, 8):
            clock[0] = 30.0 * k
            out = policy.loads(rows)
        assert (policy.pooled == set(NAMES)) is pool_on, policy.pooled
        assert all(r["currentAlloc"]["load"]["arrivalRate"] >= SCALE[r["name"]] for r in out)
