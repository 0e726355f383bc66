"""The output lengths' CV and family from a histogram of generated tokens per request
(inferno.prom.lengths): samples binned into vLLM's 1-2-5 buckets, and what cannot be fitted."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from inferno.emulator import Exponential, Fixed, Lengths, LogNormal
from inferno.prom.lengths import MIN_REQUESTS, fit_lengths

#: vLLM's build_1_2_5_buckets up to a 20,000-token context
BOUNDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def histogram(x: np.ndarray) -> list[tuple[float, float]]:
    """(le, cumulative count) as increase() of the _bucket series answers, +Inf included."""
    out = [(float(b), float(np.sum(x <= b))) for b in BOUNDS]
    return [*out, (math.inf, float(x.size))]


class Gamma(Lengths):
    __slots__ = ("k", "m")

    def __init__(self, m: float, cv: float) -> None:
        self.m, self.k = m, 1.0 / (cv * cv)

    @property
    def mean(self) -> float:
        return self.m

    @property
    def minimum(self) -> int:
        return 1

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        x = np.rint(rng.gamma(self.k, self.m / self.k, n))
        return np.maximum(x, 1.0).astype(np.int64)


@pytest.mark.parametrize(
    ("lengths", "family", "cv"),
    [
        (LogNormal(256.0, 1.5), "lognormal", 1.5),
        (LogNormal(256.0, 0.7), "lognormal", 0.7),
        (Exponential(256.0), "gamma", 1.0),
        (Gamma(256.0, 0.5), "gamma", 0.5),
        (Gamma(512.0, 1.414), "gamma", 1.414),
    ],
    ids=["lognormal-1.5", "lognormal-0.7", "exponential", "gamma-0.5", "gamma-1.4"],
)
def test_the_family_and_the_cv_of_binned_lengths(lengths: Lengths, family: str, cv: float) -> None:
    x = lengths.sample(2000, np.random.default_rng(1)).astype(np.float64)
    fit = fit_lengths(histogram(x), float(x.mean()))
    assert fit is not None
    assert fit.family == family
    assert fit.cv == pytest.approx(cv, rel=0.06)
    assert fit.requests == 2000.0


def test_lengths_in_one_or_two_buckets_are_told_the_most_spread_they_can_have() -> None:
    # fixed lengths: every request in one bucket, (200, 500], no shape to fit; lengths of mean
    # 256 there vary at most as much as those at its two ends do
    fixed = Fixed(256).sample(2000, np.random.default_rng(3)).astype(np.float64)
    fit = fit_lengths(histogram(fixed), 256.0)
    assert fit is not None and fit.bounded and fit.family == "gamma"
    assert math.isnan(fit.sse[0]) and fit.requests == 2000.0
    assert fit.cv == pytest.approx(math.sqrt((256.0 - 201.0) * (500.0 - 256.0)) / 256.0)
    # the bound is reached: 201 and 500 tokens in the proportions of mean 256
    n_top = 55 * 20
    ends = np.concatenate([np.full(299 * 20 - n_top, 201.0), np.full(n_top, 500.0)])
    assert ends.mean() == pytest.approx(256.0)
    assert ends.std() / ends.mean() == pytest.approx(fit.cv, rel=1e-12)
    same = fit_lengths(histogram(ends), float(ends.mean()))
    assert same is not None and same.cv == pytest.approx(fit.cv)
    # two buckets, (100, 200] and (200, 500]: one bound inside, still no shape to fit
    two = np.repeat([150.0, 300.0], 1000)
    fit = fit_lengths(histogram(two), 225.0)
    assert fit is not None and fit.bounded
    assert fit.cv == pytest.approx(math.sqrt((225.0 - 101.0) * (500.0 - 225.0)) / 225.0)
    # a span that allows more than the model's default (CV 1), or an open one: nothing said
    wide = [(10.0, 0.0), (1000.0, 500.0), (math.inf, 500.0)]
    assert fit_lengths(wide, 50.0) is None
    assert fit_lengths([(1000.0, 0.0), (math.inf, 500.0)], 2000.0) is None
    # a mean outside the span (the counters and the histogram disagree): nothing said
    assert fit_lengths(histogram(fixed), 600.0) is None


def test_one_of_vllms_buckets_allows_a_cv_under_048() -> None:
    # the most any mean in a bucket (lo, hi] allows, at m = 2·lo'·hi/(lo' + hi): under 0.48,
    # far below the default of 1 (docs/metrics.md)
    most = []
    for lo, hi in itertools.pairwise(BOUNDS):
        lo1 = lo + 1.0
        if lo1 >= hi:
            continue
        m = 2.0 * lo1 * hi / (lo1 + hi)
        one = [(float(b), 0.0 if b < hi else 1000.0) for b in BOUNDS] + [(math.inf, 1000.0)]
        fit = fit_lengths(one, m)
        assert fit is not None and fit.bounded
        most.append(fit.cv)
    assert 0.47 < max(most) < 0.48


def test_a_bounded_spread_is_at_most_what_the_cap_allows() -> None:
    from inferno.model import largest_served_cv

    fixed = Fixed(256).sample(2000, np.random.default_rng(4)).astype(np.float64)
    fit = fit_lengths(histogram(fixed), 256.0, cap=300.0)
    assert fit is not None and fit.bounded
    assert fit.cv == pytest.approx(largest_served_cv(300.0 / 256.0))
    assert fit.cv < math.sqrt((256.0 - 201.0) * (500.0 - 256.0)) / 256.0
    # every request served the cap: no spread at all
    fit = fit_lengths(histogram(fixed), 256.0, cap=256.0)
    assert fit is not None and fit.cv == 0.0
    # a mean above the cap: the cap does not hold (the row leaves it out), so the lengths are
    # not taken for all at the cap, but fitted as they are
    above = fit_lengths(histogram(fixed), 256.0, cap=250.0)
    assert above == fit_lengths(histogram(fixed), 256.0)
    assert above is not None and above.cv > 0.0


def test_what_a_histogram_cannot_say_is_not_fitted() -> None:
    rng = np.random.default_rng(2)
    x = LogNormal(256.0, 1.5).sample(2000, rng).astype(np.float64)
    good = histogram(x)
    assert fit_lengths(good, float(x.mean())) is not None
    # too few requests in the window
    few = x[: int(MIN_REQUESTS) - 1]
    assert fit_lengths(histogram(few), float(few.mean())) is None
    # no +Inf bucket, no mean, NaN and negative counts (dropped, then too little is left)
    assert fit_lengths(good[:-1], float(x.mean())) is None
    assert fit_lengths(good, 0.0) is None and fit_lengths(good, math.nan) is None
    assert fit_lengths([(b, math.nan) for b, _ in good], 256.0) is None
    assert fit_lengths([], 256.0) is None
    # buckets out of order, or a count that dips (increase() extrapolates each series): the
    # order is restored and the fit is the same
    shuffled = list(reversed(good))
    assert fit_lengths(shuffled, float(x.mean())) == fit_lengths(good, float(x.mean()))
    dipped = [(b, c - 1.0 if i == 5 else c) for i, (b, c) in enumerate(good)]
    assert fit_lengths(dipped, float(x.mean())) is not None


@pytest.mark.parametrize(
    ("lengths", "family"),
    [
        (LogNormal(512.0, 1.5, 2048), "lognormal"),
        (LogNormal(512.0, 1.5, 1024), "lognormal"),
        (Exponential(512.0, 1024), "gamma"),
    ],
    ids=["lognormal-4x", "lognormal-2x", "exponential-2x"],
)
def test_capped_lengths_are_fitted_with_the_capped_family(lengths: Lengths, family: str) -> None:
    # the served lengths min(X, T): the CV is theirs (what the model is told), at most what
    # the cap allows, and the family is X's
    x = lengths.sample(4000, np.random.default_rng(2)).astype(np.float64)
    cap = float(x.max())
    fit = fit_lengths(histogram(x), float(x.mean()), cap)
    assert fit is not None
    assert fit.family == family
    assert fit.cv == pytest.approx(float(x.std() / x.mean()), rel=0.08)
    assert fit.cv**2 <= cap / float(x.mean()) - 1.0
    # a cap below the mean contradicts the lengths: fitted as without one
    assert fit_lengths(histogram(x), float(x.mean()), 0.5 * float(x.mean())) == fit_lengths(
        histogram(x), float(x.mean())
    )
