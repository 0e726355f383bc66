"""The bulk-service model of Triton dynamic batching: exact cases, and the discrete-event
emulator (which serves batches exactly as Triton does) inside its confidence interval."""

from __future__ import annotations

import numpy as np
import pytest

from inferno.emulator import Poisson, ServerSpec, Simulation
from inferno.model.bulk import BulkResponseTime, bulk_metrics
from inferno.model.percentiles import quantile
from inferno.model.points import OperatingPoints
from inferno.model.profiles import BatchProfile, Tokens
from inferno.units import MS_PER_MIN

from .helpers import assert_in_ci, batch_means


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.9])
def test_n1_is_md1(rho: float) -> None:
    s = 10.0
    m = bulk_metrics(0.0, s, 1, 2000, rho / s)
    # Pollaczek–Khinchine for deterministic service: W = ρ S / (2 (1 − ρ))
    assert m.wait == pytest.approx(rho * s / (2 * (1 - rho)), rel=1e-6)
    assert m.response == pytest.approx(m.wait + s, rel=1e-6)
    assert m.utilization == pytest.approx(rho, rel=1e-6)
    assert m.avg_batch == pytest.approx(1.0) and m.blocking < 1e-9


def test_k1_is_the_erlang_loss_system() -> None:
    s, lam = 10.0, 0.08  # offered λS = 0.8
    m = bulk_metrics(0.0, s, 1, 1, lam)
    assert m.blocking == pytest.approx(0.8 / 1.8, rel=1e-9)
    assert m.response == pytest.approx(s) and m.wait == pytest.approx(0.0, abs=1e-9)


def test_batches_grow_with_load_and_capacity_is_n_over_tau_n() -> None:
    alpha, beta, n = 20.0, 2.0, 8
    cap = n / (alpha + beta * n)
    low = bulk_metrics(alpha, beta, n, 10 * n, 0.1 * cap)
    high = bulk_metrics(alpha, beta, n, 10 * n, 0.95 * cap)
    assert 1.0 <= low.avg_batch < 1.5 < high.avg_batch <= n
    assert low.response < high.response
    assert high.throughput == pytest.approx(0.95 * cap, rel=1e-3)
    over = bulk_metrics(alpha, beta, n, 4 * n, 1.5 * cap)
    assert over.throughput == pytest.approx(cap, rel=0.02) and over.blocking > 0.3


@pytest.mark.parametrize(
    "bad",
    [(0.0, 0.0, 1, 1, 1.0), (1.0, 1.0, 0, 1, 1.0), (1.0, 1.0, 4, 2, 1.0), (1.0, 1.0, 1, 1, 0.0)],
)
def test_bad_arguments(bad: tuple[float, float, int, int, float]) -> None:
    with pytest.raises(ValueError):
        bulk_metrics(*bad)


def _emulated_latency(
    alpha: float, beta: float, n: int, lam: float, *, requests: int, seed: int
) -> np.ndarray:
    """Latencies of ~``requests`` requests on the emulator's Triton batching (K = 11 N, fixed
    batch times), the first 2,000 dropped as warm-up."""
    spec = ServerSpec(
        BatchProfile(alpha, beta, n),
        Poisson(lam * MS_PER_MIN),
        max_queue=10 * n,
        service="deterministic",
    )
    sim = Simulation({"s": spec}, seed=seed)
    sim.run_until(requests / lam)
    r = sim.records("s")
    out: np.ndarray = r.latency[r.completed][2000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("load", [0.3, 0.7])
def test_matches_the_emulator(load: float) -> None:
    alpha, beta, n = 20.0, 2.0, 8
    lam = load * n / (alpha + beta * n)
    latency = _emulated_latency(alpha, beta, n, lam, requests=60_000, seed=11)
    model = bulk_metrics(alpha, beta, n, 11 * n, lam)
    assert_in_ci(model.response, batch_means(latency), "Triton batching mean response")
    assert np.isfinite(model.wait)


@pytest.mark.parametrize(
    ("alpha", "beta", "n", "load"),
    [
        (0.0, 10.0, 1, 0.5),
        (20.0, 2.0, 8, 0.3),
        pytest.param(54.0, 5.0, 16, 0.85, marks=pytest.mark.slow),  # about 25 s
    ],
)
def test_distribution_integrates_to_the_means(
    alpha: float, beta: float, n: int, load: float
) -> None:
    lam = load * n / (alpha + beta * n)
    rt = BulkResponseTime(alpha, beta, n, 11 * n, lam)
    hi = 20 * rt.metrics.response
    t = np.linspace(0.0, hi, 1501)
    # E[R] = ∫ P(R > t) dt; the survival jumps (fixed batch times): the trapezoid's error
    assert np.trapezoid(rt.survival(t), t) == pytest.approx(rt.metrics.response, rel=5e-3)
    assert np.trapezoid(rt.wait_survival(t), t) == pytest.approx(
        rt.metrics.wait, rel=5e-3, abs=1e-3
    )
    assert rt.survival([hi])[0] < 1e-6
    assert np.all(np.diff(rt.survival(t)) <= 1e-12)


def test_md1_wait_is_positive_with_probability_rho() -> None:
    rho, s = 0.6, 10.0
    rt = BulkResponseTime(0.0, s, 1, 2000, rho / s)
    assert rt.wait_survival([0.0])[0] == pytest.approx(rho, rel=1e-6)
    assert rt.survival([s - 1e-9])[0] == pytest.approx(1.0)


@pytest.mark.parametrize("beta", [5e-324, 1e-310])
def test_a_subnormal_beta_is_the_limit_of_a_small_one(beta: float) -> None:
    """rest/β overflows to ±inf, which is the right answer, silently (warnings are errors)."""
    t = np.linspace(0.0, 200.0, 401)
    tiny = BulkResponseTime(10.0, beta, 4, 44, 0.2)
    small = BulkResponseTime(10.0, 1e-300, 4, 44, 0.2)
    np.testing.assert_array_equal(tiny.survival(t), small.survival(t))


@pytest.mark.slow
@pytest.mark.parametrize("load", [0.3, 0.8])
def test_p95_matches_the_emulator(load: float) -> None:
    alpha, beta, n = 20.0, 2.0, 8
    lam = load * n / (alpha + beta * n)
    latency = _emulated_latency(alpha, beta, n, lam, requests=400_000, seed=5)
    rt = BulkResponseTime(alpha, beta, n, 11 * n, lam)
    model_p95 = quantile(rt.survival, 0.95, rt.metrics.response)
    assert model_p95 == pytest.approx(float(np.quantile(latency, 0.95)), rel=0.02)
    # through the operating points: what sizing and the percentile reports use
    pts = OperatingPoints.of([BatchProfile(alpha, beta, n)], [Tokens()], max_queue=[10 * n])
    assert quantile(pts.response_time(0, lam).survival, 0.95, 50.0) == pytest.approx(model_p95)


def test_a_server_that_almost_never_batches_has_the_idle_distribution() -> None:
    """Arrivals so rare that no batch state carries weight: every request runs alone."""
    from inferno.model.bulk import BulkResponseTime

    d = BulkResponseTime(alpha=10.0, beta=1.0, n=4, k=8, rate=1e-15)
    assert d.survival([5.0, 10.5, 12.0]).tolist() == pytest.approx([1.0, 1.0, 0.0], abs=1e-12)
    assert d.wait_survival([0.0]).tolist() == [0.0]
