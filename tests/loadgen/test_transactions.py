"""Siege's statistics over recorded (start, end, ok) samples, on inputs checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inferno.loadgen import MB, ThinkTime, transaction_stats

NAN = float("nan")


def test_four_samples_by_hand() -> None:
    # three answered (1 s, 2 s, 0.5 s), one failed without an answer, over 4 s
    stats = transaction_stats(
        start=[0.0, 0.0, 1.0, 2.0],
        end=[1.0, 2.0, 1.5, NAN],
        ok=[True, True, True, False],
        elapsed=4.0,
        payload=[MB, MB, 2 * MB, MB],
    )
    assert stats.transactions == stats.successful == 3
    assert stats.failed == 1
    assert stats.availability == pytest.approx(75.0)
    assert stats.response_time_s == pytest.approx(3.5 / 3)
    assert stats.transaction_rate == pytest.approx(0.75)
    assert stats.concurrency == pytest.approx(3.5 / 4)
    # siege's identity: concurrency = transaction rate × response time
    assert stats.concurrency == pytest.approx(stats.transaction_rate * stats.response_time_s)
    assert stats.longest_s == 2.0 and stats.shortest_s == 0.5
    assert stats.percentiles_s[50.0] == pytest.approx(1.0)
    assert stats.data_mb == pytest.approx(4.0)  # the failed request's payload is not counted
    assert stats.throughput_mb_s == pytest.approx(1.0)


def test_concurrency_is_the_time_average_of_requests_in_flight() -> None:
    # [0, 2] and [1, 3] over 4 s: in flight 1, 2, 1, 0 during the four seconds → mean 1
    stats = transaction_stats([0.0, 1.0], [2.0, 3.0], [True, True], 4.0)
    grid = np.linspace(0.0, 4.0, 40_001)[:-1] + 0.5e-4
    in_flight = ((grid >= 0) & (grid < 2)).astype(int) + ((grid >= 1) & (grid < 3)).astype(int)
    assert stats.concurrency == pytest.approx(in_flight.mean(), rel=1e-3) == pytest.approx(1.0)


def test_nothing_answered() -> None:
    failed = transaction_stats([0.0, 1.0], [NAN, NAN], [False, False], 2.0)
    assert failed.transactions == 0 and failed.failed == 2
    assert failed.availability == 0.0
    assert failed.transaction_rate == 0.0 and failed.concurrency == 0.0
    assert math.isnan(failed.response_time_s) and math.isnan(failed.longest_s)
    empty = transaction_stats([], [], [], 1.0)
    assert math.isnan(empty.availability)
    doc = failed.to_json()
    assert doc["responseTimeMs"] is None and doc["availability"] == 0.0
    assert doc["throughputMBps"] is None  # no payload given: unknown


def test_json_is_in_milliseconds_and_the_block_in_seconds() -> None:
    stats = transaction_stats([0.0, 0.0], [0.1, 0.3], [True, True], 1.0, payload=[MB, MB])
    doc = stats.to_json()
    assert doc["responseTimeMs"] == pytest.approx(200.0)
    assert doc["longestTransactionMs"] == pytest.approx(300.0)
    assert doc["availability"] == 100.0 and doc["concurrency"] == pytest.approx(0.4)
    text = "\n".join(stats.lines())
    assert "Availability:" in text and "100.00 %" in text
    assert "0.200 secs" in text and "2.00 trans/sec" in text and "2.00 MB/sec" in text
    assert "Concurrency:" in text and "0.40" in text
    unknown = "\n".join(transaction_stats([0.0], [0.1], [True], 1.0).lines())
    assert "payload size unknown" in unknown


@pytest.mark.parametrize(
    ("start", "end", "ok", "elapsed", "match"),
    [
        ([0.0], [1.0, 2.0], [True], 1.0, "one length"),
        ([0.0], [1.0], [True], 0.0, "elapsed"),
        ([0.0], [1.0], [True], NAN, "elapsed"),
        ([0.0], [NAN], [True], 1.0, "start ≤ end"),
        ([2.0], [1.0], [True], 1.0, "start ≤ end"),
    ],
)
def test_bad_samples_are_refused(
    start: list[float], end: list[float], ok: list[bool], elapsed: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        transaction_stats(start, end, ok, elapsed)


@pytest.mark.parametrize(
    ("text", "kind", "mean"),
    [("0.5", "fixed", 0.5), ("exp:2", "exp", 2.0), ("uniform:1,3", "uniform", 2.0)],
)
def test_think_time_forms(text: str, kind: str, mean: float) -> None:
    think = ThinkTime.parse(text)
    assert think.kind == kind and think.mean == mean
    draws = np.array([think.draw(np.random.default_rng(k)) for k in range(4000)])
    assert draws.min() >= think.low if kind != "exp" else draws.min() >= 0
    assert draws.mean() == pytest.approx(mean, rel=0.06)


@pytest.mark.parametrize(
    "text", ["-1", "exp:-2", "uniform:3,1", "uniform:1", "fast", "exp:nan", "gamma:2"]
)
def test_bad_think_times(text: str) -> None:
    with pytest.raises(ValueError):
        ThinkTime.parse(text)
