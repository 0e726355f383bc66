"""The response-time distribution against a dense matrix exponential of the tagged-request chain.

The reference builds the chain state by state from its definition (docs in
``inferno/model/percentiles.py``) and computes P(R > t) = π₀ᵀ exp(Qt) 1 with scipy's ``expm``: no
uniformisation, no closed form, no truncation. Both ways the fast code takes (the waiting part in
closed form, or stepped where the queue may fill) must agree with it.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from inferno.model import percentiles, wait_tail
from inferno.model.points import OperatingPoints
from inferno.model.profiles import BatchProfile, G2Profile, Tokens

from ._tagged_chain import tagged_chain


def reference_survival(
    lam: float, tau: np.ndarray, k: int, p: np.ndarray, t: np.ndarray
) -> np.ndarray:
    q, entry = tagged_chain(lam, tau, k, p)
    return np.array([entry @ expm(q * x) @ np.ones(entry.size) for x in t])


def chain(profile: BatchProfile | G2Profile, tokens: Tokens, queue: int, load: float):  # type: ignore[no-untyped-def]
    pts = OperatingPoints.of([profile], [tokens], max_queue=[queue])
    lam = load * float(pts.mu_n[0])
    tau, k = pts.tau_of(0), int(pts.n_max[0])
    return lam, tau, k, pts.distribution(0, lam)


CASES: dict[str, tuple[BatchProfile | G2Profile, Tokens, int, float]] = {
    # a queue that never fills while a request waits: the closed form
    "closed": (BatchProfile(5.0, 1.0, 4, batching="chain"), Tokens(), 40, 0.3),
    # a loaded server whose queue fills: the waiting states are stepped
    "stepped": (BatchProfile(2.0, 0.5, 6, batching="chain"), Tokens(), 8, 0.97),
    "llm": (G2Profile(12, 0.05, 0.0005, 6), Tokens(16, 8), 10, 0.9),
    "no queue": (BatchProfile(3.0, 0.7, 5, batching="chain"), Tokens(), 0, 0.9),
}


@pytest.mark.parametrize("name", CASES)
def test_survival_matches_the_matrix_exponential(name: str) -> None:
    lam, tau, k, p = chain(*CASES[name])
    rt = percentiles.ResponseTime(lam, tau, k, p)
    mean = 1.0 / lam
    t = np.array([0.0, 0.3, 1.0, 3.0, 10.0, 30.0]) * mean
    assert rt.survival(t) == pytest.approx(reference_survival(lam, tau, k, p, t), abs=1e-11)


def test_each_case_takes_the_path_it_is_meant_to() -> None:
    paths = {}
    for name, case in CASES.items():
        rt = percentiles.ResponseTime(*chain(*case))
        paths[name] = rt._numeric is not None, rt._entry is not None
    assert paths["closed"] == (False, True)
    assert paths["stepped"] == (True, False)
    assert paths["no queue"] == (False, False)


def test_closed_form_and_stepping_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    lam, tau, k, p = chain(G2Profile(12, 0.05, 0.0005, 16), Tokens(64, 32), 300, 0.6)
    closed = percentiles.ResponseTime(lam, tau, k, p)
    assert closed._entry is not None
    monkeypatch.setattr(percentiles, "_entries", lambda *args: None)
    stepped = percentiles.ResponseTime(lam, tau, k, p)
    assert stepped._numeric is not None
    t = np.linspace(0.0, 40.0 / lam, 41)
    assert closed.survival(t) == pytest.approx(stepped.survival(t), abs=1e-12)
    for q in (0.5, 0.95, 0.99):
        a = percentiles.quantile(closed.survival, q, 1.0 / lam, rtol=1e-12)
        b = percentiles.quantile(stepped.survival, q, 1.0 / lam, rtol=1e-12)
        assert a == pytest.approx(b, rel=1e-9)


def test_a_long_queue_is_answered_when_the_load_leaves_it_empty() -> None:
    # 2,000 places behind a batch of 16 would be 2 million states; at 70% load an arrival sees
    # more than ~120 waiting with probability below 1e-15, so only those states are built
    lam, tau, k, p = chain(BatchProfile(5.0, 1.0, 16, batching="chain"), Tokens(), 2000, 0.7)
    assert percentiles.response_states(16, k) > percentiles.MAX_RESPONSE_STATES
    rt = percentiles.ResponseTime(lam, tau, k, p)
    assert 0.0 < percentiles.quantile(rt.survival, 0.95, 10.0 / lam) < 1e6


def test_wait_survival_closed_form_matches_the_poisson_sum() -> None:
    rng = np.random.default_rng(3)
    c = 4000
    log_r = np.log(rng.uniform(0.05, 3.0, c))
    log_r[:10] = np.log1p(rng.uniform(-5e-4, 5e-4, 10))  # near r = 1: summed, not closed
    n_tail = rng.integers(1, 800, c).astype(np.float64)
    mu_n = rng.uniform(0.01, 2.0, c)
    t = rng.uniform(0.0, 3.0, c) * n_tail / mu_n
    p_batch = rng.uniform(1e-6, 0.3, c) * np.exp(-np.maximum(log_r, 0.0) * n_tail)
    blocking = rng.uniform(0.0, 0.2, c)
    fast = percentiles.wait_survival(t, p_batch, blocking, log_r, mu_n, n_tail)
    with np.errstate(over="ignore", invalid="ignore"):  # the sum's terms overflow where r > 1
        slow = wait_tail._wait_survival(
            int(n_tail.max()), t, p_batch, blocking, log_r, mu_n, n_tail
        )
    summed = np.isfinite(slow) & (slow < 1.0)
    assert summed.sum() > c // 2
    assert fast[summed] == pytest.approx(slow[summed], rel=1e-9, abs=1e-15)
    assert (fast[summed] > 1e-6).sum() > c // 4  # most of the cases are not trivially zero
    assert np.isfinite(fast).all() and ((fast >= 0) & (fast <= 1)).all()


def test_log_q_matches_scipys_incomplete_gamma_and_never_underflows() -> None:
    from scipy.special import gammaincc, gammaln

    rng = np.random.default_rng(3)
    for scale in (1.0, 30.0, 1000.0):
        m = np.floor(rng.uniform(1, 3 * scale, 500)) + 1
        y = rng.uniform(0, 3 * scale, 500)
        y[:5] = 0.0
        got = wait_tail._log_q(m, y)
        q = gammaincc(m, y)
        fine = q > 1e-250
        assert np.allclose(got[fine], np.log(q[fine]), rtol=0, atol=1e-11 * max(scale, 1))
        assert (got[:5] == 0).all()  # Q(m, 0) = 1
    # far in the upper tail Q underflows a double; its log is the last term's, and the rest
    m = np.array([5.0, 200.0])
    y = np.array([2000.0, 50000.0])
    assert (gammaincc(m, y) == 0).all()
    last = -y + (m - 1) * np.log(y) - gammaln(m)
    assert np.allclose(wait_tail._log_q(m, y), last, rtol=1e-12, atol=0.01)
    assert (wait_tail._log_q(m, y) > last).all()
