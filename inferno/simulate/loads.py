"""The loads of the sizings a run makes without a measurement: the initial and peak
allocations, the static policy's and the oracle's (:func:`~.policies.size_servers`).

Each carries the request rate asked for, the scenario's mean lengths, and the lengths' spread as
the deployed collector would report it once it has seen many of them: the CV and family fitted
from a histogram of :data:`STEADY_SAMPLE` lengths drawn from the scenario's distributions, by the
collector's own fit (:mod:`inferno.prom.lengths`, with the scenario's output cap ``out.max``),
and that cap. The inferno policy's cycles fit each window's histogram the same way
(:mod:`.metrics`), so both see the lengths alike (these sizings were told the means only). They
run the deployed default model, which reads no spread; the fields are what an accurate-mode
sizing of the same rows reads.
"""

from __future__ import annotations

import logging

import numpy as np

from ..emulator import Lengths, name_key
from ..emulator.records import cumulative_counts
from ..prom.lengths import LengthFit
from ..system import Load
from .metrics import fit_histogram
from .scenario import Scenario

__all__ = ["STEADY_SAMPLE", "ScenarioLoads", "output_caps"]

logger = logging.getLogger(__name__)

#: lengths drawn per server and direction for the fit
STEADY_SAMPLE = 20_000


def output_caps(scenario: Scenario) -> dict[str, int]:
    """The servers whose output lengths the scenario caps (``out: {max: T}``), and the cap."""
    out = {}
    for name in scenario.servers:
        cap = getattr(scenario.output_tokens[name], "max_tokens", None)
        if cap is not None:
            out[name] = int(cap)
    return out


#: the draws' stream, apart from the emulator's and the metrics noise's
_STEADY_STREAM = 0x737465616479  # "steady"


def _steady_fit(
    lengths: Lengths, scenario: Scenario, name: str, direction: int, cap: int | None
) -> LengthFit | None:
    key = (name_key(name), _STEADY_STREAM, direction)
    rng = np.random.default_rng(np.random.SeedSequence(scenario.seed, spawn_key=key))
    x = lengths.sample(STEADY_SAMPLE, rng)
    return fit_histogram(cumulative_counts(x), float(x.mean()), cap)


class ScenarioLoads:
    """Every server's lengths fitted once (:func:`_steady_fit`); :meth:`at` the loads at given
    rates."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self._caps = output_caps(scenario)
        self._fits: dict[str, tuple[LengthFit | None, LengthFit | None]] = {}
        for name in scenario.servers:
            cap = self._caps.get(name)
            out = _steady_fit(scenario.output_tokens[name], scenario, name, 0, cap)
            inp = _steady_fit(scenario.input_tokens[name], scenario, name, 1, None)
            self._fits[name] = (out, inp)

    def load(
        self, name: str, rate: float, n_in: float | None = None, n_out: float | None = None
    ) -> Load:
        """Server ``name``'s load at ``rate`` (requests per minute), with the scenario's mean
        lengths unless given."""
        sc = self._scenario
        out, inp = self._fits[name]
        cap = self._caps.get(name)
        return Load(
            rate,
            sc.input_tokens[name].mean if n_in is None else n_in,
            sc.output_tokens[name].mean if n_out is None else n_out,
            out_tokens_cov=None if out is None else out.cv,
            out_tokens_dist=None if out is None else out.family,
            in_tokens_cov=None if inp is None else inp.cv,
            in_tokens_dist=None if inp is None else inp.family,
            out_tokens_max=None if cap is None else float(cap),
        )

    def at(self, rates: dict[str, float]) -> dict[str, Load]:
        """Every server's load at its rate in ``rates``."""
        return {name: self.load(name, rates[name]) for name in self._scenario.servers}
