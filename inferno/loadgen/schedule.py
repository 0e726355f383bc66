"""When each request of an open-loop run is sent (pure): the merged arrivals of every model's
trace over the run, drawn from one seeded generator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..emulator.traces import Poisson, Trace
from ..units import MS_PER_S, S_PER_MIN

__all__ = ["ModelLoad", "Schedule", "schedule"]


@dataclass(frozen=True)
class ModelLoad:
    """The load offered to one model: its arrival trace (rates in requests per minute, as
    everywhere in Inferno), the items per request, and sizes for variable input dimensions."""

    model: str
    trace: Trace
    batch: int = 1
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def poisson(
        cls,
        model: str,
        rps: float,
        batch: int = 1,
        shapes: dict[str, tuple[int, ...]] | None = None,
    ) -> ModelLoad:
        """Poisson arrivals at ``rps`` requests per second."""
        if not rps >= 0:
            raise ValueError(f"model {model!r}: a rate must be ≥ 0 requests/s, got {rps!r}")
        return cls(model, Poisson(rps * S_PER_MIN), batch, dict(shapes or {}))


@dataclass(frozen=True)
class Schedule:
    """Send times (s from the start, sorted) and which load each one belongs to."""

    times: NDArray[np.float64]
    which: NDArray[np.intp]

    def __len__(self) -> int:
        return int(self.times.size)

    def count(self, index: int) -> int:
        return int(np.count_nonzero(self.which == index))


def schedule(loads: Sequence[ModelLoad], duration: float, seed: int = 0) -> Schedule:
    """Every request of ``loads`` over ``duration`` seconds."""
    if not duration > 0:
        raise ValueError(f"the duration must be > 0 s, got {duration!r}")
    rng = np.random.default_rng(seed)
    times: list[NDArray[np.float64]] = []
    which: list[NDArray[np.intp]] = []
    for i, load in enumerate(loads):
        t = np.asarray(load.trace.generate(0.0, duration * MS_PER_S, rng), dtype=np.float64)
        t = t[(t >= 0) & (t < duration * MS_PER_S)] / MS_PER_S
        times.append(t)
        which.append(np.full(t.size, i, dtype=np.intp))
    all_t = np.concatenate(times) if times else np.empty(0)
    all_w = np.concatenate(which) if which else np.empty(0, dtype=np.intp)
    order = np.argsort(all_t, kind="stable")
    return Schedule(all_t[order], all_w[order])
