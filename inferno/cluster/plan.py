"""The actuation plan: what to change in each managed Deployment to enact a solution.

Pure: from the inventory and the decisions, :func:`plan` computes one :class:`Action` per managed
Deployment — a JSON patch for the Deployment (replicas, the allocation labels, the GPU node
selector, the serving container's GPU limit and batch-size variable), a JSON patch for its HPA if
one scales it, and an Event. :mod:`inferno.k8s` applies them, every one, and reports each.

Rules: a server missing from the solution, or unallocated, keeps its current allocation (never
scaled to zero); replicas stay within the Deployment's min/max annotations and never go to 0
unless its min-replicas annotation is 0; a Deployment in ``recommend`` mode is not patched, its
decision is only recorded; when an HPA scales the Deployment, its min/max are set around the
decision (min = decision, max = decision × (1 + headroom)) and ``spec.replicas`` is left to it.

Triton reads its batch size from the model configuration, which the sample Deployments generate at
start-up from the container variable ``INFERNO_MAX_BATCH_SIZE``: the plan sets that variable
(which rolls the pods, as a change of GPU type does anyway) and the
``inferno.server.allocation.maxbatchsize`` label. When the solver decided a batch-kind server's
model instances and batching delay (:mod:`inferno.solver.serving_config`), the plan sets
``INFERNO_INSTANCES`` and ``INFERNO_MAX_QUEUE_DELAY_US`` the same way, which the sample
Deployments write into ``config.pbtxt`` (``instance_group count``, ``max_queue_delay_microseconds``)
at start-up; like the batch, a running value is kept when the decision keeps the accelerator and
moves it by at most the batch tolerance (:func:`steady_serving`), so that noise never rolls pods.
The three variables' names are settings (:class:`~inferno.settings.PlanOptions`: ``batch_env``,
``instances_env``, ``queue_delay_env``); the names above are their defaults.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..partitions.labels import PARTITION_SELECTOR_KEYS, is_gpu_resource
from ..settings import PlanOptions
from . import labels as L
from .inventory import ManagedDeployment

__all__ = [
    "Action",
    "Decision",
    "Event",
    "PlanSettings",
    "current_state",
    "holders",
    "keep_duplicate",
    "plan",
    "plan_one",
    "running_serving",
    "serving_changes",
    "steady_batch",
    "steady_serving",
]

#: the default names of the container variables of the decided model instances and batching
#: delay (µs): the plan uses its settings' ``instances_env`` / ``queue_delay_env``
INSTANCES_ENV = PlanOptions().instances_env
QUEUE_DELAY_ENV = PlanOptions().queue_delay_env

Patch = tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """The optimizer's decision for one server (or why there is none)."""

    server: str
    accelerator: str = ""
    replicas: int = 0
    max_batch: int = 0
    gpus_per_replica: int = 0
    node_selector: Mapping[str, str] = field(default_factory=dict)
    allocated: bool = True
    reason: str = ""  # why it is not allocated, or a note (e.g. a partial grant)
    cost: float | None = None
    bound: str = ""
    #: model instances and batching delay (µs) when the solver decided them (0 and −1: not
    #: decided, the container's variables are left alone)
    instances: int = 0
    max_queue_delay_us: int = -1
    #: when the decision moves the server off its current accelerator: the cheapest decision
    #: that keeps it there (what the control policy falls back to while it defers a switch)
    stay: Decision | None = None


@dataclass(frozen=True, slots=True)
class Event:
    reason: str
    message: str
    type: str = "Normal"  # or "Warning"


@dataclass(frozen=True, slots=True)
class Action:
    """What to do to one Deployment; ``kind`` is update, unchanged, recommend or keep."""

    namespace: str
    deployment: str
    server: str
    kind: str
    patch: Patch = ()
    hpa_patch: Patch = ()
    hpa: str = ""  # the HPA's name when one scales the Deployment
    event: Event | None = None
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)


#: how decisions become patches: the ``plan`` group of the settings (one definition, one check)
PlanSettings = PlanOptions


def steady_batch(accelerator: str, batch: int, dec: Decision, tolerance: float) -> Decision:
    """``dec`` with the running batch size kept when it keeps the accelerator and moves the batch
    by at most ``tolerance`` (relative to the running one): a new batch size is a rolling restart
    of every replica, not worth a few percent of capacity. ``accelerator``/``batch`` are what the
    server runs now (batch 0: unknown, never kept)."""
    if not dec.allocated or tolerance <= 0 or batch <= 0:
        return dec
    if dec.accelerator != accelerator or dec.max_batch == batch:
        return dec
    if abs(dec.max_batch - batch) <= tolerance * batch:
        return replace(dec, max_batch=batch)
    return dec


