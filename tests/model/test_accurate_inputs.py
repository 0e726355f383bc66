"""The input lengths' spread in the accurate model (inTokensCOV, inTokensDist): the nodes of
the input-length distribution, the fixed-input limit, and the TTFT and latency tails against
the emulator where prompts vary."""

from __future__ import annotations

import numpy as np
import pytest

from inferno.emulator import Exponential, Fixed
from inferno.model._accurate_inputs import distinct_rows, input_nodes
from inferno.model.accurate import AccuratePoints
from inferno.model.points import OperatingPoints
from inferno.model.profiles import G0Profile, G2Profile, G3Profile, Profile, Tokens
from inferno.model.quantiles import latency_quantiles, ttft_quantiles

from .test_accurate import _emulate


@pytest.mark.parametrize("cv", [0.3, 1.0, 1.5])
@pytest.mark.parametrize("lognormal", [False, True])
def test_the_nodes_keep_the_mean_and_most_of_the_variance(cv: float, lognormal: bool) -> None:
    nodes, w = input_nodes(np.array([cv * cv]), np.array([lognormal]))
    assert w.sum() == pytest.approx(1.0)
    assert float((w * nodes).sum()) == pytest.approx(0.0, abs=1e-9)  # conditional means
    # the bins lose only the spread within each: a few % of the variance
    assert float((w * nodes**2).sum()) == pytest.approx(cv * cv, rel=0.12)
    assert np.all(np.diff(nodes[0]) > 0) and nodes[0, 0] > -1.0  # ordered, lengths > 0


def test_rows_alike_are_computed_once_and_given_back_in_order() -> None:
    # 10,000 servers of one length distribution: one row of inverse incomplete gammas
    scv = np.array([1.0, 0.25, 1.0, 2.25, 0.25, 0.0, 2.25, 1.0])
    logn = np.array([False, False, False, True, False, False, False, False])
    nodes, w = input_nodes(scv, logn)
    for i in np.flatnonzero(scv > 0):
        one, w_one = input_nodes(scv[i : i + 1], logn[i : i + 1])
        np.testing.assert_array_equal(nodes[i], one[0])
        np.testing.assert_array_equal(w[i], w_one[0])
    assert not np.array_equal(nodes[3], nodes[6])  # the same spread in another family
    np.testing.assert_array_equal(nodes[5], 0.0)  # fixed: the node 0
    first, inverse = distinct_rows(scv, logn)
    assert first.size == 5 and np.array_equal(scv[first][inverse], scv)


def test_fixed_inputs_are_one_node_at_the_mean() -> None:
    nodes, w = input_nodes(np.zeros(3), np.zeros(3, dtype=bool))
    assert nodes.shape == (3, 1) and not nodes.any() and (w == 1.0).all()
    # a lognormal's tail is heavier than a gamma's of the same CV (its top bin further out)
    both, _ = input_nodes(np.full(2, 2.25), np.array([False, True]))
    assert both[1, -1] > both[0, -1]


def _points(
    profile: Profile, tokens: Tokens, n: int, in_cv: list[float | None] | None = None
) -> AccuratePoints:
    return AccuratePoints.of_accurate([profile], [tokens], out_cv=[0.0], batch=[n], in_cv=in_cv)


def test_fixed_inputs_and_no_prompt_change_nothing() -> None:
    """inTokensCOV 0 is the model without it, bit for bit; a G0 point (no prompt) ignores it."""
    g2, tok = G2Profile(12.0, 0.05, 5e-4, 8), Tokens(512, 128)
    lam = np.array([0.5 * float(OperatingPoints.of([g2], [tok], batch=[8]).mu_n[0])])
    for profile, tokens in ((g2, tok), (G0Profile(20.58, 0.41, 8, 1.0), Tokens(0, 128))):
        plain = _points(profile, tokens, 8)
        told = _points(profile, tokens, 8, in_cv=[0.0 if profile is g2 else 1.0])
        a, b = plain.metrics(lam), told.metrics(lam)
        for name in a.__dataclass_fields__:
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
        assert ttft_quantiles(plain, lam, 0.95)[0] == ttft_quantiles(told, lam, 0.95)[0]
        assert (latency_quantiles(plain, lam, [0.95]) == latency_quantiles(told, lam, [0.95])).all()


@pytest.mark.parametrize(
    ("profile", "n", "tokens"),
    [
        (G2Profile(12.0, 0.05, 5e-4, 8), 8, Tokens(512, 128)),
        (G3Profile(16.0, 0.067, 6.67e-4, 8, None, 4096), 8, Tokens(2048, 256)),
    ],
    ids=["G2", "G3"],
)
def test_exponential_prompts_widen_the_ttft_tail_as_emulated(
    profile: Profile, n: int, tokens: Tokens
) -> None:
    """Exponential prompts at load 0.3 (bench/accurate.py --inputs exp): told the input CV, the
    model's TTFT and latency p95 are within the issue's ±15% of the emulator's; not told (fixed
    prompts), its TTFT p95 misses by more (G2 −45%, G3 −27%)."""
    chain = OperatingPoints.of([profile], [tokens], batch=[n])
    lam = np.array([0.3 * float(chain.mu_n[0])])
    inputs = Exponential(float(tokens.in_tokens))
    out = Fixed(int(tokens.out_tokens))
    sim = _emulate(profile, n, tokens, out, float(lam[0]), int(chain.n_max[0]), 40_000, inputs)
    told = _points(profile, tokens, n, in_cv=[1.0])
    untold = _points(profile, tokens, n)
    err = ttft_quantiles(told, lam, 0.95)[0] / sim["ttft95"] - 1.0
    assert abs(err) <= 0.15, f"TTFT p95 {100 * err:+.1f}%"
    err = latency_quantiles(told, lam, [0.95])[0, 0] / sim["lat95"] - 1.0
    assert abs(err) <= 0.15, f"latency p95 {100 * err:+.1f}%"
    assert ttft_quantiles(untold, lam, 0.95)[0] / sim["ttft95"] - 1.0 < -0.15
