"""The accurate model (inferno.model.accurate): against the emulator on a small grid, its exact
limits (M/D/1, the chain), and the ``model`` option from the data to the solver."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inferno.data import load_system
from inferno.emulator import (
    Exponential,
    Fixed,
    Lengths,
    LogNormal,
    Poisson,
    ServerSpec,
    Simulation,
)
from inferno.errors import InputError
from inferno.model.accurate import AccuratePoints, build_points, lognormal_mask
from inferno.model.points import OperatingPoints
from inferno.model.profile_arrays import ProfileArrays
from inferno.model.profiles import G0Profile, G1Profile, G2Profile, G3Profile, Profile, Tokens
from inferno.model.quantiles import latency_quantiles, ttft_quantiles, wait_quantiles
from inferno.solver import build_candidates, solve_table
from inferno.system import PerformanceModel, System
from inferno.units import MS_PER_MIN

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"


def _emulate(
    profile: Profile,
    n: int,
    tokens: Tokens,
    out: Lengths,
    lam: float,
    k: int,
    requests: int,
    inputs: Lengths | None = None,
) -> dict[str, float]:
    """One replica emulated; ``inputs``: the prompts' lengths (None: all at the mean)."""
    spec = ServerSpec(
        profile,
        Poisson(lam * MS_PER_MIN),
        batch_size=n,
        max_queue=k - n,
        service="deterministic",
        input_tokens=Fixed(int(tokens.in_tokens)) if inputs is None else inputs,
        output_tokens=out,
    )
    sim = Simulation({"s": spec}, seed=17)
    t_end = requests / lam
    sim.run_until(t_end)
    sim.run_until(t_end * 1.5)  # let the measured requests finish
    rec = sim.records("s")
    lo, hi = np.searchsorted(rec.arrival, [0.05 * t_end, t_end])
    ok = (rec.reason[lo:hi] == 0) & np.isfinite(rec.completion[lo:hi])
    arr, done = rec.arrival[lo:hi][ok], rec.completion[lo:hi][ok]
    first, n_out = rec.first_token[lo:hi][ok], rec.output_tokens[lo:hi][ok]
    multi = n_out > 1
    return {
        "lat": float((done - arr).mean()),
        "lat95": float(np.quantile(done - arr, 0.95)),
        "ttft": float((first - arr).mean()),
        "ttft95": float(np.quantile(first - arr, 0.95)),
        "itl": float((done - first)[multi].sum() / (n_out[multi] - 1).sum()),
    }


def _models(
    profile: Profile, n: int, tokens: Tokens, cv: float, rho: float
) -> tuple[dict[str, float], dict[str, float], float, int]:
    chain = OperatingPoints.of([profile], [tokens], batch=[n])
    acc = AccuratePoints.of_accurate([profile], [tokens], out_cv=[cv], batch=[n])
    lam = np.array([rho * float(chain.mu_n[0])])
    out = []
    for pts in (chain, acc):
        m = pts.metrics(lam)
        out.append(
            {
                "lat": float(m.response[0]),
                "lat95": float(latency_quantiles(pts, lam, [0.95])[0, 0]),
                "ttft": float(m.ttft[0]),
                "ttft95": float(ttft_quantiles(pts, lam, 0.95)[0]),
                "itl": float(m.itl[0]),
            }
        )
    return out[0], out[1], float(lam[0]), int(chain.n_max[0])


