"""Run a scenario: every policy on its own fresh simulation, period by period.

Each policy gets a new :class:`~inferno.emulator.Simulation` built with the scenario's seed from
the same server specs, so every policy sees exactly the same arrivals and token counts (the
emulator keys its random streams by seed and server name); only the replicas differ. The
replicas start at the optimizer's allocation for the load the traces offer during the first
control period (``initial: inferno``, the default) or at the peak allocation (``initial: peak``),
with the model instances and batching delay the allocation decided, if any (:mod:`.serving`);
the static policy always starts, and stays, at the peak allocation. The oracle
(:mod:`.oracle`) starts at its allocation for the first period's true peak, and its simulation
has no start-up delay (its new replicas are ready at once).

The loop: ``run_until`` the end of the period, record what happened in it (the ground-truth
:class:`~inferno.emulator.Window` of each server, the offered rate, the replicas asked and the
configuration), then let the policy act (not after the last period). A ``progress`` callback is
called after every period.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..cluster.plan import Decision
from ..emulator import ServerSpec, Simulation, Window
from ..errors import InputError
from ..units import MS_PER_MIN, MS_PER_S
from .cluster import EmulatedCluster
from .loads import ScenarioLoads, output_caps
from .metrics import MetricsSource
from .oracle import Foresight
from .policies import build_policy, peak_rate, size_servers
from .scenario import PolicySpec, Scenario, StaticOptions
from .serving import decided_serving, serving_profile

__all__ = ["PolicyRun", "Progress", "RunResult", "ServerPeriod", "run_scenario"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerPeriod:
    """One server during one control period of one policy's run."""

    period: int
    t0_ms: float
    t1_ms: float
    server: str
    offered_rpm: float  # what the trace offers on average (its claim)
    window: Window  # the ground truth
    measured_rpm: float  # what the policy measured at the end of the period (NaN: nothing)
    replicas: int  # replicas asked at the end of the period, before the policy acted
    accelerator: str
    batch: int


@dataclass
class PolicyRun:
    spec: PolicySpec
    sim: Simulation
    cluster: EmulatedCluster
    rows: list[ServerPeriod] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Progress:
    policy: str
    policy_index: int  # 0-based
    policies: int
    period: int  # periods done for this policy
    periods: int

    @property
    def done(self) -> int:
        return self.policy_index * self.periods + self.period

    @property
    def total(self) -> int:
        return self.policies * self.periods


@dataclass
class RunResult:
    scenario: Scenario
    initial: dict[str, Decision]
    peak: dict[str, Decision]
    peak_rates: dict[str, float]  # req/min
    runs: list[PolicyRun]
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def _mean_tokens(scenario: Scenario, name: str) -> tuple[float, float]:
    return scenario.input_tokens[name].mean, scenario.output_tokens[name].mean


def _specs(
    scenario: Scenario, alloc: dict[str, Decision], startup_delay_s: float
) -> dict[str, ServerSpec]:
    profiles = {(p.model, p.accelerator): p.profile for p in scenario.system.profiles}
    specs = {}
    for name, dec in alloc.items():
        srv = scenario.server(name)
        # the model instances and batching delay the decision set, as the cluster would run them
        profile = serving_profile(profiles[(srv.model, dec.accelerator)], *decided_serving(dec))
        specs[name] = ServerSpec(
            profile,
            scenario.traces[name],
            replicas=dec.replicas,
            batch_size=dec.max_batch,
            max_queue=scenario.max_queue,
            input_tokens=scenario.input_tokens[name],
            output_tokens=scenario.output_tokens[name],
            router=scenario.router,
            startup_delay_ms=startup_delay_s * MS_PER_S,
            service=scenario.service,
        )
    return specs


def _allocated(decisions: dict[str, Decision]) -> dict[str, Decision]:
    return {k: d for k, d in decisions.items() if d.allocated and d.accelerator}


def _peak_kept(
    scenario: Scenario,
    loads: ScenarioLoads,
    initial: dict[str, Decision],
    peaks: dict[str, float],
) -> dict[str, Decision]:
    """The optimizer's decisions at each server's peak rate on its initial accelerator (the
    scalers keep it): what bounds their replicas."""
    servers = [s for s in scenario.system.servers if s.name in initial]
    keep = {n: d.accelerator for n, d in initial.items()}
    return size_servers(scenario.static_docs, servers, loads.at(peaks), keep=keep).decisions


