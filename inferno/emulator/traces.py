"""Load traces: when the requests of one server arrive (and, for a replay, their token counts).

Times are ms from the start of the simulation; rates are given in requests per minute (as in
Inferno's ``server-data.json``) and reported by :meth:`Trace.rate_at` in requests per ms (the
model's unit). Every trace draws from a :class:`numpy.random.Generator` it is given, so a seeded
generator reproduces the same arrivals.

- :class:`Poisson`: constant-rate Poisson arrivals.
- :class:`Steps`: piecewise-constant rate, a Poisson process on each step.
- :class:`Diurnal`: λ(t) = mean·(1 + amplitude·sin(2π(t − phase)/period)), a non-homogeneous
  Poisson process drawn by thinning.
- :class:`Bursts`: a two-state Markov-modulated Poisson process (base and burst rates,
  exponential sojourns); its long-run mean rate is (base·T_base + burst·T_burst)/(T_base +
  T_burst), and that is what :meth:`Bursts.rate_at` and :meth:`Bursts.mean_rate` report.
- :class:`~inferno.emulator.replay.Replay` (in :mod:`.replay`): the arrivals of a CSV log.

The emulator draws arrivals one window (chunk) at a time through :meth:`Trace.stream`, which keeps
the state a trace needs across windows (the modulating chain of :class:`Bursts`).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..units import MS_PER_MIN, MS_PER_S

__all__ = [
    "ArrivalStream",
    "Arrivals",
    "Bursts",
    "Diurnal",
    "Poisson",
    "Steps",
    "Trace",
]

logger = logging.getLogger(__name__)

F = NDArray[np.float64]
Ints = NDArray[np.int64]


def _check_rate(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative rate, got {value!r}")


def _poisson(rate_ms: float, t0: float, t1: float, rng: np.random.Generator) -> F:
    """Sorted arrival times of a homogeneous Poisson process of rate ``rate_ms`` on [t0, t1)."""
    span = t1 - t0
    if span <= 0 or rate_ms <= 0:
        return np.empty(0)
    n = int(rng.poisson(rate_ms * span))
    times = t0 + span * rng.random(n)
    times.sort()
    # t0 + span·u < t1 in exact arithmetic; keep it so in floating point
    out: F = np.minimum(times, np.nextafter(t1, t0))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class Arrivals:
    """One window of arrivals: sorted times (ms) and, for a replay, each request's tokens."""

    times: F
    input_tokens: Ints | None = None
    output_tokens: Ints | None = None


class ArrivalStream(ABC):
    """Consecutive windows of one trace's arrivals: call :meth:`next` with adjoining windows."""

    @abstractmethod
    def next(self, t0: float, t1: float) -> Arrivals:
        """Arrivals in [t0, t1); ``t0`` is the previous call's ``t1``."""


class Trace(ABC):
    """When the requests of one server arrive."""

    __slots__ = ()

    @abstractmethod
    def rate_at(self, t_ms: float) -> float:
        """The rate the trace claims at time ``t_ms``, requests per ms."""

    @abstractmethod
    def mean_rate(self, t0_ms: float, t1_ms: float) -> float:
        """Expected arrivals per ms over [t0, t1) (for a replay: the actual count / span)."""

    @abstractmethod
    def generate(self, t0_ms: float, t1_ms: float, rng: np.random.Generator) -> F:
        """Sorted arrival times in [t0, t1), drawn afresh (a stationary start for bursts)."""

    @property
    def end_ms(self) -> float | None:
        """The time after which no request arrives (None: the trace never ends)."""
        return None

    def stream(self, rng: np.random.Generator) -> ArrivalStream:
        """Arrivals window by window, drawn from ``rng``."""
        return _Memoryless(self, rng)


class _Memoryless(ArrivalStream):
    """Windows of a (non-homogeneous) Poisson trace are independent: generate each afresh."""

    __slots__ = ("_rng", "_trace")

    def __init__(self, trace: Trace, rng: np.random.Generator) -> None:
        self._trace = trace
        self._rng = rng

    def next(self, t0: float, t1: float) -> Arrivals:
        return Arrivals(self._trace.generate(t0, t1, self._rng))


@dataclass(frozen=True, slots=True)
class Poisson(Trace):
    """Poisson arrivals at a constant ``rate_per_min``."""

    rate_per_min: float

    def __post_init__(self) -> None:
        _check_rate("rate_per_min", self.rate_per_min)

    def rate_at(self, t_ms: float) -> float:
        return self.rate_per_min / MS_PER_MIN

    def mean_rate(self, t0_ms: float, t1_ms: float) -> float:
        return self.rate_per_min / MS_PER_MIN

    def generate(self, t0_ms: float, t1_ms: float, rng: np.random.Generator) -> F:
        return _poisson(self.rate_per_min / MS_PER_MIN, t0_ms, t1_ms, rng)


