"""A server: replicas of one model behind a router, with scale-out start-up and scale-in drain.

Routing (``router``), over the *ready* replicas (not starting, not draining):

- ``random``: uniformly at random, what a Kubernetes Service (kube-proxy) does;
- ``round-robin``: in turn, by replica id;
- ``least-loaded``: the replica holding the fewest requests (waiting + in service), ties to the
  lowest id.

The request is rejected if the chosen replica holds K = N + ``max_queue`` requests already (a
router does not retry another replica), or if no replica is ready.

Scaling (:meth:`ServerRuntime.set_replicas`):

- scale-out adds replicas that become ready ``startup_delay_ms`` later (not routed to before);
- scale-in removes replicas not yet ready first (newest first), then ready ones, least loaded
  first (ties: the newest); a removed ready replica drains: it takes no new request and finishes
  everything it holds (waiting requests included), then is gone;
- a new profile or batch size (a new :class:`~inferno.emulator.replica.ReplicaConfig`) is a
  rolling update: replicas of the old configuration still starting are dropped; ``n`` replicas of
  the new one start; each time one becomes ready, one old replica (least loaded) drains, and
  when none of the new ones is still starting, every remaining old one drains. Old replicas keep
  serving until then, so the server is never left without ready replicas by the update itself.

Initial replicas (at time 0) are ready at once.
"""

from __future__ import annotations

import hashlib
import logging
import math
from bisect import insort
from dataclasses import dataclass
from operator import attrgetter
from typing import Literal

import numpy as np

from ..model.profiles import BatchProfile, G3Profile, Profile
from ..units import MS_PER_MIN, MS_PER_S
from .records import REJECT_NO_REPLICA, REJECT_QUEUE_FULL, RecordStore
from .replica import EventQueue, Replica, ReplicaConfig, ReplicaState, Service, make_replica
from .tokens import Fixed, Lengths
from .traces import ArrivalStream, Bursts, Trace

__all__ = [
    "ROUTERS",
    "ReplicaInfo",
    "Router",
    "ServerRuntime",
    "ServerSpec",
    "ServerState",
    "name_key",
    "rate_path",
]

logger = logging.getLogger(__name__)

Router = Literal["random", "round-robin", "least-loaded"]
ROUTERS: tuple[Router, ...] = ("random", "round-robin", "least-loaded")

#: arrivals are drawn from the trace this many ms at a time
CHUNK_MS = MS_PER_MIN
_UNIFORM_BLOCK = 4096

_NO_TOKENS = Fixed(0)
_ONE_TOKEN = Fixed(1)

