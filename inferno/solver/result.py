"""What the solver returns: a status, one allocation per allocated server, a reason per other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .serving_config import ServingDecision

__all__ = ["Allocation", "Part", "ServerStatus", "Solution", "Status", "Unallocated"]


class Status(StrEnum):
    """The status of a whole solution."""

    OPTIMAL = "optimal"  # every server allocated at proven minimum cost
    FEASIBLE = "feasible"  # every server allocated; minimality not proven (greedy under limits)
    PARTIAL = (
        "partially-allocated"  # some servers unallocated or granted fewer replicas than needed
    )
    INFEASIBLE = "infeasible"  # no server could be allocated


class ServerStatus(StrEnum):
    ALLOCATED = "allocated"
    PARTIAL = "partial"  # granted fewer replicas than its SLOs need (saturation policy)
    UNALLOCATED = "unallocated"


@dataclass(frozen=True, slots=True)
class Part:
    """One accelerator's share of a mixed (heterogeneous) allocation."""

    accelerator: str
    replicas: int
    max_batch: int
    cost: float
    rate_per_replica: float  # req/min each replica receives


@dataclass(frozen=True, slots=True)
class Allocation:
    """The decision for one server. Rates in req/min, times in ms.

    ``metrics`` are predicted at the load each replica actually receives (demand / replicas),
    recomputed at the granted count for partial grants.
    """

    server: str
    accelerator: str
    replicas: int
    max_batch: int
    cost: float
    status: ServerStatus
    demand: float  # req/min offered to the server
    max_rate_per_replica: float  # λ* in req/min
    bound: str  # what bounds λ*: itl, ttft, ttw, latency, tps, max-rate
    required_replicas: int  # what the SLOs need
    metrics: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    max_batch_memory: int = 0  # Inferno's memory-scaled batch limit, for comparison
    batch_policy: str = "memory"
    parts: tuple[Part, ...] = ()  # more than one for a mixed allocation
    note: str = ""
    #: model instances and batching delay, when the solver decides them (:mod:`.serving_config`)
    serving: ServingDecision | None = None

    @property
    def instances(self) -> int:
        """Model instances per replica (1 unless decided)."""
        return self.serving.instances if self.serving is not None else 1


@dataclass(frozen=True, slots=True)
class Unallocated:
    """A server the solver could not allocate, and why."""

    server: str
    reason: str


@dataclass(frozen=True, slots=True)
class Solution:
    status: Status
    #: by server; from the solver, held as columns (:mod:`.allocation_columns`: each object
    #: built when first read)
    allocations: Mapping[str, Allocation]
    unallocated: Mapping[str, Unallocated]
    solver: str
    total_cost: float
    units_used: Mapping[str, int]  # accelerator units used per type
    message: str = ""
    #: per accelerator type with GPU partitions: the GPUs after packing (solver/gpulets.py)
    gpus: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
