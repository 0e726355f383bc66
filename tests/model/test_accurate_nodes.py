"""The G2 composition's nodes evaluated together (inferno.model._accurate_nodes) and the accurate
points' subsets taken when evaluated: the same numbers as the node-by-node evaluation before them
(values pinned from that code), as :func:`_accurate_core.evaluate` at each rate, and where the
running product overflows."""

from __future__ import annotations

import numpy as np
import pytest

from inferno.model import _accurate_build as build
from inferno.model import _accurate_composition as composition
from inferno.model import _accurate_core as core
from inferno.model import _accurate_nodes as nodes
from inferno.model import _accurate_spread as spread
from inferno.model._accurate_queue import queue_factor
from inferno.model._kinds import KindArrays
from inferno.model.accurate import AccuratePoints
from inferno.model.profiles import G2Profile, Tokens
from inferno.model.sizing import SloArrays, size

#: Free-mixtral_8_7b of bench/accurate_cost.py's g2exp on MI300X, and a small fast model
MIXTRAL = G2Profile(11.18, 0.908, 2.956e-3, 19)
SMALL = G2Profile(12.0, 0.05, 5e-4, 32)
#: profile, N, output-length CV, input tokens (512 output tokens each); K = 10 N
ROWS = [
    (MIXTRAL, 4, 1.0, 128),
    (MIXTRAL, 19, 1.0, 128),
    (MIXTRAL, 19, 1.5, 128),
    (MIXTRAL, 38, 1.0, 128),
    (SMALL, 32, 1.0, 128),
    (SMALL, 32, 1.0, 128),
    (MIXTRAL, 19, 1.0, 0),  # no prefill stalls, in a block with rows that stall
]
#: the rates (/ms): 0.80, 0.93, 0.99, 0.97, 0.90, 0.999 and 0.95 of each point's capacity
RATES = [
    0.00023139233018098956,
    0.00045542669148000014,
    0.0003880959916195885,
    0.0005233678765213582,
    0.0022475610834956027,
    0.002494792802680119,
    0.0005920418484151244,
]
#: computed with the code before the nodes were evaluated together (commit 24d7e6a: one
#: _accurate_core.evaluate per node), at RATES; wait_sf at 5 s, response_sf at 60 s; with
#: that code's queue factor above c_s² = 1, which the test puts back
BEFORE = {
    "wait": [
        10491.296156438031,
        20730.016535167008,
        179045.546071507,
        52583.36911118146,
        1785.642169458193,
        58932.28167912325,
        30491.33886283508,
    ],
    "ttft": [
        10654.888996432956,
        20971.972032378926,
        179339.99185802523,
        52933.00480189382,
        1837.8864296205832,
        58988.01254525556,
        30545.749319332623,
    ],
    "blocking": [
        6.610986941252032e-05,
        8.763508743868872e-05,
        0.002833714774837332,
        0.00011298822483952665,
        3.2999049365694514e-06,
        0.002564514313565408,
        0.00037219754199491374,
    ],
    "held": [
        5.425968113698929,
        24.64467783697706,
        87.5645726391524,
        59.67734199646385,
        30.703366631377424,
        178.45187667533008,
        34.53363845775626,
    ],
    "wait_sf": [
        0.417713651087048,
        0.4208677538274343,
        0.8672290031935739,
        0.5245541158893241,
        0.11983594011528385,
        0.9241837609739127,
        0.5451000014999555,
    ],
}
RESPONSE_SF_BEFORE = [
    0.06760189966916696,
    0.32230231675434207,
    0.8177880279983031,
    0.5999083682615514,
    0.008671541910194897,
    0.5770150380100778,
    0.34184857819190184,
]
#: λ* with a 20 s mean TTFT and a 4 s p95 wait (all bound by the wait)
RATE_STAR_BEFORE = [
    0.0001546353256866764,
    0.0003909253647842661,
    0.00028402657595293904,
    0.00046178891759665695,
    0.0022148685541214606,
    0.0022148685541214606,
    0.0004908521744000805,
]


