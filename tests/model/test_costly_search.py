"""Sizing points whose every evaluation solves a large chain (c > 1 model instances,
inferno/model/bulk_multi.py without a batching delay, bulk_multi_delay.py with one): the search
climbs the probe rungs instead of starting at saturation — with a delay, rungs around the λ* of
the virtual instance — and finds the same λ* as the plain search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from inferno.model import bulk_instances, bulk_multi, sizing
from inferno.model._latency_quantile import GUIDE_BELOW
from inferno.model.points import OperatingPoints
from inferno.model.profiles import BatchProfile, Tokens
from inferno.model.sizing import SloArrays, size

ALPHA, BETA, N = 3.0, 0.6, 32
KAPPA = (1.0, 1.2, 1.35)


def _points(instances: int, delay: float = 0.0, copies: int = 1) -> OperatingPoints:
    profile = BatchProfile(
        ALPHA, BETA, N, queue_delay_ms=delay, instances=instances, contention=KAPPA
    )
    return OperatingPoints.of([profile] * copies, [Tokens()] * copies, batch=[N] * copies)


def _slo(latency: list[float]) -> SloArrays:
    c = len(latency)
    cols = [np.full(c, np.nan) for _ in range(8)]
    cols[3] = np.array(latency)
    return SloArrays.of_columns(cols)


def _load(points: OperatingPoints, latency: float) -> float:
    """The load (fraction of μ(N)) at which the mean latency reaches ``latency``."""
    lam = size(points, _slo([latency]), rtol=1e-6).rate[0]
    return float(lam / points.mu_n[0])


def test_only_chains_solved_per_rate_are_costly() -> None:
    assert _points(3).costly().tolist() == [True]
    assert _points(2, delay=2.0).costly().tolist() == [True]
    assert _points(2, delay=2.0).virtual_instances().costly().tolist() == [False]
    assert _points(3).virtual_instances().costly().tolist() == [True]  # no delay: the chain
    assert _points(1).costly().tolist() == [False]
    assert _points(1, delay=2.0).costly().tolist() == [False]


@pytest.mark.parametrize("latency", [10.0, 20.0, 30.0])
def test_the_rungs_find_the_plain_search_s_rate(
    latency: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Targets binding below the first rung, between the rungs and above the last: the same λ*
    (to the search's precision) as the search from low to saturation."""
    points = _points(3)
    slo = _slo([latency])
    climbed = size(points, slo, rtol=1e-8)
    monkeypatch.setattr(sizing, "PROBE_FRACTIONS", ())
    bulk_instances.clear_memo()
    plain = size(points, slo, rtol=1e-8)
    assert climbed.rate[0] == pytest.approx(plain.rate[0], rel=2 * sizing.COSTLY_RTOL)
    assert climbed.bound[0] == plain.bound[0] == "latency"


def test_the_three_targets_straddle_the_rungs() -> None:
    """The cases above do exercise each bracket: below 0.5, between 0.5 and 0.9, above 0.9."""
    points = _points(3)
    loads = [_load(points, t) for t in (10.0, 20.0, 30.0)]
    assert loads[0] < 0.5 < loads[1] < 0.9 < loads[2] < 0.999


def test_a_target_met_low_is_not_solved_at_saturation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the rungs: a target that binds below half the capacity never solves the
    chain near saturation, where it is largest and slowest."""
    rates: list[float] = []
    real = bulk_multi.multi_chain

    def spy(*args: float, **kwargs: float) -> bulk_multi.MultiChain:
        rates.append(float(args[4]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk_instances, "multi_chain", spy)
    bulk_instances.clear_memo()
    points = _points(3)
    lam = size(points, _slo([10.0]), rtol=1e-6).rate[0]
    top = max(rates) / float(points.mu_n[0])
    assert top == pytest.approx(sizing.PROBE_FRACTIONS[0])
    assert lam / float(points.mu_n[0]) < sizing.PROBE_FRACTIONS[0]


def test_mixed_points_keep_their_own_brackets() -> None:
    """Costly and plain points sized together get the λ* each gets alone."""
    costly, plain = _points(2), _points(1)
    both = OperatingPoints.of(
        [
            BatchProfile(ALPHA, BETA, N, instances=2, contention=KAPPA),
            BatchProfile(ALPHA, BETA, N),
        ],
        [Tokens(), Tokens()],
        batch=[N, N],
    )
    together = size(both, _slo([20.0, 20.0]), rtol=1e-8).rate
    assert together[0] == pytest.approx(size(costly, _slo([20.0]), rtol=1e-8).rate[0], rel=1e-9)
    assert together[1] == pytest.approx(size(plain, _slo([20.0]), rtol=1e-8).rate[0], rel=1e-9)


def test_an_unreachable_target_is_infeasible_without_the_rungs() -> None:
    """A target below a batch of one's time: missed at the low end, no rung tried."""
    s = size(_points(3), _slo([1.0]))
    assert not s.feasible[0]
    assert s.bound[0] == "latency"


