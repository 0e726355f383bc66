"""The closed-loop driver against an in-process fake server with a known service time."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from inferno.loadgen import (
    TIMEOUT,
    ModelLoad,
    ThinkTime,
    drive,
    open_transactions,
    run_users,
    schedule,
    summarize,
    summarize_users,
)

from .test_loadgen import SlowServer

BODY = {"x": np.zeros((1, 1), np.float32)}


def _users(server: SlowServer, models: list[str], **kw: Any) -> Any:
    return asyncio.run(run_users(server, models, [BODY] * len(models), **kw))


@pytest.mark.parametrize("think", [ThinkTime("fixed", 0.05, 0.05), ThinkTime("exp", 0.05, 0.05)])
def test_littles_law_and_never_more_in_flight_than_users(think: ThinkTime) -> None:
    server = SlowServer(0.05)
    run = _users(server, ["m"], users=4, think=think, duration=2.0)
    [s] = summarize_users(run, [4.0])
    st = s.stats
    assert server.peak <= 4  # a closed loop: at most one request per user in flight
    assert st.availability == 100.0 and s.errors == 0 and s.sent == s.ok
    # users = rate × (response time + think time), with the think time the users really had:
    # a random one's mean over ~100 draws is off the asked mean by ~10%
    assert st.transaction_rate * (st.response_time_s + run.think_mean_s) == pytest.approx(
        4, rel=0.1
    )
    assert run.think_mean_s == pytest.approx(0.05, rel=0.1 if think.kind == "fixed" else 0.3)
    assert st.response_time_s == pytest.approx(0.05, rel=0.25)
    assert st.concurrency == pytest.approx(st.transaction_rate * st.response_time_s)
    assert st.data_mb == pytest.approx(4.0 * s.ok / (1024 * 1024))
    assert run.wall == pytest.approx(2.0, abs=0.2)


def test_repetitions_send_exactly_users_times_reps() -> None:
    run = _users(SlowServer(0.01), ["a", "b"], users=3, think=ThinkTime(), reps=5)
    a, b, total = summarize_users(run)
    assert a.sent == b.sent == 15 and total.sent == 30 and total.users == 6
    for i in range(2):
        for u in range(3):
            assert np.count_nonzero((run.which == i) & (run.user == u)) == 5
    # each user waits for its answer: its requests never overlap
    for u in range(3):
        mine = (run.which == 0) & (run.user == u)
        starts, ends = run.start[mine], run.end[mine]
        assert np.all(starts[1:] >= ends[:-1])


def test_the_end_of_the_run_cuts_the_think_time() -> None:
    run = _users(
        SlowServer(0.01), ["m"], users=2, think=ThinkTime("fixed", 30.0, 30.0), duration=0.5
    )
    assert run.wall < 1.5
    assert len(run.errors) <= 2  # started within the first 30 s, thinking past the end


def test_failures_are_counted_and_availability_falls() -> None:
    run = _users(SlowServer(0.01), ["ok", "bad"], users=2, think=ThinkTime(), reps=4)
    ok, bad, total = summarize_users(run)
    assert ok.errors == 0 and bad.ok == 0 and bad.errors == 8
    assert bad.error_kinds == {"RuntimeError: model bad is broken": 8}
    assert total.stats.availability == pytest.approx(50.0)
    assert bad.to_json()["meanMs"] is None


def test_requests_in_flight_at_the_end_time_out_after_the_drain() -> None:
    run = _users(SlowServer(5.0), ["m"], users=3, think=ThinkTime(), duration=0.3, drain=0.2)
    [s] = summarize_users(run)
    assert s.error_kinds == {TIMEOUT: 3} and s.ok == 0
    assert run.wall < 2.0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"users": 0, "duration": 1.0}, "users"),
        ({"users": 1}, "duration"),
        ({"users": 1, "duration": -1.0}, "duration"),
        ({"users": 1, "reps": 0}, "reps"),
    ],
)
def test_bad_arguments(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _users(SlowServer(0.0), ["m"], think=ThinkTime(), **kw)


def test_open_loop_transactions_match_its_summary() -> None:
    loads = [ModelLoad.poisson("ok", 40.0), ModelLoad.poisson("bad", 20.0)]
    plan = schedule(loads, 1.0, seed=2)
    run = asyncio.run(drive(SlowServer(0.02), loads, plan, [BODY, BODY], duration=1.0))
    summaries = summarize(run)
    stats = open_transactions(run, [8.0, None])
    for s, t in zip(summaries, stats, strict=True):
        assert t.transactions == s.ok and t.failed == s.errors
        assert t.transaction_rate == pytest.approx(s.ok / run.wall)
        assert t.response_time_s * 1000 == pytest.approx(s.mean_ms, nan_ok=True)
    assert stats[0].data_mb == pytest.approx(8.0 * summaries[0].ok / (1024 * 1024))
    assert stats[1].data_mb is None and stats[2].data_mb is None  # one size unknown
    assert stats[0].availability == 100.0 and stats[1].availability == 0.0
