"""The oracle: a policy that knows the future, the yardstick the other policies are held to.

At t = 0 (the initial allocation) and at every control step t, the oracle sizes every server with
the optimizer (:func:`~inferno.simulate.policies.size_servers`: the scenario's static data, its
``sizing`` quantile included) for the *true* peak rate of the server's trace over the coming
period [t, t + control period), clipped at the end of the run (:func:`peak_between`):

- ``poisson``: its rate; ``steps``: the highest step in force during the period; ``diurnal``: the
  top of the wave within the period (exact);
- ``bursts``: the highest rate of the path the modulating chain takes *in this run*
  (:func:`~inferno.emulator.rate_path`, drawn as the simulation draws it): the burst rate when a
  burst is under way or begins during the period, else the base rate;
- ``replay``: the requests that arrive during the period / its length.

Token lengths are the scenario's means, as for the static policy (a replay: the mean of the
requests that arrive during the period, when there are any). What the oracle does not know is the
randomness of the requests within a period (the Poisson counts, each request's length): like the
other policies that use the optimizer it relies on the model, and on the ``sizing`` quantile.

The decisions go through the cycle's own :func:`~inferno.control.actuate` (the plan's deployed
defaults, as for Inferno), so the accelerator and the batch size may change every period. The
oracle's simulation has **no start-up delay**: replicas it adds are ready at once, and a new
accelerator or batch size replaces every replica at once (the rolling update's new replicas are
ready on arrival, so every old one is retired then). Replicas it removes *drain*, as in every
policy: they take no new request, finish the ones they hold, and are paid for until they are
gone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from ..cluster.plan import Decision, PlanSettings
from ..cluster.validate import Guards, StaticLimits
from ..control import actuate
from ..control.actuate import ActuatorConfig, CycleStamp, Target
from ..emulator import Bursts, Diurnal, Poisson, Replay, Steps, Trace, rate_path
from ..system import Load
from ..units import MS_PER_MIN, MS_PER_S
from .cluster import GPU_NODE_LABEL, NAMESPACE, EmulatedCluster, deployment_name
from .loads import ScenarioLoads
from .policies import Policy, Sizing, size_servers
from .scenario import PolicySpec, Scenario

__all__ = ["Foresight", "OraclePolicy", "peak_between"]

logger = logging.getLogger(__name__)

#: points of the grid a trace of another kind is sampled on, per period
_GRID = 101


def _diurnal_peak(trace: Diurnal, t0_ms: float, t1_ms: float) -> float:
    """The highest rate of the wave on [t0, t1], requests per minute."""
    omega = 2.0 * math.pi / (trace.period_s * MS_PER_S)
    x0 = omega * (t0_ms - trace.phase_s * MS_PER_S)
    x1 = omega * (t1_ms - trace.phase_s * MS_PER_S)
    # the first crest (sin = 1, at π/2 + 2πk) at or after x0
    crest = math.pi / 2.0 + 2.0 * math.pi * math.ceil((x0 - math.pi / 2.0) / (2.0 * math.pi))
    top = 1.0 if crest <= x1 else max(math.sin(x0), math.sin(x1))
    return trace.mean_per_min * (1.0 + trace.amplitude * top)


def peak_between(trace: Trace, t0_ms: float, t1_ms: float) -> float:
    """The highest rate ``trace`` offers during [t0, t1), requests per minute (see the module
    docstring; a :class:`~inferno.emulator.Bursts` trace not yet realised counts as its burst
    rate throughout). An empty interval: the rate at t0."""
    if not t1_ms > t0_ms:
        return trace.rate_at(t0_ms) * MS_PER_MIN
    if isinstance(trace, Poisson):
        return trace.rate_per_min
    if isinstance(trace, Steps):
        starts = [s * MS_PER_S for s, _ in trace.steps]
        ends = [*starts[1:], math.inf]
        live = [
            r
            for (_, r), lo, hi in zip(trace.steps, starts, ends, strict=True)
            if lo < t1_ms and hi > t0_ms
        ]
        return max(live, default=0.0)
    if isinstance(trace, Diurnal):
        return _diurnal_peak(trace, t0_ms, t1_ms)
    if isinstance(trace, Bursts):
        return max(trace.base_per_min, trace.burst_per_min)
    if isinstance(trace, Replay):
        return trace.mean_rate(t0_ms, t1_ms) * MS_PER_MIN
    grid = np.linspace(t0_ms, t1_ms, _GRID)[:-1]
    return max(trace.rate_at(float(t)) for t in grid) * MS_PER_MIN


class Foresight:
    """What the oracle knows of a scenario: every server's true rate over the whole run (a bursts
    trace's realised path, :func:`~inferno.emulator.rate_path`), and so the allocation the
    optimizer gives for the peak of each coming period, with the lengths' spread as the run's
    other sizings see it (:class:`~.loads.ScenarioLoads`)."""

    def __init__(self, scenario: Scenario, loads: ScenarioLoads | None = None) -> None:
        self.scenario = scenario
        self._loads = ScenarioLoads(scenario) if loads is None else loads
        self.period_ms = scenario.control_period_s * MS_PER_S
        self.traces: dict[str, Trace] = {
            name: rate_path(scenario.traces[name], scenario.seed, name, scenario.duration_ms)
            for name in scenario.servers
        }

    def period(self, t_ms: float) -> tuple[float, float]:
        """The control period that starts at ``t_ms``, clipped at the end of the run."""
        return t_ms, min(t_ms + self.period_ms, self.scenario.duration_ms)

    def loads(self, t_ms: float) -> dict[str, Load]:
        """Every server's load for the period starting at ``t_ms``: its peak rate, mean tokens."""
        t0, t1 = self.period(t_ms)
        out: dict[str, Load] = {}
        for name, trace in self.traces.items():
            n_in = self.scenario.input_tokens[name].mean
            n_out = self.scenario.output_tokens[name].mean
            if isinstance(trace, Replay):
                got = trace.window(t0, t1)
                if got.times.size and got.input_tokens is not None:
                    n_in = float(np.mean(got.input_tokens))
                if got.times.size and got.output_tokens is not None:
                    n_out = float(np.mean(got.output_tokens))
            out[name] = self._loads.load(name, peak_between(trace, t0, t1), n_in, n_out)
        return out

    def sizing(self, t_ms: float) -> Sizing:
        """The optimizer's decisions for the period starting at ``t_ms``."""
        return size_servers(
            self.scenario.static_docs,
            list(self.scenario.system.servers),
            self.loads(t_ms),
            origin=str(self.scenario.system_dir),
        )

    def initial(self, fallback: Mapping[str, Decision]) -> dict[str, Decision]:
        """The allocation at t = 0 of the servers of ``fallback`` (those the run simulates); a
        server the optimizer cannot allocate for its first period keeps its ``fallback``."""
        sized = self.sizing(0.0).decisions
        out: dict[str, Decision] = {}
        for name, dec in fallback.items():
            mine = sized.get(name)
            out[name] = mine if mine is not None and mine.allocated and mine.accelerator else dec
        return out


