"""The chain solver against direct computations; percentiles against a simulation of the chain.

The batch-kind profiles here use ``batching="chain"``: they exercise the chain itself (the default
batch-kind means come from the bulk model, tests/emulator/test_bulk_model.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferno.model import percentiles
from inferno.model.points import OperatingPoints
from inferno.model.profiles import BatchProfile, G0Profile, G1Profile, G2Profile, Tokens


def direct(lam: float, tau: np.ndarray, k: int) -> dict[str, float]:
    """p(n) by the product formula, term by term (no closed forms), in log space."""
    n_b = tau.size
    logp = [0.0]
    for i in range(1, k + 1):
        b = min(i, n_b)
        logp.append(logp[-1] + math.log(lam) - math.log(b / tau[b - 1]))
    lp = np.array(logp)
    p = np.exp(lp - lp.max())
    p /= p.sum()
    n = np.arange(k + 1)
    held = float((n * p).sum())
    in_service = float((np.minimum(n, n_b) * p).sum())
    x = lam * (1 - p[-1])
    return {
        "held": held,
        "in_service": in_service,
        "throughput": x,
        "blocking": float(p[-1]),
        "p0": float(p[0]),
    }


@settings(max_examples=60, deadline=None)
@given(
    alpha=st.floats(0.5, 50),
    beta=st.floats(0.01, 5),
    n=st.integers(1, 40),
    queue=st.integers(0, 400),
    load=st.floats(0.01, 3.0),
)
def test_closed_form_tail_matches_direct_sum(
    alpha: float, beta: float, n: int, queue: int, load: float
) -> None:
    pts = OperatingPoints.of(
        [BatchProfile(alpha, beta, n, batching="chain")], [Tokens()], max_queue=[queue]
    )
    lam = load * float(pts.mu_n[0])  # below, at and above capacity
    m = pts.metrics(np.array([lam]))
    ref = direct(lam, pts.tau_of(0), n + queue)
    assert m.held[0] == pytest.approx(ref["held"], rel=1e-7, abs=1e-9)
    assert m.in_service[0] == pytest.approx(ref["in_service"], rel=1e-7, abs=1e-9)
    assert m.throughput[0] == pytest.approx(ref["throughput"], rel=1e-7)
    assert m.blocking[0] == pytest.approx(ref["blocking"], rel=1e-6, abs=1e-12)
    assert m.utilization[0] == pytest.approx(1 - ref["p0"], rel=1e-7, abs=1e-12)


def test_ratio_exactly_one_and_near_one() -> None:
    pts = OperatingPoints.of(
        [BatchProfile(4.0, 1.0, 8, batching="chain")], [Tokens()], max_queue=[80]
    )
    mu_n = float(pts.mu_n[0])
    for lam in (mu_n, mu_n * (1 + 1e-13), mu_n * (1 - 1e-9), mu_n * (1 + 1e-6)):
        m = pts.metrics(np.array([lam]))
        ref = direct(lam, pts.tau_of(0), 88)
        assert m.held[0] == pytest.approx(ref["held"], rel=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    alpha=st.floats(1, 30),
    beta=st.floats(0.05, 2),
    n=st.integers(1, 16),
    queue=st.integers(0, 60),
    load=st.floats(0.05, 1.5),
)
def test_probabilities_sum_to_one_and_littles_law(
    alpha: float, beta: float, n: int, queue: int, load: float
) -> None:
    pts = OperatingPoints.of(
        [BatchProfile(alpha, beta, n, batching="chain")], [Tokens()], max_queue=[queue]
    )
    lam = load * float(pts.mu_n[0])
    p = pts.distribution(0, lam)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (p >= 0).all()
    m = pts.metrics(np.array([lam]))
    # Little's law checked against the response-time distribution: ∫ P(R > t) dt = L / X
    rt = pts.response_time(0, lam)
    hi = percentiles.quantile(rt.survival, 1 - 1e-10, float(m.response[0]) * 4)
    grid = np.linspace(0, hi, 4001)
    mean_r = np.trapezoid(rt.survival(grid), grid)
    assert mean_r == pytest.approx(float(m.held[0] / m.throughput[0]), rel=2e-3)


def test_wait_survival_integrates_to_the_mean_wait() -> None:
    grid = np.linspace(0, 250_000, 5001)
    pts = OperatingPoints.of(
        [G0Profile(7.77, 0.15, 76, 512)] * grid.size, [Tokens(0, 1024)] * grid.size
    )
    lam = 0.95 * float(pts.mu_n[0])
    m = pts.metrics(np.full(grid.size, lam), wait_beyond=grid)
    assert m.wait_sf[0] > 0.3  # a loaded server: most requests wait
    assert m.wait_sf[-1] < 1e-6
    integral = np.trapezoid(m.wait_sf, grid)
    assert integral == pytest.approx(float(m.wait[0]), rel=1e-3)


def simulate(
    lam: float, tau: np.ndarray, k: int, n_req: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gillespie simulation of the chain with request identities: (waits, responses).

    Each of the b requests in the batch leaves at rate 1/τ(b), so the one to leave is chosen
    uniformly among them; FCFS admission to the batch; arrivals finding K are lost.
    """
    rng = np.random.default_rng(seed)
    n_b = tau.size
    t = 0.0
    system: list[list[float]] = []  # [arrival, start], FCFS; the first min(n, N) are in service
    waits: list[float] = []
    resp: list[float] = []
    warm = n_req // 10
    while len(resp) < n_req + warm:
        n = len(system)
        b = min(n, n_b)
        dep = b / tau[b - 1] if b else 0.0
        total = lam + dep
        t += rng.exponential(1.0 / total)
        if rng.random() * total < lam:
            if n < k:
                system.append([t, t if n < n_b else -1.0])
        else:
            arrival, start = system.pop(int(rng.integers(b)))
            resp.append(t - arrival)
            waits.append(start - arrival)
            if len(system) >= n_b and system[n_b - 1][1] < 0:
                system[n_b - 1][1] = t
    return np.array(waits[warm:]), np.array(resp[warm:])


