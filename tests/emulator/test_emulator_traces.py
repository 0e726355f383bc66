"""Load traces have the rates they claim; replays read and validate CSV logs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from inferno.emulator import (
    Bursts,
    Diurnal,
    Empirical,
    Exponential,
    Fixed,
    Poisson,
    Replay,
    Steps,
    read_replay,
)
from inferno.errors import InputError
from inferno.units import MS_PER_MIN

from .helpers import assert_in_ci, batch_means, sample_ci

MIN = MS_PER_MIN


def counts(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.histogram(times, bins=edges)[0].astype(np.float64)


def test_poisson_rate() -> None:
    trace = Poisson(120.0)
    rng = np.random.default_rng(1)
    times = trace.generate(0.0, 500 * MIN, rng)
    assert np.all(np.diff(times) >= 0) and times.min() >= 0 and times.max() < 500 * MIN
    per_min = counts(times, np.arange(501) * MIN)
    assert_in_ci(120.0, sample_ci(per_min), "Poisson per minute")
    assert trace.rate_at(123.0) == pytest.approx(120.0 / MIN)
    # Poisson counts: variance = mean
    assert_in_ci(1.0, sample_ci((per_min - 120.0) ** 2 / 120.0), "dispersion")


def test_steps_rate_per_segment() -> None:
    trace = Steps([(0.0, 60.0), (600.0, 300.0), (1200.0, 30.0)])
    assert trace.rate_at(-1.0) == 0.0
    assert trace.rate_at(700_000.0) == pytest.approx(300.0 / MIN)
    assert trace.mean_rate(0.0, 1_200_000.0) == pytest.approx((60.0 + 300.0) / 2 / MIN)
    # many seeds: the count in each segment over its claimed mean
    segments = [
        (0.0, 600_000.0, 60.0),
        (600_000.0, 1_200_000.0, 300.0),
        (1_200_000.0, 1_800_000.0, 30.0),
    ]
    per_seed = []
    for seed in range(40):
        times = trace.generate(0.0, 1_800_000.0, np.random.default_rng(seed))
        per_seed.append([((times >= a) & (times < b)).sum() / 10.0 for a, b, _ in segments])
    rates = np.array(per_seed)
    for j, (_, _, claimed) in enumerate(segments):
        assert_in_ci(claimed, sample_ci(rates[:, j]), f"segment {j}")


def test_diurnal_mean_and_shape() -> None:
    trace = Diurnal(mean_per_min=200.0, amplitude=0.8, period_s=600.0, phase_s=100.0)
    period = 600_000.0
    n_periods = 60
    times = trace.generate(0.0, n_periods * period, np.random.default_rng(3))
    per_period = counts(times, np.arange(n_periods + 1) * period) / 10.0  # per minute
    assert_in_ci(200.0, sample_ci(per_period), "diurnal mean over a period")
    assert trace.mean_rate(0.0, period) == pytest.approx(200.0 / MIN)
    # shape: in each eighth of the period, the count matches the integral of λ(t)
    bins = 8
    edges = np.arange(n_periods * bins + 1) * (period / bins)
    c = counts(times, edges).reshape(n_periods, bins)
    for k in range(bins):
        a, b = k * period / bins, (k + 1) * period / bins
        expected = trace.mean_rate(a, b) * (b - a)
        assert_in_ci(expected, sample_ci(c[:, k]), f"diurnal bin {k}")
    # the rate really varies: the peak bin is well above the trough bin
    assert c.mean(axis=0).max() > 3 * c.mean(axis=0).min()


def test_bursts_long_run_mean() -> None:
    trace = Bursts(base_per_min=60.0, burst_per_min=600.0, base_mean_s=120.0, burst_mean_s=30.0)
    claimed = (60.0 * 120.0 + 600.0 * 30.0) / 150.0
    assert trace.long_run_per_min == pytest.approx(claimed)
    assert trace.rate_at(5.0) == pytest.approx(claimed / MIN)
    # one long stream, drawn window by window as the emulator does
    stream = trace.stream(np.random.default_rng(5))
    horizon = 3000 * MIN
    parts = [stream.next(t, t + MIN).times for t in np.arange(0.0, horizon, MIN)]
    times = np.concatenate(parts)
    assert np.all(np.diff(times) >= 0)
    per_min = counts(times, np.arange(3001) * MIN)
    # batches of 100 min ≫ the 2.5-min cycle: batch means are nearly independent
    assert_in_ci(claimed, batch_means(per_min, batches=30), "bursts long-run mean")
    # and it is bursty: far more variable than Poisson
    assert per_min.var() > 5 * per_min.mean()
    # a fresh generate starts stationary too: many short windows average to the mean
    starts = np.array(
        [trace.generate(0.0, MIN, np.random.default_rng(100 + s)).size for s in range(400)]
    )
    assert_in_ci(claimed, sample_ci(starts.astype(np.float64)), "stationary start")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_replay_counts_and_tokens(tmp_path: Path) -> None:
    csv = write(
        tmp_path / "log.csv",
        "timestamp,server,input_tokens,output_tokens\n"
        "0.5,a,10,100\n"
        "61.0,a,20,200\n"
        "1.0,b,5,7\n"
        "30.0,a,30,300\n"
        "\n"
        "130.25,b,6,8\n",
    )
    traces = read_replay(csv)
    assert list(traces) == ["a", "b"]
    a, b = traces["a"], traces["b"]
    assert len(a) == 3 and len(b) == 2
    np.testing.assert_allclose(a.times_ms, [500.0, 30_000.0, 61_000.0])  # sorted
    assert a.input_tokens.tolist() == [10, 30, 20]
    assert a.output_tokens.tolist() == [100, 300, 200]
    assert a.rate_at(10_000.0) == pytest.approx(2 / MIN)
    assert a.mean_rate(0.0, 120_000.0) == pytest.approx(3 / 120_000.0)
    w = b.window(0.0, 130_250.0)
    assert w.times.tolist() == [1000.0] and w.output_tokens is not None
    assert b.end_ms == 130_250.0


def test_replay_large_counts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ts = np.sort(rng.uniform(0, 3600, 5000))
    lines = ["server,timestamp,output_tokens,input_tokens,extra"]
    lines += [f"s{i % 3},{t:.6f},{1 + i % 9},{i % 5},x" for i, t in enumerate(ts)]
    traces = read_replay(write(tmp_path / "big.csv", "\n".join(lines) + "\n"))
    assert sum(len(r) for r in traces.values()) == 5000
    total = sum(r.mean_rate(0.0, 3_600_000.0) for r in traces.values()) * 3_600_000.0
    assert total == pytest.approx(5000)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "timestamp,server,input_tokens,output_tokens\n1,a,2,3\nx,a,2,3\n",
            "line 3, column timestamp",
        ),
        (
            "timestamp,server,input_tokens,output_tokens\n1,a,2,3\n-1,a,2,3\n",
            "line 3, column timestamp",
        ),
        ("timestamp,server,input_tokens,output_tokens\n1,a,2,3\n2,,2,3\n", "line 3, column server"),
        ("timestamp,server,input_tokens,output_tokens\n1,a,2.5,3\n", "line 2, column input_tokens"),
        ("timestamp,server,input_tokens,output_tokens\n1,a,2,0\n", "line 2, column output_tokens"),
        ("timestamp,server,input_tokens,output_tokens\n1,a,2,3\n\n4,a,2\n", "line 4"),
        ("timestamp,server,input_tokens\n1,a,2\n", "line 1"),
        ("", "header"),
    ],
)
def test_replay_rejects_malformed_csv(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(InputError) as info:
        read_replay(path)
    message = str(info.value)
    assert where in message
    assert str(path) in message


def test_replay_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_replay(tmp_path / "nope.csv")


def test_trace_validation() -> None:
    with pytest.raises(ValueError):
        Poisson(-1.0)
    with pytest.raises(ValueError):
        Steps([(10.0, 1.0), (5.0, 2.0)])
    with pytest.raises(ValueError):
        Diurnal(10.0, 1.5, 60.0)
    with pytest.raises(ValueError):
        Bursts(1.0, 2.0, 0.0, 1.0)
    with pytest.raises(ValueError):
        Replay(np.array([2.0, 1.0]), np.array([1, 1]), np.array([1, 1]))


def test_token_lengths() -> None:
    rng = np.random.default_rng(2)
    assert Fixed(7).sample(5, rng).tolist() == [7] * 5
    for mean in (0.3, 3.0, 500.0):
        dist = Exponential(mean)
        x = dist.sample(200_000, rng).astype(np.float64)
        assert x.min() >= 1
        assert_in_ci(dist.mean, sample_ci(x), f"exponential {mean}")
    assert math.isclose(Exponential(1000.0).mean, 1000.0, rel_tol=1e-3)
    emp = Empirical([10, 20, 60])
    y = emp.sample(100_000, rng)
    assert set(np.unique(y).tolist()) == {10, 20, 60}
    assert_in_ci(emp.mean, sample_ci(y.astype(np.float64)), "empirical")
    with pytest.raises(ValueError):
        Empirical([])
    with pytest.raises(ValueError):
        Empirical([1.5])  # type: ignore[list-item]  # what is checked: a float length
    with pytest.raises(ValueError):
        Fixed(-1)
