"""The control policy's state survives a restart of the controller (kept in a ConfigMap)."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace
from typing import Any

import pytest
from services.fakes import Stack, settings

from inferno.control.forecast import Track
from inferno.control.loop import ControlLoop
from inferno.control.policy import Policy, PolicyState
from inferno.control.pool import Pool, Share
from inferno.control.state import (
    MAX_STATE_BYTES,
    StateStore,
    fit_state,
    state_from_json,
    state_to_json,
)
from inferno.settings import PolicyOptions
from services import FakeCluster, sample_cluster


def v1(history: dict[str, Any]) -> str:
    """A version-1 document: the window's history alone (what controllers wrote before)."""
    rows = {server: [list(e) for e in entries] for server, entries in history.items()}
    return json.dumps({"version": 1, "history": rows})


def test_round_trip_and_bad_state() -> None:
    history = {"a": ((1.5, "A100", 8, 3), (2.0, "H100", 16, 1)), "b": ()}
    assert state_from_json(state_to_json(PolicyState(history))).history == history
    assert state_from_json(v1(history)) == PolicyState(history)
    for bad in (
        "[]",
        '{"version": 3}',
        '{"version": 1, "history": {"a": [[1, 2]]}}',
        '{"version": 1, "history": {"a": [["x", "A100", 1, 1]]}}',
    ):
        with pytest.raises(ValueError):
            state_from_json(bad)


def test_state_round_trip_with_forecasters() -> None:
    state = PolicyState(
        {"a": ((1.5, "A100", 8, 3),)},
        {"a": Track(120.0, -0.25, 1.5, 0.01, 7, 118.0, 0.2), "b": Track(0.0, 0.0, 2.0)},
        {"a": ("H100", 1.0)},
        {"a": (128.0, 900.5, 1.5)},
    )
    assert state_from_json(state_to_json(state)) == state
    # a version-1 document (the window alone) is still read, with no forecasters
    old = state_from_json(v1({"a": ((1.5, "A100", 8, 3),)}))
    assert old == PolicyState({"a": ((1.5, "A100", 8, 3),)}, {})
    for bad in (
        '{"version": 2, "history": {}, "tracks": []}',
        '{"version": 2, "history": {}, "tracks": {"a": [1, 0, 0, 0, 1, 0]}}',
        '{"version": 2, "history": {}, "tracks": {"a": [-5, 0, 0, 0, 1, 0, 0]}}',
        '{"version": 2, "history": {}, "tracks": {"a": [1, 0, 0, 0, true, 0, 0]}}',
        '{"version": 2, "history": {}, "tracks": {"a": [1, 0, 0, 0, 1, 0, -1]}}',
        '{"version": 3, "history": {}}',
        '{"version": 2, "history": {}, "switches": {"a": ["H100"]}}',
        '{"version": 2, "history": {}, "tokens": {"a": [1, -2, 3]}}',
    ):
        with pytest.raises(ValueError):
            state_from_json(bad)


def test_the_pooled_forecaster_goes_round_the_state() -> None:
    total = Track(600.0, 0.1, 30.0, 0.002, 9, 590.0, 0.0)
    shares = {
        "a": Share(0.25, 0.01, 0.0004, -0.02, 0.003, 30.0, 9, 1, 0.2, 0.001),
        "b": Share(0.75),
    }
    state = PolicyState(tracks={"a": Track(150.0, 0.0, 30.0)}, pool=Pool(total, shares))
    back = state_from_json(state_to_json(state))
    assert back.pool == state.pool and back == state
    # an empty pool is not written, and reads back empty
    assert "pool" not in state_to_json(PolicyState())
    assert state_from_json(state_to_json(PolicyState())).pool == Pool()
    good = json.loads(state_to_json(state))
    for key, bad in (
        ("total", [1, 0]),
        ("shares", []),
        ("shares", {"a": [0.5] * 9}),
        ("shares", {"a": [-0.5, 0, 0, 0, 0, 0, 1, 0, 1, 0]}),
        ("shares", {"a": [0.5, 0, 0, 0, 0, 0, 1.5, 0, 1, 0]}),
        ("shares", {"a": [0.5, 0, 0, 0, 0, math.inf, 1, 0, 1, 0]}),
    ):
        doc = json.loads(json.dumps(good))
        doc["pool"][key] = bad
        with pytest.raises(ValueError):
            state_from_json(json.dumps(doc))


