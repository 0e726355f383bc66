"""``capacities``: N, μ(1) and μ(N) of the accurate points without building what only their
evaluation needs (inferno/model/accurate.py; the lazy sizing's bounds)."""

from __future__ import annotations

import numpy as np

from inferno.model.accurate import AccuratePoints, capacities
from inferno.model.length_spread import LengthSpread
from inferno.model.profile_arrays import arrays_of
from inferno.model.profiles import (
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Profile,
    Tokens,
)


def test_the_capacities_are_the_built_points_own() -> None:
    """Every kind, fixed and varying lengths of both families, capped or not, a queue or
    none, batch and queue limits given or not: the same numbers, bit for bit, as the points
    built whole (the LLM rows' N and μ(1) without the chain's per-state arrays, the batch
    kind's from the chain of those rows alone)."""
    rng = np.random.default_rng(5)
    profiles: list[Profile] = []
    tokens: list[Tokens] = []
    kinds: list[Profile] = [
        G0Profile(20.58, 0.41, 8, 1.0),
        G1Profile(6.9, 0.08, 12.1, 0.002, 32, 1.0),
        G2Profile(12.0, 0.05, 5e-4, 32),
        G2Profile(8.0, 0.03, 3e-4, 64, 512.0),
        G3Profile(16.0, 0.067, 6.67e-4, 8, None, 4096),
        BatchProfile(5.0, 1.0, 8),
    ]
    for i in range(120):
        profiles.append(kinds[i % len(kinds)])
        tokens.append(Tokens(float(rng.integers(16, 2048)), float(rng.integers(16, 1024))))
    prof, in_tok, out_tok = arrays_of(profiles, tokens)
    c = len(profiles)
    lengths = LengthSpread.of(
        c,
        out_cv=rng.choice([np.nan, 0.0, 0.5, 1.0, 2.0], size=c),
        out_lognormal=rng.random(c) < 0.5,
        in_cv=rng.choice([np.nan, 0.0, 0.8], size=c),
        in_lognormal=rng.random(c) < 0.5,
        out_max=np.where(rng.random(c) < 0.3, 4096.0, np.nan),
    )
    batch = rng.choice([np.nan, 4.0, 16.0], size=c)
    max_queue = rng.choice([np.nan, 0.0, 20.0], size=c)
    cases = [(None, None, None), (0.0, None, None), (10.0, None, None), (None, batch, max_queue)]
    for queue_factor, b, q in cases:
        built = AccuratePoints.build_accurate(
            prof, in_tok, out_tok, lengths=lengths, batch=b, max_queue=q, queue_factor=queue_factor
        )
        n, mu_1, mu_n = capacities(
            prof, in_tok, out_tok, lengths=lengths, batch=b, max_queue=q, queue_factor=queue_factor
        )
        np.testing.assert_array_equal(n, built.n_batch)
        np.testing.assert_array_equal(mu_1, built.mu_1)
        np.testing.assert_array_equal(mu_n, built.mu_n)
    # G2 rows of varying lengths (the ones whose composition capacities leaves out) are here
    g2 = np.array([isinstance(p, G2Profile) for p in profiles])
    assert (g2 & (lengths.out_cv > 0)).sum() >= 10
