"""The batching delay and model instances against a real Triton (pytriton, CPU; issue 12).

Two servers of the sleep model (a batch of b takes α + β·b ms, α 30, β 2.5, max batch 16), one
at a time: one instance with ``max_queue_delay_microseconds`` 20 000, then two instances (two
bound callables) with the same delay. Each is profiled by ``inferno profile`` (``--instances-run
1``, then ``2`` merged into the same row: α, β and κ(2)), then loaded with single-item Poisson
traffic from ``inferno load`` at two rates; the model's mean and p95 latency for that delay and
instance count (:class:`~inferno.model.profiles.BatchProfile`, the analyzer's exact bulk model)
at the rate that arrived are compared with the measured ones.

Each server's low rate is where the delay decides the latency (a request that finds the instance
idle waits the delay for company): there the model *without* the delay must be further off than
the model with it. The two-instance server's high rate is past what one instance serves well:
there the one-instance model must be further off. pytriton and Triton add a per-request cost to β
when they batch single-item requests; the default profile (``--shape single``) measures β on
those batches, so the row's β carries it (tests/live/test_profile_traffic_live.py, issue 13).

One level is a known gap (``GAP``): one instance with the 20 ms delay at 80 req/s, where the
real Triton is slower than the model (and the emulator, which agrees with it) by 7–28% on the
mean from run to run. Triton's scheduler closes the next batch as soon as its oldest request has
waited the delay, even while the instance still runs the current one (it prefetches up to two
batches per instance), so with a delay shorter than the batch time later arrivals can wait one batch
more; the model lets them join. The level is printed with Triton's own queue time per request,
and what is asserted is the direction of the error and that the missing time is in that queue.
With delays of 45 and 60 ms, about the batch time or longer, the same rates are within the
bounds (:func:`test_longer_delays_predict_a_real_triton_at_every_rate`).

    .venv/bin/pytest -s tests/live/test_serving_config_live.py   # prints every comparison
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from inferno.cli import main
from inferno.model.analyzer import analyze_rate, operating_point
from inferno.model.bulk_instances import serving_metrics
from inferno.model.profiles import BatchProfile, Tokens
from inferno.model.quantiles import latency_quantiles
from inferno.triton import ModelStatistics, parse_statistics

from ._procs import Child
from .conftest import TOKEN, cli_json, ready_sleep_triton

pytestmark = pytest.mark.slow

ALPHA, BETA, MAX_BATCH = 30.0, 2.5, 16
DELAY_US = 20_000
#: (instances, [(req/s, seconds of load)]): the first rate of each is where the delay matters,
#: the two-instance server's second is 95% of one instance's capacity N/τ(N) (≈ 228 req/s)
SERVERS = ((1, ((15.0, 16.0), (80.0, 12.0))), (2, ((40.0, 12.0), (215.0, 12.0))))
#: model vs measured, relative (chosen from the runs recorded in docs/triton.md)
MEAN_BOUND, P95_BOUND = 0.10, 0.15
#: the two-instance server at its high rate: the model there moves with κ(2), which one profile
#: measures to about ±4% (1.00 to 1.05 in three runs), and that moved the mean by up to 10%
#: (−0.8, −4.6, −10.4%); the bounds allow for that measurement, not for a model error
HIGH_TWO = (2, 1)
HIGH_TWO_MEAN, HIGH_TWO_P95 = 0.15, 0.20
#: the known gap: one instance with the 20 ms delay at a moderate load (80 req/s, a third of its
#: capacity), where the real Triton is slower than the model in every measurement (mean −7% to
#: −28%, p95 −11% to −30%, varying from run to run) while the emulator agrees with the model:
#: Triton's prefetching scheduler (module docstring). No bound holds it, so the level is printed
#: and the direction and the place of the missing time are asserted, until the model and the
#: emulator learn the prefetch
GAP = (1, 1)


@dataclass
class Served:
    child: Child
    url: str


@pytest.fixture
def serve(triton_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start a sleep server with c instances and the delay; every one started is stopped."""
    started: list[Child] = []

    def start(instances: int, delay_us: int = DELAY_US) -> Served:
        tmp = tmp_path_factory.mktemp(f"serving{instances}-{delay_us}")
        child, http, _, _ = ready_sleep_triton(
            triton_python,
            tmp,
            alpha=ALPHA,
            beta=BETA,
            max_batch=MAX_BATCH,
            instances=instances,
            max_queue_delay_us=delay_us,
        )
        started.append(child)
        return Served(child, f"http://127.0.0.1:{http}")

    try:
        yield start
    finally:
        for child in started:
            child.stop()


def _predict(
    row: dict[str, Any], delay_ms: float, instances: int, rps: float
) -> tuple[float, float]:
    """The model's mean and p95 response time (ms) at ``rps``."""
    mean, p95, _ = _predict_wait(row, delay_ms, instances, rps)
    return mean, p95


