"""The start-up time of a server's replicas, read from its pods' conditions (pure)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest

from inferno.cluster.inventory import parse_deployment
from inferno.cluster.startup import (
    MIN_STARTUP_S,
    PodSelector,
    pod_selector,
    pod_startup,
    startup_time,
)

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
APP = {"app": "llama"}


def iso(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def pod(
    name: str = "llama-1",
    *,
    created: float | str | None = 0.0,
    scheduled: float | str | None = 5.0,
    ready: float | str | None = 65.0,
    ready_status: str = "True",
    restarts: int = 0,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod as the API returns it; times in seconds after T0 (a string is used as is)."""

    def when(t: float | str) -> str:
        return t if isinstance(t, str) else iso(t)

    conditions: list[dict[str, Any]] = []
    if scheduled is not None:
        conditions.append(
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": when(scheduled)}
        )
    if ready is not None:
        conditions.append(
            {"type": "Ready", "status": ready_status, "lastTransitionTime": when(ready)}
        )
    meta: dict[str, Any] = {"name": name, "namespace": "llm", "labels": labels or dict(APP)}
    if created is not None:
        meta["creationTimestamp"] = when(created)
    return {
        "metadata": meta,
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "containerStatuses": [{"name": "triton", "ready": True, "restartCount": restarts}],
        },
    }


# -- one pod ---------------------------------------------------------------------------------


def test_from_the_scheduling_to_ready() -> None:
    found = pod_startup(pod(created=0.0, scheduled=20.0, ready=95.5))
    assert found is not None and found.pod == "llama-1"
    assert found.seconds == 75.5  # the wait for a node (20 s) is not the server's


def test_without_a_scheduled_condition_from_the_creation() -> None:
    found = pod_startup(pod(created=0.0, scheduled=None, ready=42.0))
    assert found is not None and found.seconds == 42.0


def test_fractions_and_offsets_are_read() -> None:
    p = pod(scheduled="2025-03-01T09:00:00.250+01:00", ready="2025-03-01T08:01:00.750000Z")
    found = pod_startup(p)
    assert found is not None and found.seconds == 60.5


