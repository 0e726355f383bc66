"""``inferno load --users``: a closed loop of users against a real Triton whose batch of b takes
α + β·b ms, checked with Little's law on the whole loop and against the known service time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferno.cli import main

from .conftest import ALPHA, BETA, Stack

pytestmark = pytest.mark.slow

USERS = 4
THINK_S = 0.1


def test_closed_loop_obeys_littles_law(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "closed.json"
    argv = ["load", stack.triton_http, "-m", "sleep", "--users", str(USERS)]
    argv += ["--think", str(THINK_S), "-d", "12", "-q", "--report", "both", "--json", str(out)]
    code = main(argv)
    printed = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["mode"] == "closed" and doc["users"] == USERS
    [model] = doc["models"]
    siege = model["siege"]
    rate = siege["transactionRate"]
    response_s = siege["responseTimeMs"] / 1000.0
    print(
        f"\n{USERS} users, think {THINK_S} s: {siege['transactions']} transactions, "
        f"{rate:.2f} trans/s, response {siege['responseTimeMs']:.1f} ms, "
        f"concurrency {siege['concurrency']:.2f}, availability {siege['availability']} %, "
        f"rate × (R + Z) = {rate * (response_s + THINK_S):.3f} "
        f"(measured think {doc['think']['measuredMean']:.4f} s)"
    )
    assert siege["availability"] == 100.0 and siege["failedTransactions"] == 0
    # Little's law on the loop: users = transaction rate × (response time + think time)
    assert rate * (response_s + THINK_S) == pytest.approx(USERS, rel=0.10)
    # siege's concurrency: the mean number in flight, at most the users
    assert siege["concurrency"] == pytest.approx(rate * response_s, rel=1e-6)
    assert siege["concurrency"] < USERS
    # nothing is answered faster than one execution of one item
    assert siege["shortestTransactionMs"] >= ALPHA + BETA
    assert "Availability:" in printed and "100.00 %" in printed and "closed loop" in printed


def test_closed_loop_repetitions_over_grpc(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "reps.json"
    argv = ["load", stack.triton_grpc, "-m", "sleep", "-u", "3", "-r", "5", "--think", "exp:0.02"]
    code = main([*argv, "-q", "--json", str(out)])
    [model] = json.loads(out.read_text())["models"]
    assert code == 0 and model["sent"] == model["ok"] == 15
    assert model["siege"]["availability"] == 100.0


def test_open_loop_siege_report(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "open.json"
    argv = ["load", stack.triton_http, "-m", "sleep=10", "-d", "3", "-q", "--report", "siege"]
    code = main([*argv, "--json", str(out)])
    printed = capsys.readouterr().out
    [model] = json.loads(out.read_text())["models"]
    siege = model["siege"]
    assert code == 0 and siege["transactions"] == model["ok"] == model["sent"] > 10
    assert siege["availability"] == 100.0
    assert siege["responseTimeMs"] == pytest.approx(model["meanMs"])
    # one FP32 item per request: 4 bytes each
    assert siege["dataTransferredMB"] == pytest.approx(4 * model["ok"] / 2**20)
    assert "Transaction rate:" in printed and "max lag ms" not in printed