def _predict_wait(
    row: dict[str, Any], delay_ms: float, instances: int, rps: float
) -> tuple[float, float, float]:
    """The model's mean and p95 response time and its mean wait (ms) at ``rps``."""
    kappa = tuple(float(k) for k in row.get("contention", [1.0]))
    profile = BatchProfile(
        float(row["alpha"]),
        float(row["beta"]),
        int(row["maxBatchSize"]),
        queue_delay_ms=delay_ms,
        instances=instances,
        contention=kappa,
    )
    result = analyze_rate(profile, Tokens(), rps)
    if not math.isfinite(result.avg_resp_time) or result.blocking > 0.01:
        return math.inf, math.inf, math.inf
    point = operating_point(profile, Tokens(), None)
    p95 = latency_quantiles(point, np.array([result.throughput / 1000.0]), (0.95,))[0, 0]
    return result.avg_resp_time, float(p95), result.avg_wait_time


def _model_batch(row: dict[str, Any], delay_ms: float, instances: int, rps: float) -> float:
    """The model's mean batch at ``rps`` (the batch kind's default queue: K = 11 N)."""
    kappa = tuple(float(k) for k in row.get("contention", [1.0]))
    n = int(row["maxBatchSize"])
    return serving_metrics(
        float(row["alpha"]),
        float(row["beta"]),
        n,
        11 * n,
        rps / 1000.0,
        delay=delay_ms,
        instances=instances,
        kappa=kappa[instances - 1],
    ).avg_batch


def _statistics(served: Served) -> ModelStatistics:
    """Triton's own counters for the model (cumulative)."""
    answer = httpx.get(
        f"{served.url}/v2/models/sleep/stats", headers={"triton-access-token": TOKEN}, timeout=10
    )
    answer.raise_for_status()
    return parse_statistics(answer.json(), "sleep")


@dataclass(frozen=True)
class _Level:
    line: str
    within: bool
    mean_err: float
    other_err: float  # the mean error of the model without the delay (c = 1) or with c = 1


def _discriminates(instances: int, level: int) -> bool:
    """Where what the server runs must matter: the delay at the one-instance server's low rate,
    the second instance at the two-instance server's high rate."""
    return (instances, level) in ((1, 0), (2, 1))


def _measure(
    served: Served,
    row: dict[str, Any],
    instances: int,
    rate: float,
    seconds: float,
    seed: int,
    out: Path,
    level: int,
    delay_us: int = DELAY_US,
) -> _Level:
    argv = ["load", served.url, "-m", f"sleep={rate:g}", "-d", f"{seconds:g}", "--seed", str(seed)]
    before = _statistics(served)
    assert main([*argv, "--quiet", "--json", str(out)]) == 0
    triton = _statistics(served).minus(before)
    measured = json.loads(out.read_text())["models"][0]
    assert measured["errors"] == 0, measured
    rps = float(measured["offeredRps"])  # the rate that arrived
    delay_ms = delay_us / 1000.0
    mean, p95 = float(measured["meanMs"]), float(measured["percentilesMs"]["p95"])
    model_mean, model_p95, model_wait = _predict_wait(row, delay_ms, instances, rps)
    model_batch = _model_batch(row, delay_ms, instances, rps)
    mean_err, p95_err = model_mean / mean - 1, model_p95 / p95 - 1
    line = (
        f"c={instances} D={delay_ms:g} ms, {rps:.1f} req/s (lag ≤ {measured['maxLagMs']:.0f} ms, "
        f"{measured['ok']} ok): mean {model_mean:.1f} vs {mean:.1f} ms ({100 * mean_err:+.1f}%), "
        f"p95 {model_p95:.1f} vs {p95:.1f} ms ({100 * p95_err:+.1f}%); wait {model_wait:.1f} vs "
        f"Triton's queue {triton.queue_ms:.1f} ms, batch {model_batch:.2f} vs "
        f"{triton.avg_batch:.2f}"
    )
    other_err = math.nan
    special = delay_us == DELAY_US  # the levels below are those of the 20 ms servers
    if special and _discriminates(instances, level):
        # the model that ignores what the server runs: no delay (one instance) or one instance
        other, what = (
            (_predict(row, 0.0, 1, rps)[0], "no delay")
            if instances == 1
            else (_predict(row, delay_ms, 1, rps)[0], "1 instance")
        )
        other_err = other / mean - 1
        line += f"; the model with {what}: mean {other:.1f} ms ({100 * other_err:+.1f}%)"
    if special and (instances, level) == GAP:
        within = mean_err < 0.0 and p95_err < 0.0
        line += " [known gap: printed, only its sign checked]"
        # where the missing time is, when there is some to speak of (over 5% of the mean): in
        # Triton's queue, before the batch runs (the scheduler closes the next batch while the
        # instance is busy, docs/triton.md), not in the run
        missing = mean - model_mean
        assert missing < 0.05 * mean or triton.queue_ms - model_wait > 0.5 * missing, line
    elif special and (instances, level) == HIGH_TWO:
        within = abs(mean_err) <= HIGH_TWO_MEAN and abs(p95_err) <= HIGH_TWO_P95
    else:
        within = abs(mean_err) <= MEAN_BOUND and abs(p95_err) <= P95_BOUND
    return _Level(line, within, mean_err, other_err)