_by_id = attrgetter("id")
_by_held = attrgetter("held")


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One simulated server.

    ``batch_size`` is N (None: the profile's ``max_batch_size`` as is — pass the optimizer's
    batch, which is memory-scaled); ``max_queue`` the waiting room per replica, K − N (None:
    unbounded). ``input_tokens``/``output_tokens`` draw each request's lengths (a replay trace
    carries its own). ``replicas`` are ready at time 0.
    """

    profile: Profile
    trace: Trace
    replicas: int = 1
    batch_size: int | None = None
    max_queue: int | None = None
    input_tokens: Lengths = _NO_TOKENS
    output_tokens: Lengths = _ONE_TOKEN
    router: Router = "random"
    startup_delay_ms: float = 60.0 * MS_PER_S
    service: Service = "deterministic"

    def __post_init__(self) -> None:
        if self.replicas < 0:
            raise ValueError(f"replicas must be ≥ 0, got {self.replicas}")
        if self.router not in ROUTERS:
            raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {self.router!r}")
        if not math.isfinite(self.startup_delay_ms) or self.startup_delay_ms < 0:
            raise ValueError(f"startup_delay_ms must be ≥ 0, got {self.startup_delay_ms!r}")
        if not isinstance(self.profile, BatchProfile) and self.output_tokens.minimum < 1:
            raise ValueError("LLM requests need at least one output token")
        if isinstance(self.profile, G3Profile) and self.profile.max_num_tokens < 1:
            raise ValueError("G3 max_num_tokens must be ≥ 1")
        self.config()  # validates batch_size, max_queue and service

    def config(
        self, profile: Profile | None = None, batch_size: int | None = None
    ) -> ReplicaConfig:
        """The replica configuration, optionally with another profile or batch size."""
        prof = self.profile if profile is None else profile
        if batch_size is not None:
            n = batch_size
        elif profile is None and self.batch_size is not None:
            n = self.batch_size
        else:
            n = prof.max_batch_size
        return ReplicaConfig(prof, int(n), self.max_queue, self.service)


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """One replica, past or present (times in ms; inf = not yet / never)."""

    id: int
    state: ReplicaState
    profile: Profile
    batch_size: int
    created_at: float
    ready_at: float
    retired_at: float
    gone_at: float
    held: int
    in_service: int


@dataclass(frozen=True, slots=True)
class ServerState:
    """A server now: replica counts by state and requests held."""

    time: float
    starting: int
    ready: int
    draining: int
    busy: int
    in_flight: int
    waiting: int
    in_service: int


def name_key(name: str) -> int:
    """A stable integer of the server name (independent of Python's hash randomisation)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def server_rngs(seed: int, name: str) -> list[np.random.Generator]:
    """The server's generators: arrivals, tokens, routing, service. Keyed by the server name,
    so adding, removing or reordering other servers does not change this server's draws."""
    base = np.random.SeedSequence(seed, spawn_key=(name_key(name),))
    return [np.random.default_rng(s) for s in base.spawn(4)]


def rate_path(trace: Trace, seed: int, name: str, until_ms: float) -> Trace:
    """The rate function server ``name``'s arrivals follow over [0, ``until_ms``) in a simulation
    seeded ``seed``.

    A :class:`~inferno.emulator.traces.Bursts` trace's rate at a given time is random: its
    realised path, the :class:`~inferno.emulator.traces.Steps` of the modulating chain drawn
    exactly as the simulation draws it (the server's arrival generator, one-minute windows), so
    the simulated arrivals follow it. Any other trace's rate is not random: the trace itself.
    """
    if not isinstance(trace, Bursts):
        return trace
    return trace.realised(server_rngs(seed, name)[0], until_ms, CHUNK_MS)


class ServerRuntime:
    """The live state of one server in a simulation (internal; see :class:`Simulation`)."""

    __slots__ = (
        "_busy_end",
        "_busy_n",
        "_busy_start",
        "_route_rng",
        "_stream",
        "_uniforms",
        "_upos",
        "_window_end",
        "active",
        "all",
        "completed",
        "config",
        "events",
        "name",
        "old",
        "rec",
        "rejected",
        "rng",
        "routable",
        "route",
        "rr",
        "slowdown",
        "spec",
        "tok_rng",
        "trace_end",
    )

    def __init__(self, name: str, spec: ServerSpec, seed: int, events: EventQueue) -> None:
        self.name = name
        self.spec = spec
        self.events = events
        arr_rng, self.tok_rng, self._route_rng, self.rng = server_rngs(seed, name)
        self._stream: ArrivalStream = spec.trace.stream(arr_rng)
        self.trace_end = spec.trace.end_ms
        self.rec = RecordStore()
        self.completed = 0
        self.rejected = 0
        # the factor on batch (iteration) times from co-runners on a shared MPS GPU (1: alone)
        self.slowdown = 1.0
        self.config = spec.config()
        self.all: list[Replica] = []  # every replica ever, by id
        self.active: list[Replica] = []  # replicas of the current config, starting or ready
        self.old: list[Replica] = []  # ready replicas of a previous config awaiting retirement
        self.routable: list[Replica] = []  # ready, by id
        self.rr = -1
        self._uniforms: list[float] = []
        self._upos = 0
        self._busy_start = np.empty(256)
        self._busy_end = np.empty(256)
        self._busy_n = 0
        self._window_end = 0.0
        self.route = {
            "random": self._route_random,
            "round-robin": self._route_round_robin,
            "least-loaded": self._route_least_loaded,
        }[spec.router]
        for _ in range(spec.replicas):
            self._add(0.0, ready=True)

    # --- arrivals -------------------------------------------------------------------------------

    def start(self) -> None:
        """Schedule the first window of arrivals."""
        self._next_window(0.0)

    def _next_window(self, t0: float) -> None:
        """Draw arrivals on [t0, t0 + CHUNK) and schedule the first (or the next window)."""
        if self.trace_end is not None and t0 > self.trace_end:
            return
        t1 = t0 + CHUNK_MS
        got = self._stream.next(t0, t1)
        n = got.times.size
        if n == 0:
            self.events.push(t1, self._on_window, 0)
            return
        spec = self.spec
        n_in = (
            got.input_tokens
            if got.input_tokens is not None
            else spec.input_tokens.sample(n, self.tok_rng)
        )
        n_out = (
            got.output_tokens
            if got.output_tokens is not None
            else spec.output_tokens.sample(n, self.tok_rng)
        )
        rec = self.rec
        first = rec.n_generated
        rec.add(got.times, n_in, n_out)
        self._window_end = t1
        self.events.push(rec.arrival.item(first), self._on_arrival, 0)

    def _on_window(self, t: float, _: int) -> None:
        self._next_window(t)

    def _on_arrival(self, t: float, _: int) -> None:
        rec = self.rec
        rid = rec.n_arrived
        rec.n_arrived = rid + 1
        rep = self.route()
        if rep is None:
            rec.reason[rid] = REJECT_NO_REPLICA
            self.rejected += 1
        elif rep.held >= rep.cap:
            rec.reason[rid] = REJECT_QUEUE_FULL
            rec.replica[rid] = rep.id
            self.rejected += 1
        else:
            rec.replica[rid] = rep.id
            rep.arrive(rid, t)
        nxt = rid + 1
        if nxt < rec.n_generated:
            self.events.push(rec.arrival.item(nxt), self._on_arrival, 0)
        else:
            self._next_window(self._window_end)

    # --- routing --------------------------------------------------------------------------------

    def _uniform(self) -> float:
        if self._upos >= len(self._uniforms):
            self._uniforms = self._route_rng.random(_UNIFORM_BLOCK).tolist()
            self._upos = 0
        u = self._uniforms[self._upos]
        self._upos += 1
        return u

    def _route_random(self) -> Replica | None:
        ready = self.routable
        if not ready:
            return None
        return ready[int(self._uniform() * len(ready))]

    def _route_round_robin(self) -> Replica | None:
        ready = self.routable
        if not ready:
            return None
        self.rr = (self.rr + 1) % len(ready)
        return ready[self.rr]

    def _route_least_loaded(self) -> Replica | None:
        ready = self.routable
        if not ready:
            return None
        return min(ready, key=_by_held)  # the first minimum: lowest id among ties

    # --- replica bookkeeping (Host protocol) ----------------------------------------------------

    def busy_period(self, start: float, end: float) -> None:
        i = self._busy_n
        if i == self._busy_start.size:
            self._busy_start = np.concatenate([self._busy_start, np.empty(i)])
            self._busy_end = np.concatenate([self._busy_end, np.empty(i)])
        self._busy_start[i] = start
        self._busy_end[i] = end
        self._busy_n = i + 1

    def drained(self, replica: Replica, t: float) -> None:
        replica.state = ReplicaState.GONE
        replica.gone_at = t

    # --- scaling --------------------------------------------------------------------------------

    def _add(self, t: float, *, ready: bool = False) -> Replica:
        rep = make_replica(len(self.all), self.config, self, t)
        self.all.append(rep)
        self.active.append(rep)
        if ready or self.spec.startup_delay_ms <= 0.0:
            self._make_ready(rep, t)
        else:
            self.events.push(t + self.spec.startup_delay_ms, self._on_ready, rep.id)
        return rep

    def _on_ready(self, t: float, rid: int) -> None:
        rep = self.all[rid]
        if rep.state is ReplicaState.STARTING:
            self._make_ready(rep, t)

    def _make_ready(self, rep: Replica, t: float) -> None:
        rep.state = ReplicaState.READY
        rep.ready_at = t
        insort(self.routable, rep, key=_by_id)
        if self.old:
            self._retire(min(self.old, key=_by_held), t)
            if not any(r.state is ReplicaState.STARTING for r in self.active):
                for r in list(self.old):
                    self._retire(r, t)

    def _retire(self, rep: Replica, t: float) -> None:
        """Stop routing to ``rep``; it drains (or is gone at once if it holds nothing)."""
        if rep in self.old:
            self.old.remove(rep)
        if rep in self.active:
            self.active.remove(rep)
        if rep.state is ReplicaState.STARTING:
            rep.state = ReplicaState.GONE
            rep.retired_at = rep.gone_at = t
            return
        self.routable.remove(rep)
        rep.state = ReplicaState.DRAINING
        rep.retired_at = t
        if rep.held == 0:
            self.drained(rep, t)

    def set_replicas(
        self, n: int, t: float, profile: Profile | None = None, batch_size: int | None = None
    ) -> None:
        """Scale to ``n`` replicas of the given (or current) profile and batch size at ``t``."""
        if n < 0:
            raise ValueError(f"replicas must be ≥ 0, got {n}")
        if profile is None and batch_size is None:
            config = self.config
        else:
            prof = self.config.profile if profile is None else profile
            config = self.spec.config(
                prof, self.config.batch_size if batch_size is None else batch_size
            )
        if config != self.config:
            logger.debug("%s: rolling update to %s at %.0f ms", self.name, config, t)
            self.config = config
            for rep in list(self.active):
                if rep.state is ReplicaState.STARTING:
                    self._retire(rep, t)
                else:
                    self.active.remove(rep)
                    self.old.append(rep)
            for _ in range(n):
                self._add(t)
            if n == 0:
                for rep in list(self.old):
                    self._retire(rep, t)
            return
        have = len(self.active)
        if n > have:
            for _ in range(n - have):
                self._add(t)
        elif n < have:
            starting = [r for r in self.active if r.state is ReplicaState.STARTING]
            ready = sorted(
                (r for r in self.active if r.state is ReplicaState.READY),
                key=lambda r: (r.held, -r.id),
            )
            victims = (starting[::-1] + ready)[: have - n]
            for rep in victims:
                self._retire(rep, t)
        if self.old and not any(r.state is ReplicaState.STARTING for r in self.active):
            for rep in list(self.old):
                self._retire(rep, t)

    # --- observation ----------------------------------------------------------------------------

    def busy_ms(self, t0: float, t1: float, now: float) -> float:
        """Replica-ms spent serving during [t0, t1)."""
        n = self._busy_n
        ends = self._busy_end[:n]
        lo = int(np.searchsorted(ends, t0, side="right"))
        begin = self._busy_start[lo:n]
        end = ends[lo:]
        total = float(np.clip(np.minimum(end, t1) - np.maximum(begin, t0), 0.0, None).sum())
        for rep in self.all:
            if rep.busy:
                total += max(min(now, t1) - max(rep.busy_since, t0), 0.0)
        return total

    def replica_ms(self, t0: float, t1: float, now: float) -> tuple[float, float]:
        """(ready replica-ms, provisioned replica-ms) during [t0, t1)."""
        ready = provisioned = 0.0
        hi = min(t1, now)
        for rep in self.all:
            gone = min(rep.gone_at, hi)
            provisioned += max(gone - max(rep.created_at, t0), 0.0)
            ready += max(min(rep.retired_at, gone) - max(rep.ready_at, t0), 0.0)
        return ready, provisioned

    def infos(self) -> list[ReplicaInfo]:
        return [
            ReplicaInfo(
                id=r.id,
                state=r.state,
                profile=r.config.profile,
                batch_size=r.config.batch_size,
                created_at=r.created_at,
                ready_at=r.ready_at,
                retired_at=r.retired_at,
                gone_at=r.gone_at,
                held=r.held,
                in_service=r.in_service,
            )
            for r in self.all
        ]

    def state(self, now: float) -> ServerState:
        counts = dict.fromkeys(ReplicaState, 0)
        busy = held = waiting = 0
        for r in self.all:
            counts[r.state] += 1
            busy += r.busy
            held += r.held
            waiting += len(r.waiting)
        return ServerState(
            time=now,
            starting=counts[ReplicaState.STARTING],
            ready=counts[ReplicaState.READY],
            draining=counts[ReplicaState.DRAINING],
            busy=busy,
            in_flight=held,
            waiting=waiting,
            in_service=held - waiting,
        )