#: (profile, N, tokens, lengths, CV, ρ, requests, the metrics asserted) — cells where the chain
#: is off by more than the issue's bounds and the accurate model is inside them (bench/accurate.py)
CASES = [
    # join stalls: G1, large batch, short outputs, near the chain's capacity (chain −68% on p95)
    (G1Profile(6.9, 0.08, 12.1, 0.002, 32, 1.0), 32, Tokens(128, 128), Fixed(128), 0.0, 0.95,
     60_000, ("lat95", "ttft95", "itl")),
    # fixed lengths under continuous batching: the chain's p95 is +180% (exponential service)
    (G0Profile(20.58, 0.41, 8, 1.0), 8, Tokens(0, 128), Fixed(128), 0.0, 0.3, 20_000,
     ("lat", "lat95", "ttft", "ttft95", "itl")),
    (G1Profile(6.9, 0.08, 12.1, 0.002, 32, 1.0), 32, Tokens(128, 128), Fixed(128), 0.0, 0.3,
     20_000, ("lat", "lat95", "ttft", "ttft95", "itl")),
    # G3: first token after nc + 1 evenly costed iterations (chain TTFT +240%)
    (G3Profile(16.0, 0.067, 6.67e-4, 8, None, 4096), 8, Tokens(2048, 256), Fixed(256), 0.0,
     0.3, 20_000, ("lat", "lat95", "ttft", "ttft95", "itl")),
    # G2, exponential lengths: length-biased batches and stalls (chain ITL −5%, TTFT −22%)
    (G2Profile(12.0, 0.05, 5e-4, 32), 32, Tokens(128, 128), Exponential(128.0), 1.0, 0.3,
     30_000, ("lat", "lat95", "ttft", "itl")),
]  # fmt: skip
BOUND = {"lat": 0.10, "ttft": 0.10, "itl": 0.10, "lat95": 0.15, "ttft95": 0.15}


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{type(c[0]).__name__}-N{c[1]}-rho{c[5]}" for c in CASES]
)
def test_accurate_model_meets_the_bounds_against_the_emulator(case: tuple) -> None:  # type: ignore[type-arg]
    profile, n, tokens, out, cv, rho, requests, asserted = case
    chain, acc, lam, k = _models(profile, n, tokens, cv, rho)
    sim = _emulate(profile, n, tokens, out, lam, k, requests)
    chain_off = False
    for key in asserted:
        err = (acc[key] - sim[key]) / sim[key]
        assert abs(err) <= BOUND[key], f"{key}: accurate {acc[key]:.4g}, sim {sim[key]:.4g}"
        chain_off |= abs(chain[key] - sim[key]) / sim[key] > BOUND[key]
    assert chain_off, "the case should be one where the chain misses a bound"


@pytest.mark.parametrize("rho", [0.3, 0.6])
def test_a_prefill_iterations_joiners_arrived_during_the_last_iteration(rho: float) -> None:
    """G1 with long prompts whose prefill iteration (γ + δ·in·k: 14 ms) is short beside a
    large batch's decode (α + β·b: 60 ms at b = 200): the requests that join at a boundary
    arrived during the iteration just ended, most often a prefill, so a prefill iteration has
    λ·P̄ joiners, not λ·D(b), and most iterations are cheap prefills. The model that counted
    λ·D(b) had the ITL 11% and 21% short at these loads (of the accurate capacity)."""
    profile = G1Profile(6.29, 0.27, 12.58, 0.00054, 256, 1.0)
    tokens = Tokens(1826, 80)
    acc = AccuratePoints.of_accurate([profile], [tokens], out_cv=[0.0], batch=[256])
    lam = rho * float(acc.mu_n[0])
    sim = _emulate(profile, 256, tokens, Fixed(80), lam, 512, 10_000)
    assert float(acc.metrics(np.array([lam])).itl[0]) == pytest.approx(sim["itl"], rel=0.05)


def test_the_shortest_outputs_set_g3s_ttft_tail() -> None:
    """G3, exponential output lengths, ρ = 0.5: a few percent of the arrivals queue, so TTFT's
    p95 falls among those that do not, in the few whose outputs are shortest: a request's own
    cost δ spreads its prompt's prefill over its nc + o iterations, and with o of a few tokens
    its first nc + 1 iterations carry most of it. The model's own-length nodes are fine in the
    lower tail of the output length for that; with the upper-tail bins of the input lengths the
    p95 was 15% short of the emulator's, now within 6%."""
    profile = G3Profile(16.0, 0.067, 6.67e-4, 8, None, 4096)
    tokens = Tokens(2048, 256)
    chain, acc, lam, k = _models(profile, 8, tokens, 1.0, 0.5)
    sim = _emulate(profile, 8, tokens, Exponential(256.0), lam, k, 150_000)
    assert acc["ttft95"] == pytest.approx(sim["ttft95"], rel=0.06)
    assert acc["lat95"] == pytest.approx(sim["lat95"], rel=0.06)
    assert chain["ttft95"] > 1.5 * sim["ttft95"]  # the chain: exponential service, far off


