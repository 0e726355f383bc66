"""The live suite: a real Triton (pytriton, CPU) and a real Prometheus, started by the tests.

Needs ``prometheus`` (Debian package) on PATH or in ``INFERNO_PROMETHEUS``, and a Python with
``nvidia-pytriton`` in ``INFERNO_TRITON_PYTHON`` (default ``.venv-triton/bin/python``);
``make live-deps`` installs both. Without them the suite is skipped — unless
``INFERNO_REQUIRE_LIVE=1`` (set by ``make test``), where a missing piece fails it.
"""

from __future__ import annotations

import json
import os
import shutil
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferno.cluster.inventory import ManagedDeployment

from ._procs import Child, free_port, http_ok, wait_until

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

#: the sleep model's true parameters (ms): a batch of b takes ALPHA + BETA·b
ALPHA = 50.0
BETA = 5.0
MAX_BATCH = 16
TOKEN = "inferno-live-test-token"
#: the labels Kubernetes service discovery would put on the series of a Deployment's pod
NAMESPACE = "live"
DEPLOYMENT = "sleep-server"
POD = "sleep-server-5d8f7c9b4-x7k2p"


def _missing(what: str) -> None:
    message = f"{what} (run `make live-deps`)"
    if os.environ.get("INFERNO_REQUIRE_LIVE") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    found = os.environ.get("INFERNO_PROMETHEUS") or shutil.which("prometheus")
    if not found:
        _missing("no prometheus binary")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def triton_python() -> str:
    python = os.environ.get("INFERNO_TRITON_PYTHON") or str(ROOT / ".venv-triton/bin/python")
    if not Path(python).is_file():
        _missing(f"no Python with nvidia-pytriton at {python}")
    return python


@dataclass(frozen=True)
class Stack:
    triton_http: str  # http://127.0.0.1:<port>
    triton_grpc: str  # grpc://127.0.0.1:<port>
    prometheus: str  # http://127.0.0.1:<port>
    triton: Child
    prom: Child


def _triton_env(python: str) -> dict[str, str]:
    """LD_LIBRARY_PATH with that Python's LIBDIR, so the backend stub loads its libpython."""
    import subprocess

    libdir = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip() or str(sysconfig.get_config_var("LIBDIR"))
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (libdir, env.get("LD_LIBRARY_PATH")) if p)
    return env


def _prometheus_config(path: Path, metrics_port: int) -> None:
    path.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: triton\n"
        "    scrape_interval: 1s\n"
        "    scrape_timeout: 1s\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
        "        labels:\n"
        f"          namespace: {NAMESPACE}\n"
        f"          pod: {POD}\n",
        encoding="utf-8",
    )


def sleep_triton(
    python: str,
    tmp: Path,
    *,
    alpha: float,
    beta: float,
    max_batch: int,
    token: str = TOKEN,
    instances: int = 1,
    max_queue_delay_us: int = 0,
) -> tuple[Child, int, int, int]:
    """``sleep_server.py`` started on three ephemeral ports (HTTP, gRPC, metrics), its
    statistics behind ``token``, with ``instances`` model instances and the dynamic batcher's
    ``max_queue_delay_us``; the caller waits for it and stops it."""
    http, grpc, metrics = (free_port() for _ in range(3))
    triton = Child(
        "triton",
        [
            python,
            str(HERE / "sleep_server.py"),
            f"--http-port={http}",
            f"--grpc-port={grpc}",
            f"--metrics-port={metrics}",
            f"--alpha-ms={alpha}",
            f"--beta-ms={beta}",
            f"--max-batch={max_batch}",
            f"--token={token}",
            f"--instances={instances}",
            f"--max-queue-delay-us={max_queue_delay_us}",
            f"--workspace={tmp / 'workspace'}",
        ],
        tmp / "triton.log",
        env=_triton_env(python),
    )
    return triton, http, grpc, metrics


def wait_for_sleep_model(triton: Child, http: int) -> None:
    wait_until(
        "model sleep ready",
        lambda: http_ok(f"http://127.0.0.1:{http}/v2/models/sleep/ready"),
        90,
        triton,
    )


#: tries of :func:`ready_sleep_triton`
START_ATTEMPTS = 2


def ready_sleep_triton(python: str, tmp: Path, **options: Any) -> tuple[Child, int, int, int]:
    """:func:`sleep_triton` (its ``options``) started and its model ready; the caller stops it.

    Started once more, in a fresh directory, when the server exits before its model is ready:
    pytriton's Python backend stub sometimes connects to its own handshake socket before the
    socket listens (``ConnectionRefusedError`` in ``get_config_from_handshake_server``, seen
    with two instances), and the server then shuts down. A second failure, or a server that
    is still up but not ready in time, fails the test."""
    for attempt in range(1, START_ATTEMPTS + 1):
        where = tmp / f"start{attempt}"
        where.mkdir(parents=True, exist_ok=True)
        child, http, grpc, metrics = sleep_triton(python, where, **options)
        try:
            wait_for_sleep_model(child, http)
        except AssertionError as exc:
            child.stop()
            if attempt == START_ATTEMPTS or "exited before" not in str(exc):
                raise
            continue
        except BaseException:
            child.stop()
            raise
        return child, http, grpc, metrics
    raise AssertionError("unreachable")  # pragma: no cover


@pytest.fixture(scope="module")
def stack(
    prometheus_bin: str, triton_python: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Triton serving ``sleep`` and Prometheus scraping it every second, until the module ends."""
    tmp = tmp_path_factory.mktemp("live")
    prom = free_port()
    children: list[Child] = []
    try:
        triton, http, grpc, metrics = sleep_triton(
            triton_python, tmp, alpha=ALPHA, beta=BETA, max_batch=MAX_BATCH
        )
        children.append(triton)
        config = tmp / "prometheus.yml"
        _prometheus_config(config, metrics)
        prometheus = Child(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom}",
            ],
            tmp / "prometheus.log",
        )
        children.append(prometheus)
        base = f"http://127.0.0.1:{prom}"
        wait_until("Prometheus ready", lambda: http_ok(f"{base}/-/ready"), 30, prometheus)
        wait_for_sleep_model(triton, http)

        def scraped() -> bool:
            r = httpx.get(f"{base}/api/v1/query", params={"query": 'up{job="triton"}'}, timeout=2)
            result = r.json()["data"]["result"]
            return bool(result) and result[0]["value"][1] == "1"

        wait_until("Triton scraped by Prometheus", scraped, 30, prometheus)
        yield Stack(
            f"http://127.0.0.1:{http}", f"grpc://127.0.0.1:{grpc}", base, triton, prometheus
        )
    finally:
        for child in reversed(children):
            child.stop()


def managed_deployment(namespace: str, name: str, server: str, model: str) -> ManagedDeployment:
    """The inventory's view of a one-replica Premium Deployment serving ``model`` on CPU (what
    the collector measures)."""
    return ManagedDeployment(
        namespace=namespace,
        name=name,
        server=server,
        model=model,
        service_class="Premium",
        replicas=1,
        ready_replicas=1,
        accelerator="CPU",
        max_batch=16,
        container=0,
        container_name="triton",
    )


def cli_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``inferno ARGV`` in this process: its JSON on stdout (the command must exit 0)."""
    from inferno.cli import main

    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, f"inferno {argv[0]} exited {code}: {out[-2000:]}"
    result: dict[str, Any] = json.loads(out)
    return result
