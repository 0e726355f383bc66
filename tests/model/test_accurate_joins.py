"""The accurate model's joins with room in the batch (``_accurate_core.prefill_joins``): the
two-state chain of decode and prefill iterations, against its fixed point solved by a root finder
element by element, and Lambert's W as it computes it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import lambertw

from inferno.model import _accurate_core as core


def test_exp_minus_w_is_lamberts() -> None:
    z = np.concatenate([[0.0], np.logspace(-12, 8, 4001), np.linspace(0.0, 0.2, 2001)])
    want = np.ones_like(z)
    want[z > 0] = lambertw(z[z > 0]).real / z[z > 0]
    got = core.exp_minus_w(z.copy())
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)
    # across the switch from the Padé approximant to Newton's method: no step beyond rounding
    top = core._PADE_TOP
    pair = core.exp_minus_w(np.array([top, np.nextafter(top, 1.0)]))
    assert pair[0] == pytest.approx(pair[1], rel=1e-10)


def _fixed_point(lam: float, decode: float, pre0: float, pre1: float, room: float) -> tuple:  # type: ignore[type-arg]
    """(q, P̄) from the chain's own equations, one element at a time: x = λ·P̄ the arrivals
    during a prefill, k̄ = e^{−x}·k_d + x its joiners (at most ``room``)."""
    j_d = lam * decode
    q_d = -math.expm1(-j_d)
    k_d = min(j_d / q_d, room)
    a = lam * pre1

    def g(x: float) -> float:
        return x - lam * (pre0 + pre1 * (math.exp(-x) * k_d + x))

    k_bar = room
    if a < 1.0:
        hi = lam * pre0 / (1.0 - a) + a * k_d / (1.0 - a) + 1.0
        x = brentq(g, 0.0, hi, xtol=1e-15, rtol=1e-15)
        k_bar = min(math.exp(-x) * k_d + x, room)
    x = lam * (pre0 + pre1 * k_bar)
    return q_d / (q_d + math.exp(-x)), pre0 + pre1 * k_bar


def test_the_joins_are_the_fixed_point_of_the_two_state_chain() -> None:
    rng = np.random.default_rng(3)
    c = 400
    lam = np.exp(rng.uniform(np.log(1e-4), np.log(0.5), c))
    decode = rng.uniform(5.0, 120.0, c)
    pre0 = decode * rng.uniform(0.2, 1.5, c)
    pre1 = np.exp(rng.uniform(np.log(1e-3), np.log(50.0), c))  # a = λ·pre1 on both sides of 1
    room = rng.integers(1, 300, c).astype(np.float64)
    q, prefill = core.prefill_joins(
        lam[:, None], decode[:, None], pre0[:, None], pre1[:, None], room[:, None]
    )
    want = np.array([_fixed_point(*v) for v in zip(lam, decode, pre0, pre1, room, strict=True)])
    a = lam * pre1
    assert (a > 1.0).any() and (a < 0.5).any()
    np.testing.assert_allclose(q[:, 0], want[:, 0], rtol=1e-9)
    np.testing.assert_allclose(prefill[:, 0], want[:, 1], rtol=1e-9)


def test_a_light_load_joins_one_at_a_time() -> None:
    """λ → 0: a prefill iteration now and then (q ≈ λ·D(b), the rule before) of one joiner."""
    lam = np.array([[1e-7]])
    q, prefill = core.prefill_joins(
        lam, np.array([[40.0]]), np.array([[12.0]]), np.array([[3.0]]), np.array([[50.0]])
    )
    assert q[0, 0] == pytest.approx(40e-7, rel=1e-5)
    assert prefill[0, 0] == pytest.approx(15.0, rel=1e-5)


def test_exp_minus_w_of_any_memory_order() -> None:
    z = np.asfortranarray(np.linspace(0.0, 3.0, 24).reshape(4, 6))
    np.testing.assert_array_equal(core.exp_minus_w(z), core.exp_minus_w(np.ascontiguousarray(z)))
