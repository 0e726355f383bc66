"""The exception tree of Inferno.

Every error a user can cause derives from :class:`InfernoError`; catching that one class is enough
for a caller that only wants to report and stop. Infeasible or unallocatable servers are *not*
errors: they are result statuses (see :mod:`inferno.solver`).

The whole tree, with what raises each class (``tests/test_errors.py`` checks it against the
classes in the package: a new exception is documented here or that test fails)::

    InfernoError               the base; the CLI exits 1 on it (2 on an InputError)
    ├── InputError             inferno.data, simulate, emulator.traces, cli: bad file or argument
    │   └── DataError          inferno.data: well-formed input that is inconsistent
    ├── SettingsError          inferno.settings, prom.load: an environment variable's bad value
    ├── InventoryError         inferno.cluster.inventory: unusable Deployment labels/annotations
    ├── ClusterError           inferno.k8s, simulate.cluster: a Kubernetes API call failed
    ├── PhaseError             inferno.services.phases, control.cycle: a cycle's phase call failed
    ├── StaticDataError        inferno.control.optimizer: the static data (ConfigMap) is unusable
    ├── Busy                   inferno.control.loop: a cycle is already running
    ├── NotLeader              inferno.control.loop: another instance holds the leader Lease
    ├── PrometheusError        inferno.prom: Prometheus could not answer a query
    │   ├── PrometheusUnavailable  no connection, a timeout or an HTTP 5xx
    │   ├── PrometheusQueryError   HTTP 4xx, an error status or an answer that is not its JSON
    │   └── NoData                 the query returned no series (or only stale ones)
    ├── TritonError            inferno.triton: Triton could not do what was asked
    │   ├── TritonUnavailable      no connection, a timeout or an unavailable server
    │   ├── TritonModelError       an unknown or unready model, or unusable metadata
    │   └── TritonRequestError     the server refused a request (profiling.measure too)
    ├── StatisticsError        inferno.triton.stats: a statistics answer off the protocol
    └── FitError               inferno.profiling.fit: measurements that cannot fit a profile
"""

from __future__ import annotations

__all__ = ["DataError", "InfernoError", "InputError"]


class InfernoError(Exception):
    """Base class of every error raised on purpose by Inferno."""


class InputError(InfernoError):
    """Bad input: a file that cannot be read, malformed JSON, or a value that fails validation.

    ``source`` names the file (or other origin), ``path`` the JSON path inside it
    (``$.models[3].alpha``), and ``problem`` says what is wrong, in words a user can act on.
    """

    def __init__(self, problem: str, *, source: str | None = None, path: str | None = None) -> None:
        self.problem = problem
        self.source = source
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.path) if part)
        return f"{where}: {self.problem}" if where else self.problem


class DataError(InputError):
    """Input that is well-formed but inconsistent (an unknown model, a duplicate name...)."""
