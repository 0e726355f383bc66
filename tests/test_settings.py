"""Settings: read once from the environment, failing loudly on bad values."""

from __future__ import annotations

import pytest

from inferno.settings import Settings, SettingsError


def test_defaults_match_the_original_ports() -> None:
    s = Settings.from_env({})
    assert (
        s.ports.controller_port,
        s.ports.collector_port,
        s.ports.optimizer_port,
        s.ports.actuator_port,
    ) == (
        3300,
        3301,
        3302,
        3303,
    )
    assert s.url("optimizer") == "http://127.0.0.1:3302"


def test_values_are_parsed_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "INFERNO_CONTROL_PERIOD": "30",
            "WATCH_NAMESPACE": "a, b ,",
            "INFERNO_PORT": "9302",
            "INFERNO_DEFAULT_MODE": "recommend",
        }
    )
    assert s.service.control_period == 30.0
    assert s.service.watch_namespaces == ("a", "b")
    assert s.ports.optimizer_port == 9302
    assert s.service.default_mode == "recommend"


def test_overrides_win_and_are_checked() -> None:
    assert Settings.from_env({"INFERNO_PORT": "1"}, optimizer_port=2).ports.optimizer_port == 2
    with pytest.raises(SettingsError, match="INFERNO_CONTROL_PERIOD"):
        Settings.from_env({}, control_period=-5.0)


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("COLLECTOR_PORT", "abc", "integer"),
        ("COLLECTOR_PORT", "70000", "port"),
        ("INFERNO_CONTROL_PERIOD", "-1", ">= 0"),
        ("INFERNO_CONTROL_PERIOD", "soon", "number"),
        ("INFERNO_HTTP_TIMEOUT", "0", "> 0"),
        ("INFERNO_DEFAULT_MODE", "yolo", "recommend"),
        ("INFERNO_HPA_HEADROOM", "-0.5", ">= 0"),
        ("INFERNO_BATCH_TOLERANCE", "1.5", "[0, 1)"),
        ("INFERNO_BATCH_TOLERANCE", "-0.1", "[0, 1)"),
    ],
)
def test_bad_values_name_the_variable(env: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({env: value})
    assert env in str(err.value)
    assert expected in str(err.value)