@dataclass(frozen=True, slots=True)
class Steps(Trace):
    """A piecewise-constant rate: ``steps`` = [(start_s, rate_per_min), ...], starts increasing.

    Each rate holds from its start to the next start (the last one forever); before the first
    start the rate is 0.
    """

    steps: tuple[tuple[float, float], ...]

    def __init__(self, steps: Iterable[tuple[float, float]]) -> None:
        rows = tuple((float(s), float(r)) for s, r in steps)
        if not rows:
            raise ValueError("Steps needs at least one (start_s, rate_per_min) step")
        for i, (start, rate) in enumerate(rows):
            if not math.isfinite(start):
                raise ValueError(f"step {i}: start must be finite, got {start!r}")
            _check_rate(f"step {i}: rate_per_min", rate)
            if i and start <= rows[i - 1][0]:
                raise ValueError(f"step {i}: starts must increase ({start} after {rows[i - 1][0]})")
        object.__setattr__(self, "steps", rows)

    def _bounds(self) -> tuple[F, F]:
        starts = np.array([s for s, _ in self.steps]) * MS_PER_S
        rates = np.array([r for _, r in self.steps]) / MS_PER_MIN
        return starts, rates

    def rate_at(self, t_ms: float) -> float:
        starts, rates = self._bounds()
        i = int(np.searchsorted(starts, t_ms, side="right")) - 1
        return float(rates[i]) if i >= 0 else 0.0

    def _segments(self, t0: float, t1: float) -> list[tuple[float, float, float]]:
        starts, rates = self._bounds()
        ends = np.append(starts[1:], np.inf)
        out = []
        for s, e, r in zip(starts, ends, rates, strict=True):
            lo, hi = max(t0, float(s)), min(t1, float(e))
            if hi > lo:
                out.append((lo, hi, float(r)))
        return out

    def mean_rate(self, t0_ms: float, t1_ms: float) -> float:
        if t1_ms <= t0_ms:
            return self.rate_at(t0_ms)
        total = sum((hi - lo) * r for lo, hi, r in self._segments(t0_ms, t1_ms))
        return total / (t1_ms - t0_ms)

    def generate(self, t0_ms: float, t1_ms: float, rng: np.random.Generator) -> F:
        parts = [_poisson(r, lo, hi, rng) for lo, hi, r in self._segments(t0_ms, t1_ms)]
        return np.concatenate(parts) if parts else np.empty(0)


@dataclass(frozen=True, slots=True)
class Diurnal(Trace):
    """λ(t) = mean·(1 + amplitude·sin(2π(t − phase)/period)), t in s; drawn by thinning.

    Over any whole number of periods the mean rate is ``mean_per_min``.
    """

    mean_per_min: float
    amplitude: float
    period_s: float
    phase_s: float = 0.0

    def __post_init__(self) -> None:
        _check_rate("mean_per_min", self.mean_per_min)
        if not 0.0 <= self.amplitude <= 1.0:
            raise ValueError(f"amplitude must be in [0, 1], got {self.amplitude!r}")
        if not math.isfinite(self.period_s) or self.period_s <= 0:
            raise ValueError(f"period_s must be positive, got {self.period_s!r}")
        if not math.isfinite(self.phase_s):
            raise ValueError(f"phase_s must be finite, got {self.phase_s!r}")

    @property
    def _omega(self) -> float:
        return 2.0 * math.pi / (self.period_s * MS_PER_S)

    def rate_at(self, t_ms: float) -> float:
        arg = self._omega * (t_ms - self.phase_s * MS_PER_S)
        return self.mean_per_min / MS_PER_MIN * (1.0 + self.amplitude * math.sin(arg))

    def mean_rate(self, t0_ms: float, t1_ms: float) -> float:
        if t1_ms <= t0_ms:
            return self.rate_at(t0_ms)
        w, phi = self._omega, self.phase_s * MS_PER_S
        # ∫ sin(w(t − φ)) dt = −cos(w(t − φ))/w
        osc = (math.cos(w * (t0_ms - phi)) - math.cos(w * (t1_ms - phi))) / w
        m = self.mean_per_min / MS_PER_MIN
        return m * ((t1_ms - t0_ms) + self.amplitude * osc) / (t1_ms - t0_ms)

    def generate(self, t0_ms: float, t1_ms: float, rng: np.random.Generator) -> F:
        m = self.mean_per_min / MS_PER_MIN
        peak = m * (1.0 + self.amplitude)
        cand = _poisson(peak, t0_ms, t1_ms, rng)
        if cand.size == 0:
            return cand
        rate = m * (1.0 + self.amplitude * np.sin(self._omega * (cand - self.phase_s * MS_PER_S)))
        keep = rng.random(cand.size) * peak < rate
        out: F = cand[keep]
        return out


