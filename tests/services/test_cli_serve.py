"""The service subcommands: start-up errors, and the all-in-one wiring (served in-process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from inferno.cli import main, serve
from inferno.k8s import operator

from . import AUTH, INVOKE, SAMPLE, sample_cluster


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # serve sets KUBECONFIG from --kubeconfig: monkeypatch restores the original afterwards
    monkeypatch.delenv("KUBECONFIG", raising=False)
    for name in ("INFERNO_CONTROL_PERIOD", "CONTROLLER_PORT", "INFERNO_DATA_PATH"):
        monkeypatch.delenv(name, raising=False)


def test_a_bad_setting_stops_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFERNO_CONTROL_PERIOD", "-1")
    assert main(["optimizer"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "inferno: error: INFERNO_CONTROL_PERIOD=-1.0: expected 0 (only on POST /invoke) "
        "or 0.01 to 86400 seconds (>= 0)\n"
    )


def test_a_bad_container_variable_name_stops_the_actuator_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the name the actuator would patch the decided batching delay into (issue 12)
    monkeypatch.setenv("INFERNO_QUEUE_DELAY_ENV", "MAX-DELAY")
    assert main(["actuator"]) == 2
    assert capsys.readouterr().err == (
        "inferno: error: INFERNO_QUEUE_DELAY_ENV='MAX-DELAY': expected a container variable name "
        "(letters, digits and _, not starting with a digit)\n"
    )


@pytest.mark.parametrize("command", ["collector", "actuator", "controller"])
def test_no_cluster_credentials_stop_with_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--kubeconfig", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inferno: error: no cluster credentials")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "text", ["clusters: [\n  - {name: x\n", "- just\n- a list\n", "clusters: 5\n"]
)
@pytest.mark.parametrize("command", ["collector", "run"])
def test_a_kubeconfig_that_is_not_one_is_named_with_exit_2(
    command: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    extra = ["--all-in-one", "--data-path", str(SAMPLE)] if command == "run" else []
    assert main([command, *extra, "--kubeconfig", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"inferno: error: kubeconfig {path} is not a usable kubeconfig: ")
    assert err.count("\n") == 1  # one line, no traceback
    # a missing file is named too
    assert main([command, *extra, "--kubeconfig", str(tmp_path / "missing")]) == 2
    assert str(tmp_path / "missing") in capsys.readouterr().err


def test_all_in_one_with_a_wrong_data_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--all-in-one", "--data-path", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "static data directory not found" in err
    assert err.count("\n") == 1


def test_run_requires_all_in_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run"])
    assert exc.value.code == 2


class StubOperator:
    stopped = 0
    alive = True
    error = None

    def stop(self, timeout: float = 15.0) -> bool:
        self.stopped += 1
        return True


def test_all_in_one_serves_the_controller_over_in_process_services(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = sample_cluster()
    served: dict[str, Any] = {}
    stub = StubOperator()

    def fake_serve(
        app: FastAPI, host: str, port: int, on_shutdown: Callable[[], object] | None = None
    ) -> int:
        async def invoke() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=transport, base_url="http://test", headers=AUTH
                ) as http,
            ):
                served["metrics"] = (await http.get("/metrics")).text
                return await http.post("/invoke")

        served.update(host=host, port=port, response=asyncio.run(invoke()))
        assert on_shutdown is not None
        on_shutdown()  # what the server does once the app has shut down
        return 0

    monkeypatch.setenv("INFERNO_INVOKE_TOKEN", INVOKE)
    monkeypatch.setenv("INFERNO_LEADER_ELECTION", "false")
    monkeypatch.setattr(serve, "_serve", fake_serve)
    monkeypatch.setattr(serve, "_cluster", lambda args: cluster)
    monkeypatch.setattr(operator, "start_operator_thread", lambda *a, **kw: stub)
    code = main(
        [
            "run",
            "--all-in-one",
            "--data-path",
            str(SAMPLE),
            "--port",
            "8123",
            "--host",
            "127.0.0.1",
            "--period",
            "0",
        ]
    )
    assert code == 0
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    response = served["response"]
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    assert {name for _, _, name, _ in cluster.patches} == {"llama-7b", "granite-13b", "mistral-7b"}
    assert stub.stopped >= 1
    # one registry for the four apps, with the process collectors
    for name in ("inferno_controller_", "inferno_collector_", "inferno_optimizer_", "process_"):
        assert name in served["metrics"]
