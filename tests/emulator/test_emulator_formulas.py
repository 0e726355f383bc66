"""The emulator's per-iteration formulas reduce to the analytic model's (``_kinds.py``) for a
batch of identical requests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferno.emulator.replica import (
    g0_iteration_ms,
    g1_decode_ms,
    g1_prefill_ms,
    g2_decode_ms,
    g2_prefill_ms,
    g2_request_terms,
    g3_chunks,
    g3_iteration_ms,
    g3_request_delta,
)
from inferno.model import _kinds
from inferno.model.profiles import G0Profile, G1Profile, G2Profile, G3Profile, Kind

from .helpers import kind_arrays


@pytest.mark.parametrize("b", [1, 2, 7, 32])
def test_g0_g1_g2_match_model(b: int) -> None:
    n_in, n_out = 300, 120
    bb = np.array([[float(b)]])
    g0 = G0Profile(12.0, 0.3, 64, 512)
    assert n_out * g0_iteration_ms(g0, b) == pytest.approx(
        float(_kinds.tau(kind_arrays(g0, n_in, n_out), bb)[0, 0])
    )
    g1 = G1Profile(12.0, 0.3, 40.0, 0.01, 64, 512)
    tau1 = g1_prefill_ms(g1, b * n_in) + (n_out - 1) * g1_decode_ms(g1, b)
    assert tau1 == pytest.approx(float(_kinds.tau(kind_arrays(g1, n_in, n_out), bb)[0, 0]))
    g2 = G2Profile(6.0, 0.004, 0.0003, 64)
    w, m = g2_request_terms(g2, n_in, n_out)
    prefill = g2_prefill_ms(g2, b * w, n_in)
    decode = g2_decode_ms(g2, b, b * w, b * m)
    ka = kind_arrays(g2, n_in, n_out)
    assert decode == pytest.approx(float(_kinds._g2_decode(ka, np.array([float(b)]))[0]))
    assert prefill == pytest.approx(float(_kinds._g2_prefill(ka, np.array([float(b)]))[0]))
    assert prefill + n_out * decode == pytest.approx(float(_kinds.tau(ka, bb)[0, 0]))


@settings(max_examples=200, deadline=None)
@given(
    n_in=st.integers(0, 4000),
    n_out=st.integers(1, 2000),
    budget=st.integers(64, 16384),
    b=st.integers(1, 256),
)
def test_g3_chunks_and_iteration_match_model(n_in: int, n_out: int, budget: int, b: int) -> None:
    p = G3Profile(6.0, 0.004, 0.0003, 256, max_num_tokens=budget)
    ka = kind_arrays(p, n_in, n_out)
    assert ka.kind is Kind.G3
    nc_model = float(_kinds.g3_chunks(ka, np.array([float(b)]))[0])
    nc = g3_chunks(n_in, n_out, budget, b)
    if nc_model < 1e6:  # the model gives up past a million chunks
        assert nc == nc_model
        delta = g3_request_delta(p, n_in, n_out, nc)
        tau = (nc + n_out) * g3_iteration_ms(p, b * delta)
        assert tau == pytest.approx(float(_kinds.tau(ka, np.array([[float(b)]]))[0, 0]))
