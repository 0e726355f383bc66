"""The decided model instances and batching delay reach the serving container's variables
(``INFERNO_INSTANCES``, ``INFERNO_MAX_QUEUE_DELAY_US``) with the batch's hysteresis; decisions
without them patch exactly what they always did. Patches are applied with ``jsonpatch``."""

from __future__ import annotations

import dataclasses

from cluster.test_plan import applied, decision, one, settled, triton
from inferno.cluster.decisions import decision_from_json, decision_to_json
from inferno.cluster.plan import INSTANCES_ENV, QUEUE_DELAY_ENV, Decision


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
