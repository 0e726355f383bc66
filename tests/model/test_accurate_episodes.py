"""G2's composition as shot noise (:func:`inferno.model._accurate_spread.episodes` and
``window_cumulants``) against a simulated batch, and the translated gamma's nodes
(:func:`inferno.model._accurate_composition.skewed_nodes`)."""

from __future__ import annotations

import numpy as np
import pytest

from inferno.model import _accurate_composition as composition_module
from inferno.model._accurate_composition import skewed_nodes
from inferno.model._accurate_spread import episodes, window_cumulants
from inferno.model._kinds import KindArrays
from inferno.model.profiles import Kind

F = np.ndarray
M, N, D, GAMMA = 512.0, 8, 16.0, 5e-4


def _params(out: float) -> KindArrays:
    one = np.ones(1)
    return KindArrays(
        Kind.G2, 12.0 * one, 0.05 * one, GAMMA * one, 0 * one, 0 * one, 128.0 * one, out * one
    )


def _episodes(cv: float, lognormal: bool) -> tuple[F, F, F, F, F]:
    return episodes(
        _params(M),
        np.array([float(N)]),
        np.array([cv * cv]),
        np.array([lognormal]),
        np.array([D]),
        np.zeros(1),
        np.zeros(1, dtype=bool),
    )


def _model(cv: float, lognormal: bool, window: float) -> tuple[float, float]:
    var, k3 = window_cumulants(*_episodes(cv, lognormal), np.array([window]))
    return float(var[0]), float(k3[0])


