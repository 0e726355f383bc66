"""The simulation: many servers on one event queue, run in resumable steps.

:class:`Simulation` holds one :class:`~inferno.emulator.server.ServerRuntime` per server on a
single heap of events (arrivals, iteration-segment ends, batch completions, replica start-ups,
scheduled scaling), each O(log n). :meth:`Simulation.run_until` processes every event before the
given time and may be called again with a later time: a control loop alternates ``run_until``
with reading :meth:`Simulation.window` and calling :meth:`Simulation.set_replicas`. Arrivals are
drawn in fixed one-minute windows, so how the run is cut into steps does not change the result.

Randomness: one seed; every server derives its own generators (arrivals, tokens, routing,
service) from it and its name (:func:`~inferno.emulator.server.server_rngs`), so servers are
reproducible and independent of each other.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from heapq import heappop

from ..model.profiles import Profile
from ..units import MS_PER_MIN
from .records import RequestRecords, Totals, Window, summarize
from .replica import EventQueue
from .server import ReplicaInfo, ServerRuntime, ServerSpec, ServerState, rate_path
from .traces import Trace

__all__ = ["Simulation"]

logger = logging.getLogger(__name__)


class Simulation:
    """A discrete-event simulation of inference servers. Times in ms from 0."""

    def __init__(self, servers: Mapping[str, ServerSpec], seed: int = 0) -> None:
        self._events = EventQueue()
        self._now = 0.0
        self._seed = int(seed)
        self._processed = 0
        self._servers: dict[str, ServerRuntime] = {}
        for name, spec in servers.items():
            self._servers[name] = ServerRuntime(name, spec, self._seed, self._events)
        for srv in self._servers.values():
            srv.start()
        logger.debug("simulation of %d servers, seed %d", len(self._servers), self._seed)

    @property
    def now(self) -> float:
        """The time up to which the simulation has run (ms)."""
        return self._now

    @property
    def events_processed(self) -> int:
        """Events popped from the queue so far (stale ones included)."""
        return self._processed

    @property
    def servers(self) -> tuple[str, ...]:
        return tuple(self._servers)

    def _server(self, name: str) -> ServerRuntime:
        try:
            return self._servers[name]
        except KeyError:
            raise KeyError(f"no server {name!r} in the simulation") from None

    def run_until(self, t_ms: float) -> None:
        """Process every event before ``t_ms``; afterwards :attr:`now` is ``t_ms``."""
        if not t_ms >= self._now:
            raise ValueError(f"cannot run back to {t_ms} ms: the simulation is at {self._now} ms")
        heap = self._events.heap
        n = 0
        while heap and heap[0][0] < t_ms:
            t, _, fn, arg = heappop(heap)
            fn(t, arg)
            n += 1
        self._processed += n
        self._now = float(t_ms)

    def set_replicas(
        self,
        server: str,
        n: int,
        at_ms: float | None = None,
        *,
        profile: Profile | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Scale ``server`` to ``n`` replicas at ``at_ms`` (default: now; not in the past).

        ``n`` counts replicas of the (new) configuration. A ``profile`` or ``batch_size``
        different from the current ones is a rolling update (see :mod:`inferno.emulator.server`);
        ``batch_size`` defaults to the current batch size, also with a new profile.
        """
        srv = self._server(server)
        if n < 0:
            raise ValueError(f"replicas must be ≥ 0, got {n}")
        at = self._now if at_ms is None else float(at_ms)
        if not at >= self._now:
            raise ValueError(f"cannot scale at {at} ms: the simulation is at {self._now} ms")
        if at == self._now:
            srv.set_replicas(n, at, profile, batch_size)
            return

        def apply(t: float, _: int) -> None:
            srv.set_replicas(n, t, profile, batch_size)

        self._events.push(at, apply, 0)

    # --- observation ----------------------------------------------------------------------------

    def window(self, server: str, t0_ms: float, t1_ms: float) -> Window:
        """What ``server`` did during [t0, t1); t1 must not be after :attr:`now`."""
        if not 0.0 <= t0_ms < t1_ms <= self._now:
            raise ValueError(
                f"window [{t0_ms}, {t1_ms}) must satisfy 0 ≤ t0 < t1 ≤ now = {self._now}"
            )
        srv = self._server(server)
        ready, provisioned = srv.replica_ms(t0_ms, t1_ms, self._now)
        return summarize(
            server,
            srv.rec,
            t0_ms,
            t1_ms,
            self._now,
            busy_ms=srv.busy_ms(t0_ms, t1_ms, self._now),
            ready_ms=ready,
            replica_ms=provisioned,
        )

    def totals(self, server: str | None = None) -> Totals:
        """Counts since the start, for one server or all."""
        names = self.servers if server is None else (server,)
        arrivals = completed = rejected = 0
        for name in names:
            srv = self._server(name)
            arrivals += srv.rec.n_arrived
            completed += srv.completed
            rejected += srv.rejected
        return Totals(arrivals, completed, rejected, arrivals - completed - rejected)

    def records(self, server: str) -> RequestRecords:
        """Every arrived request of ``server`` (copies), in arrival order."""
        return RequestRecords.of(self._server(server).rec)

    def state(self, server: str) -> ServerState:
        """The server now: replicas by state, requests held, waiting and in service."""
        return self._server(server).state(self._now)

    def replicas(self, server: str) -> list[ReplicaInfo]:
        """Every replica the server has had, by id."""
        return self._server(server).infos()

    def set_slowdown(self, server: str, factor: float) -> None:
        """Multiply ``server``'s batch (and LLM iteration) times by ``factor`` ≥ 1 from now on:
        the interference of co-runners on a shared MPS GPU (GPU-let's model; 1 = alone). Batches
        already running keep their time."""
        if not (math.isfinite(factor) and factor >= 1.0):
            raise ValueError(f"a slowdown is a finite factor ≥ 1, not {factor!r}")
        self._server(server).slowdown = float(factor)

    def slowdown(self, server: str) -> float:
        """The factor on ``server``'s batch times (1: not slowed by co-runners)."""
        return self._server(server).slowdown

    def replica_count(self, server: str) -> int:
        """Replicas of the current configuration, starting or ready (what was last asked)."""
        return len(self._server(server).active)

    def rate_path(self, server: str, until_ms: float) -> Trace:
        """The rate function ``server``'s arrivals follow over [0, ``until_ms``): for a bursts
        trace the path its modulating chain takes in this simulation, else the trace itself
        (:func:`~inferno.emulator.server.rate_path`). Drawn afresh: the simulation is not
        touched."""
        return rate_path(self._server(server).spec.trace, self._seed, server, until_ms)

    def offered_rate(self, server: str, t0_ms: float, t1_ms: float) -> float:
        """The trace's claimed mean rate over [t0, t1), requests per minute."""
        rate = self._server(server).spec.trace.mean_rate(t0_ms, t1_ms)
        return rate * MS_PER_MIN if math.isfinite(rate) else rate
