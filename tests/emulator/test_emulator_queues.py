"""The emulator against queueing closed forms: M/M/1, M/D/1, M/M/1/K, and an LLM replica with
N = 1 as an M/D/1 queue whose service time is the model's τ(1)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from inferno.emulator import (
    Exponential,
    Fixed,
    Poisson,
    Replay,
    ServerSpec,
    Simulation,
)
from inferno.model import _kinds
from inferno.model.profiles import (
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Profile,
)
from inferno.units import MS_PER_MIN

from .helpers import assert_in_ci, batch_means, kind_arrays, sample_ci

MU = 1.0  # service rate, per ms (mean service 1 ms)
WARMUP = 2_000  # requests dropped at the start


def per_min(rate_per_ms: float) -> float:
    return rate_per_ms * MS_PER_MIN


def run_single(spec: ServerSpec, until_ms: float, seed: int = 7) -> Simulation:
    sim = Simulation({"s": spec}, seed=seed)
    sim.run_until(until_ms)
    return sim


def model_tau1(p: Profile, n_in: int, n_out: int) -> float:
    """τ(1) from the analytic model's own formulas."""
    return float(_kinds.tau(kind_arrays(p, n_in, n_out), np.array([[1.0]]))[0, 0])


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_mm1_response_wait_and_utilisation(rho: float) -> None:
    lam = rho * MU
    spec = ServerSpec(BatchProfile(0.0, 1.0 / MU, 1), Poisson(per_min(lam)), service="exponential")
    horizon = 500_000 / lam
    sim = run_single(spec, horizon)
    r = sim.records("s")
    done = r.completed
    latency = r.latency[done][WARMUP:]
    wait = r.wait[done][WARMUP:]
    assert_in_ci(1.0 / (MU - lam), batch_means(latency), "M/M/1 mean response")
    assert_in_ci(rho / (MU - lam), batch_means(wait), "M/M/1 mean wait")
    # utilisation: time-average busy replicas over 30 windows after warm-up
    edges = np.linspace(WARMUP / lam, sim.now, 31)
    busy = np.array([sim.window("s", a, b).busy for a, b in itertools.pairwise(edges)])
    assert_in_ci(rho, sample_ci(busy), "M/M/1 utilisation")
    # Little: mean in system = λ T, from the window's time-average in flight
    held = np.array([sim.window("s", a, b).in_flight for a, b in itertools.pairwise(edges)])
    assert_in_ci(rho / (1.0 - rho), sample_ci(held), "M/M/1 mean in system")


def test_md1_pollaczek_khinchine() -> None:
    rho = 0.7
    lam = rho * MU
    spec = ServerSpec(BatchProfile(0.0, 1.0 / MU, 1), Poisson(per_min(lam)))
    sim = run_single(spec, 500_000 / lam)
    r = sim.records("s")
    wait = r.wait[r.completed][WARMUP:]
    assert_in_ci(rho / (2.0 * MU * (1.0 - rho)), batch_means(wait), "M/D/1 mean wait")
    # deterministic service: every request is served in exactly 1/μ
    service = (r.completion - r.start)[r.completed]
    np.testing.assert_allclose(service, 1.0 / MU, atol=1e-6)


@pytest.mark.parametrize(("rho", "k"), [(0.9, 5), (1.5, 3)])
def test_mm1k_blocking(rho: float, k: int) -> None:
    lam = rho * MU
    spec = ServerSpec(
        BatchProfile(0.0, 1.0 / MU, 1),
        Poisson(per_min(lam)),
        max_queue=k - 1,
        service="exponential",
    )
    sim = run_single(spec, 200_000 / lam)
    r = sim.records("s")
    blocked = r.rejected[WARMUP:].astype(np.float64)
    expected = (1.0 - rho) * rho**k / (1.0 - rho ** (k + 1))
    assert_in_ci(expected, batch_means(blocked), f"M/M/1/{k} blocking")
    # the queue bound holds: a rejected request found K requests in the system
    assert r.reason[r.rejected].tolist() == [1] * int(r.rejected.sum())


