"""What the actuator checks before it enacts a decision: the decision against the static data.

Pure. The optimizer's decisions reach the actuator over HTTP; the actuator trusts none of them:
:func:`decision_problem` recomputes what a decision may say from the static data (the accelerator
exists and the model has a profile on it, the GPUs per replica and the node selector follow from
the accelerator data, the batch size is within the profile's limit, the replicas within the
ceiling, Triton's model instances and batching delay only where the profile lets the optimizer
decide them and within its bounds) and names the first thing that does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..model.profiles import MAX_QUEUE_DELAY_MS, BatchProfile
from ..system import System
from .plan import Decision

#: the longest batching delay a decision may set (µs): the model's own bound
MAX_DELAY_US = int(MAX_QUEUE_DELAY_MS * 1000)

__all__ = ["Guards", "StaticLimits", "decision_problem", "expected_selector"]


@dataclass(frozen=True, slots=True)
class AcceleratorLimit:
    type: str
    multiplicity: int
    node_selector: Mapping[str, str]
    resource: str = ""  # the extended resource a replica asks for ("" = the GPU resource setting)


@dataclass(frozen=True, slots=True)
class StaticLimits:
    """What the static data allows: accelerators, and per (model, accelerator) the GPUs per
    replica and the largest batch."""

    accelerators: Mapping[str, AcceleratorLimit] = field(
        default_factory=lambda: MappingProxyType({})
    )
    gpus: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    max_batch: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    #: per (model, accelerator) whose profile lets the optimizer decide Triton's model
    #: instances and batching delay: the most instances (its measured contention's counts)
    serving: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))

    def resource_of(self, accelerator: str, default: str) -> str:
        """The GPU resource a replica on ``accelerator`` asks for."""
        acc = self.accelerators.get(accelerator)
        return acc.resource if acc is not None and acc.resource else default

    @classmethod
    def from_system(cls, system: System) -> StaticLimits:
        accs = {
            name: AcceleratorLimit(a.type, a.multiplicity, dict(a.node_selector), a.resource)
            for name, a in system.accelerators.items()
        }
        gpus = {}
        batch = {}
        serving = {}
        for p in system.profiles:
            acc = system.accelerators.get(p.accelerator)
            if acc is None:
                continue
            gpus[(p.model, p.accelerator)] = max(p.acc_count, 1) * acc.multiplicity
            batch[(p.model, p.accelerator)] = p.profile.max_batch_size
            prof = p.profile
            if isinstance(prof, BatchProfile) and prof.decide_serving:
                serving[(p.model, p.accelerator)] = len(prof.contention)
        return cls(
            MappingProxyType(accs),
            MappingProxyType(gpus),
            MappingProxyType(batch),
            MappingProxyType(serving),
        )


@dataclass(frozen=True, slots=True)
class Guards:
    """Bounds on any decision: the GPU node label, and the replicas one server may have."""

    gpu_node_label: str = "nvidia.com/gpu.product"
    max_replicas: int = 1000


def expected_selector(acc: AcceleratorLimit, gpu_node_label: str) -> dict[str, str]:
    """The node selector of an accelerator: its own, else ``{gpu_node_label: type}``."""
    return dict(acc.node_selector) if acc.node_selector else {gpu_node_label: acc.type}


def decision_problem(dec: Decision, model: str, limits: StaticLimits, guards: Guards) -> str | None:
    """None when ``dec`` (for a server of ``model``) is what the static data allows, else the
    first problem found. A decision that allocates nothing is always acceptable: it keeps."""
    if not dec.allocated:
        return None
    acc = limits.accelerators.get(dec.accelerator)
    if acc is None:
        return f"accelerator {dec.accelerator[:80]!r} is not in the static data"
    key = (model, dec.accelerator)
    if key not in limits.gpus:
        return f"model {model!r} has no profile on accelerator {dec.accelerator!r}"
    if dec.gpus_per_replica != limits.gpus[key]:
        return (
            f"gpusPerReplica {dec.gpus_per_replica} differs from the static data's "
            f"{limits.gpus[key]} for {model} on {dec.accelerator}"
        )
    selector = expected_selector(acc, guards.gpu_node_label)
    if dict(dec.node_selector) != selector:
        return f"nodeSelector {dict(dec.node_selector)} is not the accelerator's {selector}"
    if not 1 <= dec.max_batch <= limits.max_batch[key]:
        return (
            f"maxBatch {dec.max_batch} outside 1..{limits.max_batch[key]} "
            f"(the profile's limit for {model} on {dec.accelerator})"
        )
    if not 0 <= dec.replicas <= guards.max_replicas:
        return f"replicas {dec.replicas} outside 0..{guards.max_replicas} (INFERNO_MAX_REPLICAS)"
    if dec.instances != 0 or dec.max_queue_delay_us != -1:
        most = limits.serving.get(key)
        if most is None:
            return (
                f"instances/maxQueueDelayUs decided for {model} on {dec.accelerator}, whose "
                "profile does not let the optimizer decide them (no measured contention)"
            )
        if not 1 <= dec.instances <= most:
            return f"instances {dec.instances} outside 1..{most} (the profile's contention)"
        if not 0 <= dec.max_queue_delay_us <= MAX_DELAY_US:
            return f"maxQueueDelayUs {dec.max_queue_delay_us} outside 0..{MAX_DELAY_US}"
    return None