def run_scenario(
    scenario: Scenario, progress: Callable[[Progress], None] | None = None
) -> RunResult:
    """Run every policy of ``scenario`` (see the module docstring)."""
    started = time.perf_counter()
    period_ms = scenario.control_period_s * MS_PER_S
    servers = {s.name: s for s in scenario.system.servers}
    docs = scenario.static_docs
    first = {
        n: scenario.traces[n].mean_rate(0.0, min(period_ms, scenario.duration_ms)) * MS_PER_MIN
        for n in scenario.servers
    }
    peaks = {n: peak_rate(scenario.traces[n], scenario.duration_ms) for n in scenario.servers}
    system_servers = list(scenario.system.servers)
    loads = ScenarioLoads(scenario)
    initial_sizing = size_servers(docs, system_servers, loads.at(first))
    initial_all = initial_sizing.decisions
    peak_sizing = size_servers(docs, system_servers, loads.at(peaks))
    peak_all = peak_sizing.decisions
    notes: list[str] = []
    initial = _allocated(initial_all)
    peak = _allocated(peak_all)
    for name in scenario.servers:
        if name not in initial:
            reason = initial_all[name].reason if name in initial_all else "not in the solution"
            notes.append(f"{name}: left out, the optimizer cannot allocate it ({reason})")
        elif name not in peak:
            peak[name] = initial[name]
            notes.append(f"{name}: no allocation at its peak rate; static keeps the initial one")
    for name in list(peak):
        if name not in initial:
            del peak[name]
    if not initial:
        raise InputError(
            "the optimizer allocates none of the scenario's servers: " + "; ".join(notes),
            source=scenario.source,
        )
    ends = scenario.period_ends_ms
    runs: list[PolicyRun] = []
    for index, spec in enumerate(scenario.policies):
        t_run = time.perf_counter()
        # the GPU layout of the allocation the run starts from (MPS co-runners interfere)
        layout = initial_sizing.layout
        if spec.kind == "static":
            opts = spec.options
            assert isinstance(opts, StaticOptions)
            layout = peak_sizing.layout
            if opts.headroom > 0:
                rates = {n: r * (1.0 + opts.headroom) for n, r in peaks.items()}
                headroom = size_servers(docs, system_servers, loads.at(rates))
                sized = _allocated(headroom.decisions)
                alloc = {n: sized.get(n, peak[n]) for n in initial}
                layout = headroom.layout
            else:
                alloc = dict(peak)
        elif spec.kind == "oracle":
            foresight = Foresight(scenario, loads)
            alloc = foresight.initial(initial)
            layout = foresight.sizing(0.0).layout if initial_sizing.layout else {}
        elif scenario.initial == "peak":
            alloc = dict(peak)
            layout = peak_sizing.layout
        else:
            alloc = dict(initial)
        # the oracle's replicas are ready at once (inferno.simulate.oracle)
        startup_s = 0.0 if spec.kind == "oracle" else scenario.startup_delay_s
        sim = Simulation(_specs(scenario, alloc, startup_s), seed=scenario.seed)
        caps = output_caps(scenario)
        cluster = EmulatedCluster(
            sim,
            scenario.system,
            {n: (d.accelerator, d.replicas, d.max_batch) for n, d in alloc.items()},
            startup_delay_s=startup_s,
            serving={n: decided_serving(d) for n, d in alloc.items()},
            max_output_tokens=caps,
        )
        if layout:
            cluster.apply_layout(layout)
        metrics = MetricsSource(
            sim,
            window_s=scenario.metrics.window_s,
            noise=scenario.metrics.noise,
            seed=scenario.seed,
            batch_of=cluster.batch,
            tokens={n: _mean_tokens(scenario, n) for n in alloc},
            max_output_tokens=caps,
        )
        policy = build_policy(
            spec,
            cluster,
            metrics,
            docs,
            servers=servers,
            initial=initial,
            peak=peak,
            held=initial_sizing.held_per_replica,
            control_period_s=scenario.control_period_s,
            scenario=scenario,
            peak_kept=_peak_kept(scenario, loads, initial, peaks)
            if spec.kind in ("hpa", "queue")
            else None,
        )
        run = PolicyRun(spec, sim, cluster)
        t0 = 0.0
        for k, t1 in enumerate(ends):
            sim.run_until(t1)
            names = cluster.server_names()
            asked = [(cluster.replicas(n), cluster.config(n)) for n in names]
            acts = k + 1 < len(ends)  # no step at the very end
            if acts:
                policy.step(t1)
            for name, (replicas, cfg) in zip(names, asked, strict=True):
                run.rows.append(
                    ServerPeriod(
                        period=k,
                        t0_ms=t0,
                        t1_ms=t1,
                        server=name,
                        offered_rpm=sim.offered_rate(name, t0, t1),
                        window=sim.window(name, t0, t1),
                        measured_rpm=policy.measured.get(name, math.nan) if acts else math.nan,
                        replicas=replicas,
                        accelerator=cfg.accelerator,
                        batch=cfg.batch,
                    )
                )
            t0 = t1
            if progress is not None:
                progress(Progress(spec.name, index, len(scenario.policies), k + 1, len(ends)))
        run.notes = list(policy.notes) + cluster.layout_notes
        if cluster.max_slowdowns:
            run.notes.append(
                "MPS co-runners slowed batches (GPU-let's interference model, the largest factor "
                "of the run): "
                + ", ".join(f"{n} ×{f:.4f}" for n, f in sorted(cluster.max_slowdowns.items()))
            )
        run.wall_s = time.perf_counter() - t_run
        logger.info(
            "%s: %d events in %.2f s (%d changes)",
            spec.name,
            sim.events_processed,
            run.wall_s,
            len(cluster.changes),
        )
        runs.append(run)
    return RunResult(
        scenario=scenario,
        initial=initial,
        peak=peak,
        peak_rates=peaks,
        runs=runs,
        notes=notes,
        wall_s=time.perf_counter() - started,
    )
