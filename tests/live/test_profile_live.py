"""``inferno profile`` against a real Triton whose batch of b takes α + β·b, and the model's
latency prediction at a measured load against the measured latency."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from inferno.cli import main
from inferno.model.analyzer import analyze_rate
from inferno.model.bulk import bulk_metrics
from inferno.model.percentiles import quantile
from inferno.model.points import OperatingPoints
from inferno.model.profiles import BatchProfile, Tokens
from inferno.prom import PrometheusClient, PrometheusLoadSource

from .conftest import ALPHA, BETA, MAX_BATCH, TOKEN, Stack, cli_json
from .test_collector_live import _deployment

TOKEN_GRPC_HEADER = "triton-grpc-protocol-triton-access-token"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fitted(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    """α and β from ``inferno profile --shape batch`` (b-item requests, Triton's statistics,
    concurrency 1 and 4). The default shape is tested in test_profile_traffic_live.py."""
    tmp = tmp_path_factory.mktemp("profile")
    row_file = tmp / "row.json"
    merged = tmp / "model-data.json"
    merged.write_text(json.dumps({"models": [{"name": "other", "acc": "CPU"}]}))
    code = main(
        [
            "profile",
            stack.triton_http,
            "--model",
            "sleep",
            "--shape",
            "batch",
            "--header",
            f"triton-access-token={TOKEN}",
            "--concurrency",
            "1,4",
            "--requests",
            "8",
            "--out",
            str(row_file),
            "--merge",
            str(merged),
        ]
    )
    assert code == 0
    row = json.loads(row_file.read_text())
    assert row["kind"] == "batch" and row["maxBatchSize"] == MAX_BATCH
    doc = json.loads(merged.read_text())
    assert [m["name"] for m in doc["models"]] == ["other", "sleep"]
    print(f"\nprofile: α = {row['alpha']} ms (true {ALPHA}), β = {row['beta']} ms (true {BETA})")
    return {"alpha": float(row["alpha"]), "beta": float(row["beta"])}


def test_profile_recovers_alpha_and_beta(fitted: dict[str, float]) -> None:
    assert fitted["alpha"] == pytest.approx(ALPHA, rel=0.20)
    assert fitted["beta"] == pytest.approx(BETA, rel=0.20)


def test_profile_without_statistics_falls_back_to_client_timing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # no access token: Triton refuses its statistics; the client's timing is used, and said so
    for shape in ("single", "batch"):
        argv = ["profile", stack.triton_http, "--model", "sleep", "--shape", shape]
        code = main([*argv, "--batch-sizes", "1,8", "--requests", "4", "--json"])
        result = json.loads(capsys.readouterr().out)
        assert code == 0
        assert result["source"] == "client" and result["shape"] == shape
        params = result["fit"]["params"]
        # the client sees the server's overheads on top: α larger, β about the same
        assert params["alpha"] > ALPHA * 0.9
        assert params["beta"] == pytest.approx(BETA, rel=0.5)
        # single: concurrency 1 and 2N (full batches, timed by the throughput)
        levels = [(lv["batch"], lv["concurrency"]) for lv in result["levels"]]
        if shape == "single":
            assert levels == [(1, 1), (1, 2 * MAX_BATCH)] and "overhead" in result
        else:
            assert levels == [(1, 1), (8, 1)] and "overhead" not in result


def test_profile_measures_the_gpu_share_and_optimize_reads_it_back(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The row's ``gpuShare`` from Triton's compute phases (input, infer, output) of the
    fitted executions, merged into a system directory that ``inferno optimize`` then solves."""
    data = tmp_path / "model-data.json"
    argv = ["profile", stack.triton_http, "--model", "sleep", "--shape", "batch"]
    argv += ["--batch-sizes", "1,8", "--requests", "4", "--header", f"triton-access-token={TOKEN}"]
    result = cli_json([*argv, "--merge", str(data), "--json"], capsys)
    share = result["row"]["gpuShare"]
    phases = result["gpuShare"]["computeMs"]
    with capsys.disabled():
        print(f"\ngpuShare {share} from Triton's compute phases (ms): {phases}")
    assert 0 < share <= 1
    assert share == pytest.approx(phases["infer"] / sum(phases.values()), rel=1e-4)
    # the executions were those fitted: 4 b-item requests of each size, one execution each
    assert result["gpuShare"]["executions"] == 8
    # the sleep is the model's work (the Python backend's execute): most of each execution
    assert phases["infer"] >= 8 * ALPHA
    docs = {
        "accelerator-data.json": {"accelerators": [{"name": "CPU", "cost": 1.0}]},
        "serviceclass-data.json": {
            "serviceClasses": [{"name": "Live", "model": "sleep", "slo-latency": 1000}]
        },
        "server-data.json": {
            "servers": [
                {"name": "s", "class": "Live", "model": "sleep", "load": {"arrivalRate": 600}}
            ]
        },
    }
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    assert json.loads(data.read_text())["models"][0]["gpuShare"] == share
    solution = cli_json(["optimize", str(tmp_path), "--format", "json"], capsys)
    allocation = solution["allocations"]["s"]
    assert allocation["status"] == "allocated" and allocation["accelerator"] == "CPU"
    assert allocation["numReplicas"] >= 1


