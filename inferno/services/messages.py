"""The messages between the pod's containers, typed once for both sides.

The routes validate every request body against these models, and the controller's client
(:mod:`inferno.services.phases`) validates every answer against them, so the wire format — its
camelCase names included — is written only here. Each model converts to and from the domain
objects of :mod:`inferno.control` and :mod:`inferno.cluster`, which know nothing of JSON.

Bounds: every string, number and list has a limit, so a message that passes validation cannot
make a service allocate without bound (the body itself is capped by ``INFERNO_MAX_BODY_BYTES``).
Server rows and service classes stay JSON objects here: the data layer validates them field by
field, naming each bad field by its JSON path (``docs/data-format.md``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from ..cluster.inventory import HpaRef, ManagedDeployment
from ..cluster.plan import Decision, holders
from ..cluster.startup import StartupTime
from ..control.actuate import ActuationReport, CycleStamp, Outcome, Target
from ..control.collect import Collection
from ..control.cycle import CycleReport
from ..control.optimize import OptimizeResult
from ..model.profiles import MAX_QUEUE_DELAY_MS

__all__ = [
    "CollectAnswer",
    "CycleMessage",
    "DecisionMessage",
    "DeploymentMessage",
    "OptimizeAnswer",
    "OptimizeRequest",
    "OutcomeMessage",
    "TargetMessage",
    "UpdateAnswer",
    "UpdateRequest",
    "report_json",
]

MAX_ITEMS = 100_000  # servers, Deployments, decisions in one message
Name = Annotated[str, Field(max_length=253)]
Text = Annotated[str, Field(max_length=4096)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
MAX_DELAY_US = int(MAX_QUEUE_DELAY_MS * 1000)  # a batching delay, µs: the model's own bound
Row = dict[str, Any]


def _cut(text: str, most: int = 4096) -> str:
    """``text`` within ``most`` characters (a problem quoting a long value)."""
    return text if len(text) <= most else text[: most - 1] + "…"


class Message(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class DeploymentMessage(Message):
    """What the controller needs of a managed Deployment: who it is, what it runs now. Never its
    containers' environment or resources, except the values of the variables Inferno itself
    writes for model instances and batching delay (``serving_env``: the guard's rollout budget
    counts a change of them)."""

    namespace: Name
    name: Name
    server: Name
    model: Name
    service_class: Name
    mode: Name = "auto"
    replicas: Count = 0
    ready_replicas: Count = 0
    accelerator: Name = ""
    max_batch: Count = 0
    min_replicas: Count = 1
    max_replicas: Count | None = None
    hpa: Name | None = None
    cycle: Name = ""  # the cycle annotation: the last plan that patched it
    #: the start-up its pods show (seconds) and over how many pods (None: not measured)
    startup_seconds: Annotated[float, Field(ge=0, le=86400, allow_inf_nan=False)] | None = None
    startup_pods: Count = 0
    serving_env: dict[Name, Name] = Field(default_factory=dict, max_length=2)
    created: Annotated[str, Field(max_length=64)] = ""  # metadata.creationTimestamp

    @classmethod
    def of(cls, d: ManagedDeployment, serving_names: tuple[str, ...] = ()) -> DeploymentMessage:
        """``serving_names``: the serving container's variables to carry (the actuator's
        instances and delay variables); nothing else of its environment."""
        return cls(
            namespace=d.namespace,
            name=d.name,
            server=d.server,
            model=d.model,
            service_class=d.service_class,
            mode=d.mode,
            replicas=d.replicas,
            ready_replicas=d.ready_replicas,
            accelerator=d.accelerator,
            max_batch=d.max_batch,
            min_replicas=d.min_replicas,
            max_replicas=d.max_replicas,
            hpa=None if d.hpa is None else d.hpa.name,
            cycle=d.cycle,
            startup_seconds=None if d.startup is None else d.startup.seconds,
            startup_pods=0 if d.startup is None else d.startup.pods,
            serving_env={k: v for k, v in d.env if k in serving_names},
            created=d.created,
        )

    def domain(self) -> ManagedDeployment:
        """A summary ManagedDeployment (no container details: the actuator re-reads those)."""
        return ManagedDeployment(
            namespace=self.namespace,
            name=self.name,
            server=self.server,
            model=self.model,
            service_class=self.service_class,
            replicas=self.replicas,
            ready_replicas=self.ready_replicas,
            accelerator=self.accelerator,
            max_batch=self.max_batch,
            container=0,
            container_name="",
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            mode=self.mode,
            hpa=None if self.hpa is None else HpaRef(self.namespace, self.hpa, 0, 0),
            cycle=self.cycle,
            startup=None
            if self.startup_seconds is None
            else StartupTime(self.startup_seconds, self.startup_pods),
            env=tuple(self.serving_env.items()),
            created=self.created,
        )


class CollectAnswer(Message):
    """``GET /collect``."""

    deployments: list[DeploymentMessage] = Field(default_factory=list, max_length=MAX_ITEMS)
    servers: list[Row] = Field(default_factory=list, max_length=MAX_ITEMS)
    service_classes: list[Row] = Field(default_factory=list, max_length=MAX_ITEMS)
    problems: list[Text] = Field(default_factory=list, max_length=MAX_ITEMS)
    load_source: Name = "labels"
    measurement: Row | None = None

    @classmethod
    def of(cls, c: Collection, serving_names: tuple[str, ...] = ()) -> CollectAnswer:
        """The answer of ``c``. A Deployment beyond the message's bounds (a label, annotation
        or count Kubernetes allows and Inferno does not: a cycle annotation of 300 characters,
        2,000,000 replicas) is left out with its server's row and named in ``problems``, as the
        collector leaves out one whose labels it cannot read: one Deployment does not fail the
        answer for every other. Problems are cut to the message's length."""
        problems = list(c.problems)
        deployments: list[DeploymentMessage] = []
        left_out: set[str] = set()
        held = holders(c.deployments)  # the rows are the holders' (collect)
        for d in c.deployments:
            try:
                deployments.append(DeploymentMessage.of(d, serving_names))
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"])
                problems.append(
                    f"Deployment {d.namespace[:253]}/{d.name[:253]}: left out: {field}: "
                    f"{first['msg']}"
                )
                if held[d.server] is d:
                    left_out.add(d.server)
        servers = [r for r in c.servers if r.get("name") not in left_out]
        return cls(
            deployments=deployments,
            servers=servers,
            service_classes=c.service_classes,
            problems=[_cut(p) for p in problems],
            load_source=c.load_source,
            measurement=c.measurement,
        )

    def domain(self) -> Collection:
        return Collection(
            deployments=[d.domain() for d in self.deployments],
            servers=list(self.servers),
            service_classes=list(self.service_classes),
            problems=list(self.problems),
            load_source=self.load_source,
            measurement=self.measurement,
        )


