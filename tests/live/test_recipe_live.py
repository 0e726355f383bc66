"""``inferno profile --pid`` and ``inferno recipe`` against a real Triton (pytriton, CPU): the
server's CPU and memory sampled at each level, the recipe's requests checked against what the
server uses under Poisson traffic at the decided rate; and a second server with two model
instances whose run merges into the contention factor κ(2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inferno.cli import main
from inferno.cli.recipe import parse_cpu, parse_memory_mib
from inferno.profiling import ProcessSampler

from ._procs import Child
from .conftest import TOKEN, cli_json, ready_sleep_triton

pytestmark = pytest.mark.slow

ALPHA, BETA, MAX_BATCH = 30.0, 2.5, 16
#: the load offered to the server: this share of one instance's capacity N/τ(N)
LOAD_SHARE = 0.5
#: seconds between CPU samples, in the profile and under load alike (the p95 depends on it);
#: each Poisson level of the profile lasts LEVEL_SAMPLES intervals. CPU is counted in 10 ms ticks:
#: a 0.5 s interval resolves 0.02 cores
INTERVAL = 0.5
#: intervals per Poisson level of the profile the recipe is made from (the CLI's default)
LEVEL_SAMPLES = 40
#: the recipe's CPU request is the p95 of the LEVEL_SAMPLES intervals at a level, so it is itself
#: a noisy estimate: the 3rd largest of 40, which lies below the use's 70th percentile with
#: probability P(Binomial(40, 0.3) ≤ 2) ≈ 1e-4 (of 20, the old default, the 2nd largest lies
#: below the 75th with probability 0.024: a full make test once saw 25.4% of the intervals above
#: it). Under load at the decided rate, the intervals using more than it must stay a small share
#: (0–7% in five runs at 20 and one at 40; a request at the mean leaves 47–71% above it)
MOST_ABOVE = 0.3


@dataclass
class Served:
    child: Child
    url: str


def _start(python: str, tmp: Path, instances: int) -> Served:
    child, http, _, _ = ready_sleep_triton(
        python, tmp, alpha=ALPHA, beta=BETA, max_batch=MAX_BATCH, instances=instances
    )
    return Served(child, f"http://127.0.0.1:{http}")


@pytest.fixture(scope="module")
def one(triton_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = _start(triton_python, tmp_path_factory.mktemp("recipe1"), 1)
    try:
        yield served
    finally:
        served.child.stop()


def _profile(served: Served, instances: int, data: Path, samples: int = 20) -> list[str]:
    return [
        "profile",
        served.url,
        "-m",
        "sleep",
        "--header",
        f"triton-access-token={TOKEN}",
        "--requests",
        "30",
        "--pid",
        str(served.child.proc.pid),
        "--sample-interval",
        str(INTERVAL),
        "--level-samples",
        str(samples),
        "--instances-run",
        str(instances),
        "--merge",
        str(data),
        "--json",
    ]


def _system(directory: Path, rpm: float) -> None:
    files = {
        "accelerator-data.json": {"accelerators": [{"name": "CPU", "cost": 1.0}]},
        "server-data.json": {
            "servers": [
                {
                    "name": "sleep-server",
                    "class": "Live",
                    "model": "sleep",
                    "currentAlloc": {"load": {"arrivalRate": rpm, "avgLength": 1}},
                }
            ]
        },
        "serviceclass-data.json": {
            "serviceClasses": [
                {"name": "Live", "priority": 1, "model": "sleep", "slo-latency": 1000}
            ]
        },
    }
    for name, doc in files.items():
        (directory / name).write_text(json.dumps(doc))


def _profiled(one: Served, directory: Path) -> Path:
    """``directory`` with the one-instance server's profile and the system the recipes are
    made for."""
    directory.mkdir(exist_ok=True)
    data = directory / "model-data.json"
    data.write_text(json.dumps({"models": []}))
    capsys_free = main(_profile(one, 1, data, LEVEL_SAMPLES)[:-1])  # the table: printed with -s
    assert capsys_free == 0
    row = json.loads(data.read_text())["models"][0]
    _system(directory, LOAD_SHARE * _capacity(row) * 60.0)
    return directory


@pytest.fixture(scope="module")
def profiled(one: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # here, not in a test: each test stands alone
    return _profiled(one, tmp_path_factory.mktemp("system"))


def _capacity(row: dict[str, Any]) -> float:
    """One instance's full batches back to back, req/s."""
    return MAX_BATCH / (float(row["alpha"]) + float(row["beta"]) * MAX_BATCH) * 1000.0


