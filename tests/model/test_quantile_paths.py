"""The fast quantile paths against straightforward reference computations, to 1e-9 relative.

The fast paths: wait quantiles by Newton steps on the closed-form survival and density
(:func:`inferno.model.quantiles.wait_quantiles_of`), latency quantiles by Newton steps on the
uniformised response-time chain with its waiting part in closed form, stepped, or split between the
two (:meth:`inferno.model.percentiles.ResponseTime.quantiles`). The references share none of that:
the wait is the Erlang mixture summed term by term (scipy's incomplete gamma), the response time a
dense uniformisation of the whole tagged-request chain built state by state (no closed form, no
truncation, no trimmed rows), and both quantiles a plain bisection to 1e-14.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaincc
from scipy.stats import poisson

from inferno.model import percentiles
from inferno.model.points import OperatingPoints
from inferno.model.profiles import BatchProfile, G0Profile, G1Profile, G2Profile, Profile, Tokens
from inferno.model.quantile_search import newton_quantiles
from inferno.model.quantiles import latency_quantiles, wait_quantiles_of

from ._tagged_chain import tagged_chain

QS = (0.5, 0.95, 0.99)


def bisect(sf, q: float) -> float:  # type: ignore[no-untyped-def]
    target = 1.0 - q
    if sf(0.0) <= target:
        return 0.0
    hi = 1.0
    while sf(hi) > target:
        hi *= 2.0
    lo = 0.0
    while hi - lo > 1e-14 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if sf(mid) > target else (lo, mid)
    return hi


def reference_wait(p: np.ndarray, n_b: int, k: int, mu_n: float, q: float) -> float:
    """P(W > t) = Σ_{n=N}^{K−1} π(n)·P(Poisson(μ(N)·t) ≤ n − N), term by term."""
    accepted = p[:k] / p[:k].sum()
    j = np.arange(k - n_b)

    def sf(t: float) -> float:
        return float((accepted[n_b:k] * gammaincc(j + 1.0, mu_n * t)).sum())

    return bisect(sf, q)


class ReferenceResponse:
    """P(R > t) by dense uniformisation of the whole tagged-request chain."""

    def __init__(self, lam: float, tau: np.ndarray, k: int, p: np.ndarray) -> None:
        q, v = tagged_chain(lam, tau, k, p)
        self.rate = float(-q.diagonal().min()) * 1.01
        self.step = np.eye(v.size) + q / self.rate
        self.v, self.s = v, [float(v.sum())]

    def sf(self, t: float) -> float:
        x = self.rate * t
        need = int(x + 15.0 * math.sqrt(x + 1.0) + 40.0)
        while len(self.s) <= need:
            self.v = self.v @ self.step
            self.s.append(float(self.v.sum()))
        s = np.asarray(self.s)
        return float((poisson.pmf(np.arange(s.size), x) * s).sum())


CASES: dict[str, tuple[Profile, Tokens, int, float]] = {
    # name: (profile, tokens, queue K − N, load λ/μ(N))
    "G0 low, long queue": (G0Profile(8.0, 0.6, 6, 64), Tokens(0, 64), 30, 0.3),
    "G0 near capacity, short queue": (G0Profile(8.0, 0.6, 6, 64), Tokens(0, 64), 6, 0.95),
    "G1 near capacity, long queue": (
        G1Profile(10.0, 0.4, 0.01, 0.002, 5, 32),
        Tokens(64, 32),
        30,
        0.95,
    ),
    "G1 low, no queue": (G1Profile(10.0, 0.4, 0.01, 0.002, 5, 32), Tokens(64, 32), 0, 0.3),
    "G2 low, short queue": (G2Profile(12.0, 0.05, 0.0005, 6), Tokens(16, 8), 8, 0.3),
    "G2 near capacity, long queue": (G2Profile(12.0, 0.05, 0.0005, 6), Tokens(16, 8), 24, 0.95),
    "G2 loaded, long queue": (G2Profile(12.0, 0.05, 0.0005, 6), Tokens(16, 8), 30, 0.7),
    "batch loaded, long queue": (BatchProfile(5.0, 1.0, 4, batching="chain"), Tokens(), 40, 0.8),
    "batch near capacity, queue fills": (
        BatchProfile(2.0, 0.5, 4, batching="chain"),
        Tokens(),
        8,
        0.97,
    ),
    "batch low, long queue": (BatchProfile(5.0, 1.0, 4, batching="chain"), Tokens(), 36, 0.3),
}


def chain(name: str) -> tuple[OperatingPoints, float]:
    profile, tokens, queue, load = CASES[name]
    pts = OperatingPoints.of([profile], [tokens], max_queue=[queue])
    return pts, load * float(pts.mu_n[0])


def path(pts: OperatingPoints, lam: float) -> str:
    rt = pts.response_time(0, lam)
    assert isinstance(rt, percentiles.ResponseTime)
    closed, stepped = rt._entry is not None, rt._numeric is not None
    return {(False, False): "no wait", (True, False): "closed", (False, True): "stepped"}.get(
        (closed, stepped), "split"
    )


@pytest.mark.parametrize("name", CASES)
def test_wait_quantiles_match_the_erlang_mixture(name: str) -> None:
    pts, lam = chain(name)
    got = wait_quantiles_of(pts, np.array([lam]), QS)[0]
    p = pts.distribution(0, lam)
    n_b, k = int(pts.n_batch[0]), int(pts.n_max[0])
    want = [reference_wait(p, n_b, k, float(pts.mu_n[0]), q) for q in QS]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_latency_quantiles_match_a_dense_uniformisation(name: str) -> None:
    pts, lam = chain(name)
    got = latency_quantiles(pts, np.array([lam]), QS)[0]
    ref = ReferenceResponse(lam, pts.tau_of(0), int(pts.n_max[0]), pts.distribution(0, lam))
    want = [bisect(ref.sf, q) for q in QS]
    assert got == pytest.approx(want, rel=1e-9)
    assert (np.diff(got) > 0).all()


def test_the_cases_cover_every_path_and_some_waits() -> None:
    paths, p99, p50 = {}, [], []
    for name in CASES:
        pts, lam = chain(name)
        paths[name] = path(pts, lam)
        waits = wait_quantiles_of(pts, np.array([lam]), QS)[0]
        p50.append(waits[0])
        p99.append(waits[-1])
    assert set(paths.values()) == {"no wait", "closed", "stepped", "split"}, paths
    assert sum(w > 0 for w in p99) >= 5  # waits that are not zero
    assert sum(w == 0 for w in p50) >= 2  # most requests not waiting at all


def test_newton_search_on_an_exponential_and_on_a_flat_start() -> None:
    target = np.array([0.5, 0.05, 0.01])

    def exponential(t: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.exp(-t / 3.0), -np.exp(-t / 3.0) / 3.0

    got = newton_quantiles(exponential, target, np.full(3, 0.1))
    assert got == pytest.approx(-3.0 * np.log(target), rel=1e-12)

    # flat (slope 0) up to t = 5, then a kink: Newton steps fail there and bisections take over
    def kinked(t: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sf = np.where(t < 5.0, 1.0, np.exp(-((t - 5.0) ** 2)))
        return sf, np.where(t < 5.0, 0.0, -2.0 * (t - 5.0) * sf)

    got = newton_quantiles(kinked, target, np.full(3, 1.0))
    assert got == pytest.approx(5.0 + np.sqrt(-np.log(target)), rel=1e-12)


def test_a_rate_that_is_not_a_number_has_no_quantile() -> None:
    """NaN in, NaN out (not 0 ms: a quantile of 0 would read as "nobody waits")."""
    pts, _ = chain("G0 near capacity, short queue")
    waits = wait_quantiles_of(pts, np.array([math.nan]), QS)[0]
    assert np.isnan(waits).all()
    # the search itself stops on a survival that is not a number, row by row
    calls = []

    def half_nan(t: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(rows.size)
        sf = np.where(rows == 0, np.nan, np.exp(-t))
        return sf, -sf

    got = newton_quantiles(half_nan, np.array([0.1, 0.1]), np.full(2, 1.0))
    assert math.isnan(got[0]) and got[1] == pytest.approx(-math.log(0.1), rel=1e-12)
    assert max(calls[1:]) == 1  # the NaN row left after its first evaluation