def _large_state(n: int) -> PolicyState:
    """``n`` servers with a window decision, a forecaster, smoothed tokens and a pooled share."""
    names = [f"Premium-model-{i:05d}" for i in range(n)]
    return PolicyState(
        history={s: ((1.5 + i, "A100", 8, 3),) for i, s in enumerate(names)},
        tracks={
            s: Track(100.0 + i / 7, 0.01 * i / 3, 1e9 + i / 9, 1e-3) for i, s in enumerate(names)
        },
        switches={names[0]: ("H100", 2.0)},
        tokens={s: (128.0 + i / 3, 900.0 + i / 7, 1e9 + i / 11) for i, s in enumerate(names)},
        tuner={"filters": {"x": 1}},
        pool=Pool(
            Track(1e5, 1.0, 1e9, 1e-4),
            {s: Share(share=1.0 / (n + i), variance=1e-3 / (i + 1)) for i, s in enumerate(names)},
        ),
    )


def test_a_state_too_large_for_a_config_map_leaves_out_what_rebuilds_fastest() -> None:
    state = _large_state(4000)
    assert len(state_to_json(state, max_bytes=10**9)) > MAX_STATE_BYTES  # it would not fit
    text, left = fit_state(state)
    assert len(text.encode()) <= MAX_STATE_BYTES
    assert left == ["the pooled forecast"]
    back = state_from_json(text)
    assert back == replace(state, pool=Pool())  # everything else kept, bit for bit
    # tighter: the tokens go next, then forecasters (the last by name first); the window's
    # decisions, the pending switches and the tuner always stay
    small = _large_state(200)
    budget = len(state_to_json(replace(small, pool=Pool(), tokens={}), max_bytes=10**9)) - 1
    text, left = fit_state(small, budget)
    back = state_from_json(text)
    assert len(text) <= budget
    assert left[:2] == ["the pooled forecast", "the smoothed tokens"]
    assert left[2].startswith("the forecasters of ") and left[2].endswith(" of 200 servers")
    assert back.history == small.history and back.switches == small.switches
    assert back.tuner == small.tuner and not back.tokens and back.pool == Pool()
    assert 0 < len(back.tracks) < 200
    assert sorted(back.tracks) == sorted(small.tracks)[: len(back.tracks)]


def test_an_oversized_state_is_saved_smaller_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = FakeCluster()
    store = StateStore(cluster, "inferno")
    with caplog.at_level("WARNING", logger="inferno.control.state"):
        assert store.save(_large_state(4000)) == ""
        assert store.save(_large_state(4000)) == ""  # said once, not every cycle
    assert caplog.text.count("saved without the pooled forecast") == 1
    saved = cluster.config_maps[("inferno", "inferno-state")]["data"]["policy.json"]
    assert len(saved) <= MAX_STATE_BYTES
    assert len(StateStore(cluster, "inferno").load().tracks) == 4000
    with caplog.at_level("INFO", logger="inferno.control.state"):
        assert store.save(PolicyState()) == ""
    assert "saved whole again" in caplog.text


def test_an_unusable_state_is_ignored() -> None:
    cluster = FakeCluster()
    cluster.config_maps[("inferno", "inferno-state")] = {"data": {"policy.json": "{oops"}}
    assert StateStore(cluster, "inferno").load() == PolicyState()
    from inferno.k8s import ClusterError

    cluster.fail[("get_config_map",)] = ClusterError("forbidden", 403)
    assert StateStore(cluster, "inferno").load() == PolicyState()


