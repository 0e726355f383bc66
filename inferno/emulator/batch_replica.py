"""The batch kind's replica: Triton's dynamic batcher feeding one or more model instances.

FCFS queue shared by ``instances`` (c) model instances (Triton's ``instance_group count``). A
batch of min(waiting, N) starts on a free instance when N requests wait, or — with
``queue_delay_ms`` D > 0 (Triton's ``max_queue_delay_microseconds``) — when the oldest waiting
request has waited D, whichever comes first; with D = 0 it starts as soon as an instance is free
and a request waits. A batch never starts while every instance is busy: requests arriving then
wait for the first instance to finish (the batcher holds no batch for a busy instance). A batch
of b takes κ(c)·(α + β·b) (``deterministic``, what Triton does) or an exponential time of that
mean (``exponential``, the chain model's assumption); all members complete together. κ(c) is
the profile's contention factor at c instances (κ(1) = 1), so the c instances together serve
c/κ(c) times what one does. ``preferred_batch_size`` is not modelled. Co-runners on a shared
MPS GPU multiply the batch time by the server's ``slowdown`` (:meth:`Simulation.set_slowdown`).
"""

from __future__ import annotations

import logging

from ..model.profiles import BatchProfile
from .replica_base import Host, Replica, ReplicaConfig

__all__ = ["BatchReplica"]

logger = logging.getLogger(__name__)


class BatchReplica(Replica):
    """Triton dynamic batching on c instances (see the module docstring)."""

    __slots__ = ("alpha", "beta", "delay", "free", "members", "running", "timer", "timer_version")

    def __init__(self, rid: int, config: ReplicaConfig, host: Host, created_at: float) -> None:
        super().__init__(rid, config, host, created_at)
        p = config.profile
        assert isinstance(p, BatchProfile)
        kappa = p.kappa
        self.alpha = kappa * p.alpha
        self.beta = kappa * p.beta
        self.delay = p.queue_delay_ms
        self.members: list[list[int]] = [[] for _ in range(p.instances)]  # per instance
        self.free = list(range(p.instances - 1, -1, -1))  # idle instances (a stack)
        self.running = 0  # requests in service, all instances
        self.timer = False  # a delay timer is pending
        self.timer_version = 0

    @property
    def in_service(self) -> int:
        return self.running

    def arrive(self, rid: int, t: float) -> None:
        self.held += 1
        self.waiting.append(rid)
        if self.free:
            self._try(t)

    def _try(self, t: float) -> None:
        """An instance is free and requests wait: start a batch now, or set the delay timer."""
        w = self.waiting
        if len(w) >= self.n or self.delay <= 0.0:
            self._start(t)
            return
        deadline = self.host.rec.arrival.item(w[0]) + self.delay
        if deadline <= t:
            self._start(t)
        elif not self.timer:
            self.timer = True
            self.timer_version += 1
            self.host.events.push(deadline, self._on_timer, self.timer_version)

    def _on_timer(self, t: float, version: int) -> None:
        if version == self.timer_version and self.timer:
            self.timer = False
            if self.free and self.waiting:
                self._start(t)

    def _start(self, t: float) -> None:
        if self.timer:  # the batch that the timer waited for starts now
            self.timer = False
            self.timer_version += 1
        w = self.waiting
        k = min(self.n, len(w))
        members = [w.popleft() for _ in range(k)]
        host = self.host
        if k == 1:
            host.rec.start[members[0]] = t
        else:
            host.rec.start[members] = t
        mean = (self.alpha + self.beta * k) * host.slowdown
        dur = mean * float(host.rng.standard_exponential()) if self.expo else mean
        inst = self.free.pop()
        self.members[inst] = members
        self.running += k
        if not self.busy:
            self.busy = True
            self.busy_since = t
        host.events.push(t + dur, self._on_done, inst)
        if self.free and w:  # more waiting than one batch takes: the next instance
            self._try(t)

    def _on_done(self, t: float, inst: int) -> None:
        host = self.host
        rec = host.rec
        members = self.members[inst]
        k = len(members)
        if k == 1:
            rec.completion[members[0]] = t
        else:
            rec.completion[members] = t
        sojourn = t - rec.arrival.item(members[0])  # FCFS: the first member is the oldest
        if sojourn > rec.max_sojourn:
            rec.max_sojourn = sojourn
        self.held -= k
        self.running -= k
        host.completed += k
        self.members[inst] = []
        self.free.append(inst)
        if self.waiting:
            self._try(t)
        if self.running == 0:
            self._idle(t)
