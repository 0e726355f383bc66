"""The accurate model's N = 1 queue, the exact M/G/1/K (inferno.model._accurate_single), against
closed forms and a simulated M/G/1/K, and through the accurate points."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from inferno.model import _accurate_core as core
from inferno.model._accurate_queue import matched_log_ratio, queue_factor, truncated_geometric
from inferno.model._accurate_single import MAX_RHO, MAX_ROOM, single_queue
from inferno.model.accurate import AccuratePoints
from inferno.model.profiles import G1Profile, G2Profile, Tokens


def _one(rho: float, cs2: float, room: int, lognormal: bool = False) -> tuple[float, float, float]:
    at, p0, p_k, lq = single_queue(
        np.array([rho]), np.array([1.0]), np.array([cs2]), np.array([lognormal]), np.array([room])
    )
    assert at.tolist() == [0]
    return float(p0[0]), float(p_k[0]), float(lq[0])


def _simulated(rho: float, cs2: float, k: int, n: int, seed: int) -> tuple[float, float]:
    """(mean wait of the admitted, blocking) of M/G/1/K, lognormal (or fixed at c² = 0)
    services of mean 1, the first 10% of arrivals dropped as warm-up."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rho, n))
    if cs2 > 0:
        s2 = math.log1p(cs2)
        services = rng.lognormal(-s2 / 2.0, math.sqrt(s2), n)
    else:
        services = np.ones(n)
    leaving: deque[float] = deque()
    free, waits, blocked, counted = 0.0, [], 0, 0
    for i in range(n):
        t = arrivals[i]
        while leaving and leaving[0] <= t:
            leaving.popleft()
        warm = i >= n // 10
        counted += warm
        if len(leaving) >= k:
            blocked += warm
            continue
        start = max(free, t)
        if warm:
            waits.append(start - t)
        free = start + services[i]
        leaving.append(free)
    return float(np.mean(waits)), blocked / counted


@pytest.mark.parametrize("rho", [0.3, 0.8, 1.5])
def test_exponential_services_are_m_m_1_k(rho: float) -> None:
    """Gamma services of SCV 1 are exponential: p_n ∝ ρⁿ on 0..K, to the services' bins (the
    accurate model leaves exponential services to the geometric queue, which is this exactly)."""
    room = 10
    p0, p_k, lq = _one(rho, 1.0, room)
    weights = rho ** np.arange(room + 2)
    p = weights / weights.sum()
    assert p0 == pytest.approx(p[0], rel=3e-3)
    assert p_k == pytest.approx(p[-1], rel=3e-2)
    assert lq == pytest.approx(float(np.arange(room + 2) @ p) - (1.0 - p[0]), rel=2e-3)


@pytest.mark.parametrize(("rho", "cs2"), [(0.5, 2.25), (0.7, 2.25), (0.85, 2.25), (0.7, 0.0)])
def test_the_queue_is_the_simulated_m_g_1_k(rho: float, cs2: float) -> None:
    """Lognormal (and fixed) services, K = 11: the mean wait of the admitted within 4% and the
    blocking within 10% of a simulation, where the geometric queue it replaces is 7–10% high
    on the wait and its blocking 0.3–0.75 of the true one with the lognormal."""
    room = 10
    p0, p_k, lq = _one(rho, cs2, room, lognormal=cs2 > 0)
    wait = lq / (rho * (1.0 - p_k))
    runs = [_simulated(rho, cs2, room + 1, 400_000, seed) for seed in (1, 2, 3)]
    sim_wait = float(np.mean([r[0] for r in runs]))
    sim_blocked = float(np.mean([r[1] for r in runs]))
    assert wait == pytest.approx(sim_wait, rel=0.04)
    if sim_blocked > 1e-3:
        assert p_k == pytest.approx(sim_blocked, rel=0.10)
    assert 0.0 < p0 < 1.0
    if cs2 > 1.0:  # what it replaces: +7.4% to +10.4% on the wait, blocking 0.31–0.74 of it
        geometric_wait, geometric_blocked = _geometric(rho, cs2, room)
        assert 1.05 < geometric_wait / sim_wait < 1.15
        assert geometric_blocked < 0.8 * sim_blocked