class OptimizeRequest(Message):
    """``POST /optimize``: the collected servers and classes, and (Prometheus mode) the
    measurement the profiles are tuned from."""

    servers: list[Row] = Field(max_length=MAX_ITEMS)
    service_classes: list[Row] = Field(default_factory=list, max_length=MAX_ITEMS)
    observations: Row | None = None
    #: the tuner's filters the controller kept: restored by an optimizer that has none
    tuner_state: Row | None = None


class DecisionMessage(Message):
    server: Name
    accelerator: Name = ""
    replicas: Count = 0
    max_batch: Count = 0
    gpus_per_replica: Count = 0
    node_selector: dict[Name, Name] = Field(default_factory=dict, max_length=64)
    allocated: bool = True
    reason: Text = ""
    cost: float | None = None
    bound: Name = ""
    stay: DecisionMessage | None = None  # the decision on the current accelerator (one level)
    #: Triton's model instances and batching delay when the solver decided them (0 and −1:
    #: not decided)
    instances: Count = 0
    max_queue_delay_us: Annotated[int, Field(ge=-1, le=MAX_DELAY_US)] = -1

    @classmethod
    def of(cls, d: Decision) -> DecisionMessage:
        return cls(
            server=d.server,
            accelerator=d.accelerator,
            replicas=d.replicas,
            max_batch=d.max_batch,
            gpus_per_replica=d.gpus_per_replica,
            node_selector=dict(d.node_selector),
            allocated=d.allocated,
            reason=d.reason[:4096],
            cost=d.cost,
            bound=d.bound,
            stay=None if d.stay is None else cls.of(replace(d.stay, stay=None)),
            instances=d.instances,
            max_queue_delay_us=d.max_queue_delay_us,
        )

    def domain(self) -> Decision:
        return Decision(
            server=self.server,
            accelerator=self.accelerator,
            replicas=self.replicas,
            max_batch=self.max_batch,
            gpus_per_replica=self.gpus_per_replica,
            node_selector=dict(self.node_selector),
            allocated=self.allocated,
            reason=self.reason,
            cost=self.cost,
            bound=self.bound,
            instances=self.instances,
            max_queue_delay_us=self.max_queue_delay_us,
            stay=None if self.stay is None else replace(self.stay.domain(), stay=None),
        )