@pytest.mark.parametrize(
    "profile",
    [
        G0Profile(2.0, 0.1, 8, 512),
        G1Profile(1.0, 0.05, 4.0, 0.002, 8, 512),
        G2Profile(1.0, 0.001, 0.0001, 8),
        G3Profile(1.0, 0.001, 0.0001, 8, max_num_tokens=256),
    ],
    ids=["G0", "G1", "G2", "G3"],
)
def test_llm_single_request_takes_model_tau(profile: Profile) -> None:
    """Alone on a replica, a request takes exactly the model's τ(1); its TTFT follows the kind's
    convention (G0: one iteration; G1: the prefill; G2: prefill + first decode)."""
    n_in, n_out = 700, 50
    trace = Replay(np.array([1_000.0]), np.array([n_in]), np.array([n_out]))
    sim = run_single(ServerSpec(profile, trace, batch_size=4), 1e7)
    r = sim.records("s")
    assert r.latency[0] == pytest.approx(model_tau1(profile, n_in, n_out), rel=1e-12)
    assert r.wait[0] == 0.0
    if isinstance(profile, G0Profile):
        assert r.ttft[0] == pytest.approx(profile.alpha + profile.beta)
    elif isinstance(profile, G1Profile):
        assert r.ttft[0] == pytest.approx(profile.gamma + profile.delta * n_in)
    elif isinstance(profile, G2Profile):
        t_c = (n_in + n_out) / (n_out + 1)
        t_m = n_in + n_out / 2
        big_t = profile.alpha + profile.beta * t_c + profile.gamma * t_m
        prefill = big_t + (profile.beta + profile.gamma) * n_in
        decode = big_t + profile.beta + profile.gamma * t_m
        assert r.ttft[0] == pytest.approx(prefill + decode)
    # ITL: the remaining n_out − 1 tokens came one iteration apart
    assert r.completion[0] - r.first_token[0] > 0


def test_llm_batch_one_is_md1() -> None:
    """G2, N = 1, fixed lengths: an M/D/1 queue with service τ(1) = prefill + out·decode."""
    profile = G2Profile(1.0, 0.002, 0.0002, 8)
    n_in, n_out = 200, 20
    service = model_tau1(profile, n_in, n_out)
    rho = 0.6
    lam = rho / service
    spec = ServerSpec(
        profile,
        Poisson(per_min(lam)),
        batch_size=1,
        input_tokens=Fixed(n_in),
        output_tokens=Fixed(n_out),
    )
    sim = run_single(spec, 150_000 / lam)
    r = sim.records("s")
    done = r.completed
    np.testing.assert_allclose((r.completion - r.start)[done], service, rtol=1e-6)
    wait = r.wait[done][WARMUP:]
    assert_in_ci(rho * service / (2.0 * (1.0 - rho)), batch_means(wait), "LLM M/D/1 mean wait")


def test_llm_exponential_iterations_mean_service() -> None:
    """Exponential iteration times at N = 1: the mean service time is still τ(1), and the time
    to the first token of G0 is one iteration on average."""
    profile = G0Profile(2.0, 0.5, 8, 512)
    n_out = 30
    lam = 0.5 / model_tau1(profile, 0, n_out)
    spec = ServerSpec(
        profile,
        Poisson(per_min(lam)),
        batch_size=1,
        output_tokens=Fixed(n_out),
        service="exponential",
    )
    sim = run_single(spec, 20_000 / lam)
    r = sim.records("s")
    done = r.completed
    assert_in_ci(model_tau1(profile, 0, n_out), sample_ci((r.completion - r.start)[done]), "S")
    assert_in_ci(2.5, sample_ci((r.first_token - r.start)[done]), "first iteration")


def test_exponential_iteration_boundaries_are_memoryless() -> None:
    """G0 with β = 0: iterations are exponential of mean α whatever the batch, so boundaries
    form a Poisson process; a request arriving at a busy replica (room in the batch) waits for
    the next boundary, an exponential time of mean α — this checks how a segment is cut."""
    alpha = 4.0
    profile = G0Profile(alpha, 0.0, 64, 512)
    n_out = 20
    spec = ServerSpec(
        profile,
        Poisson(per_min(0.1)),  # about 8 running on average: the replica is nearly always busy
        batch_size=64,
        output_tokens=Fixed(n_out),
        service="exponential",
    )
    sim = run_single(spec, 300_000)
    r = sim.records("s")
    done = r.completed
    wait = r.wait[done]
    waited = wait[wait > 0]
    assert waited.size > 20_000
    assert_in_ci(alpha, sample_ci(waited), "residual iteration")
    # memoryless: P(W > α) = e^-1
    assert_in_ci(np.exp(-1.0), sample_ci((waited > alpha).astype(np.float64)), "P(W > α)")
    # each of the out iterations of a request has mean α
    itl = ((r.completion - r.first_token) / (n_out - 1))[done]
    assert_in_ci(alpha, sample_ci(itl), "ITL")
    # and the first token comes one iteration after the start
    assert_in_ci(alpha, sample_ci((r.first_token - r.start)[done]), "first iteration")


