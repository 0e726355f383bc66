"""The simulated collector measures the lengths' spread as the deployed one does: from the
window's token histograms (vLLM's 1-2-5 buckets), fitted by inferno.prom.lengths."""

from __future__ import annotations

import math

import pytest

from inferno.emulator import Exponential, Fixed, LogNormal, Poisson, ServerSpec, Simulation
from inferno.emulator.records import TOKEN_BUCKETS
from inferno.model.profiles import G2Profile
from inferno.simulate.metrics import MetricsSource


def _measured(
    outputs: object, inputs: object, rpm: float = 6000.0, noise: float = 0.0
) -> MetricsSource:
    spec = ServerSpec(
        G2Profile(12.0, 0.05, 5e-4, 64),
        Poisson(rpm),  # 100 requests a second by default
        batch_size=64,
        service="deterministic",
        input_tokens=inputs,  # type: ignore[arg-type]
        output_tokens=outputs,  # type: ignore[arg-type]
    )
    sim = Simulation({"s": spec}, seed=4)
    sim.run_until(600_000.0 if rpm < 100 else 120_000.0)
    return MetricsSource(
        sim, window_s=60.0, noise=noise, seed=1, batch_of=lambda _: 64, tokens={"s": (256, 64)}
    )


def test_the_window_fits_the_lengths_family_and_cv_into_the_load() -> None:
    m = _measured(LogNormal(64.0, 1.5), Exponential(256.0)).measure("s")
    counts = m.window.output_tokens_le
    assert len(counts) == len(TOKEN_BUCKETS) + 1 and counts[-1] == m.window.completions
    assert list(counts) == sorted(counts)  # cumulative
    load = m.load
    assert load.out_tokens_dist == "lognormal"
    assert load.out_tokens_cov == pytest.approx(1.5, rel=0.15)
    assert load.in_tokens_dist == "gamma"
    assert load.in_tokens_cov == pytest.approx(1.0, rel=0.15)


def test_fixed_lengths_are_told_the_most_spread_their_bucket_allows() -> None:
    """All in one bucket: the histogram cannot tell a shape, but it holds the lengths within the
    bucket, which bounds their spread (the collector's rule, inferno.prom.lengths): the load
    carries that bound, far below the model's default of 1 for the output lengths."""
    load = _measured(Fixed(64), Fixed(256)).measure("s").load
    # outputs of 64 tokens, in (50, 100]; prompts of 256, in (200, 500]
    assert load.out_tokens_cov == pytest.approx(math.sqrt((64 - 51) * (100 - 64)) / 64)
    assert load.in_tokens_cov == pytest.approx(math.sqrt((256 - 201) * (500 - 256)) / 256)
    assert (load.in_tokens_dist, load.out_tokens_dist) == ("gamma", "gamma")


def test_too_few_requests_in_the_window_are_fitted_over_the_lengths_window() -> None:
    """60 requests a minute: too few in a 60 s window to fit, so the deployed collector fits
    the histogram over INFERNO_LENGTHS_WINDOW instead, and so does the simulated one (not
    asked to: no fit, the model's defaults)."""
    source = _measured(LogNormal(64.0, 1.5), Exponential(256.0), rpm=60.0)
    own = source.measure("s", 600_000.0)
    assert own.window.completions < 100 and own.lengths is None and own.in_lengths is None
    m = source.measure("s", 600_000.0, lengths_window_s=600.0)
    assert m.lengths is not None and m.lengths.requests > 400
    assert m.load.out_tokens_dist == "lognormal"
    assert m.load.out_tokens_cov == pytest.approx(1.5, rel=0.25)
    assert m.in_lengths is not None and m.load.in_tokens_cov == pytest.approx(1.0, rel=0.25)
    assert m.arrival_rate == own.arrival_rate and m.out_tokens == own.out_tokens  # the window's
    # a lengths window no longer than the load window widens nothing
    assert source.measure("s", 600_000.0, lengths_window_s=60.0).lengths is None


def test_the_noise_on_the_reported_means_does_not_reach_the_fit() -> None:
    """A serving engine's token counters and histograms count the same requests: the fit of
    a noisy measurement is the noise-free one's (before, a 5% error on the mean moved the
    fitted CV by about 5%), while the reported mean carries the noise."""
    quiet = _measured(LogNormal(64.0, 1.5), Exponential(256.0)).measure("s")
    noisy = _measured(LogNormal(64.0, 1.5), Exponential(256.0), noise=0.2).measure("s")
    assert noisy.lengths == quiet.lengths and noisy.in_lengths == quiet.in_lengths
    assert noisy.out_tokens != quiet.out_tokens
