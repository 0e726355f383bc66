"""The bounds of a simulate scenario's numbers, and the size of a run before it starts.

Every number of a scenario is finite and within the bounds here or in :mod:`inferno.data.limits`
(rates, token counts, replica counts). A valid scenario can still ask for a run that would take
hours and gigabytes (a day of the large sample, a control period of a second over a month), so
``inferno simulate`` estimates the run's events first (:func:`estimate_run`) and refuses one above
:data:`MAX_EVENTS` unless ``--force`` is given (:func:`check_run_size`). See docs/simulate.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ..emulator import Bursts, Steps
from ..errors import InputError

if TYPE_CHECKING:
    from .scenario import Scenario

__all__ = [
    "CONTROL_STEP_EVENTS",
    "MAX_DURATION_S",
    "MAX_EVENTS",
    "MAX_FACTOR",
    "MAX_LENGTH_CV",
    "MAX_SEED",
    "MAX_TIME_S",
    "MIN_CONTROL_PERIOD_S",
    "RunEstimate",
    "check_run_size",
    "estimate_run",
]

#: simulated seconds (``duration``): 1e7 s is 116 days
MAX_DURATION_S: Final = 1e7
#: the shortest ``control_period`` (s): a Kubernetes autoscaler acts every 15 s; a period much
#: shorter than a replica's start-up only measures noise
MIN_CONTROL_PERIOD_S: Final = 1.0
#: every other time in seconds: ``startup_delay``, ``metrics.window``, a diurnal ``period`` and
#: ``phase``, bursts' mean sojourns, step starts, the policies' stabilisation windows
MAX_TIME_S: Final = MAX_DURATION_S
#: the policies' relative options: ``headroom``, ``batch_tolerance``, ``tolerance``, ``target``
MAX_FACTOR: Final = 1000.0
#: ``seed``
MAX_SEED: Final = 2**63 - 1
#: a lognormal token length's coefficient of variation (``{kind: lognormal, cv}``)
MAX_LENGTH_CV: Final = 100.0
#: the largest run ``inferno simulate`` starts without ``--force``: the bundled demo is about
#: 0.4 million events (5 s of wall time), bench/simulate.py's hour of the large sample 2.5 million
#: (70 s, 290 MB); a request costs about 60 µs and 130 bytes, one server's control step about
#: 100 requests' worth of time (the Inferno policy runs the optimizer)
MAX_EVENTS: Final = 5_000_000
#: what one control step of one server counts for in the estimate, in events
CONTROL_STEP_EVENTS: Final = 100

_WINDOW_S = 60.0  # the emulator draws arrivals a minute at a time (inferno.emulator.engine)


@dataclass(frozen=True, slots=True)
class RunEstimate:
    """What a scenario's run will do, for every policy together."""

    policies: int
    servers: int
    periods: int
    requests: float  # expected arrivals, per policy
    trace_steps: float  # trace segments drawn (steps × windows, bursts' switches), per policy

    @property
    def events(self) -> float:
        per_policy = (
            self.requests + self.trace_steps + self.periods * self.servers * CONTROL_STEP_EVENTS
        )
        return self.policies * per_policy

    def describe(self) -> str:
        """The estimate in words, e.g. for an error message."""
        return (
            f"{self.events:,.0f} events ({self.policies} policies × ({self.requests:,.0f} "
            f"requests + {self.servers} servers × {self.periods:,} control periods × "
            f"{CONTROL_STEP_EVENTS}"
            + (f" + {self.trace_steps:,.0f} trace segments" if self.trace_steps else "")
            + "))"
        )


def estimate_run(scenario: Scenario) -> RunEstimate:
    """The expected size of ``scenario``'s run (cheap: no arrival is drawn)."""
    duration_ms = scenario.duration_ms
    windows = math.ceil(scenario.duration_s / _WINDOW_S)
    requests = 0.0
    trace_steps = 0.0
    for name in scenario.servers:
        trace = scenario.traces[name]
        requests += trace.mean_rate(0.0, duration_ms) * duration_ms
        if isinstance(trace, Steps):
            trace_steps += windows * len(trace.steps)
        elif isinstance(trace, Bursts):  # two switches per base + burst cycle
            trace_steps += 2.0 * scenario.duration_s / (trace.base_mean_s + trace.burst_mean_s)
    periods = max(math.ceil(scenario.duration_s / scenario.control_period_s - 1e-9), 1)
    return RunEstimate(
        policies=len(scenario.policies),
        servers=len(scenario.servers),
        periods=periods,
        requests=requests,
        trace_steps=trace_steps,
    )


def check_run_size(scenario: Scenario, limit: float | None = None) -> RunEstimate:
    """The run's estimate; an InputError naming the scenario when it is above ``limit``
    (default :data:`MAX_EVENTS`)."""
    limit = MAX_EVENTS if limit is None else limit
    estimate = estimate_run(scenario)
    if not estimate.events <= limit:
        raise InputError(
            f"the run is estimated at {estimate.describe()}, more than the limit of "
            f"{limit:,.0f}: shorten duration, lengthen control_period, simulate fewer servers "
            "or policies, or run with --force",
            source=scenario.source,
        )
    return estimate
