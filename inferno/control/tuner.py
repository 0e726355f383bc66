"""The tuner of one optimizer: the filters of :mod:`inferno.tuning` kept across cycles.

In memory, thread-safe: one update at a time, each from the state the previous one left.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ..system import System
from ..tuning import (
    PairKey,
    Theta,
    TunerState,
    TuningOptions,
    TuningReport,
    observations_from,
    state_from_json,
    state_to_json,
    tuned_parameters,
    update,
)

__all__ = ["Tuner"]


class Tuner:
    def __init__(self, options: TuningOptions, *, enabled: bool = True) -> None:
        self.options = options
        self.enabled = enabled
        self._lock = threading.Lock()
        self._state = TunerState()

    @property
    def state(self) -> TunerState:
        with self._lock:
            return self._state

    def snapshot(self) -> dict[str, Any]:
        """The filters as JSON (what the controller keeps across restarts)."""
        return state_to_json(self.state)

    def restore(self, doc: Mapping[str, Any]) -> str:
        """Take the filters of ``doc`` if this tuner has none yet (it just started); the
        problem, "" when restored or not needed. A bad document is not an error: the tuner
        starts empty and says why."""
        with self._lock:
            if self._state.filters:
                return ""
            try:
                self._state = state_from_json(doc, self.options.bounds)
            except (ValueError, TypeError) as exc:
                return f"tuner state not restored: {exc}"
        return ""

    def step(
        self,
        system: System,
        measurement: Mapping[str, Any],
        servers: Sequence[Mapping[str, Any]],
    ) -> tuple[dict[PairKey, Theta], TuningReport, list[str]]:
        """Update the filters from ``measurement``; the (α, β) to solve with, the report and
        notes on observations that could not be tied to a server."""
        base = {(mp.model, mp.accelerator): mp.profile for mp in system.profiles}
        observations, notes = observations_from(measurement, servers)
        with self._lock:
            self._state, report = update(self._state, observations, base, self.options)
            tuned = tuned_parameters(self._state, base)
        return tuned, report, notes
