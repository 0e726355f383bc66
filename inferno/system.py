"""The system Inferno optimises, as frozen dataclasses: accelerators, model profiles, service
classes, servers with their load and current allocation, GPU capacity and solver options.

These are plain values: :mod:`inferno.data` reads them from Inferno's JSON files (and, later, from
the cluster), :mod:`inferno.solver` turns them into a solution. Units follow Inferno's data:
arrival rates in requests per minute, times in ms, costs per accelerator unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .model.profiles import Profile

__all__ = [
    "Accelerator",
    "BatchPolicy",
    "CurrentAllocation",
    "Load",
    "ModelProfile",
    "OptimizerSpec",
    "SaturationPolicy",
    "Server",
    "ServiceClass",
    "System",
    "Target",
    "cv_beyond_cap",
]


def cv_beyond_cap(cv: float, mean: float, most: float) -> bool:
    """Whether lengths of mean ``mean`` served at most ``most`` tokens cannot have the CV ``cv``:
    their SCV is at most most/mean − 1 (half of them at 0, half at the cap)."""
    return mean > 0 and cv * cv > most / mean - 1.0


@dataclass(frozen=True, slots=True)
class Accelerator:
    """An accelerator configuration one replica runs on (e.g. ``2xA100`` = 2 units of type A100).

    ``cost`` is per replica-configuration (Inferno's cents/hour); ``multiplicity`` is how many units
    of ``type`` it holds. ``node_selector`` is the node label (key, value) pods need to land on it.
    """

    name: str
    type: str
    multiplicity: int = 1
    cost: float = 0.0
    mem_size: float | None = None
    mem_bw: float | None = None
    node_selector: tuple[tuple[str, str], ...] = ()
    #: a GPU partition (docs/gpu-partitions.md): the product (``A100-80GB``), the MIG profile or
    #: MPS pool (``3g.40gb``, ``mps-4``) and the share of one GPU of ``type`` a replica takes
    product: str = ""
    partition: str = ""
    fraction: float = 1.0
    #: the container's extended resource for one replica's GPU ("" = the GPU resource setting,
    #: nvidia.com/gpu); a MIG slice under the mixed strategy has its own (nvidia.com/mig-3g.40gb)
    resource: str = ""
    #: MPS shares: GPU-let's five interference constants of the GPU type (empty: unknown, so no
    #: two servers share a GPU)
    interference: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """How one model runs on one accelerator: ``acc_count`` accelerators per replica."""

    model: str
    accelerator: str
    acc_count: int
    profile: Profile
    #: derived from the whole-GPU profile by the partition scaling law, not measured
    derived: bool = False
    #: the serial fraction s of the scaling law τ_f = τ_1·(s + (1 − s)/f) (given, or fitted)
    serial_fraction: float | None = None
    mem_gb: float | None = None  # the memory one replica needs (GB), when known
    #: (batch, L2 %, DRAM %) at the whole GPU, for the MPS interference model
    utilization: tuple[tuple[int, float, float], ...] = ()
    #: the share of a batch's time spent on the GPU (the rest, host work, is not slowed by MPS
    #: co-runners); 1 when not given
    gpu_share: float = 1.0


@dataclass(frozen=True, slots=True)
class Target:
    """SLO targets of one model in one service class (ms; None = no target).

    ``ttw`` is Inferno's G0 ``slo-ttw`` (a 95th percentile of the wait, by default judged by
    Inferno's rule on the mean); ``tps`` makes the class a throughput class (tokens/s).
    Quantiles: None = the mean.
    """

    model: str
    itl: float | None = None
    ttft: float | None = None
    ttw: float | None = None
    tps: float | None = None
    latency: float | None = None
    ttft_quantile: float | None = None
    latency_quantile: float | None = None
    ttw_quantile: float = 0.95


@dataclass(frozen=True, slots=True)
class ServiceClass:
    """A class of service: its priority (1 = highest) and per-model targets."""

    name: str
    priority: int
    targets: Mapping[str, Target] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Load:
    """Offered load of a server: requests per minute and tokens per request.

    G0 data gives one length (``avgLength``); it is held in ``out_tokens``.
    """

    arrival_rate: float
    in_tokens: float = 0.0
    out_tokens: float = 0.0
    arrival_cov: float | None = None
    service_cov: float | None = None
    #: coefficient of variation of the output length (``outTokensCOV``; the accurate model's
    #: length distribution: 0 fixed, 1 exponential; None: 1. Not serviceCOV, which is Inferno's
    #: service-time CV: docs/model.md, "Accurate mode")
    out_tokens_cov: float | None = None
    #: the output lengths' family (``outTokensDist``, one of
    #: :data:`inferno.model.accurate.LENGTH_FAMILIES`; None: gamma), the accurate model's
    #: latency distribution takes it with the CV
    out_tokens_dist: str | None = None
    #: the input lengths' coefficient of variation and family (``inTokensCOV``,
    #: ``inTokensDist``; None: fixed, gamma): the accurate model's first-token time and service
    #: vary with them
    in_tokens_cov: float | None = None
    in_tokens_dist: str | None = None
    #: the most output tokens a request gets (``outTokensMax``: the server's max_tokens or what
    #: its context leaves; None: no cap): the accurate model's lengths are then served capped,
    #: with the told mean and CV (docs/model.md, "Accurate mode")
    out_tokens_max: float | None = None

    def to_json(self, *, g0: bool = False) -> dict[str, Any]:
        """The ``load`` object of a ``server-data.json`` row (G0 data: ``avgLength``), the
        fields that are None left out."""
        out: dict[str, Any] = {"arrivalRate": self.arrival_rate}
        if g0:
            out["avgLength"] = self.out_tokens
        else:
            out["avgInTokens"] = self.in_tokens
            out["avgOutTokens"] = self.out_tokens
        optional = (
            ("arrivalCOV", self.arrival_cov),
            ("serviceCOV", self.service_cov),
            ("outTokensCOV", self.out_tokens_cov),
            ("outTokensDist", self.out_tokens_dist),
            ("inTokensCOV", self.in_tokens_cov),
            ("inTokensDist", self.in_tokens_dist),
            ("outTokensMax", self.out_tokens_max),
        )
        out.update((key, value) for key, value in optional if value is not None)
        return out


@dataclass(frozen=True, slots=True)
class CurrentAllocation:
    """What a server runs now (empty accelerator = nothing)."""

    accelerator: str = ""
    replicas: int = 0
    max_batch: int = 0
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class Server:
    """One (model, service class) inference server, i.e. one Deployment."""

    name: str
    service_class: str
    model: str
    load: Load
    current: CurrentAllocation = CurrentAllocation()
    min_replicas: int = 1
    max_replicas: int | None = None
    max_batch_size: int | None = None  # overrides the profile's batch limit
    max_queue_size: int | None = None  # overrides the default queue (K − N)
    keep_accelerator: bool = False
    #: keep the running batch (``current.max_batch`` on ``current.accelerator``) when the batch
    #: decided there moves it by at most this fraction and it still fits in memory within
    #: :data:`~inferno.model.profile_arrays.MEMORY_SLACK`; None: no hysteresis
    batch_tolerance: float | None = None


class SaturationPolicy(StrEnum):
    """What the greedy solver does with servers it could not fully allocate."""

    NONE = "None"
    PRIORITY_EXHAUSTIVE = "PriorityExhaustive"
    ROUND_ROBIN = "RoundRobin"
    PRIORITY_ROUND_ROBIN = "PriorityRoundRobin"


class PerformanceModel(StrEnum):
    """Which performance model sizes the servers (docs/model.md, "Accurate mode")."""

    INFERNO = "inferno"  # Inferno's birth-death chain (exact reproduction of Inferno)
    ACCURATE = "accurate"  # iteration-level continuous batching, lengths, join stalls


class BatchPolicy(StrEnum):
    """How the batch size of a server is chosen."""

    MEMORY = "memory"  # Inferno's: the profile's batch limit scaled by atTokens / tokens
    KNEE = "knee"  # the smallest batch within 1% of the best SLO-feasible throughput


@dataclass(frozen=True, slots=True)
class OptimizerSpec:
    """Solver options (Inferno's ``optimizer-data.json`` plus this project's)."""

    unlimited: bool = True
    heterogeneous: bool = False
    milp: bool = False
    saturation_policy: SaturationPolicy = SaturationPolicy.NONE
    delayed_best_effort: bool = False
    batch_policy: BatchPolicy = BatchPolicy.MEMORY
    exact_wait_quantile: bool = False  # judge slo-ttw on the true wait quantile, not Inferno's rule
    queue_factor: float | None = None  # K − N = factor·N for every server (None: per-kind default)
    milp_time_limit: float = 60.0
    model: PerformanceModel = PerformanceModel.INFERNO
    #: decide Triton's model instances and batching delay for batch-kind rows with measured
    #: contention (solver/serving_config.py): ~0.4 s per such server, so asked for explicitly
    decide_serving: bool = False
    #: with ``decide_serving``, also offer c > 1 instances without a batching delay: often the
    #: cheapest (0.68× the batch-only cost on samples/gpulets where the delay options give 0.89×)
    #: but sized on the exact residual-time chain, so a first decision takes minutes
    #: (bench/README.md, "Offering c > 1 without a delay")
    offer_no_delay: bool = False


@dataclass(frozen=True, slots=True)
class System:
    """Everything the solver needs."""

    accelerators: Mapping[str, Accelerator]
    profiles: tuple[ModelProfile, ...]
    classes: Mapping[str, ServiceClass]
    servers: tuple[Server, ...]
    capacity: Mapping[str, int]  # units available per accelerator type
    optimizer: OptimizerSpec = OptimizerSpec()
    #: what reading the data decided without it being an error (e.g. a partition profile that
    #: could not be derived), for the reports
    notes: tuple[str, ...] = ()
