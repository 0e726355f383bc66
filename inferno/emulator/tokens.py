"""Per-request token-length distributions: input and output tokens of the simulated requests.

Each distribution draws many lengths at once from a :class:`numpy.random.Generator` (the emulator
draws one chunk of arrivals at a time) and knows its exact mean, so a test or a caller can compare
the simulation with the analytic model, which only knows averages.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import special

__all__ = ["Empirical", "Exponential", "Fixed", "Lengths", "LogNormal"]

logger = logging.getLogger(__name__)

Ints = NDArray[np.int64]


def _check_cap(name: str, cap: int | None) -> None:
    if cap is None:
        return
    if isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap < 1:
        raise ValueError(f"{name} max_tokens must be an integer ≥ 1, got {cap!r}")


def _capped(x: Ints, cap: int | None) -> Ints:
    return x if cap is None else np.minimum(x, cap)


class Lengths(ABC):
    """A distribution of token counts (non-negative integers)."""

    __slots__ = ()

    @property
    @abstractmethod
    def mean(self) -> float:
        """The exact expected length."""

    @property
    @abstractmethod
    def minimum(self) -> int:
        """The smallest length it can draw."""

    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> Ints:
        """``n`` lengths, int64."""


@dataclass(frozen=True, slots=True)
class Fixed(Lengths):
    """Every request has ``n`` tokens (no randomness is consumed)."""

    n: int

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 0:
            raise ValueError(f"Fixed length must be a non-negative integer, got {self.n!r}")

    @property
    def mean(self) -> float:
        return float(self.n)

    @property
    def minimum(self) -> int:
        return int(self.n)

    def sample(self, n: int, rng: np.random.Generator) -> Ints:
        return np.full(n, self.n, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Exponential(Lengths):
    """min(max(1, round(X)), ``max_tokens``) with X exponential of mean ``mean_tokens``.

    Rounding and the floor at 1 move the mean slightly: :attr:`mean` is the exact expectation of
    the rounded length (for ``mean_tokens`` ≥ 10 it is within 0.5% of ``mean_tokens``).
    ``max_tokens`` (default: none) is the most a server generates (its ``max_tokens`` or what its
    context leaves): a longer draw stops there.
    """

    mean_tokens: float
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean_tokens) or self.mean_tokens <= 0:
            raise ValueError(f"Exponential mean must be positive, got {self.mean_tokens!r}")
        _check_cap("Exponential", self.max_tokens)

    @property
    def mean(self) -> float:
        # Y = max(1, round X): P(Y > k) = P(X ≥ k + ½) = q^(k + ½) for k ≥ 1, q = exp(−1/μ), and
        # E[min(Y, T)] = Σ_{k<T} P(Y > k) = 1 + q^1.5·(1 − q^(T − 1))/(1 − q)
        q = math.exp(-1.0 / self.mean_tokens)
        rest = 1.0 if self.max_tokens is None else 1.0 - q ** (self.max_tokens - 1)
        return float(1.0 + q**1.5 * rest / (1.0 - q))

    @property
    def minimum(self) -> int:
        return 1

    def sample(self, n: int, rng: np.random.Generator) -> Ints:
        x = np.rint(rng.exponential(self.mean_tokens, n))
        return _capped(np.maximum(x, 1.0).astype(np.int64), self.max_tokens)


@dataclass(frozen=True, slots=True)
class LogNormal(Lengths):
    """min(max(1, round(X)), ``max_tokens``), X lognormal of mean ``mean_tokens`` and
    coefficient of variation ``cv`` (the heavy-tailed lengths LLM traffic often has; the accurate
    model's ``outTokensDist: lognormal``). Without a cap :attr:`mean` is X's, which rounding moves
    by well under 1% at means ≥ 10; with one, min(X, T)'s. ``max_tokens`` (default: none) is the
    most a server generates (its ``max_tokens`` or what its context leaves). At CV 1.5 the
    uncapped tail is long: 1 draw in 10⁴ is over 32× the mean."""

    mean_tokens: float
    cv: float
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean_tokens) or self.mean_tokens <= 0:
            raise ValueError(f"LogNormal mean must be positive, got {self.mean_tokens!r}")
        if not math.isfinite(self.cv) or self.cv <= 0:
            raise ValueError(f"LogNormal CV must be positive, got {self.cv!r}")
        _check_cap("LogNormal", self.max_tokens)

    def _params(self) -> tuple[float, float]:
        s2 = math.log1p(self.cv**2)
        return math.log(self.mean_tokens) - 0.5 * s2, math.sqrt(s2)

    @property
    def mean(self) -> float:
        if self.max_tokens is None:
            return float(self.mean_tokens)
        # E[min(X, T)] = E[X; X < T] + T·P(X ≥ T)
        mu, s = self._params()
        z = (math.log(self.max_tokens) - mu) / s
        below = self.mean_tokens * special.ndtr(z - s)
        return float(below + self.max_tokens * special.ndtr(-z))

    @property
    def minimum(self) -> int:
        return 1

    def sample(self, n: int, rng: np.random.Generator) -> Ints:
        mu, s = self._params()
        x = np.rint(rng.lognormal(mu, s, n))
        return _capped(np.maximum(x, 1.0).astype(np.int64), self.max_tokens)


@dataclass(frozen=True, slots=True)
class Empirical(Lengths):
    """Lengths drawn uniformly (with replacement) from an observed list."""

    values: tuple[int, ...]
    _array: Ints = field(init=False, repr=False, compare=False)

    def __init__(self, values: Sequence[int] | NDArray[np.integer]) -> None:
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError("Empirical lengths need a non-empty list of integers")
        if not np.issubdtype(arr.dtype, np.integer) and (
            not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr))
        ):
            raise ValueError("Empirical lengths must be integers")
        ints = arr.astype(np.int64)
        if (ints < 0).any():
            raise ValueError("Empirical lengths must be non-negative")
        object.__setattr__(self, "values", tuple(int(v) for v in ints))
        object.__setattr__(self, "_array", ints)

    @property
    def mean(self) -> float:
        return float(self._array.mean())

    @property
    def minimum(self) -> int:
        return int(self._array.min())

    def sample(self, n: int, rng: np.random.Generator) -> Ints:
        idx = rng.integers(0, self._array.size, n)
        out: Ints = self._array[idx]
        return out
