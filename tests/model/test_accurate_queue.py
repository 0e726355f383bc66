"""The accurate model's two-moment queue factor against simulated M/G/c queues
(:func:`inferno.model._accurate_queue.queue_factor`).

The simulation is the textbook one (Kiefer–Wolfowitz): c servers, first come first served, each
arrival starts on the server that frees first. Lognormal services of SCV 2.25 and 4 are the
heavy-tailed kind an LLM server's output lengths give (CV 1.5 and 2)."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from inferno.model._accurate_queue import queue_factor


def _simulated_wait(c: int, rho: float, cs2: float, n: int, seed: int) -> float:
    """Mean wait in M/G/c with lognormal services of mean 1 and SCV ``cs2`` (the first 10% of
    ``n`` arrivals dropped as warm-up)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / (rho * c), n))
    s2 = math.log1p(cs2)
    services = rng.lognormal(-s2 / 2.0, math.sqrt(s2), n)
    free = [0.0] * c
    wait = np.empty(n)
    for i in range(n):
        start = max(heapq.heappop(free), arrivals[i])
        wait[i] = start - arrivals[i]
        heapq.heappush(free, start + services[i])
    return float(wait[n // 10 :].mean())


def _exponential_wait(c: int, rho: float) -> float:
    """M/M/c's mean wait, service mean 1 (Erlang C over cμ(1 − ρ))."""
    a = rho * c
    head = sum(a**k / math.factorial(k) for k in range(c))
    top = a**c / math.factorial(c) / (1.0 - rho)
    return top / (head + top) / (c * (1.0 - rho))


def _factor(cs2: float, rho: float, c: int) -> float:
    return float(queue_factor(np.array([cs2]), np.log(np.array([rho])), np.array([float(c)]))[0])


@pytest.mark.parametrize(("rho", "cs2"), [(0.5, 4.0), (0.7, 2.25), (0.7, 4.0), (0.85, 4.0)])
def test_heavy_tailed_services_at_eight_places(rho: float, cs2: float) -> None:
    """With 8 places a long service holds one and the other 7 go on: the factor is below
    Allen–Cunneen's (1 + c_s²)/2, which over-predicts these queues by a fifth to two thirds,
    and within 12% of the simulated wait (heavy-tailed services make the simulated mean noisy:
    one seed of 300,000 arrivals moves it by up to 15%, so six are averaged)."""
    c = 8
    simulated = np.mean([_simulated_wait(c, rho, cs2, 300_000, seed) for seed in range(1, 7)])
    model = _factor(cs2, rho, c) * _exponential_wait(c, rho)
    allen_cunneen = 0.5 * (1.0 + cs2) * _exponential_wait(c, rho)
    assert model == pytest.approx(simulated, rel=0.12)
    assert abs(model / simulated - 1.0) < abs(allen_cunneen / simulated - 1.0)


def test_one_place_is_pollaczek_khinchine() -> None:
    """At N = 1 the factor is (1 + c_s²)/2 at every load, and so is the simulated M/G/1."""
    for rho in (0.3, 0.7, 0.95):
        for cs2 in (0.0, 0.5, 1.0, 2.25, 9.0):
            assert _factor(cs2, rho, 1) == pytest.approx(0.5 * (1.0 + cs2))
    simulated = _simulated_wait(1, 0.7, 2.25, 150_000, 3)
    assert _factor(2.25, 0.7, 1) * _exponential_wait(1, 0.7) == pytest.approx(simulated, rel=0.10)


def test_the_factor_is_continuous_and_tends_to_allen_cunneen_near_saturation() -> None:
    for c in (2, 8, 32):
        for rho in (0.3, 0.6, 0.9):
            below, above = _factor(1.0 - 1e-9, rho, c), _factor(1.0 + 1e-9, rho, c)
            assert below == pytest.approx(1.0) and above == pytest.approx(1.0)
        for cs2 in (2.25, 4.0):
            assert _factor(cs2, 1.0, c) == pytest.approx(0.5 * (1.0 + cs2))
            # below Allen–Cunneen away from saturation, and less so as the load rises
            low, mid = _factor(cs2, 0.5, c), _factor(cs2, 0.8, c)
            assert low < mid < 0.5 * (1.0 + cs2)


def test_an_enormous_scv_keeps_the_factor_finite() -> None:
    """As c_s² → ∞ the factor tends to 1/(2 − 1/g), finite below saturation (M/G/N's wait stays
    finite for N > 1 when ρ < (N − 1)/N): no overflow to 0 or ∞ at c_s² = 1e308."""
    f = _factor(1e308, 0.5, 8)
    phi = 0.5 * 7 * (math.sqrt(44.0) - 2.0) / (16.0 * 0.5 * 8)
    g = 0.5 * (1.0 + phi)
    assert f == pytest.approx(1.0 / (2.0 - 1.0 / g))
    assert math.isfinite(_factor(1e308, 1.0, 8)) and _factor(1e308, 0.5, 1) > 1e300