@dataclass(frozen=True, slots=True)
class Bursts(Trace):
    """Two-state Markov-modulated Poisson arrivals.

    The rate is ``base_per_min`` during base periods and ``burst_per_min`` during bursts; the
    periods last exponential times of means ``base_mean_s`` and ``burst_mean_s``. The long-run
    fraction of time in bursts is burst_mean/(base_mean + burst_mean), so the long-run mean rate
    is (base·base_mean + burst·burst_mean)/(base_mean + burst_mean): :meth:`rate_at` and
    :meth:`mean_rate` report that mean (the rate at a given time is random). A stream starts in
    the stationary distribution (burst with that probability, with an exponential residual
    sojourn), so the expected count over any window is the long-run mean × its length.
    """

    base_per_min: float
    burst_per_min: float
    base_mean_s: float
    burst_mean_s: float

    def __post_init__(self) -> None:
        _check_rate("base_per_min", self.base_per_min)
        _check_rate("burst_per_min", self.burst_per_min)
        for name in ("base_mean_s", "burst_mean_s"):
            v = getattr(self, name)
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be positive, got {v!r}")

    @property
    def burst_fraction(self) -> float:
        """Long-run fraction of time spent in bursts."""
        return self.burst_mean_s / (self.base_mean_s + self.burst_mean_s)

    @property
    def long_run_per_min(self) -> float:
        """The long-run mean rate, requests per minute."""
        f = self.burst_fraction
        return (1.0 - f) * self.base_per_min + f * self.burst_per_min

    def rate_at(self, t_ms: float) -> float:
        return self.long_run_per_min / MS_PER_MIN

    def mean_rate(self, t0_ms: float, t1_ms: float) -> float:
        return self.long_run_per_min / MS_PER_MIN

    def generate(self, t0_ms: float, t1_ms: float, rng: np.random.Generator) -> F:
        return _BurstStream(self, rng).next(t0_ms, t1_ms).times

    def stream(self, rng: np.random.Generator) -> ArrivalStream:
        return _BurstStream(self, rng)

    def realised(self, rng: np.random.Generator, until_ms: float, window_ms: float) -> Steps:
        """The rates a :meth:`stream` drawn from ``rng`` goes through over [0, ``until_ms``)
        when it is read in consecutive windows of ``window_ms`` from 0 (as the emulator reads
        it): the :class:`Steps` of its modulating chain's path. The arrivals are drawn too (they
        share the generator), so the path is the one those arrivals follow."""
        if not window_ms > 0:
            raise ValueError(f"window_ms must be > 0, got {window_ms!r}")
        stream = _BurstStream(self, rng)
        t = 0.0
        while t < until_ms or not stream.path:
            stream.next(t, t + window_ms)
            t += window_ms
        steps: list[tuple[float, float]] = []
        for start_ms, rate in stream.path:
            start = start_ms / MS_PER_S
            if steps and start <= steps[-1][0]:  # a sojourn too short for a float: keep the last
                steps.pop()
            steps.append((start, rate))
        return Steps(steps)


class _BurstStream(ArrivalStream):
    """The modulating chain's state carried across windows, and the path it took so far."""

    __slots__ = ("_burst", "_rng", "_switch_at", "_trace", "path")

    def __init__(self, trace: Bursts, rng: np.random.Generator) -> None:
        self._trace = trace
        self._rng = rng
        self._burst: bool | None = None  # drawn at the first window's start
        self._switch_at = 0.0
        #: (start ms, rate per min) of every state the chain entered, in order
        self.path: list[tuple[float, float]] = []

    def _rate_per_min(self) -> float:
        return self._trace.burst_per_min if self._burst else self._trace.base_per_min

    def _sojourn(self) -> float:
        mean_s = self._trace.burst_mean_s if self._burst else self._trace.base_mean_s
        return float(self._rng.exponential(mean_s * MS_PER_S))

    def next(self, t0: float, t1: float) -> Arrivals:
        tr = self._trace
        if self._burst is None:
            self._burst = bool(self._rng.random() < tr.burst_fraction)
            self.path.append((t0, self._rate_per_min()))
            self._switch_at = t0 + self._sojourn()  # memoryless: the residual is exponential
        parts = []
        t = t0
        while t < t1:
            end = min(self._switch_at, t1)
            parts.append(_poisson(self._rate_per_min() / MS_PER_MIN, t, end, self._rng))
            t = end
            if self._switch_at <= t1:
                self._burst = not self._burst
                self.path.append((self._switch_at, self._rate_per_min()))
                self._switch_at += self._sojourn()
        return Arrivals(np.concatenate(parts) if parts else np.empty(0))