def _env_int(d: ManagedDeployment, name: str) -> int | None:
    """The container variable ``name`` as an integer ≥ 0 (None: absent or not one)."""
    value = dict(d.env).get(name, "").strip()
    return int(value) if value.isdigit() else None


def _steady(running: int | None, wanted: int, tolerance: float) -> int:
    """``running`` when ``wanted`` moves it by at most ``tolerance`` of it, else ``wanted``."""
    if running is None or running <= 0 or wanted == running:
        return wanted
    return running if abs(wanted - running) <= tolerance * running else wanted


def steady_serving(d: ManagedDeployment, dec: Decision, cfg: PlanSettings) -> Decision:
    """``dec`` with the running model instances and batching delay (the container's
    ``cfg.instances_env`` / ``cfg.queue_delay_env``) kept, by the rule of :func:`steady_batch`,
    when it keeps the accelerator: each is kept when the decision moves it by at most
    ``cfg.batch_tolerance`` of the running value (a running 0 or an unknown one is never kept)."""
    tolerance = cfg.batch_tolerance
    if not dec.allocated or tolerance <= 0 or dec.accelerator != d.accelerator:
        return dec
    out = dec
    if dec.instances > 0:
        running = _env_int(d, cfg.instances_env)
        out = replace(out, instances=_steady(running, dec.instances, tolerance))
    if dec.max_queue_delay_us >= 0:
        running = _env_int(d, cfg.queue_delay_env)
        out = replace(out, max_queue_delay_us=_steady(running, dec.max_queue_delay_us, tolerance))
    return out


def running_serving(d: ManagedDeployment, cfg: PlanSettings) -> tuple[int | None, int | None]:
    """The model instances and batching delay (µs) the server's container runs now, from its
    ``cfg.instances_env`` / ``cfg.queue_delay_env`` (None: not set, or not a count)."""
    return _env_int(d, cfg.instances_env), _env_int(d, cfg.queue_delay_env)


def serving_changes(d: ManagedDeployment, dec: Decision, cfg: PlanSettings) -> bool:
    """Whether applying ``dec`` changes the running model instances or batching delay (a new
    value of either rolls every pod, as a new batch does); call after :func:`steady_serving`."""
    instances, delay = running_serving(d, cfg)
    return (dec.instances > 0 and dec.instances != instances) or (
        dec.max_queue_delay_us >= 0 and dec.max_queue_delay_us != delay
    )


def _serving_state(d: ManagedDeployment, dec: Decision | None, cfg: PlanSettings) -> dict[str, Any]:
    """The running instances and delay, for the reports of a decision that carries them."""
    if dec is None or (dec.instances <= 0 and dec.max_queue_delay_us < 0):
        return {}
    instances, delay = running_serving(d, cfg)
    return {"instances": instances, "maxQueueDelayUs": delay}


