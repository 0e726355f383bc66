"""The model against Inferno's published numbers: queue-analysis and the G3 primitives table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inferno.model import _kinds
from inferno.model.analyzer import analyze_rate, analyze_targets
from inferno.model.points import OperatingPoints
from inferno.model.profiles import G0Profile, G2Profile, G3Profile, Kind, Tokens
from inferno.model.sizing import SloArrays, size
from inferno.units import MS_PER_MIN

RTOL = 1e-3


def _load(reference_dir: Path, name: str) -> dict[str, float]:
    data: dict[str, float] = json.loads((reference_dir / "queue-analysis" / name).read_text())
    return data


def _problem(reference_dir: Path) -> tuple[G2Profile, Tokens, int, dict[str, float]]:
    p = _load(reference_dir, "problem-data.json")
    profile = G2Profile(p["alpha"], p["beta"], p["gamma"], int(p["maxBatchSize"]))
    return profile, Tokens(p["AvgInputTokens"], p["AvgOutputTokens"]), int(p["maxQueueSize"]), p


@pytest.mark.parametrize(
    ("field", "attr"),
    [
        ("throughput", "throughput"),
        ("avgRespTime", "avg_resp_time"),
        ("avgWaitTime", "avg_wait_time"),
        ("avgNumInServ", "avg_num_in_serv"),
        ("avgTTFT", "avg_ttft"),
        ("avgITL", "avg_itl"),
        ("maxRPS", "max_rps"),
    ],
)
def test_queue_analysis_solve(reference_dir: Path, field: str, attr: str) -> None:
    profile, tokens, queue, p = _problem(reference_dir)
    expected = _load(reference_dir, "solution-solve.json")
    got = analyze_rate(profile, tokens, p["RPS"], queue)
    assert getattr(got, attr) == pytest.approx(expected[field], rel=RTOL)


@pytest.mark.parametrize(
    ("field", "attr"),
    [
        ("throughput", "throughput"),
        ("avgRespTime", "avg_resp_time"),
        ("avgWaitTime", "avg_wait_time"),
        ("avgNumInServ", "avg_num_in_serv"),
        ("avgTTFT", "avg_ttft"),
        ("avgITL", "avg_itl"),
        ("maxRPS", "max_rps"),
        ("RPSTargetTTFT", "rps_target_ttft"),
        ("RPSTargetITL", "rps_target_itl"),
    ],
)
def test_queue_analysis_target(reference_dir: Path, field: str, attr: str) -> None:
    profile, tokens, queue, p = _problem(reference_dir)
    expected = _load(reference_dir, "solution-target.json")
    got = analyze_targets(
        profile, tokens, ttft=p["targetTTFT"], itl=p["targetITL"], max_queue=queue
    )
    assert got.feasible
    assert got.bound == "itl"  # the ITL rate (2.874) is below the TTFT rate (2.911)
    assert getattr(got, attr) == pytest.approx(expected[field], rel=RTOL)


# docs/model.md (the kinds G1–G3): B, α, β, γ, in, out -> nc, iteration time α+Bδ, prefill, itl, τ
G3_TABLE = [
    (1, 8, 0.033, 0.000333, 256, 1024, 1, 8.296954, 16.533249, 8.288911, 8504.378),
    (40, 8, 0.033, 0.000333, 256, 1024, 1, 19.878149, 28.114445, 19.870108, 20375.104),
    (80, 8, 0.033, 0.000333, 256, 1024, 1, 31.756298, 39.99259, 31.748257, 32550.205),
    (128, 16, 0.067, 0.000667, 256, 1024, 1, 92.278305, 109.005135, 92.26197, 94585.266),
]


@pytest.mark.parametrize("row", G3_TABLE)
def test_g3_primitives(row: tuple[float, ...]) -> None:
    b, alpha, beta, gamma, n_in, n_out, nc_exp, it_exp, pre_exp, itl_exp, tau_exp = row
    one = np.array([1.0])
    params = _kinds.KindArrays(
        Kind.G3, alpha * one, beta * one, gamma * one, 0 * one, 8192 * one, n_in * one, n_out * one
    )
    bb = np.array([float(b)])
    nc = _kinds.g3_chunks(params, bb)
    assert nc[0] == nc_exp
    assert _kinds.g3_iteration(params, bb, nc)[0] == pytest.approx(it_exp, rel=RTOL)
    assert _kinds.g3_prefill(params, bb, nc)[0] == pytest.approx(pre_exp, rel=RTOL)
    assert _kinds.g3_itl(params, bb, nc)[0] == pytest.approx(itl_exp, rel=RTOL)
    assert _kinds.tau(params, bb[None, :])[0, 0] == pytest.approx(tau_exp, rel=RTOL)


def test_g3_chunks_grow_with_a_small_token_budget() -> None:
    # L = 6000 input tokens, M = 8192: B_1 = ⌊(1+m)(8192−6000)/(6000+m)⌋ is small, so large
    # batches need more than one prefill chunk
    one = np.array([1.0])
    params = _kinds.KindArrays(
        Kind.G3, one, one * 0.01, one * 1e-4, 0 * one, 8192 * one, 6000 * one, 100 * one
    )
    nc = _kinds.g3_chunks(params, np.array([[1.0, 2.0, 50.0, 200.0]]))
    assert nc[0, 0] == 1
    assert list(nc[0]) == sorted(nc[0])
    assert nc[0, -1] > 1
    # the profile evaluates end to end
    pts = OperatingPoints.of([G3Profile(8, 0.033, 0.000333, 64)], [Tokens(6000, 100)])
    m = pts.metrics(np.array([0.5 * pts.mu_n[0]]))
    assert np.isfinite(m.itl).all() and np.isfinite(m.ttft).all()


def test_worked_example_granite_13b_on_mi300x() -> None:
    """Maths doc §6: α 7.77, β 0.15, maxBatchSize 76 @ 512, 1024 tokens, ITL 40, TTW 500."""
    pts = OperatingPoints.of([G0Profile(7.77, 0.15, 76, 512)], [Tokens(0, 1024)])
    assert pts.n_batch[0] == 38
    assert pts.n_max[0] == 380
    slo = SloArrays.empty(1)
    slo.itl[0], slo.ttw[0], slo.ttw_quantile[0] = 40.0, 500.0, 0.95
    sizing = size(pts, slo)
    assert sizing.rate[0] * MS_PER_MIN == pytest.approx(134.25, rel=1e-4)
    assert sizing.bound[0] == "ttw"
    m = pts.metrics(np.array([120 / MS_PER_MIN]))
    assert m.itl[0] == pytest.approx(11.42869, rel=RTOL)
    assert m.wait[0] == pytest.approx(19.45996, rel=RTOL)
