"""c model instances without a batching delay (inferno/model/bulk_multi.py): the chain's own
consistency. Against the emulator: tests/emulator/test_serving_config.py and
bench/serving_config_accuracy.py."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from inferno.model import _stationary, bulk_multi, bulk_multi_time
from inferno.model.bulk_instances import clear_memo, serving_metrics, serving_time
from inferno.model.percentiles import quantile

ALPHA, BETA, N = 20.0, 2.0, 8
KAPPA = {2: 1.2, 3: 1.35, 4: 1.5}


def _rate(c: int, load: float, n: int = N) -> float:
    return load * c * n / (KAPPA[c] * (ALPHA + BETA * n))


@pytest.mark.parametrize(
    ("c", "load", "k"), [(2, 0.5, 88), (3, 0.9, 88), (4, 0.7, 40), (2, 1.3, 24)]
)
def test_the_distributions_integrate_to_the_means(c: int, load: float, k: int) -> None:
    rt = serving_time(ALPHA, BETA, N, k, _rate(c, load), instances=c, kappa=KAPPA[c])
    m = rt.metrics
    t = np.linspace(0.0, 30.0 * m.response, 30_001)
    assert np.trapezoid(rt.survival(t), t) == pytest.approx(m.response, rel=2e-3)
    assert np.trapezoid(rt.wait_survival(t), t) == pytest.approx(m.wait, rel=2e-3)
    assert float(rt.wait_survival(np.array([-1.0]))[0]) == 1.0
    # nobody is served faster than a batch of one takes
    assert float(rt.survival(np.array([KAPPA[c] * (ALPHA + BETA) * 0.99]))[0]) == 1.0


@pytest.mark.parametrize(("c", "k"), [(2, 12), (3, 10), (4, 88)])
def test_every_arrival_is_served_or_turned_away(c: int, k: int) -> None:
    """Throughput + blocking = the offered rate, also when the queue's cap (K − N) binds."""
    lam = _rate(c, 1.2)
    m = serving_metrics(ALPHA, BETA, N, k, lam, instances=c, kappa=KAPPA[c])
    assert m.throughput / lam + m.blocking == pytest.approx(1.0, abs=1e-9)
    assert 0.0 < m.blocking < 1.0
    assert m.in_system == pytest.approx(m.throughput * m.response)
    assert 0.0 < m.utilization <= 1.0 + 1e-9
    assert 1.0 <= m.avg_batch <= N


def test_a_light_load_starts_each_request_alone_at_once() -> None:
    lam = _rate(4, 0.01)
    m = serving_metrics(ALPHA, BETA, N, 88, lam, instances=4, kappa=KAPPA[4])
    assert m.wait < 1e-3
    assert m.response == pytest.approx(KAPPA[4] * (ALPHA + BETA), rel=1e-3)


def test_more_instances_at_the_same_rate_wait_less() -> None:
    lam = _rate(2, 0.8)
    waits = [
        serving_metrics(ALPHA, BETA, N, 88, lam, instances=c, kappa=1.0).wait for c in (2, 3, 4)
    ]
    assert waits[0] > waits[1] > waits[2]