@pytest.mark.parametrize(
    "p",
    [
        pod(ready=None),  # no Ready condition: not started
        pod(ready_status="False"),  # never Ready (a cluster without kubelets: Pending)
        pod(ready_status="Unknown"),
        pod(restarts=2),  # its Ready may be a recovery, not the start
        {"metadata": {"name": "x"}},  # no status at all
        {"metadata": {"name": "x"}, "status": {"phase": "Pending"}},  # no conditions
        {"metadata": {"name": "x"}, "status": {"conditions": "Ready"}},  # not a list
    ],
)
def test_no_sample_and_nothing_logged(p: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert pod_startup(p) is None
    assert caplog.records == []


def test_clock_skew_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    # the node's clock behind the scheduler's: Ready before the scheduling
    with caplog.at_level(logging.WARNING, logger="inferno.cluster.startup"):
        assert pod_startup(pod(scheduled=30.0, ready=10.0), "llm/llama: ") is None
    [record] = caplog.records
    assert "llm/llama: pod llm/llama-1" in record.getMessage()
    assert "clock skew" in record.getMessage()


@pytest.mark.parametrize(
    ("p", "field"),
    [
        (pod(scheduled="yesterday"), "PodScheduled.lastTransitionTime='yesterday'"),
        (pod(ready="2025-13-01T00:00:00Z"), "Ready.lastTransitionTime='2025-13-01T00:00:00Z'"),
        (pod(ready="2025-03-01T08:01:00"), "Ready.lastTransitionTime"),  # no zone: ambiguous
        (pod(scheduled=None, created=None), "metadata.creationTimestamp=None"),
        (pod(scheduled=None, created="0"), "metadata.creationTimestamp='0'"),
    ],
)
def test_malformed_timestamps_are_ignored_with_a_warning(
    p: dict[str, Any], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="inferno.cluster.startup"):
        assert pod_startup(p) is None
    [record] = caplog.records
    assert field in record.getMessage() and "not an RFC 3339 time" in record.getMessage()


def test_a_non_string_timestamp_is_no_crash(caplog: pytest.LogCaptureFixture) -> None:
    p = pod()
    p["status"]["conditions"][1]["lastTransitionTime"] = 1740816000
    with caplog.at_level(logging.WARNING):
        assert startup_time([p]) is None
    assert "Ready.lastTransitionTime=1740816000" in caplog.text


# -- a server's pods -------------------------------------------------------------------------


def test_the_slowest_of_the_newest_five_ready_pods() -> None:
    # an old slow pod (600 s), then five faster ones Ready after it: the old one ages out
    pods = [pod("old", scheduled=0.0, ready=600.0)]
    pods += [pod(f"new-{i}", scheduled=1000.0 + i, ready=1060.0 + 3 * i) for i in range(5)]
    found = startup_time(pods)
    assert found is not None
    assert (found.seconds, found.pods) == (60.0 + 2 * 4, 5)
    # with one of the new ones gone, the old one is among the five newest again
    found = startup_time(pods[:-1])
    assert found is not None and (found.seconds, found.pods) == (600.0, 5)


def test_never_ready_pods_measure_nothing() -> None:
    pending = [pod(f"p-{i}", ready_status="False") for i in range(3)]
    assert startup_time(pending) is None
    assert startup_time([]) is None
    found = startup_time([*pending, pod("ok", scheduled=0.0, ready=90.0)])
    assert found is not None and (found.seconds, found.pods) == (90.0, 1)


def test_a_readiness_flap_long_after_the_start_is_not_a_start_up() -> None:
    pods = [
        pod("flapped", scheduled=0.0, ready=3 * 86400.0),  # Ready again three days later
        pod("fresh", scheduled=100.0, ready=190.0),
    ]
    found = startup_time(pods, max_s=1800.0)
    assert found is not None and (found.seconds, found.pods) == (90.0, 1)
    assert startup_time(pods[:1], max_s=1800.0) is None
    # a longer bound counts it, kept within the setting's range
    found = startup_time(pods, max_s=1e9)
    assert found is not None and found.seconds == 86400.0


def test_a_start_up_is_at_least_the_floor() -> None:
    found = startup_time([pod(scheduled=10.0, ready=10.0)])
    assert found is not None and found.seconds == MIN_STARTUP_S


def test_only_the_selected_pods_count() -> None:
    selector = PodSelector((("app", "llama"),))
    other = pod("granite-1", scheduled=0.0, ready=500.0, labels={"app": "granite"})
    found = startup_time([other, pod(scheduled=0.0, ready=70.0), "junk"], selector)
    assert found is not None and (found.seconds, found.pods) == (70.0, 1)


# -- the selector ----------------------------------------------------------------------------


def test_selector_query_and_match() -> None:
    selector = pod_selector(
        {
            "matchLabels": {"app": "llama", "tier": "gpu"},
            "matchExpressions": [
                {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                {"key": "debug", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "model", "operator": "Exists"},
            ],
        }
    )
    assert selector is not None
    assert selector.query() == (
        "app=llama,tier=gpu,track in (stable,canary),!debug,zone notin (b),model"
    )
    base = {"app": "llama", "tier": "gpu", "track": "canary", "model": "m"}
    assert selector.matches(base)
    assert selector.matches({**base, "zone": "a"})
    assert not selector.matches({**base, "zone": "b"})
    assert not selector.matches({**base, "debug": "1"})
    assert not selector.matches({**base, "track": "beta"})
    assert not selector.matches({k: v for k, v in base.items() if k != "model"})
    assert not selector.matches({**base, "app": "granite"})


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"matchLabels": {}},  # empty: it would select every pod of the namespace
        {"matchLabels": ["app"]},
        {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": ["a"]},
    ],
)
def test_unusable_selectors(raw: object) -> None:
    assert pod_selector(raw) is None


def test_a_deployment_carries_its_pod_selector() -> None:
    obj = {
        "metadata": {
            "name": "llama",
            "namespace": "llm",
            "labels": {"inferno.server.managed": "true", "inferno.server.model": "llama_13b"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "llama"}},
            "template": {"spec": {"containers": [{"name": "triton"}]}},
        },
    }
    d = parse_deployment(obj)
    assert d.pod_selector == PodSelector((("app", "llama"),))
    assert d.startup is None  # measured by the collector, from the pods