# with a delay: rungs around the virtual instance's λ* (sizing.GUIDE_FRACTIONS)
DELAY = 2.0


def _spy_on_the_chain(monkeypatch: pytest.MonkeyPatch, arg: int = 4) -> list[float]:
    """Argument ``arg`` of every delay chain solved from now on, in order: its rate (4) or its
    delay (7: which chain)."""
    seen: list[float] = []
    real = bulk_instances.delay_chain  # type: ignore[attr-defined]

    def spy(*args: float, **kwargs: float) -> object:
        seen.append(float(args[arg]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk_instances, "delay_chain", spy)
    return seen


@pytest.mark.parametrize("latency", [12.0, 20.0, 30.0])
def test_the_guided_rungs_find_the_plain_search_s_rate(
    latency: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = _points(3, delay=DELAY)
    slo = _slo([latency])
    guided = size(points, slo, rtol=1e-8)
    monkeypatch.setattr(sizing, "GUIDE_FRACTIONS", ())
    monkeypatch.setattr(sizing, "PROBE_FRACTIONS", ())
    bulk_instances.clear_memo()
    plain = size(points, slo, rtol=1e-8)
    assert guided.rate[0] == pytest.approx(plain.rate[0], rel=2 * sizing.COSTLY_RTOL)
    assert guided.bound[0] == plain.bound[0] == "latency"


def test_a_guide_above_the_rate_descends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A delay far shorter than a batch behaves as no delay, where the virtual instance is
    optimistic: its λ* is above the chain's, the first rung is missed and the search goes down
    GUIDE_BELOW, to the plain search's λ*."""
    points = _points(3, delay=DELAY)  # D = 2 ms, κ·τ(N) = 30 ms
    slo = _slo([20.0])
    virtual = size(points.virtual_instances(), slo, rtol=1e-8).rate[0]
    guided = size(points, slo, rtol=1e-8)
    assert virtual * sizing.GUIDE_FRACTIONS[0] > guided.rate[0]
    assert guided.rate[0] > virtual * GUIDE_BELOW[-1]  # a rung below was met
    monkeypatch.setattr(sizing, "GUIDE_FRACTIONS", ())
    monkeypatch.setattr(sizing, "PROBE_FRACTIONS", ())
    plain = size(points, slo, rtol=1e-8)
    assert guided.rate[0] == pytest.approx(plain.rate[0], rel=2 * sizing.COSTLY_RTOL)


def test_the_guide_saves_chain_solves(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the guide: fewer solves of the chain than the rungs of μ(N), and none near
    saturation (the largest and slowest) for a target that binds at 92 % of it."""
    rates = _spy_on_the_chain(monkeypatch)
    points = _points(3, delay=15.0)  # half a batch: the virtual instance is pessimistic
    slo = _slo([36.0])
    bulk_instances.clear_memo()
    size(points, slo, rtol=1e-6)
    guided = list(rates)
    rates.clear()
    monkeypatch.setattr(sizing, "GUIDE_FRACTIONS", ())
    bulk_instances.clear_memo()
    size(points, slo, rtol=1e-6)
    assert len(guided) < len(rates)
    assert max(guided) / float(points.mu_n[0]) < 0.95
    assert max(rates) / float(points.mu_n[0]) == pytest.approx(sizing.HIGH_FRACTION)


def test_an_infeasible_guide_falls_back_to_the_rungs() -> None:
    """Where the virtual instance misses even at the low end, the chain is searched from the
    rungs of μ(N) as without a delay (and here is infeasible too)."""
    s = size(_points(3, delay=DELAY), _slo([1.0]))
    assert not s.feasible[0]
    rungs, guide = sizing._rungs(_points(3, delay=DELAY), _slo([1.0]), np.array([True]))
    assert np.isnan(guide[0])
    mu_n = float(_points(3, delay=DELAY).mu_n[0])
    np.testing.assert_allclose(rungs[0, :2], np.array(sizing.PROBE_FRACTIONS) * mu_n)


def _p95_slo(latency: float) -> SloArrays:
    slo = _slo([latency])
    slo.latency_quantile[:] = 0.95
    return slo


def test_a_latency_quantile_is_searched_from_its_guide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A p95 target on a costly point: the search starts from the λ* of the mean at the same
    target (sizing._mean_bound) and finds the rate where P(R > target) = 5%, as the search from
    the low end to saturation does, without solving near saturation."""
    points = _points(3, delay=15.0)
    slo = _p95_slo(40.0)
    rates = _spy_on_the_chain(monkeypatch)
    bulk_instances.clear_memo()
    guided = size(points, slo).rate[0]
    lam_top = max(rates)
    sf = points.response_time(0, guided).survival([40.0])[0]
    assert sf == pytest.approx(0.05, rel=1e-3)
    assert points.response_time(0, guided * 1.001).survival([40.0])[0] > 0.05
    monkeypatch.setattr(sizing, "_mean_bound", lambda p, s, w: np.full(len(p), np.nan))
    bulk_instances.clear_memo()
    rates.clear()
    plain = size(points, slo).rate[0]
    assert guided == pytest.approx(plain, rel=2 * sizing.COSTLY_RTOL)
    assert lam_top < max(rates)  # the plain search went higher


def test_costly_points_are_sized_one_chain_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two chains sized together: every solve of one comes before the other's (so each solve
    borrows the last one's factorisation, _stationary.stationary_from), and each gets the λ* it
    gets alone."""
    delays = _spy_on_the_chain(monkeypatch, 7)
    profiles = [
        BatchProfile(ALPHA, BETA, N, queue_delay_ms=d, instances=3, contention=KAPPA)
        for d in (15.0, 10.0)
    ]
    both = OperatingPoints.of(profiles, [Tokens(), Tokens()], batch=[N, N])
    bulk_instances.clear_memo()
    together = size(both, _slo([36.0, 36.0]))
    assert sorted(set(delays)) == [10.0, 15.0]
    assert _runs(delays) == 2, delays  # one run of solves per chain
    for i in range(2):
        bulk_instances.clear_memo()
        alone = size(both.subset(np.array([i])), _slo([36.0]))
        assert together.rate[i] == pytest.approx(alone.rate[0], rel=1e-9)


def test_the_means_of_many_rows_are_asked_chain_by_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The solver asks the means of every chosen candidate at its replicas' rate at once: rows of
    two chains interleaved are solved chain by chain (by rate), each with its own means."""
    profiles = [
        BatchProfile(ALPHA, BETA, N, queue_delay_ms=d, instances=3, contention=KAPPA)
        for d in (15.0, 10.0, 15.0, 10.0)
    ]
    points = OperatingPoints.of(profiles, [Tokens()] * 4, batch=[N] * 4)
    lam = points.mu_n * np.array([0.5, 0.6, 0.4, 0.3])
    bulk_instances.clear_memo()
    alone = [
        float(points.subset(np.array([i])).metrics(lam[i : i + 1]).response[0]) for i in range(4)
    ]
    bulk_instances.clear_memo()
    delays = _spy_on_the_chain(monkeypatch, 7)
    together = points.metrics(lam).response
    assert sorted(set(delays)) == [10.0, 15.0] and _runs(delays) == 2, delays
    np.testing.assert_allclose(together, alone, rtol=1e-9)


def _runs(seq: list[float]) -> int:
    """How many runs of equal values ``seq`` has."""
    return 1 + sum(a != b for a, b in itertools.pairwise(seq)) if seq else 0