@pytest.mark.parametrize("c", [2, 3, 4])
def test_a_finer_grid_moves_the_means_little(c: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The residual times' grid is the chain's one approximation: doubling it moves the mean
    response by less than 1 % (here at 90 % of the capacity, where the queue is longest)."""
    lam = _rate(c, 0.9)
    coarse = serving_metrics(ALPHA, BETA, N, 88, lam, instances=c, kappa=KAPPA[c])
    monkeypatch.setitem(bulk_multi.GRID, c, 2 * bulk_multi.GRID[c] if c < 4 else 18)
    fine = serving_metrics(ALPHA, BETA, N, 88, lam, instances=c, kappa=KAPPA[c])
    assert fine.response == pytest.approx(coarse.response, rel=0.01)
    assert fine.throughput == pytest.approx(coarse.throughput, rel=1e-6)


def test_no_batching_and_constant_batches_are_handled() -> None:
    """N = 1 (an M/D/c queue) and β = 0 (every batch takes α): the grid's points fall on τ."""
    for alpha, beta, n in ((10.0, 1.0, 1), (3.0, 0.0, 8)):
        lam = 0.8 * 3 * n / (1.35 * (alpha + beta * n))
        rt = serving_time(alpha, beta, n, n + 64, lam, instances=3, kappa=1.35)
        m = rt.metrics
        assert m.throughput == pytest.approx(lam, rel=1e-6)
        # N = 1: every batch is one request, 1.35·(α + β); β = 0: every batch takes 1.35·α
        assert m.service == pytest.approx(1.35 * (alpha + beta * (n == 1)), rel=1e-9)
        p95 = quantile(rt.survival, 0.95, 2.0 * m.response, rtol=1e-4)
        assert m.response < p95 < 10.0 * m.response


def test_more_instances_than_the_chain_solves_use_the_virtual_instance() -> None:
    c = bulk_multi.MAX_EXACT_INSTANCES + 1
    m = serving_metrics(ALPHA, BETA, N, 88, 0.1, instances=c, kappa=1.5)
    assert m.throughput == pytest.approx(0.1, rel=1e-6)
    rt = serving_time(ALPHA, BETA, N, 88, 0.1, instances=c, kappa=1.5)
    assert not isinstance(rt, bulk_multi_time.MultiResponseTime)


def test_the_direct_solve_stands_in_when_the_incomplete_lu_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lam = _rate(3, 0.8)
    fast = serving_metrics(ALPHA, BETA, N, 88, lam, instances=3, kappa=KAPPA[3])

    def singular(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("Factor is exactly singular")

    monkeypatch.setattr("scipy.sparse.linalg.spilu", singular)
    clear_memo()  # solve again, not the memoised means
    direct = serving_metrics(ALPHA, BETA, N, 88, lam, instances=3, kappa=KAPPA[3])
    assert direct.response == pytest.approx(fast.response, rel=1e-8)


@pytest.mark.parametrize("load", [0.3, 0.85, 0.97])
def test_the_room_solved_so_far_gives_the_whole_room_s_means(
    load: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The waiting room is solved only as far as the queue reaches (bulk_multi.multi_chain):
    the same means as the whole room, and at light load a fraction of its states."""
    n, k = 16, 16 + 64
    lam = _rate(3, load, n)
    monkeypatch.setattr(bulk_multi, "_ROOMS", {})
    part = bulk_multi.multi_chain(ALPHA, BETA, n, k, lam, 3, KAPPA[3])
    monkeypatch.setattr(bulk_multi, "FIRST_ROOM", 1000)
    whole = bulk_multi.multi_chain(ALPHA, BETA, n, k, lam, 3, KAPPA[3])
    assert whole.qmax == k - n
    a, b = bulk_multi.multi_metrics(part), bulk_multi.multi_metrics(whole)
    assert a.response == pytest.approx(b.response, rel=1e-8)
    assert a.throughput == pytest.approx(b.throughput, rel=1e-9)
    if load < 0.5:
        assert part.qmax < whole.qmax and part.pi.size < whole.pi.size / 2


def test_a_later_solve_starts_from_the_room_a_lower_rate_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk_multi, "_ROOMS", {})
    n, k = 16, 16 + 64
    high = bulk_multi.multi_chain(ALPHA, BETA, n, k, _rate(3, 0.97, n), 3, KAPPA[3])
    solved = _spy_on_the_rooms(monkeypatch)
    bulk_multi.multi_chain(ALPHA, BETA, n, k, _rate(3, 0.98, n), 3, KAPPA[3])
    assert solved == [high.qmax]  # one solve, at the room the lower rate ended with


def test_the_means_are_memoised_per_chain_and_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_memo()
    lam = _rate(2, 0.6)
    first = serving_metrics(ALPHA, BETA, N, 88, lam, instances=2, kappa=KAPPA[2])
    assert serving_metrics(ALPHA, BETA, N, 88, lam, instances=2, kappa=KAPPA[2]) is first
    monkeypatch.setitem(bulk_multi.GRID, 2, 2 * bulk_multi.GRID[2])
    finer = serving_metrics(ALPHA, BETA, N, 88, lam, instances=2, kappa=KAPPA[2])
    assert finer is not first and finer.response != first.response


def _chain16(rate: float, reuse: tuple[object, ...] | None) -> bulk_multi.MultiChain:
    """The c = 2, N = 16 chain at ``rate`` with a room of 48 (``reuse``: its lending key)."""
    n, c = 16, 2
    tau = KAPPA[c] * (ALPHA + BETA * np.arange(n + 1, dtype=np.float64))
    g = bulk_multi._Grid(tau, n, c, rate, bulk_multi.GRID[c])
    return bulk_multi._solve(tau, n, rate, c, g, bulk_multi._multisets(g), 48, reuse)


def _count_factorisations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The incomplete LUs made from now on, counted in the list's one element."""
    from scipy.sparse import linalg

    count = [0]
    real = linalg.spilu

    def spy(*args: object, **kw: object) -> object:
        count[0] += 1
        return real(*args, **kw)

    monkeypatch.setattr(linalg, "spilu", spy)
    return count


def test_a_search_borrows_the_last_solves_factor_and_gets_the_same_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """stationary_from's ``reuse``: solves of one chain and room at nearby rates factorise once
    (the later ones start from the earlier LU and π), and give the fresh solve's π to GMRES's
    precision; a state reached at one rate only and not at the next is kept with π = 0;
    clear_rooms forgets what was kept."""
    monkeypatch.setattr(_stationary, "_LENT", OrderedDict())
    lam = [_rate(2, load, 16) for load in (0.9, 0.94, 0.91, 0.915)]
    fresh = [_chain16(r, None) for r in lam]
    factored = _count_factorisations(monkeypatch)
    borrowed = [_chain16(r, ("test", 48)) for r in lam]
    # the first solve factorises, and a second one at most (where new states were reached)
    assert 1 <= factored[0] <= 2 < len(lam)
    # a first decision timed after clear_rooms borrows nothing kept before it
    factored[0] = 0
    bulk_multi.clear_rooms()
    _chain16(lam[-1], ("test", 48))
    assert factored[0] == 1
    for a, b in zip(fresh, borrowed, strict=True):
        ma, mb = bulk_multi.multi_metrics(a), bulk_multi.multi_metrics(b)
        assert mb.response == pytest.approx(ma.response, rel=1e-9)
        assert mb.blocking == pytest.approx(ma.blocking, rel=1e-6, abs=1e-15)
        # the states reached fresh are among the borrowed ones, with the same π; the rest ~0
        pa = {(*row.tolist(), int(ell)): p for row, ell, p in zip(a.res, a.left, a.pi, strict=True)}
        pb = {(*row.tolist(), int(ell)): p for row, ell, p in zip(b.res, b.left, b.pi, strict=True)}
        assert set(pa) <= set(pb)
        assert max(abs(pb[s] - pa[s]) for s in pa) < 1e-10
        assert sum(pb[s] for s in set(pb) - set(pa)) < 1e-10


def test_a_factorisation_is_lent_across_threads_and_the_store_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The services solve on whichever worker thread is free: a cycle's solve of a chain borrows
    the last cycle's factorisation from another thread; a solve takes its entry out while it runs
    (no two threads share one), and the store drops the least recently kept beyond its bound."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(_stationary, "_LENT", OrderedDict())
    factored = _count_factorisations(monkeypatch)
    with ThreadPoolExecutor(1) as one:
        one.submit(_chain16, _rate(2, 0.6, 16), ("a", 48)).result()
    assert factored[0] == 1 and list(_stationary._LENT) == [("a", 48)]
    with ThreadPoolExecutor(1) as other:  # another thread, the rate moved
        other.submit(_chain16, _rate(2, 0.66, 16), ("a", 48)).result()
    assert factored[0] == 1  # borrowed
    # while a solve holds it, the entry is out of the store
    held = _stationary._kept(("a", 48))
    assert held is not None and ("a", 48) not in _stationary._LENT
    _stationary._keep(("a", 48), *held)
    # bounded by nonzeros: room for one factorisation only, the older one goes
    monkeypatch.setattr(_stationary, "_LENT_NONZEROS", int(held[1].nnz) + 1)
    _chain16(_rate(2, 0.6, 16), ("b", 48))
    assert list(_stationary._LENT) == [("b", 48)]
    assert _stationary.lent() == (1, int(_stationary._LENT["b", 48][1].nnz))


def test_a_lower_rate_starts_from_the_room_a_higher_rate_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A room known to hold the queue at a higher rate holds it at a lower one: the chain is
    solved once, there, rather than from one batch up (the solver asks each replica's means
    below the λ* it was sized at)."""
    n, k = 16, 16 + 256
    lam = _rate(3, 0.5, n)
    # from one batch up, doubling while the room turns arrivals away, as a first solve does
    fresh = _chain_at(n, lam, n)
    while float(fresh.pi @ fresh.lost) > bulk_multi.ROOM_TOL * lam * float(fresh.pi @ fresh.cycle):
        fresh = _chain_at(n, lam, 2 * fresh.qmax)
    monkeypatch.setattr(bulk_multi, "_ROOMS", {})
    bulk_multi.multi_chain(ALPHA, BETA, n, k, _rate(3, 0.01, n), 3, KAPPA[3])  # one batch
    high = bulk_multi.multi_chain(ALPHA, BETA, n, k, _rate(3, 0.9, n), 3, KAPPA[3])
    assert n < high.qmax < k - n
    solved = _spy_on_the_rooms(monkeypatch)
    mid = bulk_multi.multi_chain(ALPHA, BETA, n, k, lam, 3, KAPPA[3])
    assert solved == [high.qmax] and high.qmax > fresh.qmax
    # the same means as the smallest room's, to the room's tolerance
    a, b = bulk_multi.multi_metrics(mid), bulk_multi.multi_metrics(fresh)
    assert a.response == pytest.approx(b.response, rel=1e-8)


def _chain_at(n: int, rate: float, room: int) -> bulk_multi.MultiChain:
    """The c = 3 chain at ``rate`` with ``room`` waiting at most."""
    tau = KAPPA[3] * (ALPHA + BETA * np.arange(n + 1, dtype=np.float64))
    g = bulk_multi._Grid(tau, n, 3, rate, bulk_multi.GRID[3])
    return bulk_multi._solve(tau, n, rate, 3, g, bulk_multi._multisets(g), room)


def _spy_on_the_rooms(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The room of every no-delay chain solved from now on, in order."""
    solved: list[int] = []
    real = bulk_multi._solve

    def spy(*args: object) -> bulk_multi.MultiChain:
        solved.append(int(args[6]))  # type: ignore[call-overload]  # the room
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk_multi, "_solve", spy)
    return solved
