"""The collector's output-length fit against a real Prometheus: an in-process exporter (the
metrics a vLLM backend on Triton exports, prometheus-client) serves a histogram of generated
tokens per request drawn from a lognormal (or an exponential, a capped lognormal, fixed lengths),
Prometheus scrapes it, and the load source fits the lengths' family and CV from the buckets'
``increase()`` over the window (fixed lengths: the most spread their one bucket allows)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from inferno.cluster.inventory import ManagedDeployment
from inferno.emulator import Exponential, Fixed, Lengths, LogNormal
from inferno.prom import PrometheusClient, PrometheusLoadSource

from ._procs import Child, free_port, http_ok, wait_until
from .conftest import managed_deployment

pytestmark = pytest.mark.slow

NAMESPACE, DEPLOYMENT, POD = "live", "llm-server", "llm-server-5d8f7c9b4-x7k2p"
MODEL = "llama"
#: vLLM's build_1_2_5_buckets up to a 20,000-token context
BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
WINDOW_S = 20.0


class Exporter:
    """The LLM backend's metrics on an ephemeral port: requests, generated tokens, and the
    histogram of generated tokens per request, labelled by model."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model"]
        # Triton's request counters carry no _total suffix, which prometheus-client's Counter
        # always adds: served as gauges that only grow (rate() reads them the same)
        self.success = Gauge(
            "nv_inference_request_success", "requests", labels, registry=self.registry
        )
        self.failure = Gauge(
            "nv_inference_request_failure", "failures", labels, registry=self.registry
        )
        self.tokens = Counter(
            "vllm:generation_tokens", "generated tokens", labels, registry=self.registry
        )
        self.hist = Histogram(
            "vllm:request_generation_tokens",
            "generated tokens per request",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        # every series exists before the first scrape, at 0 (increase() needs two samples)
        for metric in (self.success, self.failure, self.tokens):
            metric.labels(MODEL).inc(0)
        self.hist.labels(MODEL)
        # the classic text format, as vLLM serves it (prometheus-client's own server would
        # negotiate OpenMetrics with Prometheus 2 and escape the colons of the names)
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = generate_latest(registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, lengths: np.ndarray) -> None:
        for n in lengths:
            self.success.labels(MODEL).inc()
            self.tokens.labels(MODEL).inc(float(n))
            self.hist.labels(MODEL).observe(float(n))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def scraped(prometheus_bin: str, tmp_path: Path) -> Iterator[tuple[Exporter, str]]:
    """The exporter, and Prometheus scraping it every second (both stopped at the end)."""
    exporter = Exporter()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: llm\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{exporter.port}']\n"
        f"        labels:\n          namespace: {NAMESPACE}\n          pod: {POD}\n",
        encoding="utf-8",
    )
    port = free_port()
    prom = Child(
        "prometheus",
        [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "prometheus.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until("Prometheus ready", lambda: http_ok(f"{base}/-/ready"), 30, prom)

        def up() -> bool:
            r = httpx.get(f"{base}/api/v1/query", params={"query": 'up{job="llm"}'}, timeout=2)
            result = r.json()["data"]["result"]
            return bool(result) and result[0]["value"][1] == "1"

        wait_until("the exporter scraped", up, 30, prom)
        yield exporter, base
    finally:
        prom.stop()
        exporter.stop()


def _deployment() -> ManagedDeployment:
    return managed_deployment(NAMESPACE, DEPLOYMENT, "llm-premium", MODEL)


@pytest.mark.parametrize(
    ("lengths", "family", "cv"),
    [
        (LogNormal(256.0, 1.5), "lognormal", 1.5),
        (Exponential(256.0), "gamma", 1.0),
        # served capped at 1,024 tokens, the Deployment annotated so: the served lengths' CV
        (LogNormal(256.0, 1.5, 1024), "lognormal", None),
        # every request in the bucket (200, 500]: the most spread lengths of mean 256 can have
        # there (Bhatia–Davis), not a fit
        (Fixed(256), "gamma", math.sqrt((256 - 201) * (500 - 256)) / 256),
    ],
    ids=["lognormal", "exponential", "lognormal-capped", "fixed"],
)
def test_the_collector_fits_the_lengths_from_a_scraped_histogram(
    scraped: tuple[Exporter, str], lengths: Lengths, family: str, cv: float | None
) -> None:
    exporter, base = scraped
    time.sleep(2.0)  # a scrape of the zero counts first: increase() needs two samples
    sample = lengths.sample(3000, np.random.default_rng(11))
    for part in np.array_split(sample, 5):  # over a few scrapes, as traffic comes
        exporter.serve(part)
        time.sleep(1.0)
    time.sleep(2.5)  # the last requests scraped
    cap = getattr(lengths, "max_tokens", None)
    deployment = replace(_deployment(), max_output_tokens=cap)
    if cv is None:
        cv = float(sample.std() / sample.mean())
    source = PrometheusLoadSource(PrometheusClient(base, timeout=5.0), WINDOW_S)
    try:
        m = source.measure([deployment])
    finally:
        source.close()
    load = m.loads["llm-premium"]
    obs = m.observations[0]
    assert load.arrival_rate > 0, obs.notes
    assert load.out_tokens == pytest.approx(float(sample.mean()), rel=0.02)
    assert obs.lengths is not None, obs.notes
    assert obs.lengths.bounded == isinstance(lengths, Fixed)
    assert load.out_tokens_dist == family
    assert load.out_tokens_cov == pytest.approx(cv, rel=0.1)