def _escape(key: str) -> str:
    """A JSON-pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def current_state(d: ManagedDeployment) -> dict[str, Any]:
    """What a Deployment runs now, as the reports show it."""
    return {"replicas": d.replicas, "accelerator": d.accelerator, "maxBatch": d.max_batch}


def _replicas(d: ManagedDeployment, wanted: int) -> int:
    floor = d.min_replicas
    r = max(wanted, floor, 1 if floor > 0 else 0)
    if d.max_replicas is not None:
        r = min(r, d.max_replicas)
    return r


def _deployment_patch(
    d: ManagedDeployment, dec: Decision, replicas: int, set_replicas: bool, cfg: PlanSettings
) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    if set_replicas and replicas != d.replicas:
        ops.append({"op": "replace", "path": "/spec/replicas", "value": replicas})
    for key, value in (
        (L.ALLOC_ACCELERATOR, dec.accelerator),
        (L.ALLOC_MAX_BATCH, str(dec.max_batch)),
    ):
        current = {L.ALLOC_ACCELERATOR: d.accelerator, L.ALLOC_MAX_BATCH: str(d.max_batch or "")}[
            key
        ]
        if current != value:
            ops.append({"op": "add", "path": f"/metadata/labels/{_escape(key)}", "value": value})
    selector = {
        k: v
        for k, v in d.node_selector.items()
        if k not in PARTITION_SELECTOR_KEYS or k in dec.node_selector
    }
    selector.update(dec.node_selector)
    if selector != dict(d.node_selector):
        ops.append({"op": "add", "path": "/spec/template/spec/nodeSelector", "value": selector})
    base = f"/spec/template/spec/containers/{d.container}"
    if dec.gpus_per_replica > 0:
        resources = copy.deepcopy(dict(d.resources))
        limits = dict(resources.get("limits") or {})
        requests = dict(resources.get("requests") or {})
        gpus = str(dec.gpus_per_replica)
        # one NVIDIA GPU resource per container: a move between whole GPUs and a MIG slice drops
        # the other kind (nvidia.com/gpu ↔ nvidia.com/mig-3g.40gb) from limits and requests
        # (another vendor's resource setting leaves NVIDIA's alone)
        nvidia = is_gpu_resource(cfg.gpu_resource)
        stale = [
            k
            for k in dict.fromkeys((*limits, *requests))
            if nvidia and k != cfg.gpu_resource and is_gpu_resource(k)
        ]
        if str(limits.get(cfg.gpu_resource, "")) != gpus or stale:
            had_request = cfg.gpu_resource in requests or any(k in requests for k in stale)
            for k in stale:
                limits.pop(k, None)
                requests.pop(k, None)
            limits[cfg.gpu_resource] = gpus
            resources["limits"] = limits
            if had_request:  # extended resources: requests must equal limits
                requests[cfg.gpu_resource] = gpus
            if requests or "requests" in resources:
                resources["requests"] = requests
            ops.append({"op": "add", "path": f"{base}/resources", "value": resources})
    env = [n for n, _ in d.env]  # the container's variables, with those added below
    wanted = []
    if dec.max_batch > 0:
        wanted.append((cfg.batch_env, str(dec.max_batch)))
    if dec.instances > 0:
        wanted.append((cfg.instances_env, str(dec.instances)))
    if dec.max_queue_delay_us >= 0:
        wanted.append((cfg.queue_delay_env, str(dec.max_queue_delay_us)))
    for name, value in wanted:
        ops.extend(_env_ops(d, env, base, name, value))
    if any(op["path"].startswith(f"{base}/") for op in ops) and d.container_name:
        # the container at that index is still the serving one
        ops.insert(
            next(i for i, op in enumerate(ops) if op["path"].startswith(f"{base}/")),
            {"op": "test", "path": f"{base}/name", "value": d.container_name},
        )
    return ops


def _env_ops(
    d: ManagedDeployment, env: list[str], base: str, name: str, value: str
) -> list[dict[str, Any]]:
    """The ops that set the serving container's variable ``name`` to ``value`` (``env``: the
    names it has, appended to when it gains one)."""
    if name in env:
        j = env.index(name)
        if j >= len(d.env) or d.env[j][1] == value:
            return []
        # the whole entry: it may hold a valueFrom, which cannot sit beside a value; the entry is
        # still that variable (an edit since the read cannot make the index point at another
        # one: the patch then fails whole)
        return [
            {"op": "test", "path": f"{base}/env/{j}/name", "value": name},
            {"op": "replace", "path": f"{base}/env/{j}", "value": {"name": name, "value": value}},
        ]
    entry = {"name": name, "value": value}
    env.append(name)
    if len(env) > 1:
        return [{"op": "add", "path": f"{base}/env/-", "value": entry}]
    return [{"op": "add", "path": f"{base}/env", "value": [entry]}]


def _hpa_patch(d: ManagedDeployment, replicas: int, cfg: PlanSettings) -> list[dict[str, Any]]:
    assert d.hpa is not None
    lo = max(replicas, 1)  # an HPA's minReplicas is at least 1
    # and its maxReplicas at least its minReplicas (a decision of 0 would give 0 < 1)
    top = max(lo, math.ceil(replicas * (1.0 + cfg.hpa_headroom)))
    if d.max_replicas is not None:
        top = max(lo, min(top, d.max_replicas))
    ops: list[dict[str, Any]] = []
    if d.hpa.min_replicas != lo:
        ops.append({"op": "replace", "path": "/spec/minReplicas", "value": lo})
    if d.hpa.max_replicas != top:
        ops.append({"op": "replace", "path": "/spec/maxReplicas", "value": top})
    return ops


def _summary(d: ManagedDeployment, dec: Decision, replicas: int, cfg: PlanSettings) -> str:
    parts = []
    if replicas != d.replicas:
        parts.append(f"replicas {d.replicas}→{replicas}")
    if dec.accelerator != d.accelerator:
        parts.append(f"accelerator {d.accelerator or '-'}→{dec.accelerator}")
    if dec.max_batch != d.max_batch:
        parts.append(f"batch {d.max_batch or '-'}→{dec.max_batch}")
    running = _serving_state(d, dec, cfg)
    if dec.instances > 0 and dec.instances != running.get("instances"):
        parts.append(f"instances {running.get('instances') or '-'}→{dec.instances}")
    if dec.max_queue_delay_us >= 0 and dec.max_queue_delay_us != running.get("maxQueueDelayUs"):
        was = running.get("maxQueueDelayUs")
        parts.append(f"delay {'-' if was is None else was}→{dec.max_queue_delay_us} µs")
    detail = ", ".join(parts) or "no change"
    extra = f" (bound by {dec.bound})" if dec.bound else ""
    return f"{detail}{extra}"


def plan_one(d: ManagedDeployment, dec: Decision | None, cfg: PlanSettings) -> Action:
    before = current_state(d)
    if dec is None or not dec.allocated:
        why = "not in the solution" if dec is None else dec.reason or "not allocated"
        return Action(
            d.namespace,
            d.name,
            d.server,
            "keep",
            event=Event("InfernoKept", f"kept the current allocation: {why}", "Warning"),
            before=before,
            after=before,
        )
    dec = steady_batch(d.accelerator, d.max_batch, dec, cfg.batch_tolerance)
    dec = steady_serving(d, dec, cfg)
    replicas = _replicas(d, dec.replicas)
    after = {"replicas": replicas, "accelerator": dec.accelerator, "maxBatch": dec.max_batch}
    if dec.instances > 0 or dec.max_queue_delay_us >= 0:
        before = {**before, **_serving_state(d, dec, cfg)}
        after = {**after, "instances": dec.instances, "maxQueueDelayUs": dec.max_queue_delay_us}
    summary = _summary(d, dec, replicas, cfg)
    if d.mode == "recommend":
        return Action(
            d.namespace,
            d.name,
            d.server,
            "recommend",
            event=Event("InfernoRecommendation", f"recommends {summary}"),
            before=before,
            after=after,
        )
    patch = _deployment_patch(d, dec, replicas, d.hpa is None, cfg)
    hpa = _hpa_patch(d, replicas, cfg) if d.hpa is not None else []
    if not patch and not hpa:
        return Action(d.namespace, d.name, d.server, "unchanged", before=before, after=after)
    note = f" (via HPA {d.hpa.name})" if d.hpa is not None else ""
    return Action(
        d.namespace,
        d.name,
        d.server,
        "update",
        patch=tuple(patch),
        hpa_patch=tuple(hpa),
        hpa=d.hpa.name if d.hpa is not None else "",
        event=Event("InfernoScaled", f"{summary}{note}{f' [{dec.reason}]' if dec.reason else ''}"),
        before=before,
        after=after,
    )


def holders(deployments: Iterable[ManagedDeployment]) -> dict[str, ManagedDeployment]:
    """Each server's Deployment: of several claiming one server name (the same
    ``inferno.server.name`` label, in any namespace), the one created first (its
    ``creationTimestamp``, which the API server writes and no one else can), then by
    (namespace, name). The others are kept as they are, with a Warning
    (:func:`keep_duplicate`): a Deployment created later, in a namespace anyone can write to,
    cannot take a server's decisions from the one that had them."""
    out: dict[str, ManagedDeployment] = {}
    for d in deployments:
        held = out.get(d.server)
        if held is None or _claim_order(d) < _claim_order(held):
            out[d.server] = d
    return out


