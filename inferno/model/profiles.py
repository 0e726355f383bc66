"""Performance profiles: how fast one replica of a model runs on one accelerator.

A profile is one of five kinds (``docs/model.md``, "Profiles"). Every kind defines, for a given
request shape (input and output tokens), the largest batch ``N`` that fits and the time ``τ(b)`` one
request takes when ``b`` requests share the server. The kinds differ only in those two things and in
how the reported latencies (ITL, TTFT) are derived from the queue's means.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from ..errors import InputError

__all__ = [
    "BATCHING",
    "DEFAULT_MAX_NUM_TOKENS",
    "MAX_INSTANCES",
    "MAX_QUEUE_DELAY_MS",
    "BatchProfile",
    "Batching",
    "G0Profile",
    "G1Profile",
    "G2Profile",
    "G3Profile",
    "Kind",
    "Profile",
    "Tokens",
]

DEFAULT_MAX_NUM_TOKENS = 8192

#: the longest batching delay accepted (ms). Triton stores ``max_queue_delay_microseconds`` as
#: uint64 but a delay past a minute is a configuration mistake, not a batching policy.
MAX_QUEUE_DELAY_MS = 60_000.0
#: the most model instances per GPU accepted (Triton's ``instance_group count``)
MAX_INSTANCES = 16

Batching = Literal["triton", "chain"]
BATCHING: tuple[Batching, ...] = ("triton", "chain")


class Kind(StrEnum):
    """The profile kinds (docs/model.md, "Profiles")."""

    G0 = "G0"  # token iterations, one length (Inferno's published samples)
    G1 = "G1"  # prefill/decode parameters
    G2 = "G2"  # per-iteration compute + memory (queue-analysis)
    G3 = "G3"  # G2 with chunked prefill
    BATCH = "batch"  # request/response models under Triton dynamic batching


@dataclass(frozen=True, slots=True)
class Tokens:
    """The request shape: average input and output tokens per request.

    G0 profiles only know one length (Inferno's ``avgLength``); it is carried in ``out_tokens``.
    Batch-kind models ignore tokens.
    """

    in_tokens: float = 0.0
    out_tokens: float = 0.0


@dataclass(frozen=True, slots=True)
class G0Profile:
    """τ(b) = Ktok·(α + β·b); N = ⌊maxBatchSize·atTokens/Ktok⌋."""

    alpha: float
    beta: float
    max_batch_size: int
    at_tokens: float

    @property
    def kind(self) -> Kind:
        return Kind.G0


@dataclass(frozen=True, slots=True)
class G1Profile:
    """decode(b) = α + β·b; prefill(b) = γ + δ·in·b; τ(b) = prefill(b) + (out − 1)·decode(b)."""

    alpha: float
    beta: float
    gamma: float
    delta: float
    max_batch_size: int
    at_tokens: float

    @property
    def kind(self) -> Kind:
        return Kind.G1


@dataclass(frozen=True, slots=True)
class G2Profile:
    """Per-iteration compute (β) and memory (γ) costs on top of a fixed α.

    ``at_tokens`` None means ``max_batch_size`` is the batch limit as is (the single-server
    analyzer); otherwise it is scaled by ``at_tokens / out`` as for G1.
    """

    alpha: float
    beta: float
    gamma: float
    max_batch_size: int
    at_tokens: float | None = None

    @property
    def kind(self) -> Kind:
        return Kind.G2


@dataclass(frozen=True, slots=True)
class G3Profile:
    """G2 parameters with chunked prefill under a token budget ``max_num_tokens`` per iteration."""

    alpha: float
    beta: float
    gamma: float
    max_batch_size: int
    at_tokens: float | None = None
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS

    @property
    def kind(self) -> Kind:
        return Kind.G3


@dataclass(frozen=True, slots=True)
class BatchProfile:
    """A request/response model under Triton dynamic batching: a batch of b takes α + β·b.

    ``queue_delay_ms`` is Triton's ``max_queue_delay_microseconds`` (in ms): a batch starts when
    N requests wait or when the oldest has waited that long (:mod:`inferno.model.bulk_delay`).
    ``instances`` is Triton's ``instance_group count``: that many model instances on one GPU
    serve batches in parallel from one queue, each batch taking κ(c)·(α + β·b) with
    κ(c) = ``contention[c − 1]`` (κ(1) = 1; measured by the profiler: c instances share the GPU
    and do not give c× throughput). ``contention`` may list more counts than ``instances`` uses.

    ``batching`` is how the queue is modelled: ``"triton"`` (default) as Triton runs it — a batch
    runs to completion and requests arriving meanwhile wait for the next one — solved as a
    bulk-service queue (:mod:`inferno.model.bulk`, :mod:`inferno.model.bulk_delay`); ``"chain"``
    as the LLM kinds' birth-death chain, where a request joins a running batch (optimistic by
    about 30 % for Triton: docs/accuracy.md; kept for comparison and for servers that do join,
    such as sequence batchers; it ignores the delay and the instances).

    ``decide_serving``: the optimizer chooses the instance count (1 to ``len(contention)``) and
    the delay itself (:mod:`inferno.solver.serving_config`); set when the model row carries
    ``contention`` (the profiler's measurement), never otherwise.
    """

    alpha: float
    beta: float
    max_batch_size: int
    queue_delay_ms: float = 0.0
    batching: Batching = "triton"
    instances: int = 1
    contention: tuple[float, ...] = (1.0,)
    decide_serving: bool = False

    def __post_init__(self) -> None:
        d = self.queue_delay_ms
        if not (isinstance(d, int | float) and 0.0 <= d <= MAX_QUEUE_DELAY_MS):
            raise InputError(
                f"queue_delay_ms must be between 0 and {MAX_QUEUE_DELAY_MS:g} ms, got {d!r}"
            )
        c = self.instances
        if isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= MAX_INSTANCES:
            raise InputError(f"instances must be an integer from 1 to {MAX_INSTANCES}, got {c!r}")
        k = self.contention
        if not isinstance(k, tuple) or len(k) < c:
            raise InputError(
                f"contention must give κ(c) for c = 1..{c} (the instances asked), got {k!r}"
            )
        for i, x in enumerate(k):
            if not (isinstance(x, int | float) and 1.0 <= x < float("inf")):
                raise InputError(
                    f"contention[{i}] (κ({i + 1})) must be a finite number ≥ 1, got {x!r}"
                )
        if k[0] != 1.0:
            raise InputError(f"contention[0] (κ(1)) must be 1, got {k[0]!r}")

    @property
    def kind(self) -> Kind:
        return Kind.BATCH

    @property
    def kappa(self) -> float:
        """κ(c) at the profile's instance count: each instance's batch-time factor."""
        return float(self.contention[self.instances - 1])


Profile = G0Profile | G1Profile | G2Profile | G3Profile | BatchProfile
