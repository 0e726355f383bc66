"""The collector's PromQL against a real Prometheus scraping a real Triton, under load from
``inferno load`` at known rates."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from inferno.cli import main
from inferno.cluster.inventory import ManagedDeployment
from inferno.prom import PrometheusClient, PrometheusLoadSource

from .conftest import DEPLOYMENT, NAMESPACE, Stack, managed_deployment

pytestmark = pytest.mark.slow

PHASE_S = 20.0
WINDOW_S = 15.0  # shorter than the phase: the window must not reach outside it


def _deployment() -> ManagedDeployment:
    return managed_deployment(NAMESPACE, DEPLOYMENT, "sleep-premium", "sleep")


def _triton_counter(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and 'model="sleep"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in Triton's metrics")


def _metrics_url(stack: Stack) -> str:
    # the scrape target Prometheus was configured with
    r = httpx.get(f"{stack.prometheus}/api/v1/targets", timeout=5)
    return str(r.json()["data"]["activeTargets"][0]["scrapeUrl"])


@pytest.mark.parametrize("rps", [20.0, 70.0])
def test_offered_rate_and_batch_size_match(stack: Stack, rps: float, tmp_path: Path) -> None:
    metrics_url = _metrics_url(stack)
    before = httpx.get(metrics_url, timeout=5).text
    out = tmp_path / "load.json"
    code = main(
        [
            "load",
            stack.triton_http,
            "--model",
            f"sleep={rps}",
            "--duration",
            str(PHASE_S),
            "--seed",
            str(int(rps)),
            "--quiet",
            "--json",
            str(out),
        ]
    )
    end = time.time()
    after = httpx.get(metrics_url, timeout=5).text
    assert code == 0, "inferno load reported failed requests"
    summary = json.loads(out.read_text())["models"][0]
    generated = summary["sent"] / PHASE_S
    assert summary["errors"] == 0
    time.sleep(2.5)  # two more scrapes: the phase's last counters are in Prometheus

    with PrometheusClient(stack.prometheus, timeout=5.0, clock=lambda: end - 0.5) as client:
        measurement = PrometheusLoadSource(client, window=WINDOW_S).measure([_deployment()])
    obs = measurement.observations[0]
    assert obs.load is not None, obs.notes
    offered_rps = obs.load.arrival_rate / 60.0
    print(
        f"\n{rps:g} rps: generated {generated:.2f}/s, collector {offered_rps:.2f}/s, "
        f"avg batch {obs.avg_batch}, queue {obs.queue_ms} ms, compute {obs.compute_ms} ms"
    )
    assert offered_rps == pytest.approx(generated, rel=0.10)

    # the average batch agrees with Triton's own counters over the phase
    inferences = _triton_counter(after, "nv_inference_count") - _triton_counter(
        before, "nv_inference_count"
    )
    executions = _triton_counter(after, "nv_inference_exec_count") - _triton_counter(
        before, "nv_inference_exec_count"
    )
    triton_batch = inferences / executions
    assert obs.avg_batch is not None
    assert obs.avg_batch == pytest.approx(triton_batch, rel=0.10)
    if rps >= 50:
        assert obs.avg_batch > 1.5, "at this load Triton must batch"
    assert obs.compute_ms is not None and obs.compute_ms > 50.0  # at least α of the sleep
