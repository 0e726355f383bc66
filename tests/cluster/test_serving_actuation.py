"""The decided model instances and batching delay reach the serving container's variables
(``INFERNO_INSTANCES``, ``INFERNO_MAX_QUEUE_DELAY_US``) with the batch's hysteresis; decisions
without them patch exactly what they always did. Patches are applied with ``jsonpatch``."""

from __future__ import annotations

import dataclasses

import pytest

from cluster.test_plan import applied, decision, one, settled, triton
from inferno.cluster.decisions import decision_from_json, decision_to_json
from inferno.cluster.inventory import parse_deployment
from inferno.cluster.plan import INSTANCES_ENV, QUEUE_DELAY_ENV, Decision, PlanSettings, plan
from inferno.settings import Settings, SettingsError


def serving(dec: Decision, instances: int, delay_us: int) -> Decision:
    return dataclasses.replace(dec, instances=instances, max_queue_delay_us=delay_us)


def env_of(obj: dict[str, object]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in triton(obj)["env"]}


def running(instances: str, delay: str) -> dict[str, object]:
    obj = settled()
    triton(obj)["env"] += [
        {"name": INSTANCES_ENV, "value": instances},
        {"name": QUEUE_DELAY_ENV, "value": delay},
    ]
    return obj


def test_the_decided_instances_and_delay_are_appended_to_the_env() -> None:
    obj = settled()
    action = one(obj, serving(decision("llama"), 3, 2500))
    out = applied(obj, action)
    env = env_of(out)
    assert env[INSTANCES_ENV] == "3" and env[QUEUE_DELAY_ENV] == "2500"
    assert triton(out)["env"][: len(triton(obj)["env"])] == triton(obj)["env"]
    assert action.after["instances"] == 3 and action.after["maxQueueDelayUs"] == 2500
    assert action.before["instances"] is None  # not set before
    assert action.event is not None
    assert "instances -→3" in action.event.message and "delay -→2500 µs" in action.event.message


def test_a_running_value_is_replaced_in_place() -> None:
    obj = running("1", "0")
    action = one(obj, serving(decision("llama"), 2, 4000))
    out = applied(obj, action)
    assert env_of(out)[INSTANCES_ENV] == "2" and env_of(out)[QUEUE_DELAY_ENV] == "4000"
    assert len(triton(out)["env"]) == len(triton(obj)["env"])
    assert {op["op"] for op in action.patch if "/env/" in op["path"]} == {"test", "replace"}


def test_small_moves_are_kept_like_the_batch() -> None:
    # 4 → 5 instances and 4000 → 4600 µs are within the 25 % tolerance: no patch, no restart
    obj = running("4", "4000")
    action = one(obj, serving(decision("llama"), 5, 4600))
    assert action.kind == "unchanged" and action.patch == ()
    assert action.after["instances"] == 4 and action.after["maxQueueDelayUs"] == 4000
    # a larger move is applied
    action = one(obj, serving(decision("llama"), 4, 6000))
    assert env_of(applied(obj, action))[QUEUE_DELAY_ENV] == "6000"
    # a running delay of 0 is never "close": 0 → 300 µs is applied
    obj = running("1", "0")
    action = one(obj, serving(decision("llama"), 1, 300))
    assert env_of(applied(obj, action))[QUEUE_DELAY_ENV] == "300"


def test_a_move_to_another_accelerator_takes_the_decision_as_is() -> None:
    obj = running("4", "4000")
    action = one(obj, serving(decision("llama", accelerator="A100"), 5, 4600))
    env = env_of(applied(obj, action))
    assert env[INSTANCES_ENV] == "5" and env[QUEUE_DELAY_ENV] == "4600"


def test_decisions_without_serving_leave_the_variables_alone() -> None:
    obj = running("2", "700")
    action = one(obj, decision("llama", max_batch=64))
    env = env_of(applied(obj, action))
    assert env[INSTANCES_ENV] == "2" and env[QUEUE_DELAY_ENV] == "700"
    assert "instances" not in action.after and "instances" not in action.before
    # and the JSON between the containers carries them only when decided
    plain = decision("llama")
    assert "instances" not in decision_to_json(plain)
    decided = serving(plain, 3, 0)
    doc = decision_to_json(decided)
    assert doc["instances"] == 3 and doc["maxQueueDelayUs"] == 0
    assert decision_from_json(doc) == decided
    assert decision_from_json(decision_to_json(plain)) == plain


# -- the variables' names are settings (PlanOptions.instances_env / queue_delay_env) ---------------


def test_the_default_names_are_the_settings_defaults() -> None:
    cfg = Settings.from_env({}).plan
    assert (cfg.instances_env, cfg.queue_delay_env) == (INSTANCES_ENV, QUEUE_DELAY_ENV)
    assert (INSTANCES_ENV, QUEUE_DELAY_ENV) == ("INFERNO_INSTANCES", "INFERNO_MAX_QUEUE_DELAY_US")


