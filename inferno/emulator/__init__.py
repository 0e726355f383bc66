"""A discrete-event emulator of inference servers: requests, not the birth-death chain.

Build a :class:`Simulation` from :class:`ServerSpec` s (a profile, a load :class:`Trace`, token
length distributions, replicas, router, start-up delay), run it with
:meth:`Simulation.run_until`, scale with :meth:`Simulation.set_replicas`, and read
:meth:`Simulation.window` (per-window metrics), :meth:`Simulation.totals` and
:meth:`Simulation.records` (per-request times). Times are ms; rates in the traces are requests
per minute. See :mod:`inferno.emulator.replica` for the serving model and its conventions.
"""

from .engine import Simulation
from .records import REJECT_NO_REPLICA, REJECT_QUEUE_FULL, RequestRecords, Totals, Window
from .replay import REPLAY_COLUMNS, Replay, read_replay
from .replica import ReplicaConfig, ReplicaState, Service
from .server import (
    ROUTERS,
    ReplicaInfo,
    Router,
    ServerSpec,
    ServerState,
    name_key,
    rate_path,
)
from .tokens import Empirical, Exponential, Fixed, Lengths, LogNormal
from .traces import Arrivals, ArrivalStream, Bursts, Diurnal, Poisson, Steps, Trace

__all__ = [
    "REJECT_NO_REPLICA",
    "REJECT_QUEUE_FULL",
    "REPLAY_COLUMNS",
    "ROUTERS",
    "ArrivalStream",
    "Arrivals",
    "Bursts",
    "Diurnal",
    "Empirical",
    "Exponential",
    "Fixed",
    "Lengths",
    "LogNormal",
    "Poisson",
    "Replay",
    "ReplicaConfig",
    "ReplicaInfo",
    "ReplicaState",
    "RequestRecords",
    "Router",
    "ServerSpec",
    "ServerState",
    "Service",
    "Simulation",
    "Steps",
    "Totals",
    "Trace",
    "Window",
    "name_key",
    "rate_path",
    "read_replay",
]
