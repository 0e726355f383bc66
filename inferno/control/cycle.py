"""One control cycle: collect, optimize, update — the Go original's controller loop.

:func:`run_cycle` runs the three phases of a :class:`CyclePhases` (the HTTP calls to the sibling
containers, :mod:`inferno.services.phases`, or anything else that answers them) and returns a
:class:`CycleReport`.

Rules:

- If collect or optimize fails, nothing is sent to the actuator; the report names the phase.
- Each cycle has an id, a sequence number (the start time in ns: later cycles have larger ones)
  and a deadline; the actuator applies nothing after the deadline and refuses plans older than
  one it has applied.
- The actuator's per-Deployment failures and refusals are reported, never hidden: the cycle
  then fails. When its answer is lost (a timeout, a crash), the outcome is *unknown*: the cycle
  collects again and reports exactly which Deployments carry this cycle's annotation (a patch of
  this cycle landed there) and which do not.
- With a :class:`~inferno.control.policy.Policy`, the loads are replaced by its forecasts
  before the solve (each server's in the report: measured, forecast, margin, target, and the
  start-up its horizon took with its source — class, measured or setting) and the
  decisions get its guards after it (the clamps are in the report). Decisions go to the
  actuator with the Deployments to apply them to *by reference*: it re-reads each one.
- After the update, each ServiceClass's ``status`` is written (when a cluster API is given); a
  failure there is reported but does not fail the cycle.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..cluster.inventory import ManagedDeployment
from ..cluster.plan import Decision
from ..cluster.serviceclass import class_status
from ..errors import InfernoError
from ..k8s import ClusterAPI, ClusterError
from .actuate import ActuationReport, CycleStamp, Target, parse_cycle_annotation
from .collect import Collection
from .guards import Clamp
from .mig import MigOptions, apply_mig
from .optimize import OptimizeResult
from .partitions_report import partitions_section
from .policy import Policy
from .startup import measured_startups

__all__ = [
    "PHASES",
    "CyclePhases",
    "CycleReport",
    "PhaseError",
    "new_stamp",
    "run_cycle",
]

logger = logging.getLogger(__name__)

PHASES = ("collect", "optimize", "update")


class PhaseError(InfernoError):
    """A phase's call failed: ``phase`` is collect, optimize or update. ``unknown`` is True when
    the call may have taken effect (the actuator's answer was lost)."""

    def __init__(self, phase: str, message: str, *, unknown: bool = False) -> None:
        self.phase = phase
        self.unknown = unknown
        super().__init__(message)


class CyclePhases(Protocol):
    """The three calls of a cycle (raising :class:`PhaseError`), and the services' readiness."""

    async def collect(self) -> Collection: ...

    async def optimize(
        self, collection: Collection, tuner_state: Mapping[str, Any] | None = None
    ) -> OptimizeResult: ...

    async def update(
        self, stamp: CycleStamp, targets: Sequence[Target], decisions: Sequence[Decision]
    ) -> ActuationReport: ...

    async def ready(self) -> dict[str, str | None]: ...

    async def aclose(self) -> None: ...


def new_stamp(deadline_seconds: float, now: Callable[[], float] = time.time) -> CycleStamp:
    """A fresh cycle: a random id, the start time (ns) as sequence, the deadline."""
    start = now()
    return CycleStamp(uuid.uuid4().hex[:16], int(start * 1e9), start + deadline_seconds)


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did; ``status`` is ``ok`` only if every phase succeeded and no Deployment
    failed or was refused (a Deployment in recommend mode, or kept, is not a failure).
    ``patched`` lists the Deployments (namespace/name) a patch of this cycle landed on;
    ``unpatched`` those it was meant for that it did not reach, when the outcome had to be
    reconstructed."""

    started: str  # ISO 8601, UTC
    finished: str
    trigger: str  # invoke, periodic...
    status: str  # ok | failed
    failed_phase: str | None
    seconds: dict[str, float]  # phase -> duration, for the phases that ran
    errors: list[str]
    cycle: str = ""
    sequence: int = 0
    decisions: list[Decision] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    failed_deployments: list[str] = field(default_factory=list)  # namespace/name
    patched: list[str] = field(default_factory=list)
    unpatched: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # objects the collector left out
    notes: list[str] = field(default_factory=list)
    solution_status: str | None = None
    status_errors: list[str] = field(default_factory=list)  # ServiceClass status writes
    tuning: dict[str, Any] | None = None  # the optimizer's tuning section (docs/tuning.md)
    clamps: list[Clamp] = field(default_factory=list)  # the policy's bounds that changed decisions
    #: per server, the rate the policy sized it for and how (Forecast.to_json), with the
    #: start-up its horizon took (``startup``, s) and where from (``startupSource``)
    forecasts: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: with INFERNO_MIG_APPLY: the nodes' MIG plan and what of it was applied (control/mig.py)
    mig: dict[str, Any] | None = None
    #: GPU partitions in the decision: GPUs used, layouts, stranded slices (partitions_report.py)
    partitions: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def phase_results(self) -> dict[str, dict[str, Any]]:
        return {
            p: {
                "result": "failed"
                if p == self.failed_phase
                else "ok"
                if p in self.seconds
                else "skipped",
                "seconds": self.seconds.get(p),
            }
            for p in PHASES
        }


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_class_statuses(
    api: ClusterAPI,
    service_classes: Sequence[Mapping[str, Any]],
    deployments: Sequence[ManagedDeployment],
    solution: Mapping[str, Any],
    now: dt.datetime,
) -> list[str]:
    """Patch every ServiceClass's status; returns the failures (each also logged)."""
    failures = []
    for row in service_classes:
        name = str(row.get("name", ""))
        status = class_status(row, deployments, solution, now=now)
        try:
            api.patch_service_class_status(name, status)
        except ClusterError as exc:
            logger.warning("status of ServiceClass %s not written: %s", name, exc)
            failures.append(f"ServiceClass {name}: {exc}")
    return failures


def landed(collection: Collection, stamp: CycleStamp) -> set[str]:
    """The Deployments (namespace/name) whose cycle annotation is ``stamp``'s."""
    out = set()
    for d in collection.deployments:
        found = parse_cycle_annotation(d.cycle)
        if found is not None and found == (stamp.sequence, stamp.id):
            out.add(d.key)
    return out


def backlog_of(measurement: Mapping[str, Any] | None) -> dict[str, float]:
    """Requests waiting now, by server, from the load source's measurement (Triton's pending
    requests; servers without the series are left out)."""
    out: dict[str, float] = {}
    servers = (measurement or {}).get("servers")
    for o in servers if isinstance(servers, list) else []:
        if not isinstance(o, Mapping):
            continue
        name, pending = o.get("server"), o.get("pending")
        if (
            isinstance(name, str)
            and isinstance(pending, int | float)
            and not isinstance(pending, bool)
        ):
            out[name] = float(pending)
    return out


async def run_cycle(
    phases: CyclePhases,
    *,
    api: ClusterAPI | None = None,
    trigger: str = "invoke",
    deadline: float = 30.0,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    clock: Callable[[], float] = time.perf_counter,
    stamp: CycleStamp | None = None,
    policy: Policy | None = None,
    mig: MigOptions | None = None,
) -> CycleReport:
    """Collect, optimize, update; then write the ServiceClass statuses and, with ``mig``,
    apply the MIG geometries to opted-in nodes. Never raises for a failed phase: the report
    says what failed (and the cycle's status is ``failed``)."""
    started = now()
    stamp = stamp or new_stamp(deadline, lambda: started.timestamp())
    seconds: dict[str, float] = {}
    errors: list[str] = []
    report: dict[str, Any] = {}

    def finish(status: str, failed_phase: str | None = None) -> CycleReport:
        result = CycleReport(
            started=_iso(started),
            finished=_iso(now()),
            trigger=trigger,
            status=status,
            failed_phase=failed_phase,
            seconds=seconds,
            errors=errors,
            cycle=stamp.id,
            sequence=stamp.sequence,
            **report,
        )
        log = logger.info if status == "ok" else logger.warning
        log(
            "cycle %s (%s) %s%s",
            stamp.id,
            trigger,
            status,
            f": {'; '.join(errors)}" if errors else "",
        )
        return result

    async def timed(phase: str, call: Any) -> Any:
        t0 = clock()
        try:
            return await call
        finally:
            seconds[phase] = clock() - t0

    phase = "collect"
    targets: list[Target] = []
    try:
        collection: Collection = await timed(phase, phases.collect())
        report["problems"] = list(collection.problems)
        if policy is not None:
            report["problems"] += policy.set_classes(collection.service_classes)
            servers = policy.loads(
                collection.servers,
                backlog_of(collection.measurement),
                measured_startups(collection.deployments),
            )
            report["forecasts"] = {
                n: {**f.to_json(), **(policy.startups[n].to_json() if n in policy.startups else {})}
                for n, f in sorted(policy.forecasts.items())
            }
            collection = replace(collection, servers=servers)
        if not collection.deployments:
            report["notes"] = ["no managed Deployments: nothing to optimize"]
            return finish("ok")
        phase = "optimize"
        kept_tuner = policy.state.tuner if policy is not None else None
        optimized: OptimizeResult = await timed(phase, phases.optimize(collection, kept_tuner))
        if policy is not None and optimized.tuner_state is not None:
            policy.state = replace(policy.state, tuner=optimized.tuner_state)
        decisions = list(optimized.decisions)
        if policy is not None:
            guarded = policy.guard(decisions, collection.deployments)
            decisions = guarded.decisions
            report["clamps"] = guarded.clamps
        report["decisions"] = decisions
        report["notes"] = list(optimized.notes) + _late(started, now(), stamp)
        report["solution_status"] = str(optimized.solution.get("status", ""))
        report["partitions"] = partitions_section(optimized.solution)
        report["tuning"] = optimized.tuning
        phase = "update"
        targets = [Target(d.namespace, d.name, d.server) for d in collection.deployments]
        actuated: ActuationReport = await timed(phase, phases.update(stamp, targets, decisions))
    except PhaseError as exc:
        errors.append(f"{exc.phase}: {exc}")
        if exc.unknown and targets:
            await _reconcile(phases, stamp, targets, report, errors)
        return finish("failed", exc.phase)
    except Exception as exc:  # a bug must not kill the loop: report it as the phase's failure
        logger.exception("cycle: %s phase raised", phase)
        errors.append(f"{phase}: {type(exc).__name__}: {exc}")
        return finish("failed", phase)

    report["outcomes"] = [o.to_json() for o in actuated.outcomes]
    report["patched"] = [f"{o.namespace}/{o.deployment}" for o in actuated.outcomes if o.patched]
    failed = [o for o in actuated.outcomes if o.error]
    report["failed_deployments"] = [f"{o.namespace}/{o.deployment}" for o in failed]
    for o in failed:
        errors.append(f"update {o.namespace}/{o.deployment}: {o.error}")

    if api is not None and collection.service_classes:
        try:
            report["status_errors"] = await asyncio.to_thread(
                write_class_statuses,
                api,
                collection.service_classes,
                collection.deployments,
                optimized.solution,
                now(),
            )
        except Exception as exc:  # never fails the cycle
            logger.exception("writing ServiceClass statuses failed")
            report["status_errors"] = [f"{type(exc).__name__}: {exc}"]
    if api is not None and mig is not None:
        hold = (
            "the cycle had errors"
            if errors
            else "the policy clamped decisions this cycle: the Deployments do not follow the "
            "solution the geometries come from"
            if report.get("clamps")
            else None
        )
        try:
            report["mig"] = await asyncio.to_thread(
                apply_mig, api, optimized.solution, mig, hold=hold
            )
        except Exception as exc:  # never fails the cycle
            logger.exception("applying MIG geometries failed")
            report["mig"] = {"applied": [], "errors": [f"{type(exc).__name__}: {exc}"]}
    return finish("failed" if errors else "ok")


def _late(started: dt.datetime, answered: dt.datetime, stamp: CycleStamp) -> list[str]:
    """A note when the optimizer answered past half the cycle's deadline: the actuator has
    little time left, and a larger fleet would miss it."""
    budget = stamp.deadline - started.timestamp()
    spent = (answered - started).total_seconds()
    if budget <= 0 or spent <= budget / 2:
        return []
    return [
        f"the optimizer answered {spent:.1f} s into the cycle, past half its deadline "
        f"({budget:g} s from the start, INFERNO_CYCLE_DEADLINE): the actuator may not apply "
        "every decision in time; raise INFERNO_CYCLE_DEADLINE, and INFERNO_HTTP_TIMEOUT (how "
        "long the controller waits for the optimizer) with it"
    ]


async def _reconcile(
    phases: CyclePhases,
    stamp: CycleStamp,
    targets: Sequence[Target],
    report: dict[str, Any],
    errors: list[str],
) -> None:
    """The actuator's answer was lost: wait for the deadline (it applies nothing after it),
    collect again and report which targets carry this cycle's annotation."""
    wait = stamp.deadline - time.time()
    if wait > 0:
        await asyncio.sleep(min(wait, 60.0))
    try:
        again = await phases.collect()
    except PhaseError as exc:
        errors.append(f"update: the outcome is unknown: collecting again failed: {exc}")
        return
    done = landed(again, stamp)
    keys = [t.key for t in targets]
    report["patched"] = [k for k in keys if k in done]
    report["unpatched"] = [k for k in keys if k not in done]
    errors.append(
        f"update: the actuator's answer was lost; reconstructed from the Deployments: "
        f"{len(report['patched'])} patched by this cycle, {len(report['unpatched'])} not"
    )
