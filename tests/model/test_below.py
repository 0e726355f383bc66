"""``inferno.model.sizing.below``: whether a point's λ* is surely under a rate, by one evaluation
instead of a search (what lets the lazy sizing leave a candidate out)."""

from __future__ import annotations

import numpy as np
import pytest

from inferno.model.accurate import AccuratePoints
from inferno.model.points import OperatingPoints
from inferno.model.profiles import G1Profile, G2Profile, Tokens
from inferno.model.sizing import HIGH_FRACTION, LOW_FRACTION, REACH_MARGIN, SloArrays, below, size

G2 = G2Profile(10.0, 0.02, 2e-5, 64, 512)
#: tests/model/test_first_crossing.py's G1 server: its ITL rises and falls again with the rate
G1_CHEAP = G1Profile(6.29, 0.27, 12.58, 0.00054, 256, 1.0)


def _g2(c: int) -> AccuratePoints:
    return AccuratePoints.of_accurate(
        [G2] * c, [Tokens(256, 256)] * c, out_cv=[1.0] * c, max_queue=[640] * c
    )


def _slo(c: int, *, ttft: float, itl: float = np.nan, quantile: float = np.nan) -> SloArrays:
    nan = np.full(c, np.nan)
    return SloArrays(
        np.full(c, itl), np.full(c, ttft), nan, nan, nan, np.full(c, quantile), nan, nan
    )


def test_a_point_is_below_a_rate_exactly_when_its_searched_lambda_star_is() -> None:
    pts, slo = _g2(1), _slo(1, ttft=150.0, itl=40.0)
    sized = size(pts, slo)
    lam = float(sized.rate[0])
    assert sized.bound.tolist() == ["ttft"]  # a target binds, not the top
    rates = lam * np.array([0.5, 0.99, 1.0, 1.0 + 0.5 * REACH_MARGIN, 1.01, 2.0])
    got = below(_g2(rates.size), _slo(rates.size, ttft=150.0, itl=40.0), rates)
    # at λ* and within the margin above it: not ruled out (the search's rounding); above: out
    assert got.tolist() == [False, False, False, False, True, True]


def test_above_the_top_of_the_search_without_an_evaluation() -> None:
    """Targets met everywhere: only the top rules out, by more than the margin (μ(N) of a row
    built alone and in a whole build can differ in its last bit)."""
    pts = _g2(3)
    top = HIGH_FRACTION * pts.mu_n
    rates = np.array([0.99, 1.0 + 0.5 * REACH_MARGIN, 1.01]) * top
    assert below(pts, _slo(3, ttft=1e9), rates).tolist() == [False, False, True]


def test_a_rate_under_the_bottom_is_judged_at_the_bottom() -> None:
    """Missed at the bottom of the search: the point is infeasible (no λ*), so it is ruled out
    whatever rate was asked; met there, a rate below it is never ruled out."""
    pts = _g2(2)
    tiny = 0.1 * LOW_FRACTION * pts.mu_1
    assert below(pts, _slo(2, ttft=1e-3), tiny).tolist() == [True, True]
    assert not size(pts, _slo(2, ttft=1e-3)).feasible.any()
    assert below(pts, _slo(2, ttft=1e9), tiny).tolist() == [False, False]


@pytest.mark.parametrize("rate", [np.nan, 0.0, -1.0, np.inf])
def test_a_rate_that_is_nan_or_not_positive_says_no_and_inf_yes(rate: float) -> None:
    assert below(_g2(1), _slo(1, ttft=1e-3), np.array([rate])).tolist() == [rate == np.inf]


def test_a_quantile_target_is_never_judged_by_one_evaluation() -> None:
    """A TTFT quantile can sit on its target over a range of rates: only the top rules out."""
    pts = _g2(1)
    lam = 0.5 * float(pts.mu_n[0])
    assert below(pts, _slo(1, ttft=1e-3), np.array([lam])).tolist() == [True]
    assert below(pts, _slo(1, ttft=1e-3, quantile=0.9), np.array([lam])).tolist() == [False]


def test_a_point_whose_metrics_may_fall_is_never_judged_by_one_evaluation() -> None:
    """The G1 server of tests/model/test_first_crossing.py misses a 21 ms ITL at 0.6 of its
    capacity and meets it again near the top: a miss there says nothing of a higher rate."""
    pts = AccuratePoints.of_accurate(
        [G1_CHEAP], [Tokens(1826, 80)], out_cv=[0.5], out_dist=["lognormal"], batch=[256]
    )
    assert pts.may_fall().tolist() == [True]
    at = np.array([0.6 * float(pts.mu_n[0])])
    slo = _slo(1, ttft=np.nan, itl=21.0)
    assert pts.metrics(at).itl[0] > 21.0  # missed there
    assert below(pts, slo, at).tolist() == [False]


def test_the_chain_is_judged_too() -> None:
    """The Inferno-compatible chain's metrics all grow with the rate: any point may be judged."""
    pts = OperatingPoints.of([G2], [Tokens(256, 256)])
    assert not pts.may_fall().any()
    lam = float(size(pts, _slo(1, ttft=400.0)).rate[0])
    got = below(
        OperatingPoints.of([G2] * 2, [Tokens(256, 256)] * 2),
        _slo(2, ttft=400.0),
        np.array([0.9 * lam, 1.1 * lam]),
    )
    assert got.tolist() == [False, True]