@pytest.mark.parametrize("b", [1, 4, 16])
def test_itl_grows_with_batch_as_profile_says(b: int) -> None:
    """b long requests together: G0 ITL = α + β·b, G1 α + β·b, G2 T(b) + β + γ(in + out/2).

    All arrive at 0: the first starts an iteration at once, the others join at its end; the
    first has one more token, so the batch stays b until they all finish together."""
    n_in, n_out = 100, 64
    times = np.zeros(b)
    outs = np.full(b, n_out)
    outs[0] += 1
    trace = Replay(times, np.full(b, n_in), outs)
    g0 = G0Profile(10.0, 0.5, 64, 512)
    g1 = G1Profile(10.0, 0.5, 30.0, 0.01, 64, 512)
    g2 = G2Profile(5.0, 0.01, 0.002, 64)
    # G2 on the actual batch: T = α + Σ (β t_c,i + γ t_m,i), ITL = T + β + γ·mean t_m,i
    t_c = (n_in + outs) / (outs + 1.0)
    t_m = n_in + outs / 2.0
    big_t = g2.alpha + float((g2.beta * t_c + g2.gamma * t_m).sum())
    expected = {
        "G0": g0.alpha + g0.beta * b,
        "G1": g1.alpha + g1.beta * b,
        "G2": big_t + g2.beta + g2.gamma * float(t_m.mean()),
    }
    for name, prof in (("G0", g0), ("G1", g1), ("G2", g2)):
        sim = run_single(ServerSpec(prof, trace, batch_size=64), 1e7)
        r = sim.records("s")
        itl = (r.completion - r.first_token) / (r.output_tokens - 1)
        tagged = slice(1, None) if b > 1 else slice(0, 1)
        np.testing.assert_allclose(itl[tagged], expected[name], rtol=1e-9, err_msg=name)
        assert np.all(r.completion == r.completion[0])


def test_join_at_next_iteration_boundary() -> None:
    """A request arriving mid-iteration joins at the next boundary; the iteration time changes
    with the batch from there (G0, deterministic)."""
    p = G0Profile(10.0, 1.0, 8, 512)
    d1, d2 = p.alpha + p.beta, p.alpha + 2 * p.beta
    trace = Replay(np.array([0.0, 10.5 * d1]), np.array([0, 0]), np.array([100, 10]))
    sim = run_single(ServerSpec(p, trace, batch_size=8), 1e7)
    r = sim.records("s")
    assert r.start[1] == pytest.approx(11 * d1)
    assert r.first_token[1] == pytest.approx(11 * d1 + d2)
    assert r.completion[1] == pytest.approx(11 * d1 + 10 * d2)
    assert r.completion[0] == pytest.approx(11 * d1 + 10 * d2 + (100 - 21) * d1)
    assert r.first_token[0] == pytest.approx(d1)


def test_batch_queue_delay() -> None:
    """Triton's queue delay: wait up to the delay after the oldest arrival, start early when the
    batch fills; a batch of b takes α + β·b."""
    p = BatchProfile(5.0, 1.0, 4, queue_delay_ms=10.0)
    # three requests then a gap: the batch starts at 0 + 10 with 3; then four at once: no wait
    times = np.array([0.0, 1.0, 2.0, 100.0, 100.0, 101.0, 103.0, 200.0])
    trace = Replay(times, np.zeros(8, dtype=np.int64), np.ones(8, dtype=np.int64))
    sim = run_single(ServerSpec(p, trace, batch_size=4), 1e4)
    r = sim.records("s")
    np.testing.assert_allclose(r.start[:3], 10.0)
    np.testing.assert_allclose(r.completion[:3], 10.0 + 5.0 + 3.0)
    np.testing.assert_allclose(r.start[3:7], 103.0)
    np.testing.assert_allclose(r.completion[3:7], 103.0 + 5.0 + 4.0)
    assert r.start[7] == 210.0
    assert np.all(np.isnan(r.first_token))


