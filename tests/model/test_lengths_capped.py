"""Output lengths served capped at a server's most tokens (``outTokensMax``,
:mod:`inferno.model._lengths_capped`): the family found from the served mean and CV, its nodes,
and the G2 composition they make against a simulated batch of capped lengths."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from inferno.model._accurate_inputs import input_nodes
from inferno.model._accurate_spread import EPISODE_EDGES, episodes, window_cumulants
from inferno.model._kinds import KindArrays
from inferno.model._lengths_capped import capped_nodes, capped_parameters
from inferno.model.accurate import AccuratePoints
from inferno.model.profiles import G2Profile, Kind, Tokens

M, CV = 512.0, 1.5
S2 = math.log1p(CV * CV)  # the lognormal's log-variance


def _served(lognormal: bool, cap: float, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if lognormal:
        x = rng.lognormal(math.log(M) - 0.5 * S2, math.sqrt(S2), size)
    else:
        x = rng.exponential(M, size)
    return np.minimum(x, cap)


@pytest.mark.parametrize(("lognormal", "cap"), [(True, 8192.0), (True, 2048.0), (False, 1024.0)])
def test_the_family_is_found_from_the_served_mean_and_cv(lognormal: bool, cap: float) -> None:
    y = _served(lognormal, cap, 4_000_000, 1)
    mean, scv = float(y.mean()), float(y.var() / y.mean() ** 2)
    a, b, capped = capped_parameters(np.array([scv]), np.array([cap / mean]), np.array([lognormal]))
    assert capped[0]
    if lognormal:  # X's log-mean and log-s.d. (relative to the served mean)
        assert a[0] + math.log(mean) == pytest.approx(math.log(M) - 0.5 * S2, abs=0.005)
        assert math.exp(b[0]) == pytest.approx(math.sqrt(S2), rel=0.005)
    else:  # an exponential: gamma of shape 1 and scale M
        assert math.exp(a[0]) == pytest.approx(1.0, rel=0.01)
        assert math.exp(b[0]) * mean == pytest.approx(M, rel=0.01)


@pytest.mark.parametrize("lognormal", [True, False])
def test_the_nodes_keep_the_served_mean_and_stop_at_the_cap(lognormal: bool) -> None:
    y = _served(lognormal, 2048.0, 4_000_000, 2)
    mean, scv = float(y.mean()), float(y.var() / y.mean() ** 2)
    kappa = 2048.0 / mean
    x, w = capped_nodes(np.array([scv]), np.array([lognormal]), np.array([kappa]), EPISODE_EDGES)
    o = 1.0 + x[0]
    assert float((w[0] * o).sum()) == pytest.approx(1.0, abs=1e-9)
    assert o.max() == pytest.approx(kappa, rel=1e-9)  # the tail's mass sits at the cap
    assert float((w[0] * o * o).sum()) - 1.0 == pytest.approx(scv, rel=0.03)  # bins lose a little
    # the uncapped family of the same mean and CV goes far past the cap
    xu, _ = input_nodes(np.array([scv]), np.array([lognormal]), EPISODE_EDGES)
    assert 1.0 + xu[0].max() > 1.5 * kappa


def test_no_cap_or_a_far_one_leaves_the_nodes_as_they_were() -> None:
    scv, logn = np.array([2.25, 1.0, 0.0]), np.array([True, False, False])
    plain = input_nodes(scv, logn, EPISODE_EDGES)
    for cap in (np.full(3, np.nan), np.full(3, np.inf), np.full(3, 1e6)):
        x, w = capped_nodes(scv, logn, cap, EPISODE_EDGES)
        np.testing.assert_array_equal(x, plain[0])
        np.testing.assert_array_equal(w, plain[1])


def test_capped_rows_alike_are_computed_once() -> None:
    scv = np.array([2.25, 1.0, 2.25, 2.25, 1.0])
    logn = np.array([True, False, True, True, False])
    cap = np.array([16.0, 16.0, 16.0, 8.0, np.nan])
    x, w = capped_nodes(scv, logn, cap, EPISODE_EDGES)
    for i in range(scv.size):
        xi, wi = capped_nodes(scv[i : i + 1], logn[i : i + 1], cap[i : i + 1], EPISODE_EDGES)
        np.testing.assert_array_equal(x[i], xi[0])
        np.testing.assert_array_equal(w[i], wi[0])
    np.testing.assert_array_equal(x[0], x[2])
    assert not np.array_equal(x[0], x[3])  # another cap


def test_a_row_is_judged_after_its_last_step(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no Newton step left, a row already within the tolerance at its start (an
    exponential capped at 26.9× its mean: P(X > κ) = 2e-12, just above where a cap counts)
    has converged; the last step's row was once judged before its step only."""
    from inferno.model import _lengths_capped as capped_module

    caplog.set_level(logging.DEBUG, logger="inferno.model._lengths_capped")
    monkeypatch.setattr(capped_module, "_STEPS", 0)
    *_, capped = capped_module._solve(np.array([1.0]), np.array([26.9]), np.array([False]))
    assert capped[0]
    assert "did not converge" not in caplog.text
    # and a row that needs steps, given none, is reported
    capped_module._solve(np.array([1.0]), np.array([3.0]), np.array([False]))
    assert "did not converge" in caplog.text