def test_lognormal_lengths_get_a_lognormal_service_tail() -> None:
    """outTokensDist: lognormal. At CV 1.5 a gamma of the service's mean and variance puts its
    95th percentile 21% above a lognormal's: told only the CV, the model's latency p95 of a
    lightly loaded G0 replica with lognormal lengths misses the emulator's by more than 15%;
    told the family, it is within it. The means do not depend on the family."""
    profile, n, tokens, cv, rho = G0Profile(20.58, 0.41, 8, 1.0), 8, Tokens(0, 128), 1.5, 0.3
    chain = OperatingPoints.of([profile], [tokens], batch=[n])
    lam = np.array([rho * float(chain.mu_n[0])])
    p95, means = {}, {}
    for family in ("gamma", "lognormal"):
        pts = AccuratePoints.of_accurate(
            [profile], [tokens], out_cv=[cv], out_dist=[family], batch=[n]
        )
        p95[family] = float(latency_quantiles(pts, lam, [0.95])[0, 0])
        m = pts.metrics(lam)
        means[family] = (float(m.response[0]), float(m.ttft[0]), float(m.itl[0]))
    assert means["gamma"] == means["lognormal"]
    sim = _emulate(
        profile, n, tokens, LogNormal(128.0, cv), float(lam[0]), int(chain.n_max[0]), 20_000
    )
    assert abs(p95["lognormal"] / sim["lat95"] - 1.0) <= BOUND["lat95"], (p95, sim["lat95"])
    assert p95["gamma"] / sim["lat95"] - 1.0 > BOUND["lat95"], (p95, sim["lat95"])


def wait_quantile(points: OperatingPoints, lam: np.ndarray) -> float:
    return float(wait_quantiles(points, lam, 0.95)[0])


def test_the_first_token_time_depends_on_what_an_arrival_finds() -> None:
    """G3 (2048 input tokens, chunked prefill): a request's prefill chunks cost more when it
    joins a fuller batch, so TTFT is not the wait plus a constant. The model's TTFT p95 is the
    mixture over the occupancy an arrival finds, within 5% of the emulator's (the wait plus the
    mean first-token time, its former TTFT, is 10% short); its mean is unchanged."""
    profile, n, tokens = G3Profile(16.0, 0.067, 6.67e-4, 8, None, 4096), 8, Tokens(2048, 256)
    chain = OperatingPoints.of([profile], [tokens], batch=[n])
    acc = AccuratePoints.of_accurate([profile], [tokens], out_cv=[0.0], batch=[n])
    lam = np.array([0.3 * float(chain.mu_n[0])])
    p95 = float(ttft_quantiles(acc, lam, 0.95)[0])
    m = acc.metrics(lam)
    sim = _emulate(profile, n, tokens, Fixed(256), float(lam[0]), int(chain.n_max[0]), 20_000)
    assert p95 == pytest.approx(sim["ttft95"], rel=0.05)
    former = float(wait_quantile(acc, lam) + (m.ttft[0] - m.wait[0]))
    assert former < 0.93 * sim["ttft95"]
    # the survival is a probability, falling in t, 1 below the fastest first token
    sf = np.array([acc.ttft_sf(lam, np.array([t]))[0] for t in np.linspace(0.0, 3 * p95, 50)])
    assert (np.diff(sf) <= 1e-12).all() and sf[0] == 1.0 and 0.0 <= sf[-1] < 0.01


def test_a_ttft_quantile_target_is_sized_on_the_models_own_ttft_quantile() -> None:
    """slo-ttft-quantile in the accurate mode: at the rate sizing finds, the model's TTFT
    95th percentile (the mixture over the occupancy, not the wait plus a constant) is the
    target, for a G3 and a G2 point; with a target between the two rules' p95, the mixture's
    rate is the lower one."""
    from inferno.model.sizing import SloArrays, size

    profiles: list[Profile] = [
        G3Profile(16.0, 0.067, 6.67e-4, 8, None, 4096),
        G2Profile(12.0, 0.05, 5e-4, 16),
    ]
    tokens = [Tokens(2048, 256), Tokens(128, 256)]
    pts = AccuratePoints.of_accurate(profiles, tokens, out_cv=[1.0, 1.0], batch=[8, 16])
    lam = 0.5 * pts.mu_n
    target = ttft_quantiles(pts, lam, 0.95) * 1.05
    nan = np.full(2, np.nan)
    slo = SloArrays(nan, target, nan, nan, nan, np.full(2, 0.95), nan, nan)
    rate = size(pts, slo).rate
    assert np.all(rate > lam)
    assert ttft_quantiles(pts, rate, 0.95) == pytest.approx(target, rel=1e-3)
    # the former rule (the wait's quantile plus the mean first-token time) is lighter for G3
    m = pts.metrics(rate)
    former = wait_quantiles(pts, rate, 0.95) + (m.ttft - m.wait)
    assert former[0] < 0.97 * target[0]