def _profile_line(instances: int, row: dict[str, Any]) -> str:
    kappa = row.get("contention", [1.0])
    return f"c={instances} profile: α {row['alpha']:.2f} ms, β {row['beta']:.3f} ms, κ {kappa}"


def _measure_level(
    served: Served,
    row: dict[str, Any],
    instances: int,
    rate: float,
    seconds: float,
    seed: int,
    tmp: Path,
    level: int,
    lines: list[str],
    reprofile: Callable[[], dict[str, Any]],
    delay_us: int = DELAY_US,
) -> _Level:
    """:func:`_measure`, once more when out of bounds, from a new profile (other work on the
    shared machine slows a CPU-bound Triton, during the profile or during the load, and a profile
    taken on a busy machine fails every level measured from it); both attempts' lines, and the
    new profile's, are appended to ``lines``."""
    for attempt in range(2):
        if attempt:
            row = reprofile()
            lines.append(_profile_line(instances, row) + " (again)")
        run_seed = seed + 100 * attempt
        out = tmp / f"load-{run_seed}.json"
        result = _measure(served, row, instances, rate, seconds, run_seed, out, level, delay_us)
        lines.append(result.line + (" (again)" if attempt else ""))
        if result.within:
            break
    return result


def test_delay_and_instances_predict_a_real_triton(
    serve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "model-data.json"
    data.write_text(json.dumps({"models": []}))
    header = ["--header", f"triton-access-token={TOKEN}"]
    lines: list[str] = []
    failures: list[str] = []
    for instances, loads in SERVERS:
        served = serve(instances)
        argv = ["profile", served.url, "-m", "sleep", *header, "--instances-run", str(instances)]
        merged_before = data.read_text()  # a new profile merges into what the others measured

        def profile_row(argv: list[str] = argv, merged_before: str = merged_before) -> Any:
            data.write_text(merged_before)
            profile = cli_json([*argv, "--merge", str(data), "--json"], capsys)
            # the profile reads the delay from the model's configuration
            assert profile["row"]["queueDelayMs"] == pytest.approx(DELAY_US / 1000.0)
            return profile["merged"]

        row = profile_row()
        lines.append(_profile_line(instances, row))
        if instances == 2:
            # sleeping instances do not contend much: two serve nearly twice one's throughput;
            # one new profile if not (as for a level: a busy machine slows one profile's top
            # levels, and κ is their ratio)
            if not 1.0 <= row["contention"][1] < 1.35:
                row = profile_row()
                lines.append(_profile_line(instances, row) + " (again)")
            assert 1.0 <= row["contention"][1] < 1.35, lines
        for i, (rate, seconds) in enumerate(loads):
            seed = 21 + 10 * instances + i
            level = _measure_level(
                served, row, instances, rate, seconds, seed, tmp_path, i, lines, profile_row
            )
            if not level.within:
                failures.append(lines[-1])
            # what the server runs matters there: the model without it is further off
            if _discriminates(instances, i):
                assert abs(level.other_err) > max(abs(level.mean_err), MEAN_BOUND), lines[-1]
    capsys.readouterr()  # the load reports
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert not failures, "predicted vs measured out of bounds:\n" + "\n".join(failures)


#: longer delays on one instance, each at three rates (the one-instance 20 ms server's two, and
#: one between)
LONG_DELAYS_US = (45_000, 60_000)
LONG_RATES = ((15.0, 12.0), (40.0, 12.0), (77.0, 12.0))


@pytest.mark.parametrize("delay_us", LONG_DELAYS_US)
def test_longer_delays_predict_a_real_triton_at_every_rate(
    delay_us: int, serve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a delay about the batch time or longer (45 and 60 ms against batches of about
    36–50 ms), the oldest request's delay runs out late in a run if at all, so the scheduler
    rarely closes a batch while the instance is busy, and Triton serves as the model does at
    every rate, the rate of the 20 ms server's known gap included: mean ±10%, p95 ±15%. With
    20 ms that rate shows the gap (docs/triton.md)."""
    data = tmp_path / "model-data.json"
    data.write_text(json.dumps({"models": []}))
    served = serve(1, delay_us)
    argv = ["profile", served.url, "-m", "sleep", "--header", f"triton-access-token={TOKEN}"]

    def profile_row() -> Any:
        data.write_text(json.dumps({"models": []}))
        profile = cli_json([*argv, "--merge", str(data), "--json"], capsys)
        assert profile["row"]["queueDelayMs"] == pytest.approx(delay_us / 1000.0)
        return profile["merged"]

    row = profile_row()
    lines = [_profile_line(1, row).replace("c=1", f"c=1 D={delay_us / 1000:g} ms", 1)]
    failures = []
    for i, (rate, seconds) in enumerate(LONG_RATES):
        level = _measure_level(
            served, row, 1, rate, seconds, 71 + i, tmp_path, i, lines, profile_row, delay_us
        )
        if not level.within:
            failures.append(lines[-1])
    capsys.readouterr()
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert not failures, "predicted vs measured out of bounds:\n" + "\n".join(failures)