def _points() -> AccuratePoints:
    return AccuratePoints.of_accurate(
        [r[0] for r in ROWS],
        [Tokens(r[3], 512) for r in ROWS],
        out_cv=[r[2] for r in ROWS],
        batch=[r[1] for r in ROWS],
        max_queue=[10 * r[1] for r in ROWS],
    )


def _allen_cunneen_above_one(cs2: np.ndarray, log_r: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The queue factor the pinned values were computed with: Allen–Cunneen's (1 + c_s²)/2
    above c_s² = 1 (now Kimura's interpolation, tests/model/test_accurate_queue.py)."""
    out: np.ndarray = np.where(cs2 < 1.0, queue_factor(cs2, log_r, n), 0.5 * (1.0 + cs2))
    return out


def _one_correlation_time(blk: core.AccurateBlock, lam: np.ndarray) -> tuple[np.ndarray, ...]:
    """The composition the pinned values were computed with: σ·√g(W/T), one correlation time
    T for every member, and the skewness of the lengths' gamma moments (now the shot noise of
    tests/model/test_accurate_episodes.py)."""
    return composition.effective_spread(blk, lam), blk.skew


def _cornish_fisher(skew: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nodes the pinned values were computed with: Cornish–Fisher's on Gauss–Hermite's
    (now the translated gamma's)."""
    x, w = np.polynomial.hermite_e.hermegauss(7)
    z = x + skew[:, None] / 6.0 * (x * x - 1.0)
    return z, np.broadcast_to(w / w.sum(), z.shape)


def _joins_of_a_decode_iteration(
    lam: np.ndarray, decode: np.ndarray, pre0: np.ndarray, pre1: np.ndarray, room: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The joins the pinned values were computed with: λ·D(b) per iteration, whatever the
    iteration before (now the arrivals during the last iteration, decode or prefill)."""
    j = np.broadcast_to(lam * decode, np.broadcast_shapes(np.shape(lam * decode), np.shape(room)))
    q = -np.expm1(-j)
    return q, pre0 + pre1 * np.where(q > 1e-12, j / np.maximum(q, 1e-300), 1.0)


def _own_kv_only(
    p: KindArrays,
    n: np.ndarray,
    scv: np.ndarray,
    d_full: np.ndarray,
    in_scv: np.ndarray | None = None,
    in_lognormal: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The service SCV's factor the pinned values were computed with: the request's own KV
    alone at every N, S(o) = (o + 1)(a + ½γo) (now the work it brings the batch, N·½γo)."""
    args = (scv, d_full, in_scv, in_lognormal)
    sigma, skew, kappa, _ = spread.composition(p, n, *args)
    return sigma, skew, kappa, spread.composition(p, np.ones_like(n), *args)[3]


def test_the_values_before_the_nodes_were_evaluated_together_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in (core, nodes):
        monkeypatch.setattr(module, "queue_factor", _allen_cunneen_above_one)
    monkeypatch.setattr(composition, "effective_composition", _one_correlation_time)
    monkeypatch.setattr(composition, "skewed_nodes", _cornish_fisher)
    monkeypatch.setattr(build, "composition", _own_kv_only)
    monkeypatch.setattr(core, "prefill_joins", _joins_of_a_decode_iteration)
    pts = _points()
    lam = np.array(RATES)
    m = pts.metrics(lam, wait_beyond=np.full(len(ROWS), 5000.0))
    for name, before in BEFORE.items():
        np.testing.assert_allclose(getattr(m, name), before, rtol=1e-9, atol=0, err_msg=name)
    response = [float(pts.response_time(i, RATES[i]).survival([60_000.0])[0]) for i in range(7)]
    np.testing.assert_allclose(response, RESPONSE_SF_BEFORE, rtol=1e-9, atol=0)
    # the composition acts on every one of these points: its 7 nodes all weigh in
    nodes_used = np.zeros(len(ROWS))
    for idx, st in pts.states(lam):
        nodes_used[idx] = (st.part_p > 0).sum(axis=1)
    assert nodes_used.tolist() == [7] * len(ROWS)
    # λ* is searched to a relative 1e-8 (inferno.model.sizing._RTOL): two searches of functions
    # equal to 1e-13 may stop anywhere in that bracket, so within twice it
    nan = np.full(len(ROWS), np.nan)
    full = np.full(len(ROWS), 1.0)
    slo = SloArrays(nan, 20_000.0 * full, 4_000.0 * full, nan, nan, nan, nan, 0.95 * full)
    sized = size(pts, slo)
    assert list(sized.bound) == ["ttw"] * len(ROWS)
    np.testing.assert_allclose(sized.rate, RATE_STAR_BEFORE, rtol=2e-8, atol=0)


def _block(n: list[int], inputs: int = 128) -> core.AccurateBlock:
    c = len(n)
    pts = AccuratePoints.of_accurate(
        [G2Profile(11.18, 0.908, 2.956e-3, k) for k in n],
        [Tokens(inputs, 512)] * c,
        out_cv=[1.0] * c,
        batch=n,
        max_queue=[10 * k for k in n],
    )
    ((_, blk),) = pts._acc
    return blk


@pytest.mark.parametrize("inputs", [128, 0])  # prefill stalls; none (the block's static arrays)
def test_each_node_is_the_central_evaluation_at_its_rate(inputs: int) -> None:
    blk = _block([19, 21, 25, 30, 38], inputs)
    cap = core.capacity(blk)
    rows = np.array([4, 0, 2, 2], dtype=np.intp)  # any order, repeats allowed
    lam = cap[rows, None] * np.array([[0.3, 0.6, 0.9, 0.97, 1.0, 1.1, 1.4]])
    got = nodes.queue_at(blk, rows, lam)
    sub = blk.take(rows, same_width=True)
    for k in range(lam.shape[1]):
        st = core.evaluate(sub, np.ascontiguousarray(lam[:, k]), detail=False)
        want = (st.p_queue, st.queue_mean, st.queue_rate, st.blocking)
        names = ("p_queue", "queue_mean", "queue_rate", "blocking")
        for name, g, w in zip(names, got, want, strict=True):
            np.testing.assert_allclose(g[:, k], w, rtol=1e-9, atol=1e-300, err_msg=name)


def test_a_head_beyond_the_floating_point_range_is_summed_in_logs() -> None:
    """A large batch lightly loaded: p(0)/p(N − 1) overflows the running product, and those
    rows are evaluated as the central evaluation does, in logs."""
    blk = _block([2000])
    rows = np.zeros(2, dtype=np.intp)
    lam = core.capacity(blk)[rows, None] * np.array([[0.05], [0.9]])
    head = nodes._head_sum(blk, rows, lam)
    assert not np.isfinite(head[0, 0]) and np.isfinite(head[1, 0])
    got = nodes.queue_at(blk, rows, lam)
    for i in range(2):
        st = core.evaluate(blk, lam[i], detail=False)
        want = (st.p_queue, st.queue_mean, st.queue_rate, st.blocking)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g[i], w, rtol=1e-9, atol=1e-300)


def test_a_subset_of_a_subset_takes_the_same_block_from_the_first() -> None:
    pts = AccuratePoints.of_accurate(
        [G2Profile(11.18, 0.908, 2.956e-3, k) for k in (19, 21, 25, 30)],
        [Tokens(128, 512)] * 4,
        out_cv=[1.0, 1.5, 1.0, 0.5],
        batch=[19, 21, 25, 30],
        max_queue=[190, 210, 250, 300],
    )  # one block; the second subset's largest N (25) is below the first's (30)
    first = np.array([3, 1, 1, 2, 0, 2], dtype=np.intp)
    second = np.array([2, 1, 5], dtype=np.intp)
    for same_width in (False, True):
        lazy = pts.subset(first).subset(second, same_width=same_width)
        ((_, whole),) = pts._acc
        want = whole.take(first).take(second, same_width=same_width)
        ((_, got),) = lazy._acc
        for name in core.AccurateBlock.__dataclass_fields__:
            if name != "static":
                np.testing.assert_array_equal(getattr(got, name), getattr(want, name), name)
        lam = 0.95 * lazy.mu_n
        eager = AccuratePoints(lazy._base, [(np.arange(3), want)], lazy.mu_n)
        assert lazy.metrics(lam).wait.tolist() == eager.metrics(lam).wait.tolist()