def _simulated(cv: float, windows: list[int], iterations: float, seed: int) -> dict[int, F]:
    """The N − 1 other members of a full batch, each slot refilled when its member leaves:
    γ·o/2 / D per iteration for o + 1 iterations, o gamma of mean M and CV ``cv``; the sum
    averaged over consecutive windows of each size (the first 5% left out)."""
    rng = np.random.default_rng(seed)
    shape = 1.0 / (cv * cv)
    sums = {w: np.zeros(int(iterations // w) + 1) for w in windows}
    for _ in range(N - 1):
        count = int(iterations / (M + 1) * 1.3) + 1000
        o = rng.gamma(shape, M / shape, count)
        stay = o + 1.0
        assert stay.sum() > 1.1 * iterations
        start = -rng.uniform(0.0, stay[0])
        bounds = np.concatenate([[start], start + np.cumsum(stay)])
        area = np.concatenate([[0.0], np.cumsum(GAMMA * 0.5 * o / D * stay)])
        for w in windows:
            sums[w] += np.interp(np.arange(sums[w].size) * float(w), bounds, area)
    out = {}
    for w in windows:
        avg = np.diff(sums[w]) / w
        out[w] = avg[avg.size // 20 :]
    return out


@pytest.mark.parametrize(("cv", "seed"), [(1.0, 5), (0.5, 6)])
def test_the_window_average_matches_a_simulated_batch(cv: float, seed: int) -> None:
    windows = [1, 100, 1000]
    sim = _simulated(cv, windows, 2.0e7, seed)
    for w in windows:
        c = sim[w] - sim[w].mean()
        var, k3 = _model(cv, False, float(w))
        # a slot refilled at once is not quite Poisson shot noise, whose cumulants the model
        # takes: the variance within 12% (measured 0.98–1.09 of the simulated, the most at a
        # window of about two mean stays), the third cumulant within 25% (measured 0.78–0.99)
        assert float((c**2).mean()) / var == pytest.approx(1.0, abs=0.12), w
        assert float((c**3).mean()) / k3 == pytest.approx(1.0, abs=0.25), w


def test_lognormal_members_spread_as_their_length_biased_variance() -> None:
    """At a window of one iteration the variance is (N − 1)·Var_b(γ·o/2)/D², Var_b the
    length-biased variance: for a lognormal of CV c, M²·(1 + c²)²·c² (the nodes' bins lose the
    variance within each, a few percent in the far tail)."""
    c2 = 1.5**2
    exact = (N - 1) * M * M * (1 + c2) ** 2 * c2 / 4 * (GAMMA / D) ** 2
    var, _ = _model(1.5, True, 1e-9)
    assert var / exact == pytest.approx(1.0, abs=0.05)
    # the told family matters: a gamma of the same CV has a lighter tail
    gamma_var, _ = _model(1.5, False, 1e-9)
    assert gamma_var < 0.75 * var


def test_a_window_keeps_the_long_members_and_averages_the_short_ones() -> None:
    y, stay, rate, v, m3 = _episodes(1.0, False)
    windows = np.array([1e-9, 10.0, 100.0, 1000.0, 10_000.0, 1e6, 1e7, np.inf])
    rows = len(windows)
    var, k3 = window_cumulants(
        np.repeat(y, rows, axis=0),
        np.repeat(stay, rows, axis=0),
        np.repeat(rate, rows, axis=0),
        np.repeat(v, rows),
        np.repeat(m3, rows),
        windows,
    )
    # no window: every member counts its whole stay, (N − 1)·Var_b
    assert var[0] == pytest.approx(float(np.einsum("ij,ij->", rate * stay, y * y)), rel=1e-9)
    assert np.all(np.diff(var) <= 1e-15)
    assert var[-1] == 0.0 and k3[-1] == 0.0
    # a window far longer than every stay: the variance falls as 1/W
    assert var[-2] * 1e7 == pytest.approx(var[-3] * 1e6, rel=0.01)
    # the skewness grows with a window of a few mean stays (what is left is the long members:
    # 0.54 → 0.96 at W = 1000), then falls as every member is averaged away
    skew = k3[:-1] / var[:-1] ** 1.5
    assert skew[3] > 1.5 * skew[0] and skew[5] < 0.5 * skew[0]


@pytest.mark.parametrize("skew", [0.0, 0.05, 0.15, 0.5, 1.5, 3.7, 12.0, -1.0])
def test_the_translated_gammas_nodes_keep_three_moments(skew: float) -> None:
    z, w = skewed_nodes(np.array([skew]))
    z, w = z[0], w[0]
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-12)
    assert float(w @ z) == pytest.approx(0.0, abs=1e-9)
    assert float(w @ z**2) == pytest.approx(1.0, abs=0.01)
    # the shape k = 4/skew², interpolated between a log grid's (ratio 1.03) and standardised
    assert float(w @ z**3) == pytest.approx(skew, rel=1e-4, abs=1e-5)
    # a distribution: its nodes in order (Cornish–Fisher's polynomial is not monotone beyond a
    # skewness of about 1.5, the reason for the gamma)
    order = z if skew >= 0 else -z
    assert np.all(np.diff(order) > 0)


def test_the_nodes_move_continuously_with_the_skewness() -> None:
    # where a shape rounded to its grid's nearest (the midpoints in log k) and where the grid
    # ends (towards the normal): a node that jumps made the queue jump, and the λ* search then
    # closed on the jump by halving (bench/accurate_solve_g2.py's lognormal system)
    k = composition_module._K_GRID
    edges = 2.0 / np.sqrt(np.sqrt(k[1:] * k[:-1]))
    at = np.concatenate([edges[::37], [2.0 / np.sqrt(k[-1])], [0.16, 0.163, 0.17]])
    for sign in (1.0, -1.0):
        z_lo, w_lo = skewed_nodes(sign * at * (1.0 - 1e-9))
        z_hi, w_hi = skewed_nodes(sign * at * (1.0 + 1e-9))
        assert np.abs(z_hi - z_lo).max() < 1e-6
        assert np.abs(w_hi - w_lo).max() < 1e-6


def test_cornish_fisher_folds_over_where_the_gamma_does_not() -> None:
    x = np.polynomial.hermite_e.hermegauss(7)[0]
    cf = x + 3.7 / 6.0 * (x * x - 1.0)
    assert not np.all(np.diff(cf) > 0)
    z, _ = skewed_nodes(np.array([3.7]))
    assert np.all(np.diff(z[0]) > 0)
