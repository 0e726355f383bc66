"""λ* where a metric falls again as the rate grows (``inferno.model.sizing.size``): the first
crossing, so every rate below λ* meets the targets — a replica's share of the demand is anywhere
below it."""

from __future__ import annotations

import numpy as np
import pytest

from inferno.emulator import Fixed, LogNormal, Poisson, ServerSpec, Simulation
from inferno.model import sizing
from inferno.model.accurate import AccuratePoints
from inferno.model.points import OperatingPoints
from inferno.model.profiles import G1Profile, G2Profile, Tokens
from inferno.model.sizing import SloArrays, meets, size
from inferno.units import MS_PER_MIN

#: bench/accurate_joins.py's G1 server: a prefill of a few 1826-token prompts (~14 ms) is
#: shorter than a decode of a large batch (~60 ms at b = 200), so the more load, the more of
#: the iterations are cheap prefills; its ITL rises to ~22.5 ms at ρ = 0.6 and falls to ~19 ms
#: near the top, in the emulator as in the model
G1_CHEAP = G1Profile(6.29, 0.27, 12.58, 0.00054, 256, 1.0)
TOKENS = Tokens(1826, 80)
ITL_TARGET = 21.0


def _points() -> AccuratePoints:
    return AccuratePoints.of_accurate(
        [G1_CHEAP], [TOKENS], out_cv=[0.5], out_dist=["lognormal"], batch=[256], max_queue=[768]
    )


def _slo(itl: float) -> SloArrays:
    nan = np.full(1, np.nan)
    return SloArrays(np.full(1, itl), nan, nan, nan, nan, nan, nan, nan)


def _emulated_itl(lam: float) -> float:
    spec = ServerSpec(
        G1_CHEAP,
        Poisson(lam * MS_PER_MIN),
        batch_size=256,
        max_queue=512,
        service="deterministic",
        input_tokens=Fixed(1826),
        output_tokens=LogNormal(80.0, 0.5),
    )
    sim = Simulation({"s": spec}, seed=5)
    t_end = 10_000 / lam
    sim.run_until(1.5 * t_end)
    rec = sim.records("s")
    lo, hi = np.searchsorted(rec.arrival, [0.05 * t_end, t_end])
    ok = np.isfinite(rec.completion[lo:hi])
    first, done = rec.first_token[lo:hi][ok], rec.completion[lo:hi][ok]
    return float((done - first).sum() / (rec.output_tokens[lo:hi][ok] - 1.0).sum())


def test_lambda_star_is_the_first_rate_a_target_is_missed() -> None:
    pts, slo = _points(), _slo(ITL_TARGET)
    assert pts.may_fall().tolist() == [True]
    top = sizing.HIGH_FRACTION * float(pts.mu_n[0])
    # searched between the ends alone, the target is met at the top: λ* = the top ...
    ends = sizing._size(pts, slo)
    assert float(ends.rate[0]) == pytest.approx(top) and ends.bound[0] == "max-rate"
    # ... though a replica at 0.6 of it misses, in the model and in the emulator
    assert not meets(pts, slo, np.array([0.6 * top]))[0]
    assert _emulated_itl(0.6 * top) > ITL_TARGET
    # the first crossing: every rate below λ* meets the target, and λ* is where it is first missed
    sized = size(pts, slo)
    lam = float(sized.rate[0])
    assert sized.feasible[0] and sized.bound[0] == "itl" and lam < 0.5 * top
    grid = np.linspace(sizing.LOW_FRACTION * float(pts.mu_1[0]), lam, 200)
    assert meets(pts.subset(np.zeros(grid.size, dtype=np.intp)), _slo_n(grid.size), grid).all()
    assert not meets(pts, slo, np.array([lam * (1.0 + 1e-4)]))[0]


def _slo_n(n: int) -> SloArrays:
    nan = np.full(n, np.nan)
    return SloArrays(np.full(n, ITL_TARGET), nan, nan, nan, nan, nan, nan, nan)


def test_a_target_missed_at_every_rung_down_to_the_lowest_rate_is_infeasible() -> None:
    """Below the hump the ITL is lower still, so a target under it is met only at the lowest
    rates; one under even those is infeasible, not a λ* somewhere above the hump."""
    pts = _points()
    low = sizing.LOW_FRACTION * float(pts.mu_1[0])
    floor = float(pts.itl(np.array([low]))[0])
    assert not size(pts, _slo(0.99 * floor)).feasible[0]


def test_points_whose_metrics_only_grow_are_not_checked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chain, and accurate rows whose prefill is never shorter than a decode (G2 here):
    no rung is evaluated."""
    calls: list[int] = []
    real = sizing._first_crossing

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sizing, "_first_crossing", counted)
    g2 = G2Profile(12.0, 0.05, 5e-4, 32)
    acc = AccuratePoints.of_accurate([g2], [Tokens(2048, 256)], out_cv=[0.0], batch=[32])
    chain = OperatingPoints.of([G1_CHEAP], [TOKENS], batch=[256])
    assert acc.may_fall().tolist() == [False] and chain.may_fall().tolist() == [False]
    size(acc, _slo(40.0))
    size(chain, _slo(40.0))
    assert calls == []


def test_a_point_searched_again_reports_its_bound_whole_and_each_targets_own_rate() -> None:
    """The bound of a point searched again is its full name however short the others' were
    (a TPS class: ``tps`` before, ``latency`` after), and a target met at the ceiling keeps its
    own λ* from the search before (TTFT here: met at 0.9 of the top, not at the rung)."""
    pts = _points()
    nan = np.full(1, np.nan)
    throughput = SloArrays(nan, nan, nan, np.full(1, 1700.0), np.full(1, 1000.0), nan, nan, nan)
    assert sizing._size(pts, throughput).bound.tolist() == ["tps"]
    assert size(pts, throughput).bound.tolist() == ["latency"]
    both = SloArrays(np.full(1, ITL_TARGET), np.full(1, 40.0), nan, nan, nan, nan, nan, nan)
    before, after = sizing._size(pts, both), size(pts, both)
    assert after.bound.tolist() == ["itl"] and float(after.rate[0]) < 0.5 * float(before.rate[0])
    assert after.detail["ttft"][0] == before.detail["ttft"][0]
    assert after.detail["itl"][0] == after.rate[0]
