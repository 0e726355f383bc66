"""An in-memory cluster whose managed Deployments are the emulator's servers.

:class:`EmulatedCluster` implements :class:`~inferno.k8s.ClusterAPI`: one Deployment dict per
simulated server, with Inferno's labels (``inferno.server.*``: managed, name, model, class, the
allocation's accelerator and batch size), the server's min/max replicas as annotations, the GPU
node selector, the serving container's GPU limit and ``INFERNO_MAX_BATCH_SIZE``, ``spec.replicas``
and a ``status`` read from the simulation. :meth:`EmulatedCluster.patch_deployment` applies the
JSON patch (RFC 6902, with :mod:`jsonpatch`) to that dict, then enacts it in the simulation:
:meth:`~inferno.emulator.Simulation.set_replicas` with the new replica count and, when the
accelerator, the batch size, the model instances or the batching delay changed, the new profile
and batch (a rolling update).

The model instances and the batching delay reach the replicas as they reach Triton in a cluster
(:mod:`inferno.cluster.plan`): through the serving container's ``INFERNO_INSTANCES`` and
``INFERNO_MAX_QUEUE_DELAY_US`` (µs). A batch-kind server's replicas run its profile with those
(:mod:`.serving`: Triton's ``instance_group count`` and ``max_queue_delay_microseconds``, which
:class:`~inferno.emulator.batch_replica.BatchReplica` emulates); where a variable is absent they
run the profile's own. Other kinds ignore them (the vLLM backend has no dynamic batcher).

It also keeps, per server, the configuration history (when each accelerator and batch was put
in force), which the report uses to price every replica, and counts the changes it enacted.
Its pods (:meth:`EmulatedCluster.list_pods`) are the simulation's replicas, starting or ready,
with the conditions a kubelet writes: PodScheduled when the replica was created, Ready when it
became ready (the replicas running at t = 0 were created ``startup_delay_s`` before it), so the
collector measures the start-up exactly as in a cluster (:mod:`inferno.cluster.startup`).
There are no HPAs and no ServiceClass resources: the optimizer uses the system's static
``serviceclass-data.json``.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonpatch

from ..cluster import labels as L
from ..cluster.plan import INSTANCES_ENV, QUEUE_DELAY_ENV, Event, PlanSettings
from ..emulator import ReplicaState, Simulation
from ..errors import InputError
from ..k8s import ClusterError
from ..model.profiles import Profile
from ..solver.gpulets import colocation_slowdowns
from ..system import Server, System
from ..units import MS_PER_S
from .serving import Serving, container_serving, serving_profile

__all__ = ["NAMESPACE", "Config", "EmulatedCluster", "deployment_name", "replicas_patch"]

logger = logging.getLogger(__name__)

NAMESPACE = "simulated"
GPU_NODE_LABEL = "nvidia.com/gpu.product"
_SETTINGS = PlanSettings()
#: the wall-clock time of the simulation's t = 0 (the pods' timestamps)
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def deployment_name(server: str) -> str:
    """A DNS-1123 name for the server's Deployment (the server name stays in a label)."""
    name = re.sub(r"[^a-z0-9-]+", "-", server.lower()).strip("-")
    return name or "server"


def replicas_patch(n: int) -> list[dict[str, Any]]:
    """The JSON patch that sets a Deployment's replicas."""
    return [{"op": "replace", "path": "/spec/replicas", "value": int(n)}]


