"""Settings: read once from the environment, failing loudly on bad values."""

from __future__ import annotations

import pytest

from inferno.settings import MODELS, Settings, SettingsError
from inferno.system import PerformanceModel


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
        ("INFERNO_MODEL", "exact", "'inferno' or 'accurate'"),
        ("INFERNO_MIG_APPLY", "perhaps", "true"),
        ("INFERNO_MIG_MAX_NODES", "0", "1..1000"),
        ("INFERNO_MIG_NAMESPACE", "GPU_Operator", "DNS label"),
    ],
)
def test_bad_values_name_the_variable(env: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({env: value})
    assert env in str(err.value)
    assert expected in str(err.value)


def test_the_model_setting_defaults_to_inferno_and_reads_accurate() -> None:
    assert Settings.from_env({}).optimizer.model == "inferno"
    assert Settings.from_env({"INFERNO_MODEL": "accurate"}).optimizer.model == "accurate"
    # in any case, as the optimizer data's "model" is read
    assert Settings.from_env({"INFERNO_MODEL": " Accurate"}).optimizer.model == "accurate"
    assert Settings.from_env({}, model="accurate").optimizer.model == "accurate"
    with pytest.raises(SettingsError, match="INFERNO_MODEL"):
        Settings.from_env({}).with_overrides(model="chain")
    # the settings layer sits below inferno.system: its list of models must be the enum's
    assert set(MODELS) == {m.value for m in PerformanceModel}


def test_mig_application_is_off_unless_asked() -> None:
    from inferno.services.controller import _mig_options

    assert Settings.from_env({}).mig.apply is False
    assert _mig_options(Settings.from_env({})) is None
    on = Settings.from_env({"INFERNO_MIG_APPLY": "true", "INFERNO_MIG_MAX_NODES": "2"})
    options = _mig_options(on)
    assert options is not None and options.max_nodes == 2
    assert (options.namespace, options.config_map) == ("gpu-operator", "inferno-mig-parted-config")
