"""What every replica shares: the event queue, the host it serves for, its state and config.

The serving policies are in :mod:`inferno.emulator.batch_replica` (Triton dynamic batching) and
:mod:`inferno.emulator.replica` (continuous batching of the LLM kinds).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from heapq import heappush
from typing import Literal, Protocol

import numpy as np

from ..model.profiles import Profile
from .records import RecordStore

__all__ = [
    "Callback",
    "EventQueue",
    "Host",
    "Replica",
    "ReplicaConfig",
    "ReplicaState",
    "Service",
]

logger = logging.getLogger(__name__)

Service = Literal["deterministic", "exponential"]
Callback = Callable[[float, int], None]


class EventQueue:
    """The simulation's single event heap: (time, sequence, callback, argument).

    The sequence number breaks ties in push order, so equal-time events run deterministically.
    A replica invalidates its pending event by bumping its version (the argument): stale events
    are popped and ignored.
    """

    __slots__ = ("heap", "seq")

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Callback, int]] = []
        self.seq = itertools.count()

    def push(self, t: float, fn: Callback, arg: int = 0) -> None:
        heappush(self.heap, (t, next(self.seq), fn, arg))


class Host(Protocol):
    """What a replica needs from its server."""

    rec: RecordStore
    events: EventQueue
    rng: np.random.Generator  # service-time randomness (exponential mode)
    completed: int
    #: the factor on batch and iteration times from co-runners sharing the GPU (≥ 1; 1 alone)
    slowdown: float

    def busy_period(self, start: float, end: float) -> None: ...

    def drained(self, replica: Replica, t: float) -> None: ...


class ReplicaState(IntEnum):
    STARTING = 0  # provisioned, not ready yet: no routing
    READY = 1  # routed to
    DRAINING = 2  # removed: no routing, finishing what it holds
    GONE = 3  # drained (or removed before it was ready)


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    """What a replica runs: the profile, the batch limit N and the waiting capacity (K − N)."""

    profile: Profile
    batch_size: int
    max_queue: int | None = None
    service: Service = "deterministic"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {self.batch_size}")
        if self.max_queue is not None and self.max_queue < 0:
            raise ValueError(f"max_queue must be ≥ 0 or None, got {self.max_queue}")
        if self.service not in ("deterministic", "exponential"):
            raise ValueError(f"service must be deterministic or exponential, got {self.service!r}")

    @property
    def capacity(self) -> int:
        """K: the most requests a replica holds (in service + waiting)."""
        return 2**62 if self.max_queue is None else self.batch_size + self.max_queue


class Replica:
    """State shared by both replica kinds. ``held`` = waiting + in service."""

    __slots__ = (
        "busy",
        "busy_since",
        "cap",
        "config",
        "created_at",
        "expo",
        "gone_at",
        "held",
        "host",
        "id",
        "n",
        "ready_at",
        "retired_at",
        "state",
        "version",
        "waiting",
    )

    def __init__(self, rid: int, config: ReplicaConfig, host: Host, created_at: float) -> None:
        self.id = rid
        self.config = config
        self.host = host
        self.n = config.batch_size
        self.cap = config.capacity
        self.expo = config.service == "exponential"
        self.held = 0
        self.waiting: deque[int] = deque()
        self.state = ReplicaState.STARTING
        self.version = 0
        self.busy = False
        self.busy_since = 0.0
        self.created_at = created_at
        self.ready_at = math.inf
        self.retired_at = math.inf
        self.gone_at = math.inf

    def arrive(self, rid: int, t: float) -> None:
        """Request ``rid`` (a row of the host's records) arrives at time ``t``."""
        raise NotImplementedError

    @property
    def in_service(self) -> int:
        return self.held - len(self.waiting)

    def _idle(self, t: float) -> None:
        """The replica stopped serving at ``t``."""
        if self.busy:
            self.busy = False
            self.host.busy_period(self.busy_since, t)
        if self.held == 0 and self.state is ReplicaState.DRAINING:
            self.host.drained(self, t)