def test_a_length_family_must_be_known() -> None:
    from inferno.model._accurate_tails import _family_sf

    # the two families of one mean and variance (CV 1.5) part in the tail: a gamma's 95th
    # percentile is 1.21× a lognormal's (4.01 and 3.31 times the mean; docs/model.md)
    t = np.array([3.31, 4.01])
    one, var = np.ones(2), np.full(2, 2.25)
    assert _family_sf(np.ones(2, dtype=bool), one, var, t)[0] == pytest.approx(0.05, abs=1e-3)
    assert _family_sf(np.zeros(2, dtype=bool), one, var, t)[1] == pytest.approx(0.05, abs=1e-3)
    assert lognormal_mask(["gamma", None, "lognormal"]).tolist() == [False, False, True]
    with pytest.raises(ValueError, match="one of gamma, lognormal, got 'weibull'"):
        lognormal_mask(["weibull"])


def test_md1_and_the_chain_are_limits() -> None:
    """N = 1, fixed lengths: the Pollaczek–Khinchine wait of M/D/1 (K large); N = 1 with CV 1
    (geometric-like lengths, G0): the chain itself."""
    profile = G0Profile(20.0, 0.5, 1, 1.0)
    tokens = Tokens(0, 100)
    s = 100 * 20.5
    rho = 0.6
    lam = np.array([rho / s])
    acc = AccuratePoints.of_accurate([profile], [tokens], out_cv=[0.0], batch=[1], max_queue=[4000])
    m = acc.metrics(lam)
    assert m.wait[0] == pytest.approx(rho * s / (2 * (1 - rho)), rel=1e-6)
    assert m.service[0] == pytest.approx(s, rel=1e-9)
    chain = OperatingPoints.of([profile], [tokens], batch=[1])
    same = AccuratePoints.of_accurate([profile], [tokens], out_cv=[1.0], batch=[1])
    a, c = same.metrics(lam), chain.metrics(lam)
    for name in ("response", "wait", "service", "blocking", "utilization"):
        assert getattr(a, name)[0] == pytest.approx(getattr(c, name)[0], rel=1e-9)


@pytest.mark.parametrize("rho", [0.3, 0.7, 0.95])
def test_one_request_at_a_time_waits_for_whole_services(rho: float) -> None:
    """N = 1: a queued request waits for the service in progress and one whole service per
    request ahead. With CV 1 (G0) the chain is M/M/1/K, whose wait is exactly a mixture of
    Erlangs: the accurate model's wait and response percentiles are the chain's (they were 10%
    short at ρ = 0.95 while the queue was taken as a continuous count times a fixed time), and
    with fixed lengths (CV 0) the places take no spread."""
    profile, tokens = G0Profile(20.0, 0.5, 1, 1.0), Tokens(0, 100)
    chain = OperatingPoints.of([profile], [tokens], batch=[1])
    same = AccuratePoints.of_accurate([profile], [tokens], out_cv=[1.0], batch=[1])
    lam = np.array([rho * float(chain.mu_n[0])])
    for q in (0.5, 0.95, 0.99):
        exact = float(latency_quantiles(chain, lam, [q])[0, 0])
        assert float(latency_quantiles(same, lam, [q])[0, 0]) == pytest.approx(exact, rel=0.02)
        exact = float(ttft_quantiles(chain, lam, q)[0])
        assert float(ttft_quantiles(same, lam, q)[0]) == pytest.approx(exact, rel=0.02)
    fixed = AccuratePoints.of_accurate([profile], [tokens], out_cv=[0.0], batch=[1])
    (state,) = [st for _, st in fixed.states(lam)]
    assert state.slot_scv[0] == 0.0  # the residual of a fixed service: uniform, SCV 1/3
    (state,) = [st for _, st in same.states(lam)]
    assert state.slot_scv[0] == pytest.approx(1.0, rel=0.05)