def _geometric(rho: float, cs2: float, room: int) -> tuple[float, float]:
    """(mean wait of the admitted, blocking) of the geometric queue at N = 1 (service mean 1):
    the chain's P(busy) with the queue geometric of the ratio that gives Pollaczek–Khinchine's
    untruncated mean, truncated at M (docs/model.md, "Accurate mode" item 3)."""
    log_r = np.log(np.array([rho]))
    busy = rho * np.sum(rho ** np.arange(room + 1))
    p_tail = busy / (1.0 + busy)
    log_r2 = matched_log_ratio(log_r, queue_factor(np.array([cs2]), log_r, np.ones(1)))
    mean_j, top = truncated_geometric(log_r2, np.array([float(room)]))
    blocked = p_tail * float(top[0])
    return p_tail * float(mean_j[0]) / (rho * (1.0 - blocked)), blocked


def test_rows_beyond_the_exact_range_are_left_to_the_geometric_queue() -> None:
    rho = np.array([0.5, 0.5, MAX_RHO * 1.5, 0.5])
    room = np.array([10.0, MAX_ROOM + 1.0, 10.0, 0.0])
    at, *_ = single_queue(rho, np.ones(4), np.full(4, 2.25), np.ones(4, dtype=bool), room)
    assert at.tolist() == [0]


def test_a_one_request_replica_with_lognormal_lengths_queues_less_than_the_geometric(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the accurate points: G1 at N = 1 (K = 11), lognormal output lengths of CV 1.5 at
    70% of its capacity — the exact queue's wait is below the geometric queue's (which truncates
    Pollaczek–Khinchine's infinite queue), and its blocking above; with exponential lengths the
    service is nearly exponential (its prefill is fixed) and the two queues nearly agree."""
    prof = G1Profile(6.9, 0.08, 12.1, 0.002, 1, 1.0)

    def metrics() -> tuple[np.ndarray, np.ndarray]:
        pts = AccuratePoints.of_accurate(
            [prof, prof],
            [Tokens(128, 128)] * 2,
            out_cv=[1.5, 1.0],
            out_dist=["lognormal", None],
            batch=[1, 1],
            max_queue=[11, 11],
        )
        tau = pts.metrics(np.full(2, 1e-9)).service
        m = pts.metrics(0.7 / tau)
        return m.wait, m.blocking

    wait, blocking = metrics()
    monkeypatch.setattr(core, "single_queue", _nothing)
    wait_geometric, blocking_geometric = metrics()
    assert wait[0] < 0.95 * wait_geometric[0]
    assert blocking[0] > 1.2 * blocking_geometric[0]
    assert wait[1] == pytest.approx(wait_geometric[1], rel=5e-3)
    assert blocking[1] == pytest.approx(blocking_geometric[1], rel=2e-2)


def _nothing(lam: np.ndarray, *_: object) -> tuple[np.ndarray, ...]:
    """:func:`single_queue` leaving every row to the geometric queue."""
    return np.zeros(0, dtype=np.intp), np.zeros(0), np.zeros(0), np.zeros(0)


def test_a_service_quadratic_in_the_length_keeps_the_geometric_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """G2 at N = 1 with lognormal lengths: its own KV makes the service quadratic in the
    length, not of the lengths' family, so its queue stays the geometric one."""
    prof = G2Profile(12.0, 0.05, 5e-4, 1)

    def wait() -> float:
        pts = AccuratePoints.of_accurate(
            [prof], [Tokens(128, 512)], out_cv=[1.5], out_dist=["lognormal"], batch=[1]
        )
        tau = pts.metrics(np.full(1, 1e-9)).service
        return float(pts.metrics(0.7 / tau).wait[0])

    exact = wait()
    monkeypatch.setattr(core, "single_queue", _nothing)
    assert exact == wait()