def test_exponential_lengths_in_simulation() -> None:
    """Drawn lengths have their distribution's exact mean."""
    spec = ServerSpec(
        G0Profile(1.0, 0.01, 64, 512),
        Poisson(600.0),
        replicas=4,
        batch_size=64,
        output_tokens=Exponential(50.0),
    )
    sim = run_single(spec, 600_000)
    r = sim.records("s")
    assert_in_ci(Exponential(50.0).mean, sample_ci(r.output_tokens.astype(np.float64)), "mean")
    assert r.output_tokens.min() >= 1


def test_lognormal_lengths_have_their_mean_and_cv() -> None:
    """LogNormal(m, c): the rounded draws (at least 1) keep the mean and the CV (to rounding),
    and a non-positive mean or CV is refused."""
    from inferno.emulator import LogNormal

    x = LogNormal(512.0, 1.5).sample(400_000, np.random.default_rng(3)).astype(np.float64)
    assert x.min() >= 1
    assert x.mean() == pytest.approx(512.0, rel=0.02)
    assert x.std() / x.mean() == pytest.approx(1.5, rel=0.05)
    # the tail is a lognormal's, not a gamma's of the same moments (95th percentile 3.31× the
    # mean, against 4.01×)
    assert np.quantile(x, 0.95) / 512.0 == pytest.approx(3.31, rel=0.03)
    # and long: 1 draw in 10⁴ is over 32× the mean (P = 9.4e-5; 38 of 400,000 expected)
    assert float((x > 32 * 512).mean()) == pytest.approx(9.4e-5, rel=0.4)
    for bad in ((0.0, 1.0), (10.0, 0.0), (float("nan"), 1.0)):
        with pytest.raises(ValueError, match="LogNormal"):
            LogNormal(*bad)


@pytest.mark.parametrize("cap", [60, 200, 400])
def test_a_cap_stops_the_long_draws_and_the_mean_says_so(cap: int) -> None:
    """``max_tokens``: no draw is longer, the draws below it are the uncapped ones, and
    :attr:`mean` is the capped distribution's (exact for the exponential, to rounding for the
    lognormal); a cap below 1 is refused."""
    from inferno.emulator import LogNormal

    for dist, free in (
        (Exponential(50.0, cap), Exponential(50.0)),
        (LogNormal(50.0, 1.5, cap), LogNormal(50.0, 1.5)),
    ):
        x = dist.sample(400_000, np.random.default_rng(5))
        y = free.sample(400_000, np.random.default_rng(5))
        assert x.max() == cap and y.max() > cap
        np.testing.assert_array_equal(x, np.minimum(y, cap))
        assert_in_ci(dist.mean, sample_ci(x.astype(np.float64)), "mean")
        assert dist.mean < free.mean
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="max_tokens"):
            LogNormal(50.0, 1.0, bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_tokens"):
            Exponential(50.0, bad)  # type: ignore[arg-type]


def test_g1_join_is_a_prefill_iteration_that_stalls_the_batch() -> None:
    """G1: a join is a prefill iteration of γ + δ·Σ in over the joiners, in which the running
    requests also produce a token; decoding resumes at the larger batch."""
    p = G1Profile(10.0, 1.0, 30.0, 0.1, 8, 512)
    p0 = p.gamma + p.delta * 100  # request 0's own prefill: 40
    d1, d2 = p.alpha + p.beta, p.alpha + 2 * p.beta  # 11, 12
    trace = Replay(np.array([0.0, p0 + 5.5 * d1]), np.array([100, 200]), np.array([50, 10]))
    sim = run_single(ServerSpec(p, trace, batch_size=8), 1e7)
    r = sim.records("s")
    join = p0 + 6 * d1
    prefill = p.gamma + p.delta * 200
    assert r.first_token[0] == pytest.approx(p0)
    assert r.start[1] == pytest.approx(join)
    assert r.first_token[1] == pytest.approx(join + prefill)
    assert r.completion[1] == pytest.approx(join + prefill + 9 * d2)
    # request 0: 1 + 6 + 1 tokens by the end of the prefill, 9 more beside request 1, then 33
    assert r.completion[0] == pytest.approx(join + prefill + 9 * d2 + 33 * d1)