def _md1_wait_cdf(t: float, lam: float, d: float) -> float:
    """P(W ≤ t) of M/D/1 (infinite queue; Erlang's formula, fine for t of a few services)."""
    ks = range(int(t // d) + 1)
    return (1.0 - lam * d) * sum(
        (lam * (k * d - t)) ** k / math.factorial(k) * math.exp(-lam * (k * d - t)) for k in ks
    )


@pytest.mark.parametrize("q", [0.9, 0.95])
def test_a_fixed_service_leaves_a_uniform_residual(q: float) -> None:
    """N = 1, fixed lengths, at low load: a queued request mostly waits out the residual of the
    one service in progress, which is uniform on it. The wait's p90 and p95 are then M/D/1's within
    3% (they were −13% and +16% while the residual was a gamma of the uniform's mean and
    variance)."""
    from scipy.optimize import brentq

    profile, tokens = G0Profile(20.0, 0.5, 1, 1.0), Tokens(0, 100)
    d = 100 * 20.5
    lam = 0.3 / d
    fixed = AccuratePoints.of_accurate(
        [profile], [tokens], out_cv=[0.0], batch=[1], max_queue=[4000]
    )
    exact = brentq(lambda t: _md1_wait_cdf(t, lam, d) - q, 1e-9, 12 * d)
    model = float(wait_quantiles(fixed, np.array([lam]), q)[0])
    assert model == pytest.approx(exact, rel=0.03)


def test_wait_survival_integrates_to_the_mean_wait() -> None:
    """∫ P(W > t) dt = E[W] for a point that queues (the survival and the mean agree)."""
    profile = G2Profile(12.0, 0.05, 5e-4, 16)
    pts = AccuratePoints.of_accurate([profile], [Tokens(128, 256)], out_cv=[0.5], batch=[16])
    lam = np.array([0.9 * float(pts.mu_n[0])])
    mean = float(pts.metrics(lam).wait[0])
    t = np.linspace(0.0, 40.0 * mean, 40_001)
    sf = np.array([pts.metrics(lam, wait_beyond=np.array([x])).wait_sf[0] for x in t[::100]])
    integral = float(np.trapezoid(sf, t[::100]))
    assert integral == pytest.approx(mean, rel=0.02)


def test_stalls_lower_the_capacity_of_g1_and_g2_only() -> None:
    profiles: list[Profile] = [
        G1Profile(6.9, 0.08, 12.1, 0.002, 32, 1.0),
        G2Profile(12.0, 0.05, 5e-4, 32),
        G0Profile(20.58, 0.41, 32, 1.0),
    ]
    tokens = [Tokens(128, 128), Tokens(128, 128), Tokens(0, 128)]
    chain = OperatingPoints.of(profiles, tokens, batch=[32] * 3)
    acc = AccuratePoints.of_accurate(profiles, tokens, out_cv=[0.0] * 3, batch=[32] * 3)
    ratio = acc.mu_n / chain.mu_n
    assert 0.90 < ratio[0] < 0.97 and 0.90 < ratio[1] < 0.97  # 5–8% lower (docs/accuracy.md)
    assert ratio[2] == pytest.approx(1.0)


def test_build_points_rejects_an_unknown_model() -> None:
    prof = ProfileArrays.of([G0Profile(20.0, 0.5, 8, 1.0)])
    one = np.array([128.0])
    assert not isinstance(build_points("inferno", prof, np.zeros(1), one), AccuratePoints)
    with pytest.raises(ValueError, match="model must be one of"):
        build_points("exact", prof, np.zeros(1), one)


def _sample_with(tmp_path: Path, **optimizer: object) -> Path:
    d = tmp_path / "sample"
    shutil.copytree(SAMPLE, d)
    f = d / "optimizer-data.json"
    doc = json.loads(f.read_text())
    doc["optimizer"].update(optimizer)
    f.write_text(json.dumps(doc))
    return d


def test_the_model_option_reaches_the_solver(tmp_path: Path) -> None:
    default = load_system(SAMPLE)
    assert default.optimizer.model is PerformanceModel.INFERNO
    system = load_system(_sample_with(tmp_path, model="accurate"))
    assert system.optimizer.model is PerformanceModel.ACCURATE
    table = build_candidates(system)
    assert isinstance(table.points, AccuratePoints)
    solution = solve_table(table, None)
    assert len(solution.allocations) == len(system.servers)
    assert all(math.isfinite(a.metrics["ttft"]) for a in solution.allocations.values())


def test_an_unknown_model_in_the_data_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model"):
        load_system(_sample_with(tmp_path, model="exact"))


def test_the_queue_factor_keeps_its_limits_and_grows_with_the_batch() -> None:
    """Allen–Cunneen's (1 + c²)/2 at N = 1 (Pollaczek–Khinchine) and 1 at c² = 1; for fixed
    lengths at a large batch, Cosmetatos' M/D/c correction lifts it above one half
    (tests/model/test_accurate_queue.py: against simulated M/G/c queues)."""
    from inferno.model._accurate_queue import queue_factor as _queue_factor

    log_r = np.log(np.array([0.5, 0.8, 0.95]))
    one = np.ones(3)
    for cs2 in (0.0, 0.25, 1.0, 2.25):
        f1 = _queue_factor(np.full(3, cs2), log_r, one)
        assert f1 == pytest.approx(np.full(3, 0.5 * (1.0 + cs2)))
    assert _queue_factor(np.ones(3), log_r, np.full(3, 38.0)) == pytest.approx(np.ones(3))
    big = _queue_factor(np.zeros(3), log_r, np.full(3, 38.0))
    assert (big > 0.5).all() and big[0] > big[1] > big[2]  # less correction near saturation


def _system(*, service_cov: float | None = 1.5, out_tokens_cov: float | None = None) -> System:
    base = load_system(SAMPLE)
    servers = tuple(
        replace(s, load=replace(s.load, service_cov=service_cov, out_tokens_cov=out_tokens_cov))
        for s in base.servers
    )
    return replace(base, servers=servers)


def _allocation(system: System, model: str, exact: bool = False) -> dict[str, tuple[str, int]]:
    spec = replace(system.optimizer, model=PerformanceModel(model), exact_wait_quantile=exact)
    sol = solve_table(build_candidates(replace(system, optimizer=spec)), None)
    return {n: (a.accelerator, a.replicas) for n, a in sol.allocations.items()}


def test_service_cov_is_not_read_as_the_output_length_cv() -> None:
    """The sample's serviceCOV 1.5 (Inferno's service-time CV) leaves the accurate mode at its
    default length CV; outTokensCOV 1.5 does change the allocation."""
    sample = load_system(SAMPLE)
    assert {s.load.service_cov for s in sample.servers} == {1.5}
    as_is = _allocation(sample, "accurate")
    assert as_is == _allocation(_system(service_cov=None), "accurate")
    assert as_is == _allocation(_system(out_tokens_cov=1.0), "accurate")
    assert as_is != _allocation(_system(out_tokens_cov=1.5), "accurate")


def test_the_accurate_mode_sizes_slo_ttw_on_the_wait_quantile() -> None:
    """slo-ttw is the wait's 95th percentile: the accurate mode sizes it so with or without
    exactWaitQuantile, where the chain follows Inferno's mean rule unless asked."""
    sample = load_system(SAMPLE)
    assert _allocation(sample, "accurate") == _allocation(sample, "accurate", exact=True)
    assert _allocation(sample, "inferno") != _allocation(sample, "inferno", exact=True)


def test_a_subset_and_a_second_call_give_the_same_metrics() -> None:
    """Subsets (trimmed or not) and the memo of the last rates agree with a fresh evaluation,
    for blocks with prefill stalls (G2 with input) and without (G0)."""
    profiles: list[Profile] = [G2Profile(12.0, 0.05, 5e-4, 16), G0Profile(20.0, 0.4, 32, 1.0)]
    tokens = [Tokens(128, 256), Tokens(0, 512)]
    pts = AccuratePoints.of_accurate(profiles * 3, tokens * 3, out_cv=[0.5, 0.0] * 3)
    lam = 0.8 * pts.mu_n
    beyond = np.full(6, 50.0)
    fresh = pts.metrics(lam, wait_beyond=beyond)
    again = pts.metrics(lam)
    assert np.array_equal(again.wait, fresh.wait) and np.isnan(again.wait_sf).all()
    again = pts.metrics(lam, wait_beyond=beyond)
    assert np.array_equal(again.wait_sf, fresh.wait_sf)
    idx = np.array([4, 1, 1], dtype=np.intp)
    for same_width in (False, True):
        sub = pts.subset(idx, same_width=same_width).metrics(lam[idx], wait_beyond=beyond[idx])
        for name in ("wait", "ttft", "itl", "response", "wait_sf"):
            assert getattr(sub, name) == pytest.approx(getattr(fresh, name)[idx], rel=1e-12)
