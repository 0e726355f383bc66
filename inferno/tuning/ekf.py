"""The extended Kalman filter's steps over a two-parameter state θ = (α, β), pure numpy.

The state is a random walk, θ_k = θ_{k−1} + w with w ~ N(0, Q); one scalar observation
z = h(θ) + v with v ~ N(0, R) corrects it. h is linearised at the predicted state with its
Jacobian H (numeric, :mod:`inferno.tuning.measure`): that linearisation is what makes the filter
"extended". The covariance update is Joseph's form, which keeps P symmetric positive
semi-definite whatever the rounding.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Covariance", "Innovation", "correct", "diagonal", "innovate", "predict"]

logger = logging.getLogger(__name__)

F = NDArray[np.float64]
Covariance = tuple[tuple[float, float], tuple[float, float]]


def diagonal(variances: tuple[float, float]) -> Covariance:
    """A diagonal covariance."""
    return ((float(variances[0]), 0.0), (0.0, float(variances[1])))


def _array(cov: Covariance) -> F:
    return np.array(cov, dtype=np.float64)


def _tuple(m: F) -> Covariance:
    sym = (m + m.T) / 2.0
    return ((float(sym[0, 0]), float(sym[0, 1])), (float(sym[1, 0]), float(sym[1, 1])))


def predict(cov: Covariance, process: tuple[float, float]) -> Covariance:
    """P⁻ = P + Q for the random walk (the mean does not move), Q = diag(process)."""
    return _tuple(_array(cov) + np.diag(np.asarray(process, dtype=np.float64)))


@dataclass(frozen=True, slots=True)
class Innovation:
    """What one observation says against the prediction."""

    predicted: float  # h(θ⁻)
    residual: float  # y = z − h(θ⁻)
    variance: float  # S = H P⁻ Hᵀ + R
    nis: float  # normalised innovation squared y² / S, χ²(1) if the model is right
    gain: tuple[float, float]  # K = P⁻ Hᵀ / S

    @property
    def sign(self) -> int:
        return 1 if self.residual > 0 else -1 if self.residual < 0 else 0


def innovate(
    cov: Covariance, predicted: float, jacobian: F, observed: float, noise: float
) -> Innovation:
    """The innovation of observation ``observed`` (variance ``noise`` = R) at the prediction."""
    p = _array(cov)
    h = np.asarray(jacobian, dtype=np.float64)
    ph = p @ h
    s = float(h @ ph) + float(noise)
    y = float(observed) - float(predicted)
    if not (math.isfinite(s) and s > 0):
        return Innovation(float(predicted), y, math.nan, math.inf, (0.0, 0.0))
    k = ph / s
    return Innovation(float(predicted), y, s, y * y / s, (float(k[0]), float(k[1])))


def correct(
    mean: tuple[float, float], cov: Covariance, jacobian: F, inn: Innovation, noise: float
) -> tuple[tuple[float, float], Covariance]:
    """θ⁺ = θ⁻ + K y; P⁺ = (I − K H) P⁻ (I − K H)ᵀ + K R Kᵀ (Joseph's form)."""
    k = np.asarray(inn.gain, dtype=np.float64)
    h = np.asarray(jacobian, dtype=np.float64)
    theta = np.asarray(mean, dtype=np.float64) + k * inn.residual
    i_kh = np.eye(2) - np.outer(k, h)
    p = i_kh @ _array(cov) @ i_kh.T + float(noise) * np.outer(k, k)
    return (float(theta[0]), float(theta[1])), _tuple(p)
