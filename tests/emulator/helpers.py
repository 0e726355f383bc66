"""Helpers of the emulator tests: confidence intervals of simulated samples, and the analytic
model's parameter arrays of one profile."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from inferno.model import _kinds
from inferno.model.profiles import Profile

F = NDArray[np.float64]


def batch_means(values: F, batches: int = 30, conf: float = 0.999) -> tuple[float, float]:
    """(mean, half-width) of a Student-t confidence interval from ``batches`` consecutive batch
    means of ``values`` (correlated samples in time order: the batch means are nearly iid when
    each batch is much longer than the correlation time)."""
    x = np.asarray(values, dtype=np.float64)
    size = x.size // batches
    assert size >= 10, "too few samples for batch means"
    means = x[: size * batches].reshape(batches, size).mean(axis=1)
    half = float(stats.t.ppf(0.5 + conf / 2.0, batches - 1) * means.std(ddof=1) / np.sqrt(batches))
    return float(means.mean()), half


def sample_ci(values: F, conf: float = 0.999) -> tuple[float, float]:
    """(mean, half-width) of a Student-t confidence interval of iid samples."""
    x = np.asarray(values, dtype=np.float64)
    half = float(stats.t.ppf(0.5 + conf / 2.0, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return float(x.mean()), half


def assert_in_ci(expected: float, ci: tuple[float, float], what: str = "") -> None:
    mean, half = ci
    assert abs(mean - expected) <= half, f"{what}: {expected} outside {mean} ± {half}"


def kind_arrays(p: Profile, n_in: int, n_out: int) -> _kinds.KindArrays:
    """The analytic model's arrays of one profile at one request shape (unused parameters 0)."""

    def one(x: float) -> F:
        return np.array([float(x)])

    return _kinds.KindArrays(
        p.kind,
        one(getattr(p, "alpha", 0.0)),
        one(getattr(p, "beta", 0.0)),
        one(getattr(p, "gamma", 0.0)),
        one(getattr(p, "delta", 0.0)),
        one(getattr(p, "max_num_tokens", 0)),
        one(n_in),
        one(n_out),
    )