@pytest.mark.parametrize("token", [None, "triton-access-token", TOKEN_GRPC_HEADER])
def test_profile_over_grpc_reads_locked_statistics_or_falls_back(
    stack: Stack, capsys: pytest.CaptureFixture[str], token: str | None
) -> None:
    """Over gRPC a restricted statistics API is a refusal, not "cannot reach Triton": without
    the token the profile falls back to the client's timing; with it — under the HTTP name (sent
    with gRPC's prefix too) or under gRPC's own — Triton's statistics are read. The default
    shape: single-item requests, with the per-request overhead reported either way."""
    header = [] if token is None else ["--header", f"{token}={TOKEN}"]
    argv = ["profile", stack.triton_grpc, "--model", "sleep"]
    code = main([*argv, "--requests", "4", "--json", *header])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["shape"] == "single" and "overhead" in result
    assert result["source"] == ("client" if token is None else "server")
    if token is not None:
        # the batches Triton formed from single-item requests, the full one among them
        assert max(p["batch"] for p in result["points"]) == MAX_BATCH


def test_load_over_grpc(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "grpc.json"
    code = main(
        ["load", stack.triton_grpc, "-m", "sleep=10", "-d", "3", "--quiet", "--json", str(out)]
    )
    summary = json.loads(out.read_text())["models"][0]
    assert code == 0 and summary["errors"] == 0 and summary["ok"] == summary["sent"] > 10


@pytest.mark.parametrize("rps", [25.0, 60.0])
def test_model_predicts_mean_latency_at_measured_load(
    stack: Stack, fitted: dict[str, float], rps: float, tmp_path: Path
) -> None:
    out = tmp_path / "load.json"
    duration = 20.0
    code = main(
        [
            "load",
            stack.triton_http,
            "-m",
            f"sleep={rps}",
            "-d",
            str(duration),
            "--quiet",
            "--seed",
            "7",
            "--json",
            str(out),
        ]
    )
    end = time.time()
    assert code == 0
    measured = json.loads(out.read_text())["models"][0]
    time.sleep(2.5)
    with PrometheusClient(stack.prometheus, timeout=5.0, clock=lambda: end - 0.5) as client:
        obs = PrometheusLoadSource(client, window=15.0).measure([_deployment()]).observations[0]
    assert obs.load is not None
    rate = obs.load.arrival_rate / 60.0  # the load the collector measured, req/s
    k = 11 * MAX_BATCH  # the batch kind's default K
    bulk = bulk_metrics(fitted["alpha"], fitted["beta"], MAX_BATCH, k, rate / 1000.0)
    # what the optimizer predicts (batch kind, default batching "triton") and the chain
    inferno = analyze_rate(BatchProfile(fitted["alpha"], fitted["beta"], MAX_BATCH), Tokens(), rate)
    chain = analyze_rate(
        BatchProfile(fitted["alpha"], fitted["beta"], MAX_BATCH, batching="chain"), Tokens(), rate
    )
    mean = float(measured["meanMs"])
    p95 = float(measured["percentilesMs"]["p95"])
    points = OperatingPoints.of(
        [BatchProfile(fitted["alpha"], fitted["beta"], MAX_BATCH)], [Tokens()]
    )
    model_p95 = quantile(points.response_time(0, rate / 1000.0).survival, 0.95, mean)

    def err(x: float, of: float = mean) -> str:
        return f"{100 * (x / of - 1):+.0f}%"

    print(
        f"\n{rps:g} rps (collector {rate:.2f}/s): measured mean {mean:.1f} ms, "
        f"p95 {measured['percentilesMs']['p95']:.1f} ms; Triton queue+compute "
        f"{(obs.queue_ms or 0) + (obs.compute_ms or 0):.1f} ms; "
        f"model {inferno.avg_resp_time:.1f} ms ({err(inferno.avg_resp_time)}), "
        f"avg batch {bulk.avg_batch:.2f} (Triton {obs.avg_batch:.2f}); "
        f"chain {chain.avg_resp_time:.1f} ms ({err(chain.avg_resp_time)}); "
        f"model p95 {model_p95:.1f} ms ({err(model_p95, p95)})"
    )
    assert inferno.avg_resp_time == pytest.approx(bulk.response, rel=0.02)
    assert inferno.avg_resp_time == pytest.approx(mean, rel=0.25)
    assert model_p95 == pytest.approx(p95, rel=0.25)
    assert obs.avg_batch is not None
    assert bulk.avg_batch == pytest.approx(obs.avg_batch, rel=0.25)