class OraclePolicy(Policy):
    """Sizes each coming period for its true peak; its replicas start at once (module
    docstring). ``foresight`` is shared by the instances of one scenario (default: its own)."""

    def __init__(
        self,
        spec: PolicySpec,
        cluster: EmulatedCluster,
        scenario: Scenario,
        foresight: Foresight | None = None,
    ) -> None:
        super().__init__(spec, cluster)
        self.foresight = foresight if foresight is not None else Foresight(scenario)
        self.failures = 0
        self.sequence = 0
        self.actuator = ActuatorConfig(
            plan=PlanSettings(),
            limits=StaticLimits.from_system(cluster.system),
            guards=Guards(gpu_node_label=GPU_NODE_LABEL),
            namespaces=(NAMESPACE,),
        )

    def step(self, t_ms: float) -> None:
        names = self.cluster.server_names()
        sizing = self.foresight.sizing(t_ms)
        decisions = sizing.decisions
        for name in names:
            dec = decisions.get(name)
            if dec is None or not dec.allocated:
                why = "not in the solution" if dec is None else dec.reason or "not allocated"
                note = f"{t_ms / MS_PER_S:.0f} s: {name} not allocated ({why}); kept as is"
                if len(self.notes) < 20:
                    self.notes.append(note)
                logger.info("%s", note)
        targets = [Target(NAMESPACE, deployment_name(n), n) for n in names]
        self.sequence += 1
        stamp = CycleStamp(f"oracle-{self.sequence}", self.sequence, math.inf)
        mine = [decisions[n] for n in names if n in decisions]
        report = actuate(self.cluster, targets, mine, self.actuator, stamp)
        self.cluster.apply_layout(sizing.layout)  # MPS co-runners as the decision places them
        for o in report.outcomes:
            if o.error:
                self.failures += 1
                logger.warning(
                    "%s: %s/%s not applied: %s", self.name, o.namespace, o.deployment, o.error
                )