def _claim_order(d: ManagedDeployment) -> tuple[str, str, str]:
    # a Deployment without a creation time (a fake API) after every one with
    return (d.created or "\uffff", d.namespace, d.name)


def keep_duplicate(d: ManagedDeployment, holder: ManagedDeployment) -> Action:
    """The action for a Deployment whose server ``holder`` holds (:func:`holders`): keep it,
    warn."""
    before = current_state(d)
    return Action(
        d.namespace,
        d.name,
        d.server,
        "keep",
        event=Event(
            "InfernoKept",
            f"server {d.server!r} is held by Deployment {holder.namespace}/{holder.name} "
            f"(created first); this one is left as it is: give it a unique {L.SERVER_NAME} label",
            "Warning",
        ),
        before=before,
        after=before,
    )


def plan(
    deployments: Sequence[ManagedDeployment],
    decisions: Iterable[Decision],
    cfg: PlanSettings | None = None,
) -> list[Action]:
    """One action per managed Deployment, in (namespace, name) order."""
    cfg = cfg or PlanSettings()
    by_server = {d.server: d for d in decisions}
    held = holders(deployments)
    actions = []
    for d in sorted(deployments, key=lambda x: (x.namespace, x.name)):
        holder = held[d.server]
        if holder is not d:
            actions.append(keep_duplicate(d, holder))
            continue
        actions.append(plan_one(d, by_server.get(d.server), cfg))
    return actions
