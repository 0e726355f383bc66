"""The ServiceClass operator: the pure validation, the kopf handler called directly, and (end to
end) kopf in its own thread against kmock, as the controller runs it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import kmock as kmock_lib
import kopf
import pytest

from inferno.k8s import operator
from inferno.k8s.operator import (
    on_service_class,
    start_operator_thread,
    valid_condition,
    validation_status,
)

from . import service_class, settings

T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 1, 1, 13, 0, tzinfo=dt.UTC)
GOOD = service_class("premium", 1, llama_7b={"itlMs": 40, "ttwMs": 500})["spec"]
BAD = {"priority": 0, "models": [{"model": "llama_7b"}]}


def test_a_good_spec_is_valid() -> None:
    status = validation_status(GOOD, {}, 3, now=T0)
    assert status == {
        "conditions": [
            {
                "type": "Valid",
                "status": "True",
                "reason": "ValidSpec",
                "message": "the spec is valid",
                "lastTransitionTime": "2025-01-01T12:00:00Z",
            }
        ],
        "observedGeneration": 3,
    }


def test_a_bad_spec_is_invalid_with_its_problems() -> None:
    [condition] = validation_status(BAD, None, 1, now=T0)["conditions"]
    assert condition["status"] == "False"
    assert condition["reason"] == "InvalidSpec"
    assert "spec.priority must be an integer from 1 to 100, got 0" in condition["message"]
    assert "spec.models[0] has no target" in condition["message"]


def test_the_transition_time_moves_only_when_the_status_changes() -> None:
    first = valid_condition(GOOD, (), now=T0)
    same = valid_condition(GOOD, [first], now=T1)
    assert same["lastTransitionTime"] == first["lastTransitionTime"]
    flipped = valid_condition(BAD, [same], now=T1)
    assert flipped["lastTransitionTime"] == "2025-01-01T13:00:00Z"


def test_other_conditions_are_kept() -> None:
    other = {"type": "Ready", "status": "True"}
    old = {"type": "Valid", "status": "False", "lastTransitionTime": "x"}
    status = validation_status(GOOD, {"conditions": [other, old]}, None, now=T0)
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Valid"]
    assert "observedGeneration" not in status


@pytest.mark.parametrize(("spec", "expected"), [(GOOD, "True"), (BAD, "False")])
def test_the_handler_patches_the_status(spec: dict[str, Any], expected: str) -> None:
    patch = kopf.Patch()
    on_service_class(
        spec=spec,
        status={},
        meta={"name": "premium", "generation": 7},
        patch=patch,
        logger=logging.getLogger("test"),
        body={},
    )
    assert set(patch) == {"status"}
    assert patch["status"]["observedGeneration"] == 7
    [condition] = patch["status"]["conditions"]
    assert condition["status"] == expected


def test_the_registry_holds_only_serviceclass_handlers() -> None:
    """No timers or daemons (on Deployments or anything): they would add finalizers."""
    registry = operator.make_registry(login=lambda **_: None)
    changing = registry._changing.get_all_handlers()  # a peek for the test
    assert {(str(h.reason), h.initial) for h in changing} == {
        ("None", True),  # resume
        ("create", None),
        ("update", None),
    }
    selectors = [h.selector for h in changing]
    assert all(sel is not None for sel in selectors)
    assert {(sel.group, sel.version, sel.any_name) for sel in selectors if sel is not None} == {
        ("inferno.ai", "v1alpha1", "serviceclasses")
    }
    assert not registry._spawning.get_all_handlers()
    assert not registry._watching.get_all_handlers()
    assert not any(h.requires_finalizer for h in changing)


SC = "inferno.ai/v1alpha1/serviceclasses"


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_end_to_end_against_kmock(kmock: kmock_lib.KubernetesEmulator) -> None:
    kmock.resources[SC] = kmock_lib.ResourceInfo(
        kind="ServiceClass",
        singular="serviceclass",
        namespaced=False,
        subresources={"status"},
        verbs={"get", "list", "watch", "create", "patch", "update", "delete"},
    )
    kmock.resources["v1/namespaces"] = kmock_lib.ResourceInfo(
        kind="Namespace", singular="namespace", namespaced=False, verbs={"list", "watch"}
    )
    kmock.objects[SC, None, "premium"] = service_class(
        "premium", 1, llama_7b={"itlMs": 40, "ttwMs": 500}
    )
    kmock.objects[SC, None, "broken"] = {
        "apiVersion": "inferno.ai/v1alpha1",
        "kind": "ServiceClass",
        "metadata": {"name": "broken", "generation": 2},
        "spec": BAD,
    }
    url = str(kmock.url)
    cfg = kopf.OperatorSettings()
    cfg.scanning.disabled = True
    cfg.posting.enabled = False
    cfg.watching.reconnect_backoff = 0.1
    thread = start_operator_thread(
        settings(),
        login=lambda **_: kopf.ConnectionInfo(server=url, insecure=True),
        operator_settings=cfg,
    )
    try:
        assert await asyncio.to_thread(thread.wait_ready, 10)
        premium = kmock.objects[SC, None, "premium"]
        broken = kmock.objects[SC, None, "broken"]

        def valid(obj: Any) -> str | None:
            for c in (obj.get("status") or {}).get("conditions") or []:
                if c.get("type") == "Valid":
                    return str(c["status"])
            return None

        await wait_for(lambda: valid(premium) == "True" and valid(broken) == "False")
        assert broken["status"]["observedGeneration"] == 2
        assert "spec.priority" in broken["status"]["conditions"][0]["message"]
        # status went to the status subresource
        patches = kmock["patch", kmock.resource(SC), kmock.subresource("status")]
        assert len(patches) >= 2

        # fixing the spec flips the condition (on.update)
        r = await kmock.patch(
            "/apis/inferno.ai/v1alpha1/serviceclasses/broken",
            json={"spec": GOOD, "metadata": {"generation": 3}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert r.status == 200
        await wait_for(lambda: valid(broken) == "True")
        assert broken["status"]["observedGeneration"] == 3
    finally:
        stopped = await asyncio.to_thread(thread.stop, 15)
    assert stopped
    assert thread.error is None
    assert not thread.alive