async def test_the_window_survives_a_restart() -> None:
    """A controller decides 10 replicas for a server, restarts, and a lower decision within the
    window is still held at 10: the history came back from the ConfigMap."""
    cluster = sample_cluster()
    clock = [1000.0]
    opts = PolicyOptions(stabilization_window=600, forecast=False)

    async def one_cycle(loop: ControlLoop) -> Any:
        await loop.start()
        try:
            return await loop.run_once("invoke")
        finally:
            await loop.stop()

    first = Stack(cluster)
    loop = ControlLoop(
        first.phases,
        policy=Policy(opts, lambda: clock[0]),
        store=StateStore(cluster, "inferno"),
    )
    report = await one_cycle(loop)
    await first.aclose()
    assert report.ok, report.errors
    saved = cluster.config_maps[("inferno", "inferno-state")]["data"]["policy.json"]
    decided = {d.server: d for d in report.decisions if d.allocated}
    assert set(state_from_json(saved).history) >= set(decided)

    # the restarted controller: a fresh Policy; the load (and so the decisions) falls
    for obj in cluster.deployments.values():
        labels = obj["metadata"]["labels"]
        labels["inferno.server.load.rpm"] = str(float(labels["inferno.server.load.rpm"]) / 8)
    clock[0] += 60
    second = Stack(cluster, settings())
    restarted = ControlLoop(
        second.phases,
        policy=Policy(opts, lambda: clock[0]),
        store=StateStore(cluster, "inferno"),
    )
    again = await one_cycle(restarted)
    await second.aclose()
    held = {c.server for c in again.clamps if c.rule == "scale-down-window"}
    # same GPU type and batch as before (the window's configuration) yet fewer replicas: none
    lowered = {
        d.server
        for d in again.decisions
        if d.allocated
        and (d.accelerator, d.max_batch)
        == (decided[d.server].accelerator, decided[d.server].max_batch)
        and d.replicas < decided[d.server].replicas
    }
    assert held, "nothing was held by the restored window"
    assert not lowered, lowered
    await asyncio.sleep(0)


async def cycle_once(stack: Stack, policy: Policy, cluster: Any) -> None:
    """One invoked cycle of a fresh controller over ``stack`` (restoring and saving the state
    in ``cluster``), then everything stopped."""
    loop = ControlLoop(stack.phases, policy=policy, store=StateStore(cluster, "inferno"))
    await loop.start()
    try:
        report = await loop.run_once("invoke")
    finally:
        await loop.stop()
        await stack.aclose()
    assert report.ok, report.errors


async def test_the_forecasters_survive_a_restart() -> None:
    """A restarted controller continues each server's forecaster where the last one stopped
    (its second observation, not a first), so a restart does not reset the margin or trend."""
    cluster = sample_cluster()
    clock = [1000.0]

    async def one_cycle(stack: Stack) -> Policy:
        policy = Policy(PolicyOptions(), lambda: clock[0])
        await cycle_once(stack, policy, cluster)
        return policy

    first = await one_cycle(Stack(cluster))
    assert first.state.tracks and all(t.n == 1 for t in first.state.tracks.values())
    clock[0] += 60
    second = await one_cycle(Stack(cluster, settings()))
    assert set(second.state.tracks) == set(first.state.tracks)
    assert all(t.n == 2 and t.t == clock[0] for t in second.state.tracks.values())


async def test_the_tuner_state_goes_round_the_controller_and_survives_a_restart() -> None:
    """The optimizer's answer carries its tuner's filters; the controller keeps them with the
    policy state (the ConfigMap) and hands them back in every request, so an optimizer that
    restarted with the controller gets them in its first request."""
    from dataclasses import replace as dc_replace

    from inferno.services.phases import Phases

    cluster = sample_cluster()
    handed: list[Any] = []
    marker = {"version": 1, "filters": [], "note": "from the optimizer"}

    class Recording(Phases):
        async def optimize(self, collection: Any, tuner_state: Any = None) -> Any:
            handed.append(tuner_state)
            result = await super().optimize(collection, tuner_state)
            return dc_replace(result, tuner_state=marker)

    async def one_cycle() -> None:
        stack = Stack(cluster, settings(), phases_cls=Recording)
        await cycle_once(stack, Policy(PolicyOptions(), lambda: 1000.0), cluster)

    await one_cycle()
    saved = cluster.config_maps[("inferno", "inferno-state")]["data"]["policy.json"]
    assert state_from_json(saved).tuner == marker
    await one_cycle()  # a restart: a fresh loop and policy, the state from the ConfigMap
    assert handed == [None, marker]
