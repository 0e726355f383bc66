"""Least-squares profile fits, model-data rows, and the profile/load CLIs' input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inferno.cli import main
from inferno.data import load_system
from inferno.model._kinds import KindArrays, _g2_decode, _g2_prefill
from inferno.model.profiles import G2Profile, Kind
from inferno.profiling import (
    BatchPoint,
    FitError,
    LlmPoint,
    batch_entry,
    fit_batch,
    fit_g2,
    merge_entry,
)
from inferno.profiling.fit import g2_design

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"


def test_batch_fit_recovers_parameters_with_honest_errors() -> None:
    rng = np.random.default_rng(0)
    alpha, beta = 12.0, 3.5
    points = []
    for b in (1, 2, 4, 8, 16, 32):
        n = 30
        times = alpha + beta * b + rng.normal(0, 1.0, n)
        points.append(BatchPoint(b, float(times.mean()), n))
    fit = fit_batch(points)
    assert fit.ok
    a, bt = fit.fit.value("alpha"), fit.fit.value("beta")
    sa, sb = fit.fit.stderr
    assert abs(a - alpha) < 4 * sa and abs(bt - beta) < 4 * sb
    # the mean of 30 draws has sd 1/√30: the standard errors are about that size, not 0
    assert 0.02 < sa < 0.5 and 0.001 < sb < 0.05
    assert fit.fit.r2 > 0.999


def test_batch_fit_needs_two_sizes() -> None:
    with pytest.raises(FitError, match="two batch sizes"):
        fit_batch([BatchPoint(4, 10.0, 5), BatchPoint(4, 11.0, 5)])


def test_negative_parameters_are_reported_not_clipped() -> None:
    fit = fit_batch([BatchPoint(1, 10.0), BatchPoint(2, 9.0), BatchPoint(4, 7.0)])
    assert not fit.ok and "beta" in fit.problems[0]
    assert fit.fit.value("beta") < 0


def _g2_arrays(alpha: float, beta: float, gamma: float, i: float, o: float) -> KindArrays:
    one = np.array
    return KindArrays(
        Kind.G2, one([alpha]), one([beta]), one([gamma]), one([0.0]), one([0.0]), one([i]), one([o])
    )


def test_g2_design_rows_match_the_model_formulas() -> None:
    theta = np.array([7.0, 0.02, 0.0004])
    for b, i, o in [(1, 128, 64), (8, 512, 256), (32, 2048, 16)]:
        itl, ttft = g2_design(np.array([b], float), np.array([i], float), np.array([o], float))
        p = _g2_arrays(theta[0], theta[1], theta[2], i, o)
        bb = np.array([float(b)])
        assert itl[0] @ theta == pytest.approx(float(_g2_decode(p, bb)[0]))
        assert ttft[0] @ theta == pytest.approx(float(_g2_prefill(p, bb)[0]))


def test_g2_fit_recovers_alpha_beta_gamma() -> None:
    rng = np.random.default_rng(1)
    theta = np.array([6.0, 0.015, 0.0003])
    points = []
    for b in (1, 4, 16, 64):
        for i, o in ((128, 128), (1024, 256), (4096, 64)):
            itl, ttft = g2_design(np.array([b], float), np.array([i], float), np.array([o], float))
            points.append(
                LlmPoint(
                    b,
                    i,
                    o,
                    float(itl[0] @ theta * (1 + rng.normal(0, 0.01))),
                    float(ttft[0] @ theta * (1 + rng.normal(0, 0.01))),
                )
            )
    fit = fit_g2(points)
    assert fit.ok
    for name, true in zip(("alpha", "beta", "gamma"), theta, strict=True):
        assert fit.fit.value(name) == pytest.approx(true, rel=0.1)


def test_merge_entry_replaces_or_appends() -> None:
    fit = fit_batch([BatchPoint(1, 12.0), BatchPoint(2, 14.0)])
    row = batch_entry("m", "CPU", fit, max_batch_size=8, queue_delay_ms=0.5)
    assert row["alpha"] == pytest.approx(10.0) and row["queueDelayMs"] == 0.5
    doc = {"models": [{"name": "m", "acc": "CPU", "alpha": 1}, {"name": "m", "acc": "A100"}]}
    merged, replaced = merge_entry(doc, row)
    assert replaced and merged["models"][0] == row and len(merged["models"]) == 2
    merged, replaced = merge_entry({"models": []}, row)
    assert not replaced and merged["models"] == [row]


def test_profile_cli_fits_observations_and_writes_a_loadable_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    theta = np.array([5.0, 0.01, 0.0002])
    lines = ["batch,in_tokens,out_tokens,itl_ms,ttft_ms"]
    for b in (1, 8, 32):
        for i, o in ((256, 128), (2048, 64)):
            itl, ttft = g2_design(np.array([b], float), np.array([i], float), np.array([o], float))
            lines.append(f"{b},{i},{o},{itl[0] @ theta:.6f},{ttft[0] @ theta:.6f}")
    csv = tmp_path / "obs.csv"
    csv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "row.json"
    system_dir = tmp_path / "system"
    shutil.copytree(SAMPLE, system_dir)
    code = main(
        [
            "profile",
            "--observations",
            str(csv),
            "--name",
            "llama",
            "--acc",
            "A100",
            "--out",
            str(out),
            "--merge",
            str(system_dir / "model-data.json"),
        ]
    )
    assert code == 0
    row = json.loads(out.read_text())
    assert row["kind"] == "G2" and row["maxBatchSize"] == 32
    assert row["perfParms"]["alpha"] == pytest.approx(5.0, rel=1e-3)
    assert "R²" in capsys.readouterr().out
    # the merged file is valid model data, with the new profile in it
    system = load_system(system_dir)
    [prof] = [p.profile for p in system.profiles if (p.model, p.accelerator) == ("llama", "A100")]
    assert isinstance(prof, G2Profile) and prof.alpha == pytest.approx(5.0, rel=1e-3)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("batch,in_tokens,out_tokens,itl_ms\n1,1,1,1\n", "missing column"),
        ("batch,in_tokens,out_tokens,itl_ms,ttft_ms\n1,10,5,abc,\n", "line 2, column itl_ms"),
        ("batch,in_tokens,out_tokens,itl_ms,ttft_ms\n1,10,5,,\n", "neither itl_ms nor ttft_ms"),
        ("batch,in_tokens,out_tokens,itl_ms,ttft_ms\n1,10,5,-3,\n", "from 0 to"),
        # beyond the data's limits (before: accepted, then "measurements must be finite
        # numbers" from the fit, naming no line): named by line and column
        ("batch,in_tokens,out_tokens,itl_ms,ttft_ms\n1,1e308,5,3,\n", "line 2, column in_tokens"),
        ("batch,in_tokens,out_tokens,itl_ms,ttft_ms\n1e9,10,5,3,\n", "line 2, column batch"),
        ("batch,in_tokens,out_tokens,itl_ms,ttft_ms\n1,10,5,3,4\n", "cannot determine"),
    ],
)
def test_profile_cli_bad_observations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, match: str
) -> None:
    csv = tmp_path / "obs.csv"
    csv.write_text(content)
    assert main(["profile", "--observations", str(csv), "--name", "m"]) == 2
    err = capsys.readouterr().err
    assert "obs.csv" in err and match in err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["load", "127.0.0.1:1", "-m", "m=-3"], "rate must be a finite number ≥ 0"),
        (["load", "127.0.0.1:1", "-m", "m=abc"], "is not a number"),
        (["load", "127.0.0.1:1", "-m", "m"], "give a rate"),
        (["load", "127.0.0.1:1", "-m", "m=1", "-d", "0"], "--duration"),
        (["load", "127.0.0.1:1", "-m", "m=1", "--shape", "x"], "--shape"),
        (["load", "127.0.0.1:1", "-m", "m=1", "--header", "novalue"], "--header"),
        (["profile"], "give a Triton URL and --model"),
        (["profile", "127.0.0.1:1", "-m", "m", "--batch-sizes", "1,x"], "--batch-sizes"),
        (["profile", "127.0.0.1:1", "-m", "m", "--concurrency", "0"], "--concurrency"),
    ],
)
def test_cli_input_errors(argv: list[str], match: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_load_against_nothing_fails_with_the_cause(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["load", f"127.0.0.1:{port}", "-m", "m=1", "-d", "1", "-q"]) == 1
    assert f"cannot reach Triton at http://127.0.0.1:{port}" in capsys.readouterr().err


def test_load_trace_file_errors_name_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    traces = tmp_path / "t.yaml"
    traces.write_text("traces:\n  other: {kind: poisson, rate: 60}\n")
    assert main(["load", "127.0.0.1:1", "-m", "m", "--trace", str(traces)]) == 2
    assert "no trace for 'm'" in capsys.readouterr().err
    traces.write_text("traces:\n  m: {kind: steps, steps: [[0, -1]]}\n")
    assert main(["load", "127.0.0.1:1", "-m", "m", "--trace", str(traces)]) == 2
    assert "$.traces.m.steps[0][1]" in capsys.readouterr().err


def test_the_locust_example_compiles() -> None:
    path = Path(__file__).resolve().parents[2] / "examples" / "locustfile.py"
    compile(path.read_text(), str(path), "exec")
