"""A closed-loop user's think time (pure): how long it waits after an answer before its next
request.

Three kinds, written as ``inferno load --think`` takes them:

- ``S``: always S seconds (Locust's ``constant(S)``);
- ``exp:M``: exponential with mean M seconds (the classic interactive user: with it and a fixed
  population the arrivals are those of a finite-source queue);
- ``uniform:A,B``: uniform between A and B seconds (Locust's ``between(A, B)``; siege's
  ``--delay=D`` is ``uniform:0,D``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["ThinkTime"]

Kind = Literal["fixed", "exp", "uniform"]


@dataclass(frozen=True)
class ThinkTime:
    kind: Kind = "fixed"
    low: float = 0.0  # fixed: the time; exp: the mean; uniform: the lower bound
    high: float = 0.0  # uniform: the upper bound (otherwise = low)

    def __post_init__(self) -> None:
        for x in (self.low, self.high):
            if not (math.isfinite(x) and x >= 0):
                raise ValueError(f"a think time must be a finite number ≥ 0 s, got {x!r}")
        if self.kind == "uniform" and self.high < self.low:
            raise ValueError(f"uniform:{self.low:g},{self.high:g}: the bounds are reversed")

    @classmethod
    def parse(cls, text: str) -> ThinkTime:
        """``S``, ``exp:M`` or ``uniform:A,B`` (ValueError saying what is wrong)."""
        kind, sep, rest = text.strip().partition(":")
        if not sep:
            kind, rest = "fixed", kind
        kind = kind.strip().lower()
        try:
            values = [float(v) for v in rest.split(",")]
        except ValueError:
            raise ValueError(f"{text!r}: expected S, exp:MEAN or uniform:A,B in seconds") from None
        if kind in ("fixed", "exp") and len(values) == 1:
            return cls(kind, values[0], values[0])  # type: ignore[arg-type]
        if kind == "uniform" and len(values) == 2:
            return cls("uniform", values[0], values[1])
        raise ValueError(f"{text!r}: expected S, exp:MEAN or uniform:A,B in seconds")

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    def draw(self, rng: np.random.Generator) -> float:
        """One think time, in seconds."""
        if self.kind == "exp":
            return float(rng.exponential(self.low)) if self.low > 0 else 0.0
        if self.kind == "uniform":
            return float(rng.uniform(self.low, self.high))
        return self.low

    def __str__(self) -> str:
        if self.kind == "exp":
            return f"exponential, mean {self.low:g} s"
        if self.kind == "uniform":
            return f"uniform {self.low:g}–{self.high:g} s"
        return f"{self.low:g} s"