@dataclass(frozen=True, slots=True)
class Config:
    """What a server's replicas run from ``since_ms`` on (``instances``/``delay_us``: the
    container's ``INFERNO_INSTANCES`` and ``INFERNO_MAX_QUEUE_DELAY_US``, None when absent)."""

    since_ms: float
    accelerator: str
    batch: int
    instances: int | None = None
    delay_us: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One enacted change of a server: replicas and/or configuration."""

    t_ms: float
    server: str
    replicas_before: int
    replicas_after: int
    config_changed: bool


class EmulatedCluster:
    """A :class:`~inferno.k8s.ClusterAPI` over a :class:`~inferno.emulator.Simulation`.

    ``initial`` gives each simulated server's starting (accelerator, replicas, batch), and
    ``serving`` the instances and delay (µs) its initial decision set
    (:func:`~inferno.simulate.serving.decided_serving`; a server it does not name runs its
    profile's own); the simulation must have been built with the same
    (:func:`~inferno.simulate.serving.serving_profile`).
    """

    def __init__(
        self,
        sim: Simulation,
        system: System,
        initial: Mapping[str, tuple[str, int, int]],
        *,
        namespace: str = NAMESPACE,
        startup_delay_s: float = 0.0,
        serving: Mapping[str, Serving] | None = None,
        max_output_tokens: Mapping[str, int] | None = None,
    ) -> None:
        self.sim = sim
        #: per server, the most output tokens a request gets (its scenario's ``out.max``): the
        #: Deployment's annotation, as an operator sets it (docs/kubernetes.md)
        self._max_output = dict(max_output_tokens or {})
        self.startup_delay_s = startup_delay_s
        self.system = system
        self.namespace = namespace
        self._profiles: dict[tuple[str, str], Profile] = {
            (p.model, p.accelerator): p.profile for p in system.profiles
        }
        self._acc_count: dict[tuple[str, str], int] = {
            (p.model, p.accelerator): max(p.acc_count, 1) for p in system.profiles
        }
        servers = {s.name: s for s in system.servers}
        self.deployments: dict[str, dict[str, Any]] = {}  # by Deployment name
        self._server_of: dict[str, str] = {}  # Deployment name → server
        self._model: dict[str, str] = {}
        self.configs: dict[str, list[Config]] = {}
        self.changes: list[Change] = []
        self.events: list[tuple[str, Event]] = []
        #: per server sharing an MPS GPU: the slowdown in force (the last decision's layout)
        self.slowdowns: dict[str, float] = {}
        self.max_slowdowns: dict[str, float] = {}  # ... the largest over the run
        self.layout_notes: list[str] = []
        for name, (acc, replicas, batch) in initial.items():
            srv = servers[name]
            dep = deployment_name(name)
            if dep in self._server_of:
                raise ValueError(f"servers {self._server_of[dep]!r} and {name!r} share a name")
            self._server_of[dep] = name
            self._model[name] = srv.model
            instances, delay_us = (serving or {}).get(name, (None, None))
            self.deployments[dep] = self._deployment(
                srv, dep, acc, replicas, batch, (instances, delay_us)
            )
            self.configs[name] = [Config(0.0, acc, batch, instances, delay_us)]

    # --- building -------------------------------------------------------------------------------

    def gpus_per_replica(self, model: str, accelerator: str) -> int:
        acc = self.system.accelerators[accelerator]
        return self._acc_count.get((model, accelerator), 1) * acc.multiplicity

    def gpu_share_per_replica(self, model: str, accelerator: str) -> float:
        """GPUs per replica, a GPU partition counting its share of one GPU (the solver's
        relaxation: the GPUs the partitions pack onto are a planning result, not emulated)."""
        acc = self.system.accelerators[accelerator]
        return self.gpus_per_replica(model, accelerator) * acc.fraction

    def cost_per_replica_hour(self, model: str, accelerator: str) -> float:
        """The accelerator's cost × accelerators per replica (accelerator-data's units/hour)."""
        acc = self.system.accelerators[accelerator]
        return acc.cost * self._acc_count.get((model, accelerator), 1)

    def _selector(self, accelerator: str) -> dict[str, str]:
        acc = self.system.accelerators[accelerator]
        return dict(acc.node_selector) if acc.node_selector else {GPU_NODE_LABEL: acc.type}

    def _deployment(
        self, srv: Server, name: str, acc: str, replicas: int, batch: int, serving: Serving
    ) -> dict[str, Any]:
        annotations = {L.MIN_REPLICAS: str(srv.min_replicas)}
        if srv.max_replicas is not None:
            annotations[L.MAX_REPLICAS] = str(srv.max_replicas)
        if srv.name in self._max_output:
            annotations[L.MAX_OUTPUT_TOKENS] = str(self._max_output[srv.name])
        gpus = str(self.gpus_per_replica(srv.model, acc))
        env = [{"name": _SETTINGS.batch_env, "value": str(batch)}]
        for var, value in zip((INSTANCES_ENV, QUEUE_DELAY_ENV), serving, strict=True):
            if value is not None:
                env.append({"name": var, "value": str(value)})
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {
                    "app": name,
                    L.MANAGED: "true",
                    L.SERVER_NAME: srv.name,
                    L.MODEL: srv.model,
                    L.SERVICE_CLASS: srv.service_class,
                    L.ALLOC_ACCELERATOR: acc,
                    L.ALLOC_MAX_BATCH: str(batch),
                },
                "annotations": annotations,
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "nodeSelector": self._selector(acc),
                        "containers": [
                            {
                                "name": "server",
                                "image": "emulated",
                                "env": env,
                                "resources": {"limits": {_SETTINGS.gpu_resource: gpus}},
                            }
                        ],
                    },
                },
            },
            "status": {"replicas": replicas, "readyReplicas": replicas},
        }

    # --- reading back ---------------------------------------------------------------------------

    def server_names(self) -> list[str]:
        return list(self.configs)

    def _dep(self, server: str) -> dict[str, Any]:
        return self.deployments[deployment_name(server)]

    def replicas(self, server: str) -> int:
        """``spec.replicas`` of the server's Deployment (what was last asked)."""
        return int(self._dep(server)["spec"]["replicas"])

    def config(self, server: str) -> Config:
        """The configuration in force now."""
        return self.configs[server][-1]

    def config_at(self, server: str, t_ms: float) -> Config:
        """The configuration in force at ``t_ms`` (what a replica created then runs)."""
        history = self.configs[server]
        i = bisect_right([c.since_ms for c in history], t_ms) - 1
        return history[max(i, 0)]

    def batch(self, server: str) -> int:
        """The batch size in force now."""
        return self.configs[server][-1].batch

    def model(self, server: str) -> str:
        return self._model[server]

    # --- the ClusterAPI -------------------------------------------------------------------------

    def list_managed_deployments(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        if namespaces and self.namespace not in namespaces:
            return []
        out = []
        for dep in sorted(self.deployments):
            obj = self.deployments[dep]
            state = self.sim.state(self._server_of[dep])
            obj["status"] = {
                "replicas": state.starting + state.ready,
                "readyReplicas": state.ready,
                "updatedReplicas": state.starting + state.ready,
            }
            out.append(copy.deepcopy(obj))
        return out

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The pods of the Deployment whose ``app`` label the selector names: one per replica
        starting or ready."""
        wanted = dict(p.split("=", 1) for p in selector.split(",") if "=" in p)
        dep = wanted.get("app", "")
        if namespace != self.namespace or dep not in self._server_of:
            return []
        return [
            _pod(dep, self.namespace, r.id, r.created_at, r.ready_at, self.startup_delay_s)
            for r in self.sim.replicas(self._server_of[dep])
            if r.state in (ReplicaState.STARTING, ReplicaState.READY)
        ]

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        if namespace != self.namespace or name not in self.deployments:
            raise ClusterError(f"deployments.apps {name!r} not found in {namespace!r}", 404)
        return copy.deepcopy(self.deployments[name])

    def list_hpas(self, namespaces: Sequence[str]) -> list[dict[str, Any]]:
        return []

    def list_service_classes(self) -> list[dict[str, Any]]:
        return []

    def patch_deployment(
        self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]
    ) -> None:
        if namespace != self.namespace or name not in self.deployments:
            raise ClusterError(f"deployments.apps {name!r} not found in {namespace!r}", 404)
        before = self.deployments[name]
        try:
            after: dict[str, Any] = jsonpatch.apply_patch(before, [dict(op) for op in patch])
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ClusterError(f"invalid patch for {name}: {exc}", 422) from None
        server = self._server_of[name]
        model = self._model[server]
        labels = after["metadata"].get("labels") or {}
        try:
            replicas = int(after["spec"]["replicas"])
            acc = str(labels[L.ALLOC_ACCELERATOR])
            batch = int(labels[L.ALLOC_MAX_BATCH])
        except (KeyError, TypeError, ValueError) as exc:
            raise ClusterError(
                f"{name}: unusable replicas or allocation labels: {exc}", 422
            ) from None
        if replicas < 0 or batch < 1:
            raise ClusterError(f"{name}: replicas {replicas} / batch {batch} out of range", 422)
        profile = self._profiles.get((model, acc))
        if profile is None:
            raise ClusterError(f"{name}: model {model!r} has no profile on {acc!r}", 422)
        instances, delay_us = container_serving(name, after)
        try:
            profile = serving_profile(profile, instances, delay_us)
        except InputError as exc:
            raise ClusterError(
                f"{name}: {model!r} on {acc!r} cannot run {INSTANCES_ENV}={instances} "
                f"{QUEUE_DELAY_ENV}={delay_us}: {exc}",
                422,
            ) from None
        current = self.config(server)
        had = self.replicas(server)
        self.deployments[name] = after
        now = self.sim.now
        changed = (acc, batch, instances, delay_us) != (
            current.accelerator,
            current.batch,
            current.instances,
            current.delay_us,
        )
        if changed:
            self.configs[server].append(Config(now, acc, batch, instances, delay_us))
            self.sim.set_replicas(server, replicas, profile=profile, batch_size=batch)
        elif replicas != self.sim.replica_count(server):
            self.sim.set_replicas(server, replicas)
        if changed or replicas != had:
            self.changes.append(Change(now, server, had, replicas, changed))
            logger.debug(
                "%.0f s: %s → %d × %s (batch %d, instances %s, delay %s µs)",
                now / MS_PER_S,
                server,
                replicas,
                acc,
                batch,
                "-" if instances is None else instances,
                "-" if delay_us is None else delay_us,
            )

    def apply_layout(self, layout: Mapping[str, Any]) -> dict[str, float]:
        """Put the decision's GPU layout (its solution JSON's ``layout``) in force: every server
        sharing an MPS GPU with other servers runs its batches slower by the factor GPU-let's
        interference model predicts next to them at their current batch sizes (the model the
        packing checked them with); the others at full speed. Returns the factors set ≠ 1."""
        batches = {name: self.batch(name) for name in self.configs}
        factors, notes = colocation_slowdowns(self.system, layout, batches)
        for name in self.configs:
            factor = factors.get(name, 1.0)
            if factor != self.sim.slowdown(name):
                logger.debug(
                    "%.0f s: %s slowed ×%.4g by MPS co-runners",
                    self.sim.now / MS_PER_S,
                    name,
                    factor,
                )
                self.sim.set_slowdown(name, factor)
        self.slowdowns = {n: f for n, f in factors.items() if n in self.configs and f > 1.0}
        for n, f in self.slowdowns.items():
            self.max_slowdowns[n] = max(self.max_slowdowns.get(n, 1.0), f)
        self.layout_notes.extend(n for n in notes if n not in self.layout_notes)
        return dict(self.slowdowns)

    def patch_hpa(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        raise ClusterError(f"horizontalpodautoscalers {name!r} not found", 404)

    def create_event(self, namespace: str, deployment: str, event: Event) -> None:
        self.events.append((deployment, event))
        if len(self.events) > 10_000:
            del self.events[:5_000]

    def patch_service_class_status(self, name: str, status: Mapping[str, Any]) -> None:
        raise ClusterError(f"serviceclasses {name!r} not found", 404)

    # one simulated controller: no leader election, no state kept in the cluster
    def list_nodes(self, selector: str) -> list[dict[str, Any]]:
        """No nodes: the emulated cluster places replicas, not GPUs on nodes."""
        return []

    def patch_node(self, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        raise ClusterError(f"node {name!r} not found", 404)

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def put_config_map(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        raise ClusterError("configmaps are not emulated", 404)

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def create_lease(self, namespace: str, body: Mapping[str, Any]) -> None:
        raise ClusterError("leases are not emulated", 404)

    def patch_lease(self, namespace: str, name: str, patch: Sequence[Mapping[str, Any]]) -> None:
        raise ClusterError("leases are not emulated", 404)


def _iso(t_ms: float) -> str:
    return (EPOCH + dt.timedelta(milliseconds=t_ms)).isoformat().replace("+00:00", "Z")


def _pod(
    dep: str, namespace: str, rid: int, created_ms: float, ready_ms: float, before_s: float
) -> dict[str, Any]:
    """A replica as the API shows its pod; a replica ready at t = 0 was started ``before_s``
    seconds earlier."""
    if created_ms <= 0.0 and ready_ms <= 0.0:
        created_ms = -before_s * MS_PER_S
    ready = ready_ms != float("inf")
    return {
        "metadata": {
            "name": f"{dep}-{rid}",
            "namespace": namespace,
            "labels": {"app": dep},
            "creationTimestamp": _iso(created_ms),
        },
        "status": {
            "phase": "Running" if ready else "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": _iso(created_ms)},
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": _iso(ready_ms if ready else created_ms),
                },
            ],
            "containerStatuses": [{"name": "server", "ready": ready, "restartCount": 0}],
        },
    }
