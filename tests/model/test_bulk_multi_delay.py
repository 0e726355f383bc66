"""c model instances with a batching delay (inferno/model/bulk_multi_delay.py and its
distributions, bulk_multi_delay_time.py): what the chain must reduce to, its room, and its
distribution's consistency. The emulator checks are in tests/emulator/test_serving_config.py."""

from __future__ import annotations

import numpy as np
import pytest

from inferno.model import bulk_instances, bulk_multi, bulk_multi_delay
from inferno.model.bulk_delay import delay_metrics
from inferno.model.bulk_instances import serving_metrics, serving_time
from inferno.model.bulk_multi import multi_chain, multi_metrics
from inferno.model.bulk_multi_delay import delay_chain
from inferno.model.bulk_multi_delay_time import MultiDelayTime

ALPHA, BETA, N = 20.0, 2.0, 8
KAPPA = (1.0, 1.2, 1.35, 1.5)


def _rate(load: float, c: int) -> float:
    return load * c * N / (KAPPA[c - 1] * (ALPHA + BETA * N))


@pytest.mark.parametrize("load", [0.3, 0.9])
def test_no_delay_is_the_no_delay_chain(load: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """D = 0 closes every window at once: on the same grid, c = 2 is bulk_multi's chain (one
    other instance, so both split its residual the same way) to rounding."""
    monkeypatch.setattr(bulk_multi_delay, "DELAY_GRID", dict(bulk_multi.GRID))
    lam = _rate(load, 2)
    a = multi_metrics(multi_chain(ALPHA, BETA, N, 11 * N, lam, 2, KAPPA[1]))
    b = multi_metrics(delay_chain(ALPHA, BETA, N, 11 * N, lam, 2, KAPPA[1], 0.0).chain)
    assert b.response == pytest.approx(a.response, rel=1e-9)
    assert b.throughput == pytest.approx(a.throughput, rel=1e-9)
    assert b.avg_batch == pytest.approx(a.avg_batch, rel=1e-9)


@pytest.mark.parametrize(("load", "d_mult"), [(0.3, 0.5), (0.6, 1.0), (0.9, 0.5), (0.95, 3.0)])
def test_one_instance_is_the_single_instance_delay_chain(load: float, d_mult: float) -> None:
    """c = 1: no other instance runs on, and the chain is bulk_delay's but for how each takes
    the age of a request a full batch left behind (both approximate it)."""
    lam = _rate(load, 1)
    delay = d_mult * (ALPHA + BETA * N)
    ref, _ = delay_metrics(ALPHA, BETA, N, 11 * N, lam, delay)
    got = multi_metrics(delay_chain(ALPHA, BETA, N, 11 * N, lam, 1, 1.0, delay).chain)
    assert got.response == pytest.approx(ref.response, rel=0.003)
    assert got.throughput == pytest.approx(ref.throughput, rel=1e-6)


def test_a_longer_delay_forms_larger_batches_at_low_load() -> None:
    lam = _rate(0.3, 3)
    short, long = (
        serving_metrics(ALPHA, BETA, N, 11 * N, lam, delay=d, instances=3, kappa=KAPPA[2])
        for d in (5.0, 60.0)
    )
    assert long.avg_batch > short.avg_batch
    assert long.response > short.response  # at 30 % load the wait for a fuller batch costs


@pytest.mark.parametrize(("n", "c"), [(8, 2), (16, 3), (64, 3), (32, 4)])
def test_a_window_s_next_multiset_depends_on_its_batch_only_through_the_grid_point(
    n: int, c: int
) -> None:
    """What summing a window's terms per grid point (_by_point) rests on: every (b', end) whose
    τ(b') lands on point g leads, from each (multiset, shift), to the same next multiset, and
    each b' ≥ 1 spreads a weight of one over its points."""
    from inferno.model.bulk_multi import _split

    tau = KAPPA[c - 1] * (ALPHA + BETA * np.arange(n + 1, dtype=np.float64))
    m = bulk_multi_delay.DELAY_GRID[c]
    _, nxt, bw = bulk_multi_delay._multisets(tuple(tau.tolist()), n, c, m)
    weight, nxt_g = bulk_multi_delay._by_point(tuple(tau.tolist()), n, c, m)
    b_lo, b_hi, _ = _split(tau / (float(tau[n]) / m))
    checked = 0
    for jj, pts in enumerate((b_lo, b_hi)):
        for b in range(1, n + 1):
            if bw[b, jj] > 0:
                assert np.array_equal(nxt[:, :, b, jj], nxt_g[:, :, pts[b]])
                checked += 1
    assert checked > n  # both ends of most batches
    assert np.allclose(weight[1:].sum(axis=1), 1.0) and not weight[0].any()


@pytest.mark.parametrize("load", [0.3, 0.85, 0.97])
def test_the_partial_room_gives_the_whole_room_s_means(load: float) -> None:
    c, kappa = 3, KAPPA[2]
    lam, delay = _rate(load, c), 20.0
    bulk_instances.clear_memo()
    part = delay_chain(ALPHA, BETA, N, 11 * N, lam, c, kappa, delay).chain
    args = (np.array(kappa * (ALPHA + BETA * np.arange(N + 1))), N, lam, c)
    m = bulk_multi_delay.DELAY_GRID[c]
    tau = args[0]
    res, nxt, bw = bulk_multi_delay._multisets(tuple(tau.tolist()), N, c, m)
    whole = bulk_multi_delay._solve(tau, N, lam, c, m, delay, res, nxt, bw, 10 * N).chain
    a, b = multi_metrics(part), multi_metrics(whole)
    assert a.response == pytest.approx(b.response, rel=1e-8)
    assert a.throughput == pytest.approx(b.throughput, rel=1e-8)
    if load < 0.5:
        assert part.qmax < whole.qmax


def test_a_room_smaller_than_a_batch_is_refused_and_falls_back() -> None:
    with pytest.raises(ValueError, match="waiting room"):
        delay_chain(ALPHA, BETA, N, N + 4, 0.1, 2, 1.2, 10.0)
    # the entry point then runs the virtual instance, as for c > 4
    m = serving_metrics(ALPHA, BETA, N, N + 4, 0.1, delay=10.0, instances=2, kappa=1.2)
    v = serving_metrics(
        ALPHA, BETA, N, N + 4, 0.1, delay=10.0, instances=2, kappa=1.2, virtual=True
    )
    assert m == v


@pytest.mark.parametrize(("c", "load"), [(2, 0.3), (3, 0.9), (4, 0.6)])
def test_the_distribution_integrates_to_the_means(c: int, load: float) -> None:
    lam = _rate(load, c)
    rt = serving_time(ALPHA, BETA, N, 11 * N, lam, delay=25.0, instances=c, kappa=KAPPA[c - 1])
    assert isinstance(rt, MultiDelayTime)
    t = np.linspace(0.0, 15.0 * rt.metrics.response, 3001)
    assert np.trapezoid(rt.survival(t), t) == pytest.approx(rt.metrics.response, rel=0.01)
    assert np.trapezoid(rt.wait_survival(t), t) == pytest.approx(rt.metrics.wait, rel=0.02)
    sf = rt.survival(t)
    assert np.all(np.diff(sf) <= 1e-12) and sf[0] == pytest.approx(1.0)


def test_the_memo_tells_the_delays_apart() -> None:
    bulk_instances.clear_memo()
    lam = _rate(0.6, 2)
    a = serving_metrics(ALPHA, BETA, N, 11 * N, lam, delay=10.0, instances=2, kappa=1.2)
    b = serving_metrics(ALPHA, BETA, N, 11 * N, lam, delay=40.0, instances=2, kappa=1.2)
    c = serving_metrics(ALPHA, BETA, N, 11 * N, lam, instances=2, kappa=1.2)
    assert len({a.response, b.response, c.response}) == 3


@pytest.mark.parametrize("c", [2, 3, 4])
def test_the_coarser_grid_moves_the_means_little(c: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """DELAY_GRID (coarser than bulk_multi.GRID, to keep a solve affordable) against GRID: the
    mean response within 0.2 % near saturation, with a delay of half a batch."""
    lam = _rate(0.9, c)
    delay = 0.5 * KAPPA[c - 1] * (ALPHA + BETA * N)
    coarse = multi_metrics(delay_chain(ALPHA, BETA, N, 11 * N, lam, c, KAPPA[c - 1], delay).chain)
    monkeypatch.setattr(bulk_multi_delay, "DELAY_GRID", dict(bulk_multi.GRID))
    fine = multi_metrics(delay_chain(ALPHA, BETA, N, 11 * N, lam, c, KAPPA[c - 1], delay).chain)
    assert bulk_multi_delay.DELAY_GRID[c] >= 10
    assert coarse.response == pytest.approx(fine.response, rel=2e-3)
    assert coarse.response != fine.response  # two grids, not one