def test_renamed_variables_are_the_ones_patched_and_read() -> None:
    cfg = Settings.from_env(
        {"INFERNO_INSTANCES_ENV": "TRITON_COUNT", "INFERNO_QUEUE_DELAY_ENV": "TRITON_DELAY_US"}
    ).plan
    assert (cfg.instances_env, cfg.queue_delay_env) == ("TRITON_COUNT", "TRITON_DELAY_US")
    obj = settled()
    [action] = plan([parse_deployment(obj)], [serving(decision("llama"), 3, 2500)], cfg)
    env = env_of(applied(obj, action))
    assert env["TRITON_COUNT"] == "3" and env["TRITON_DELAY_US"] == "2500"
    assert INSTANCES_ENV not in env and QUEUE_DELAY_ENV not in env
    # the running values are read from the renamed variables: 4 → 5 and 4000 → 4600 µs are
    # within the tolerance and kept (no patch); under the default names they would be unknown
    triton(obj)["env"] += [
        {"name": "TRITON_COUNT", "value": "4"},
        {"name": "TRITON_DELAY_US", "value": "4000"},
    ]
    dec = serving(decision("llama"), 5, 4600)
    [kept] = plan([parse_deployment(obj)], [dec], cfg)
    assert kept.kind == "unchanged" and kept.patch == ()
    assert kept.before["instances"] == 4 and kept.before["maxQueueDelayUs"] == 4000
    [default] = plan([parse_deployment(obj)], [dec], PlanSettings())
    assert default.kind == "update" and default.before["instances"] is None
    assert env_of(applied(obj, default))[INSTANCES_ENV] == "5"


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("INFERNO_INSTANCES_ENV", "1INSTANCES"),
        ("INFERNO_INSTANCES_ENV", "TRITON-COUNT"),
        ("INFERNO_QUEUE_DELAY_ENV", "DELAY US"),
        ("INFERNO_QUEUE_DELAY_ENV", "DELAY=5"),
        ("INFERNO_BATCH_ENV", "Ä_BATCH"),
    ],
)
def test_a_bad_variable_name_is_a_settings_error_naming_it(env: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({env: value})
    assert str(err.value) == (
        f"{env}={value!r}: expected a container variable name (letters, digits and _, not "
        "starting with a digit)"
    )


def test_an_empty_or_shared_name_is_a_settings_error() -> None:
    # an empty variable reads as unset (the default); an empty value given in code is refused
    assert Settings.from_env({"INFERNO_INSTANCES_ENV": " "}).plan.instances_env == INSTANCES_ENV
    with pytest.raises(SettingsError, match="INFERNO_INSTANCES_ENV=''"):
        Settings.from_env({}, instances_env="")
    with pytest.raises(SettingsError, match="INFERNO_QUEUE_DELAY_ENV=''"):
        PlanSettings(queue_delay_env="")
    # two decisions in one variable would overwrite each other
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"INFERNO_QUEUE_DELAY_ENV": "INFERNO_MAX_BATCH_SIZE"})
    assert "INFERNO_QUEUE_DELAY_ENV='INFERNO_MAX_BATCH_SIZE'" in str(err.value)
    assert "other than INFERNO_BATCH_ENV's" in str(err.value)


def test_the_actuator_takes_instances_and_delay_only_where_the_profile_decides_them() -> None:
    """The actuator trusts no decision it is sent: model instances and a batching delay only
    for a (model, accelerator) whose profile lets the optimizer decide them (a measured
    contention: the most instances are its counts), within bounds; before, any count reached
    the container's variable (1,000,000 instances for a G0 model)."""
    from inferno.cluster.validate import MAX_DELAY_US, Guards, StaticLimits, decision_problem
    from inferno.model.profiles import BatchProfile
    from inferno.system import Accelerator, ModelProfile, System

    acc = Accelerator("H100", "H100", 1, 75.0)
    decided = BatchProfile(5.0, 1.0, 32, contention=(1.0, 1.3, 1.6), decide_serving=True)
    fixed = BatchProfile(5.0, 1.0, 32)
    system = System(
        accelerators={"H100": acc},
        profiles=(
            ModelProfile("bert", "H100", 1, decided),
            ModelProfile("resnet", "H100", 1, fixed),
        ),
        classes={},
        servers=(),
        capacity={},
    )
    limits = StaticLimits.from_system(system)
    assert dict(limits.serving) == {("bert", "H100"): 3}
    base = decision("s")
    assert decision_problem(base, "resnet", limits, Guards()) is None  # nothing decided: as ever
    assert decision_problem(serving(base, 3, 2500), "bert", limits, Guards()) is None
    assert decision_problem(serving(base, 1, MAX_DELAY_US), "bert", limits, Guards()) is None
    for dec, model, words in [
        (serving(base, 2, 0), "resnet", "no measured contention"),
        (serving(base, 1_000_000, 0), "bert", "instances 1000000 outside 1..3"),
        (serving(base, 0, 0), "bert", "instances 0 outside 1..3"),
        (serving(base, 2, MAX_DELAY_US + 1), "bert", "maxQueueDelayUs"),
        (serving(base, 2, -5), "bert", "maxQueueDelayUs -5"),
    ]:
        problem = decision_problem(dec, model, limits, Guards())
        assert problem is not None and words in problem, (dec, problem)
