"""Which start-up the policy's horizon takes for a server (class, measured, setting), and that
the forecast uses it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from inferno.cluster.inventory import ManagedDeployment
from inferno.cluster.startup import MAX_STARTUP_S, MIN_STARTUP_S, StartupTime
from inferno.control.forecast import ForecastParams, observe, plan_rate
from inferno.control.policy import Policy
from inferno.control.startup import Startup, choose_startup, measured_startups
from inferno.settings import PolicyOptions, Settings, SettingsError

PARAMS = ForecastParams(period_s=60.0, window_s=60.0, startup_s=60.0)


def row(rate: float, cls: str = "Premium", name: str = "a") -> dict[str, Any]:
    return {"name": name, "class": cls, "currentAlloc": {"load": {"arrivalRate": rate}}}


def test_the_class_wins_then_the_measurement_then_the_setting() -> None:
    assert choose_startup(60.0, 30.0, 240.0) == Startup(30.0, "class")
    assert choose_startup(60.0, None, 240.0) == Startup(240.0, "measured")
    assert choose_startup(60.0, None, None) == Startup(60.0, "setting")
    assert choose_startup(60.0, None, float("nan")) == Startup(60.0, "setting")
    # a measurement is kept within [1 s, 86400 s]; a class's value is the class's (checked by
    # the settings' own range)
    assert choose_startup(60.0, None, 0.0) == Startup(MIN_STARTUP_S, "measured")
    assert choose_startup(60.0, None, 1e9) == Startup(MAX_STARTUP_S, "measured")
    assert choose_startup(60.0, 0.0, 240.0) == Startup(0.0, "class")


def deployment(server: str, startup: StartupTime | None) -> ManagedDeployment:
    return ManagedDeployment(
        namespace="ns",
        name=server,
        server=server,
        model="m",
        service_class="Premium",
        replicas=1,
        ready_replicas=1,
        accelerator="A100",
        max_batch=8,
        container=0,
        container_name="c",
        startup=startup,
    )


def test_measured_startups_by_server() -> None:
    found = measured_startups(
        [deployment("a", StartupTime(90.0, 3)), deployment("b", None), deployment("c", None)]
    )
    assert found == {"a": 90.0}
    # a later claimant of server "a" (another namespace) with slow pods: the holder's is kept
    later = replace(
        deployment("a", StartupTime(600.0, 2)), namespace="tenant", created="2026-12-07T09:00:00Z"
    )
    held = replace(deployment("a", StartupTime(90.0, 3)), created="2026-11-01T09:00:00Z")
    assert measured_startups([later, held]) == {"a": 90.0}


def two_cycles(
    policy: Policy, startup: dict[str, float] | None, rates: tuple[float, float] = (100, 200)
) -> Any:
    """The forecast of server ``a`` after a rise from ``rates[0]`` to ``rates[1]`` (req/min)
    measured 60 s apart."""
    t = [0.0]
    policy.clock = lambda: t[0]
    policy.loads([row(rates[0])], startup=startup)
    t[0] = 60.0
    policy.loads([row(rates[1])], startup=startup)
    return policy.forecasts["a"]


def expected(startup_s: float, rates: tuple[float, float] = (100, 200)) -> Any:
    p = replace(PARAMS, startup_s=startup_s)
    track = observe(observe(None, rates[0], 0.0, p), rates[1], 60.0, p)
    return plan_rate(track, rates[1], p)


def policy(**opts: Any) -> Policy:
    return Policy(PolicyOptions(**opts), lambda: 0.0, params=PARAMS)


def test_the_horizon_takes_the_measured_start_up() -> None:
    """On a rise, a longer start-up looks further along the trend: the forecast is exactly the
    forecaster's with the measured start-up in its horizon, not the setting's."""
    setting = policy()
    f_setting = two_cycles(setting, None)
    assert setting.startups == {"a": Startup(60.0, "setting")}
    assert f_setting == expected(60.0)

    measured = policy()
    f_measured = two_cycles(measured, {"a": 600.0})
    assert measured.startups == {"a": Startup(600.0, "measured")}
    assert f_measured == expected(600.0)
    assert f_measured.ahead > f_setting.ahead  # a rise seen 9 minutes further
    assert f_measured.target > f_setting.target


def test_a_class_start_up_wins_over_the_measurement() -> None:
    p = policy()
    problems = p.set_classes([{"name": "premium", "policy": {"startup_time": 30.0}}])
    assert problems == []
    f = two_cycles(p, {"a": 600.0})
    assert p.startups == {"a": Startup(30.0, "class")}
    assert f == expected(30.0)
    # a class that overrides something else leaves the measurement in force
    other = policy()
    other.set_classes([{"name": "premium", "policy": {"margin_z": 1.0}}])
    two_cycles(other, {"a": 600.0})
    assert other.startups == {"a": Startup(600.0, "measured")}


def test_another_server_or_class_is_not_affected() -> None:
    p = policy()
    p.set_classes([{"name": "Free", "policy": {"startup_time": 30.0}}])
    p.loads(
        [row(100.0, "Premium", "a"), row(100.0, "Free", "b"), row(100.0, "Bronze", "c")],
        startup={"a": 120.0, "b": 120.0},
    )
    assert p.startups == {
        "a": Startup(120.0, "measured"),
        "b": Startup(30.0, "class"),
        "c": Startup(60.0, "setting"),
    }


def test_the_deployed_setting_is_the_default() -> None:
    p = Policy(PolicyOptions(startup_time=90.0), lambda: 0.0, params=replace(PARAMS, startup_s=90))
    p.loads([row(100.0)])
    assert p.startups == {"a": Startup(90.0, "setting")}


@pytest.mark.parametrize("value", [0.0, 1e9])
def test_a_measurement_out_of_range_is_bounded(value: float) -> None:
    p = policy()
    p.loads([row(100.0)], startup={"a": value})
    assert p.startups["a"].seconds == min(max(value, MIN_STARTUP_S), MAX_STARTUP_S)


def test_without_the_forecast_no_start_up_is_taken() -> None:
    p = policy(forecast=False)
    p.loads([row(100.0)], startup={"a": 600.0})
    assert p.startups == {} and p.forecasts == {}


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("INFERNO_STARTUP_MAX", "0"),
        ("INFERNO_STARTUP_MAX", "inf"),
        ("INFERNO_MEASURE_STARTUP", "maybe"),
        ("INFERNO_STARTUP_TIME", "-1"),
    ],
)
def test_bad_start_up_settings_name_the_variable(env: str, value: str) -> None:
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({env: value})


def test_the_start_up_settings_default_to_measuring() -> None:
    opts = Settings.from_env({}).policy
    assert (opts.measure_startup, opts.startup_max, opts.startup_time) == (True, 1800.0, 60.0)
    off = Settings.from_env({"INFERNO_MEASURE_STARTUP": "false", "INFERNO_STARTUP_MAX": "600"})
    assert (off.policy.measure_startup, off.policy.startup_max) == (False, 600.0)
