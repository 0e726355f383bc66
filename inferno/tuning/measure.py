"""The measurement function of the filter: a profile's per-request time τ(b) as a function of
θ = (α, β), the other parameters held.

Every kind's τ is the one the model uses (:func:`inferno.model._kinds.tau`), evaluated for several
θ at once (the point, the finite-difference steps, θ = 0) so the Jacobian is numeric and works for
every kind. All five kinds are affine in (α, β) at a fixed batch and request shape — batch kind
α + β·b, G0 Ktok·(α + β·b), G1 prefill + (out − 1)·(α + β·b), G2 and G3 through their iteration
times — so the finite differences are exact up to rounding; nothing here relies on it except
:func:`scale_to`, which says so.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from ..model._kinds import KindArrays, tau
from ..model.profiles import (
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Profile,
    Tokens,
)

__all__ = ["Theta", "base_theta", "evaluate", "scale_to", "with_theta"]

logger = logging.getLogger(__name__)

F = NDArray[np.float64]
Theta = tuple[float, float]

#: relative finite-difference step
_STEP = 1e-6


def base_theta(profile: Profile) -> Theta:
    """(α, β) of ``profile``."""
    return (float(profile.alpha), float(profile.beta))


def with_theta(profile: Profile, theta: Theta) -> Profile:
    """``profile`` with (α, β) replaced, every other parameter kept."""
    return replace(profile, alpha=float(theta[0]), beta=float(theta[1]))


def _held(profile: Profile) -> tuple[float, float, float]:
    """(γ, δ, max_num_tokens): the parameters the filter holds."""
    if isinstance(profile, G1Profile):
        return (profile.gamma, profile.delta, 0.0)
    if isinstance(profile, G3Profile):
        return (profile.gamma, 0.0, float(profile.max_num_tokens))
    if isinstance(profile, G2Profile):
        return (profile.gamma, 0.0, 0.0)
    if isinstance(profile, G0Profile | BatchProfile):
        return (0.0, 0.0, 0.0)
    raise TypeError(f"not a profile: {profile!r}")


def _tau_many(profile: Profile, thetas: F, batch: float, tokens: Tokens) -> F:
    """τ(batch) for each row (α, β) of ``thetas`` (shape (C, 2))."""
    c = thetas.shape[0]
    gamma, delta, max_tokens = _held(profile)

    def full(v: float) -> F:
        return np.full(c, float(v))

    arrays = KindArrays(
        kind=profile.kind,
        alpha=np.ascontiguousarray(thetas[:, 0], dtype=np.float64),
        beta=np.ascontiguousarray(thetas[:, 1], dtype=np.float64),
        gamma=full(gamma),
        delta=full(delta),
        max_num_tokens=full(max_tokens),
        in_tokens=full(tokens.in_tokens),
        out_tokens=full(tokens.out_tokens),
    )
    b = np.full((c, 1), max(float(batch), 1.0))
    out: F = tau(arrays, b)[:, 0]
    return out


def evaluate(profile: Profile, theta: Theta, batch: float, tokens: Tokens) -> tuple[float, F]:
    """h(θ) = τ(batch) in ms and its Jacobian ∂h/∂(α, β) (central finite differences)."""
    t = np.asarray(theta, dtype=np.float64)
    steps = _STEP * np.maximum(np.abs(t), 1e-6)
    rows = [t]
    for i in range(2):
        e = np.zeros(2)
        e[i] = steps[i]
        rows.extend((t + e, t - e))
    values = _tau_many(profile, np.vstack(rows), batch, tokens)
    jac = np.array(
        [(values[1] - values[2]) / (2 * steps[0]), (values[3] - values[4]) / (2 * steps[1])]
    )
    return float(values[0]), jac


def scale_to(profile: Profile, theta: Theta, batch: float, tokens: Tokens, target: float) -> float:
    """The factor s > 0 with h(s·θ) = ``target``, NaN if there is none.

    Exact because h is affine in θ: h(s·θ) = h(0) + s·(h(θ) − h(0)), where h(0) is what the held
    parameters contribute (G1's prefill, G2/G3's memory terms).
    """
    values = _tau_many(profile, np.array([theta, (0.0, 0.0)], dtype=np.float64), batch, tokens)
    at, offset = float(values[0]), float(values[1])
    span = at - offset
    if not (np.isfinite(span) and span > 0 and np.isfinite(target)):
        return float("nan")
    s = (target - offset) / span
    return float(s) if s > 0 else float("nan")
