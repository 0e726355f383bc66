"""The online tuning's filters: :class:`TuningOptions` (the very object :mod:`inferno.tuning`
takes)."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

from ._group import Group, finite, option

__all__ = ["TuningOptions"]


@dataclass(frozen=True, slots=True)
class TuningOptions(Group):
    """How the online tuning's filters behave (docs/tuning.md). Fractions are of the base
    parameter (or of the predicted time)."""

    enabled: bool = option(
        True,
        "INFERNO_TUNING_ENABLED",
        "tune the profiles from the observations",
        flat="tuning_enabled",
    )
    bounds: float = option(
        4.0,
        "INFERNO_TUNING_BOUNDS",
        "a tuned θ stays within [base / bounds, base · bounds]",
        flat="tuning_bounds",
    )
    gate: float = option(
        0.999, "INFERNO_TUNING_GATE", "χ²(1) probability of the innovation gate", flat="tuning_gate"
    )
    process_noise: float = option(
        0.01,
        "INFERNO_TUNING_PROCESS_NOISE",
        "random-walk std per observed cycle, fraction of base",
        flat="tuning_process_noise",
    )
    measurement_noise: float = option(
        0.05,
        "INFERNO_TUNING_MEASUREMENT_NOISE",
        "observation std, fraction of the predicted time",
        flat="tuning_measurement_noise",
    )
    initial_uncertainty: float = option(
        0.5,
        "INFERNO_TUNING_INITIAL_UNCERTAINTY",
        "prior std (and after a reset), fraction of θ",
        flat="tuning_initial_uncertainty",
    )
    min_requests: float = option(
        20.0,
        "INFERNO_TUNING_MIN_REQUESTS",
        "requests in the window below which an observation is skipped",
        flat="tuning_min_requests",
    )
    reset_after: int = option(
        3,
        "INFERNO_TUNING_RESET_AFTER",
        "consecutive same-direction gate rejections before re-initialising",
        flat="tuning_reset_after",
    )

    def check(self) -> None:
        f = finite
        self._require("bounds", f(self.bounds) and self.bounds > 1, "a finite number > 1 (bounds)")
        self._require("gate", f(self.gate) and 0 < self.gate < 1, "a number in (0, 1) (gate)")
        self._require(
            "process_noise",
            f(self.process_noise) and self.process_noise >= 0,
            "a finite number >= 0",
        )
        self._require(
            "measurement_noise",
            f(self.measurement_noise) and self.measurement_noise > 0,
            "a finite number > 0",
        )
        self._require(
            "initial_uncertainty",
            f(self.initial_uncertainty) and self.initial_uncertainty > 0,
            "a finite number > 0",
        )
        self._require(
            "min_requests", f(self.min_requests) and self.min_requests >= 0, "a finite number >= 0"
        )
        self._require("reset_after", self.reset_after >= 1, "an integer >= 1")

    @property
    def gate_threshold(self) -> float:
        """The χ²(1) quantile of ``gate``: (Φ⁻¹((1 + gate)/2))²."""
        return float(NormalDist().inv_cdf((1.0 + self.gate) / 2.0) ** 2)