def test_a_cv_the_cap_cannot_serve_still_gives_lengths_within_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At a cap of twice the mean the served SCV is below 1 (half the lengths at 0, half at the
    cap); told 4, the model takes the largest (98% of it), which no lognormal reaches with a
    finite spread: the uncapped family's nodes, capped, logged (a warning the first time)."""
    caplog.set_level(logging.DEBUG, logger="inferno.model._lengths_capped")
    x, w = capped_nodes(np.array([4.0]), np.array([True]), np.array([2.0]), EPISODE_EDGES)
    o = 1.0 + x[0]
    assert np.isfinite(o).all() and o.max() <= 2.0 + 1e-9
    assert float((w[0] * o).sum()) == pytest.approx(1.0, abs=0.2)
    assert "did not converge" in caplog.text


def _params() -> KindArrays:
    one = np.ones(1)
    return KindArrays(
        Kind.G2, 12.0 * one, 0.05 * one, 5e-4 * one, 0 * one, 0 * one, 128.0 * one, M * one
    )


def _simulated_variance(
    cap: float, windows: list[int], iterations: float, seed: int
) -> dict[str, Any]:
    """The variance of the N − 1 = 7 other members' composition (γ·o/2 / D per iteration for
    o + 1 iterations, each slot refilled at once) averaged over windows, lognormal lengths of
    mean M and CV 1.5 served capped at ``cap``: (served mean, SCV, {window: variance})."""
    rng = np.random.default_rng(seed)
    sums = {w: np.zeros(int(iterations // w) + 1) for w in windows}
    drawn = []
    for _ in range(7):
        count = int(iterations / (M + 1) * 1.3) + 1000
        o = np.minimum(rng.lognormal(math.log(M) - 0.5 * S2, math.sqrt(S2), count), cap)
        drawn.append(o)
        stay = o + 1.0
        start = -rng.uniform(0.0, stay[0])
        bounds = np.concatenate([[start], start + np.cumsum(stay)])
        area = np.concatenate([[0.0], np.cumsum(5e-4 * 0.5 * o / 16.0 * stay)])
        for w in windows:
            sums[w] += np.interp(np.arange(sums[w].size) * float(w), bounds, area)
    out = {}
    for w in windows:
        avg = np.diff(sums[w]) / w
        avg = avg[avg.size // 20 :]
        out[w] = float(avg.var())
    o = np.concatenate(drawn)
    return {"mean": float(o.mean()), "scv": float(o.var() / o.mean() ** 2), "var": out}


def test_the_composition_of_capped_lengths_matches_a_simulated_batch() -> None:
    """Told the cap, the composition's variance is the simulated batch's: within 5% at a window
    of 1 and of 20 stays, and 17% low at about two stays, where a slot refilled at once is least
    like Poisson shot noise (measured: 1.00, 1.04, 1.17, 1.04, 0.97 of the model at 1, 100, 1000,
    3000, 10000 iterations; tests/model/test_accurate_episodes.py finds the same peak with gamma
    lengths). Told only the served mean and CV, the lognormal goes on past the cap and the
    variance is 2.4–7.6 times the simulated."""
    cap, windows = 2048.0, [1, 1000, 10000]
    sim = _simulated_variance(cap, windows, 2.0e7, 7)
    p = replace(_params(), out_tokens=np.array([sim["mean"]]))
    args = (p, np.array([8.0]), np.array([sim["scv"]]), np.array([True]), np.array([16.0]))
    zeros = (np.zeros(1), np.zeros(1, dtype=bool))
    told = episodes(*args, *zeros, np.array([cap / sim["mean"]]))
    untold = episodes(*args, *zeros)
    for w, bound in zip(windows, (0.05, 0.2, 0.05), strict=True):
        var, _ = window_cumulants(*told, np.array([float(w)]))
        assert sim["var"][w] / float(var[0]) == pytest.approx(1.0, abs=bound), w
        var_untold, _ = window_cumulants(*untold, np.array([float(w)]))
        assert float(var_untold[0]) > 2.0 * sim["var"][w], w


def test_the_points_take_the_cap_and_a_far_one_changes_nothing() -> None:
    profile, tokens = G2Profile(12.0, 0.05, 5e-4, 32), Tokens(128, M)

    def points(out_max: float | None) -> AccuratePoints:
        return AccuratePoints.of_accurate(
            [profile], [tokens], out_cv=[1.4], out_dist=["lognormal"], out_max=[out_max],
            batch=[32],
        )  # fmt: skip

    lam = np.array([0.7 * float(points(None).mu_n[0])])
    wait = {cap: float(points(cap).metrics(lam).wait[0]) for cap in (None, 1e7, 8192.0, 4096.0)}
    assert wait[1e7] == wait[None]
    # no lengths past the cap to slow the batch for long (measured 886, 88 and 49 ms)
    assert wait[4096.0] < wait[8192.0] < 0.5 * wait[None]


def test_a_state_solved_again_is_remembered() -> None:
    """The latency's quantile search evaluates one state's tail many times: the same rows are
    solved once, and what is kept cannot be changed by a caller."""
    args = (np.array([2.0, 1.5]), np.array([16.0, 4.0]), np.array([True, False]))
    first = capped_parameters(*args)
    again = capped_parameters(*(a.copy() for a in args))
    assert all(x is y for x, y in zip(first, again, strict=True))
    with pytest.raises(ValueError):
        first[0][0] = 0.0