class OptimizeAnswer(Message):
    """``POST /optimize``; ``tuning`` only when the request carried observations."""

    solution: Row
    decisions: list[DecisionMessage] = Field(max_length=MAX_ITEMS)
    notes: list[Text] = Field(default_factory=list, max_length=MAX_ITEMS)
    tuning: Row | None = None
    tuner_state: Row | None = None  # the tuner's filters after the solve (when it has any)

    def wire(self) -> dict[str, Any]:
        body = super().wire()
        for key in ("tuning", "tunerState"):
            if body.get(key) is None:
                body.pop(key, None)
        return body

    @classmethod
    def of(cls, r: OptimizeResult) -> OptimizeAnswer:
        return cls(
            solution=r.solution,
            decisions=[DecisionMessage.of(d) for d in r.decisions],
            notes=[n[:4096] for n in r.notes],
            tuning=r.tuning,
            tuner_state=r.tuner_state,
        )

    def domain(self) -> OptimizeResult:
        return OptimizeResult(
            solution=dict(self.solution),
            decisions=[d.domain() for d in self.decisions],
            notes=list(self.notes),
            tuning=self.tuning,
            tuner_state=self.tuner_state,
        )


class CycleMessage(Message):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
    sequence: Annotated[int, Field(ge=0, le=2**63 - 1)]
    deadline: Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]

    @classmethod
    def of(cls, s: CycleStamp) -> CycleMessage:
        return cls(id=s.id, sequence=s.sequence, deadline=s.deadline)

    def domain(self) -> CycleStamp:
        return CycleStamp(self.id, self.sequence, self.deadline)


class TargetMessage(Message):
    namespace: Name
    name: Name
    server: Name

    def domain(self) -> Target:
        return Target(self.namespace, self.name, self.server)


class UpdateRequest(Message):
    """``POST /update``: the cycle, the Deployments to bring to their servers' decisions (by
    reference only: the actuator reads each from the API) and the decisions."""

    cycle: CycleMessage
    targets: list[TargetMessage] = Field(max_length=MAX_ITEMS)
    decisions: list[DecisionMessage] = Field(max_length=MAX_ITEMS)


class OutcomeMessage(Message):
    namespace: Name
    deployment: Name
    server: Name
    kind: Name
    applied: bool
    error: Text = ""
    event_error: Text = ""
    before: Row = Field(default_factory=dict)
    after: Row = Field(default_factory=dict)

    @classmethod
    def of(cls, o: Outcome) -> OutcomeMessage:
        return cls(
            namespace=o.namespace,
            deployment=o.deployment,
            server=o.server,
            kind=o.kind,
            applied=o.applied,
            error=o.error[:4096],
            event_error=o.event_error[:4096],
            before=dict(o.before),
            after=dict(o.after),
        )

    def domain(self) -> Outcome:
        return Outcome(
            self.namespace,
            self.deployment,
            self.server,
            self.kind,
            self.applied,
            self.error,
            self.event_error,
            dict(self.before),
            dict(self.after),
        )


class UpdateAnswer(Message):
    cycle: Name = ""
    ok: bool
    updated: Count = 0
    failed: Count = 0
    outcomes: list[OutcomeMessage] = Field(max_length=MAX_ITEMS)

    @classmethod
    def of(cls, r: ActuationReport) -> UpdateAnswer:
        body = r.to_json()
        return cls(
            cycle=r.cycle,
            ok=r.ok,
            updated=body["updated"],
            failed=body["failed"],
            outcomes=[OutcomeMessage.of(o) for o in r.outcomes],
        )

    def domain(self) -> ActuationReport:
        return ActuationReport([o.domain() for o in self.outcomes], self.cycle)


def report_json(r: CycleReport) -> dict[str, Any]:
    """A cycle's report as ``/invoke`` and ``/report`` answer it."""
    return {
        "cycle": r.cycle,
        "sequence": r.sequence,
        "status": r.status,
        "trigger": r.trigger,
        "started": r.started,
        "finished": r.finished,
        "failedPhase": r.failed_phase,
        "phases": r.phase_results(),
        "errors": r.errors,
        "failedDeployments": r.failed_deployments,
        "patched": r.patched,
        "unpatched": r.unpatched,
        "decisions": [DecisionMessage.of(d).wire() for d in r.decisions],
        "outcomes": r.outcomes,
        "problems": r.problems,
        "notes": r.notes,
        "solutionStatus": r.solution_status,
        "statusErrors": r.status_errors,
        "tuning": r.tuning,
        "clamps": [c.to_json() for c in r.clamps],
        **({"mig": r.mig} if r.mig is not None else {}),
        **({"partitions": r.partitions} if r.partitions is not None else {}),
        "forecasts": r.forecasts,
    }
