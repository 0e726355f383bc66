"""Targets under slower batches (inferno/model/slowdown.py): the time-rescaling the check relies on
is checked against points built from the slowed profile itself, for means and percentiles."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from inferno.model.points import OperatingPoints
from inferno.model.profiles import BatchProfile, G2Profile, Profile, Tokens
from inferno.model.quantiles import latency_quantiles, ttft_quantiles
from inferno.model.sizing import SloArrays
from inferno.model.slowdown import meets_slowed

NAN = math.nan


def slowed(profile: Profile, factor: float) -> Profile:
    """Every batch (iteration) time × factor: the profile's time parameters scaled."""
    fields = ("alpha", "beta", "gamma")
    return dataclasses.replace(
        profile, **{f: getattr(profile, f) * factor for f in fields if hasattr(profile, f)}
    )


def slo(**targets: float) -> SloArrays:
    cols = [
        targets.get(k, NAN)
        for k in ("itl", "ttft", "ttw", "latency", "tps", "ttft_q", "latency_q", "ttw_q")
    ]
    return SloArrays.of_columns([np.array([v]) for v in cols])


BATCH = BatchProfile(2.0, 0.5, 8)  # Triton batching (the bulk model)
CHAIN = BatchProfile(2.0, 0.5, 8, batching="chain")
LLM = G2Profile(5.0, 0.2, 0.01, 16)
TOKENS = Tokens(128, 64)


@pytest.mark.parametrize("profile", [BATCH, CHAIN], ids=["triton", "chain"])
@pytest.mark.parametrize("factor", [1.05, 1.2])
def test_a_slowed_latency_percentile_is_judged_as_on_the_slowed_profile(
    profile: Profile, factor: float
) -> None:
    base = OperatingPoints.of([profile], [TOKENS])
    slow = OperatingPoints.of([slowed(profile, factor)], [TOKENS])
    rate = np.array([0.45 * float(base.mu_n[0]) / factor])
    p90 = latency_quantiles(slow, rate, [0.9])[0, 0]
    # the identity: the slowed point at λ is the unslowed one at factor·λ, its times × factor
    assert p90 == pytest.approx(factor * latency_quantiles(base, factor * rate, [0.9])[0, 0], 1e-6)
    mean = slow.metrics(rate).response[0]
    assert mean == pytest.approx(factor * base.metrics(factor * rate).response[0], rel=1e-9)
    f = np.array([factor])
    # a target just above the slowed p90 is met, just below it is not
    assert meets_slowed(base, rate, slo(latency=p90 * 1.001, latency_q=0.9), f)[0]
    assert not meets_slowed(base, rate, slo(latency=p90 * 0.999, latency_q=0.9), f)[0]
    assert meets_slowed(base, rate, slo(latency=mean * 1.001), f)[0]
    assert not meets_slowed(base, rate, slo(latency=mean * 0.999), f)[0]
    # comparing the factor with target / unslowed prediction would accept this p90 target
    unslowed_p90 = latency_quantiles(base, rate, [0.9])[0, 0]
    assert factor * unslowed_p90 < p90 * 0.999


def test_llm_ttft_percentile_and_itl_under_a_slowdown() -> None:
    factor = 1.1
    base = OperatingPoints.of([LLM], [TOKENS])
    slow = OperatingPoints.of([slowed(LLM, factor)], [TOKENS])
    rate = np.array([0.5 * float(base.mu_n[0]) / factor])
    ttft95 = ttft_quantiles(slow, rate, 0.95)[0]
    itl = slow.metrics(rate).itl[0]
    f = np.array([factor])
    assert meets_slowed(base, rate, slo(ttft=ttft95 * 1.001, ttft_q=0.95), f)[0]
    assert not meets_slowed(base, rate, slo(ttft=ttft95 * 0.999, ttft_q=0.95), f)[0]
    assert meets_slowed(base, rate, slo(itl=itl * 1.001), f)[0]
    assert not meets_slowed(base, rate, slo(itl=itl * 0.999), f)[0]


def test_a_slowdown_past_saturation_misses_and_bad_factors_are_refused() -> None:
    base = OperatingPoints.of([BATCH], [TOKENS])
    rate = np.array([0.9 * float(base.mu_n[0])])
    assert meets_slowed(base, rate, slo(), np.array([1.0]))[0]  # no target: nothing to break
    assert not meets_slowed(base, rate, slo(), np.array([1.2]))[0]  # 1.08 μ(N): unstable
    with pytest.raises(ValueError, match="slowdown factors"):
        meets_slowed(base, rate, slo(), np.array([0.9]))
