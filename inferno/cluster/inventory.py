"""What a managed Deployment says about its server: identity, current allocation, bounds, mode,
(as the original's fallback) its load from labels, and the selector of its pods (whose start-up
the collector measures: :mod:`inferno.cluster.startup`).

:func:`parse_deployment` reads one Deployment object (the JSON dict of the Kubernetes API) and
returns a :class:`ManagedDeployment`, or raises :class:`InventoryError` naming the Deployment and
the label or annotation at fault.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InfernoError
from ..system import Load, cv_beyond_cap
from . import labels as L
from .startup import PodSelector, StartupTime, pod_selector

logger = logging.getLogger(__name__)

__all__ = [
    "HpaRef",
    "InventoryError",
    "ManagedDeployment",
    "parse_deployment",
    "server_row",
]


class InventoryError(InfernoError):
    """A managed Deployment whose labels or annotations cannot be used."""


@dataclass(frozen=True, slots=True)
class HpaRef:
    """A HorizontalPodAutoscaler that scales a managed Deployment."""

    namespace: str
    name: str
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True, slots=True)
class ManagedDeployment:
    """A Deployment that carries ``inferno.server.managed=true``."""

    namespace: str
    name: str
    server: str
    model: str
    service_class: str
    replicas: int
    ready_replicas: int
    accelerator: str
    max_batch: int
    container: int  # index of the serving container
    container_name: str
    node_selector: Mapping[str, str] = field(default_factory=dict)
    env: tuple[tuple[str, str], ...] = ()  # the serving container's env (name, value)
    resources: Mapping[str, Any] = field(default_factory=dict)  # the container's resources
    min_replicas: int = 1
    max_replicas: int | None = None
    mode: str = "auto"
    load: Load | None = None  # from labels, when they are present
    hpa: HpaRef | None = None
    triton_model: str = ""  # the model's name in the server's metrics ("": same as ``model``)
    cycle: str = ""  # the cycle annotation: the last plan that patched it ("": none)
    has_annotations: bool = False  # metadata.annotations exists (a JSON patch must know)
    pod_selector: PodSelector | None = None  # spec.selector (None: none usable)
    startup: StartupTime | None = None  # measured from its pods (inferno.cluster.startup)
    max_output_tokens: int | None = None  # the most output tokens a request gets (None: no cap)
    #: metadata.creationTimestamp as the API server wrote it (RFC 3339, UTC: it sorts as time;
    #: "": not given): which of two Deployments claiming one server holds it
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _shown(value: object, most: int = 80) -> str:
    """``repr(value)`` within ``most`` characters (a label or annotation may hold kilobytes)."""
    text = repr(value)
    return text if len(text) <= most else text[: most - 1] + "…"


def _int(value: str, what: str, where: str, minimum: int = 0) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InventoryError(f"{where}: {what}={_shown(value)} is not an integer") from None
    if n < minimum:
        raise InventoryError(f"{where}: {what}={_shown(value)} must be >= {minimum}")
    return n


def _float(value: str, what: str, where: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise InventoryError(f"{where}: {what}={_shown(value)} is not a number") from None
    if not x >= 0 or x == float("inf"):
        raise InventoryError(f"{where}: {what}={_shown(value)} must be a finite number >= 0")
    return x


def _load(labels: Mapping[str, str], where: str) -> Load | None:
    if L.LOAD_RPM not in labels:
        return None
    rpm = _float(labels[L.LOAD_RPM], L.LOAD_RPM, where)
    if L.LOAD_NUM_TOKENS in labels and L.LOAD_OUT_TOKENS not in labels:
        return Load(rpm, 0.0, _float(labels[L.LOAD_NUM_TOKENS], L.LOAD_NUM_TOKENS, where))
    n_in = _float(labels.get(L.LOAD_IN_TOKENS, "0"), L.LOAD_IN_TOKENS, where)
    n_out = _float(labels.get(L.LOAD_OUT_TOKENS, "0"), L.LOAD_OUT_TOKENS, where)
    return Load(rpm, n_in, n_out)


def parse_deployment(obj: Mapping[str, Any], default_mode: str = "auto") -> ManagedDeployment:
    """Read a managed Deployment (the API's JSON dict, camelCase keys)."""
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    name = str(meta.get("name") or "")
    where = f"Deployment {namespace}/{name}"
    labels: Mapping[str, str] = meta.get("labels") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    model = labels.get(L.MODEL, "")
    if not model:
        raise InventoryError(f"{where}: label {L.MODEL} is missing")
    spec = obj.get("spec") or {}
    template = (spec.get("template") or {}).get("spec") or {}
    containers: Sequence[Mapping[str, Any]] = template.get("containers") or []
    if not containers:
        raise InventoryError(f"{where}: the pod template has no containers")
    wanted = annotations.get(L.CONTAINER)
    index = 0
    if wanted:
        names = [str(c.get("name")) for c in containers]
        if wanted not in names:
            raise InventoryError(
                f"{where}: annotation {L.CONTAINER}={_shown(wanted)} names no container "
                f"({_shown(names)})"
            )
        index = names.index(wanted)
    container = containers[index]
    resources = container.get("resources") or {}
    mode = annotations.get(L.MODE, default_mode)
    if mode not in ("auto", "recommend"):
        raise InventoryError(
            f"{where}: annotation {L.MODE}={_shown(mode)} must be 'auto' or 'recommend'"
        )
    min_r = (
        _int(annotations[L.MIN_REPLICAS], L.MIN_REPLICAS, where)
        if L.MIN_REPLICAS in annotations
        else 1
    )
    max_r = (
        _int(annotations[L.MAX_REPLICAS], L.MAX_REPLICAS, where, minimum=1)
        if L.MAX_REPLICAS in annotations
        else None
    )
    if max_r is not None and max_r < min_r:
        raise InventoryError(f"{where}: {L.MAX_REPLICAS}={max_r} is below {L.MIN_REPLICAS}={min_r}")
    most = (
        _int(annotations[L.MAX_OUTPUT_TOKENS], L.MAX_OUTPUT_TOKENS, where, minimum=1)
        if L.MAX_OUTPUT_TOKENS in annotations
        else None
    )
    if most is not None and most > L.MAX_OUTPUT_TOKENS_LIMIT:
        limit = L.MAX_OUTPUT_TOKENS_LIMIT
        raise InventoryError(f"{where}: {L.MAX_OUTPUT_TOKENS}={most} must be <= {limit}")
    batch_label = labels.get(L.ALLOC_MAX_BATCH, "")
    status = obj.get("status") or {}
    replicas = spec.get("replicas")
    return ManagedDeployment(
        namespace=namespace,
        name=name,
        server=labels.get(L.SERVER_NAME) or name,
        model=model,
        service_class=labels.get(L.SERVICE_CLASS) or L.DEFAULT_CLASS,
        replicas=1 if replicas is None else int(replicas),
        ready_replicas=int(status.get("readyReplicas") or 0),
        accelerator=labels.get(L.ALLOC_ACCELERATOR, ""),
        max_batch=_int(batch_label, L.ALLOC_MAX_BATCH, where) if batch_label else 0,
        container=index,
        container_name=str(container.get("name") or ""),
        node_selector=dict(template.get("nodeSelector") or {}),
        env=tuple(
            (str(e.get("name")), str(e.get("value", ""))) for e in container.get("env") or []
        ),
        resources=dict(resources),
        min_replicas=min_r,
        max_replicas=max_r,
        mode=mode,
        load=_load(labels, where),
        triton_model=annotations.get(L.TRITON_MODEL) or model,
        cycle=str(annotations.get(L.CYCLE) or ""),
        has_annotations=isinstance(meta.get("annotations"), Mapping),
        pod_selector=pod_selector(spec.get("selector")),
        max_output_tokens=most,
        created=str(meta.get("creationTimestamp") or "")[:64],
    )


def server_row(d: ManagedDeployment, load: Load | None) -> dict[str, Any]:
    """The server as a row of Inferno's ``server-data.json`` (what the optimizer reads)."""
    use = load if load is not None else d.load if d.load is not None else Load(0.0)
    row: dict[str, Any] = {
        "name": d.server,
        "class": d.service_class,
        "model": d.model,
        "minNumReplicas": d.min_replicas,
        "currentAlloc": {
            "accelerator": d.accelerator,
            "numReplicas": d.replicas,
            "maxBatch": d.max_batch,
            # the lengths' CV and family as measured (inferno.prom.lengths); the cap is the
            # Deployment's, below
            "load": replace(use, out_tokens_max=None).to_json(),
        },
    }
    most = d.max_output_tokens
    if most is not None:
        cv = use.out_tokens_cov
        mean = use.out_tokens
        if mean <= most and (cv is None or not cv_beyond_cap(cv, mean, most)):
            row["currentAlloc"]["load"]["outTokensMax"] = most
        else:  # the measured lengths contradict the annotation: the model is not told a cap
            logger.warning(
                "%s/%s: %s=%d cannot hold the measured output lengths (mean %.1f, CV %s); left out",
                d.namespace,
                d.name,
                L.MAX_OUTPUT_TOKENS,
                most,
                mean,
                "-" if cv is None else f"{cv:.3g}",
            )
    if d.max_replicas is not None:
        row["maxNumReplicas"] = d.max_replicas
    return row