@pytest.mark.parametrize(
    ("profile", "tokens", "queue", "load"),
    [
        (BatchProfile(5.0, 1.0, 4, batching="chain"), Tokens(), 12, 0.9),
        (BatchProfile(2.0, 0.5, 8, batching="chain"), Tokens(), 40, 0.7),
        (G2Profile(12, 0.05, 0.0005, 6), Tokens(16, 8), 30, 0.95),
    ],
)
def test_percentiles_match_a_simulation_of_the_chain(profile, tokens, queue, load) -> None:  # type: ignore[no-untyped-def]
    pts = OperatingPoints.of([profile], [tokens], max_queue=[queue])
    lam = load * float(pts.mu_n[0])
    waits, resp = simulate(lam, pts.tau_of(0), int(pts.n_max[0]), 60_000, seed=7)
    rt = pts.response_time(0, lam)
    m = pts.metrics(np.array([lam]))
    for q in (0.5, 0.95, 0.99):
        model_q = percentiles.quantile(rt.survival, q, float(m.response[0]))
        sim_q = float(np.quantile(resp, q))
        assert model_q == pytest.approx(sim_q, rel=0.05), q
    for t in np.quantile(waits[waits > 0], [0.25, 0.5, 0.9]) if (waits > 0).any() else []:
        model_sf = pts.metrics(np.array([lam]), wait_beyond=np.array([t])).wait_sf[0]
        assert model_sf == pytest.approx(float((waits > t).mean()), abs=0.015)


def test_g1_reports_decode_at_effective_concurrency() -> None:
    pts = OperatingPoints.of([G1Profile(10.0, 0.2, 30.0, 0.01, 64, 1024)], [Tokens(256, 512)])
    m = pts.metrics(np.array([0.5 * float(pts.mu_n[0])]))
    n_eff = (m.service[0] - 30.0 - 10.0 * 511) / (0.01 * 256 + 0.2 * 511)
    assert m.itl[0] == pytest.approx(10.0 + 0.2 * n_eff)
    assert m.ttft[0] == pytest.approx(m.wait[0] + 30.0 + 0.01 * 256 * n_eff)