def test_recipe_requests_cover_the_servers_use_at_the_decided_rate(
    one: Served, profiled: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    row = json.loads((profiled / "model-data.json").read_text())["models"][0]
    levels = row["resources"]["levels"]
    # idle, then Poisson traffic at 25/50/75/90% of the highest rate the levels served
    assert levels[0]["rps"] == 0 and len(levels) == 1 + 4
    assert all(lv["memoryPeakMiB"] > 50 for lv in levels)
    # LEVEL_SAMPLES intervals, less the timer's slip
    assert all(lv["samples"] >= LEVEL_SAMPLES - 1 for lv in levels[1:])
    # the server's CPU grows with the load it serves (pytriton's per-request work)
    assert levels[-1]["cpuMean"] > levels[0]["cpuMean"] + 0.02
    directory = profiled
    for attempt in range(2):
        if attempt:
            # once more if out of bounds, from a new profile: the CPU a request costs moves with
            # the shared machine (its other work, its clock) between the profile and the load
            # (in one make test, 0.17 cores at 97 req/s in the profile, 0.22 at 99 in the load
            # half a minute later; run alone, 0.21 and 0.185)
            directory = _profiled(one, tmp_path / "again")
        row = json.loads((directory / "model-data.json").read_text())["models"][0]
        result = cli_json(["recipe", str(directory), "sleep-server", "--json"], capsys)
        rate = result["recipe"]["ratePerReplica"]
        assert result["objects"][1]["spec"]["minReplicas"] == 1 and rate == pytest.approx(
            LOAD_SHARE * _capacity(row), rel=0.01
        )
        (container,) = result["objects"][0]["spec"]["template"]["spec"]["containers"]
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        use, above = _use_under_load(one, rate, requests, limits, tmp_path, attempt, capsys)
        if above <= MOST_ABOVE:
            break
    assert above <= MOST_ABOVE
    assert use.share_above(parse_cpu(limits["cpu"])) <= 0.05
    # the server's memory creeps up a few MiB after the profile (Python's allocations): 2%
    assert parse_memory_mib(requests["memory"]) >= use.memory_peak_mib * 0.98
    assert parse_memory_mib(limits["memory"]) >= use.memory_peak_mib


def _use_under_load(
    one: Served,
    rate: float,
    requests: dict[str, str],
    limits: dict[str, str],
    tmp_path: Path,
    attempt: int,
    capsys: pytest.CaptureFixture[str],
) -> tuple[Any, float]:
    """Poisson traffic at ``rate``, the server sampled meanwhile: its use, and the share of the
    intervals above the CPU request (printed)."""
    sampler = ProcessSampler(one.child.proc.pid, interval=INTERVAL)
    sampler.start()
    try:
        load = tmp_path / f"load-{attempt}.json"
        argv = ["load", one.url, "-m", f"sleep={rate:.3f}", "-d", "30", "--quiet"]
        code = main([*argv, "--seed", str(attempt), "--json", str(load)])
    finally:
        use = sampler.stop()
    assert code == 0
    served = json.loads(load.read_text())["models"][0]
    again = " (again)" if attempt else ""
    above = use.share_above(parse_cpu(requests["cpu"]))
    with capsys.disabled():  # shown with -s, every attempt's
        print(
            f"\nrecipe at {rate:.1f} req/s: requests cpu {requests['cpu']} memory "
            f"{requests['memory']}, limits cpu {limits['cpu']} memory {limits['memory']}; "
            f"under load ({served['ok']} ok){again}: CPU mean {use.cpu_mean:.3f}, p95 "
            f"{use.cpu_p95:.3f} cores, memory peak {use.memory_peak_mib:.0f} MiB ({use.memory})"
        )
        print(
            f"intervals above the CPU request under load: {100 * above:.1f}% "
            f"(above the mean: {100 * use.share_above(use.cpu_mean):.1f}%)"
        )
    return use, above


def test_two_instances_merge_into_the_contention_factor(
    triton_python: str,
    profiled: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = profiled / "model-data.json"
    before = data.read_text()
    two = _start(triton_python, tmp_path_factory.mktemp("recipe2"), 2)
    try:
        for attempt in range(2):
            # sleeping instances do not contend: two serve nearly twice one's throughput; one
            # new profile if not (a busy phase of the shared machine slows one profile's top
            # levels, and κ is their ratio to the one-instance profile's)
            data.write_text(before)
            result = cli_json(_profile(two, 2, data), capsys)
            row = json.loads(data.read_text())["models"][0]
            assert row == result["merged"]
            tp = row["instanceThroughput"]
            kappa = row["contention"]
            with capsys.disabled():
                again = " (again)" if attempt else ""
                print(f"\nsaturated throughput {tp} req/s: κ = {kappa}{again}")
            if 1.0 <= kappa[1] < 1.35:
                break
    finally:
        two.child.stop()
    assert kappa[0] == 1.0 and 1.0 <= kappa[1] < 1.35
    assert {lv["instances"] for lv in row["resources"]["levels"]} == {1, 2}
    # the recipe for two instances uses their levels
    two_cpu = cli_json(
        ["recipe", str(profiled), "sleep-server", "--instances", "2", "--json"], capsys
    )
    assert two_cpu["recipe"]["instances"] == 2
