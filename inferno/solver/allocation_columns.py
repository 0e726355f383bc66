"""A solution's allocations held as columns: :class:`AllocationColumns`.

A 10,000-server solve answered by the optimizer service never needs an
:class:`~.result.Allocation` object per server: its decisions, its solution JSON and its answer
are written from the columns. The columns are still a ``Mapping[str, Allocation]`` for every
other reader (the command line, explain, percentiles, simulate): an allocation is built the
first time it is asked for, from the same values it would have been built from.

Rows the solver builds differently — a mixed (heterogeneous) allocation, or one granted fewer
replicas than required, whose metrics are evaluated again at the granted count — are held as
built objects (:attr:`AllocationColumns.built`); their columns hold the same values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType

from .result import Allocation, Part, ServerStatus
from .serving_config import ServingDecision

__all__ = ["AllocationColumns", "is_columns"]

logger = logging.getLogger(__name__)


class AllocationColumns(Mapping[str, Allocation]):
    """One row per allocated server, in the solver's order; ``metrics[name][i]``: row ``i``'s
    metric ``name`` (the keys of every row's metrics, in this order)."""

    __slots__ = (
        "_cache",
        "_index",
        "accelerator",
        "batch_policy",
        "bound",
        "built",
        "cost",
        "demand",
        "max_batch",
        "max_batch_memory",
        "max_rate",
        "metrics",
        "note",
        "partial",
        "rate_per_replica",
        "replicas",
        "required",
        "server",
        "serving",
    )

    def __init__(
        self,
        *,
        server: list[str],
        accelerator: list[str],
        replicas: list[int],
        max_batch: list[int],
        cost: list[float],
        partial: list[bool],
        demand: list[float],
        max_rate: list[float],
        bound: list[str],
        required: list[int],
        metrics: dict[str, list[float]],
        max_batch_memory: list[int],
        batch_policy: str,
        rate_per_replica: list[float],
        note: Sequence[str],
        serving: Sequence[ServingDecision | None],
    ) -> None:
        self.server = server
        self.accelerator = accelerator
        self.replicas = replicas
        self.max_batch = max_batch
        self.cost = cost
        self.partial = partial
        self.demand = demand
        self.max_rate = max_rate
        self.bound = bound
        self.required = required
        self.metrics = metrics
        self.max_batch_memory = max_batch_memory
        self.batch_policy = batch_policy
        self.rate_per_replica = rate_per_replica
        self.note = note
        self.serving = serving
        #: rows built apart (mixed, or metrics at a partial grant), by row
        self.built: dict[int, Allocation] = {}
        self._index = {name: i for i, name in enumerate(server)}
        self._cache: dict[int, Allocation] = {}

    def __len__(self) -> int:
        return len(self.server)

    def __iter__(self) -> Iterator[str]:
        return iter(self.server)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> Allocation:
        return self.row(self._index[name])

    def __repr__(self) -> str:
        return f"AllocationColumns({len(self.server)} allocations)"

    def position(self, name: str) -> int:
        """The row of server ``name`` (KeyError if it has none)."""
        return self._index[name]

    def row(self, i: int) -> Allocation:
        """Row ``i`` as an :class:`~.result.Allocation` (built once)."""
        found = self._cache.get(i)
        if found is not None:
            return found
        accelerator, replicas, max_batch, cost = (
            self.accelerator[i],
            self.replicas[i],
            self.max_batch[i],
            self.cost[i],
        )
        made = Allocation(
            server=self.server[i],
            accelerator=accelerator,
            replicas=replicas,
            max_batch=max_batch,
            cost=cost,
            status=ServerStatus.PARTIAL if self.partial[i] else ServerStatus.ALLOCATED,
            demand=self.demand[i],
            max_rate_per_replica=self.max_rate[i],
            bound=self.bound[i],
            required_replicas=self.required[i],
            metrics=MappingProxyType({k: v[i] for k, v in self.metrics.items()}),
            max_batch_memory=self.max_batch_memory[i],
            batch_policy=self.batch_policy,
            parts=(Part(accelerator, replicas, max_batch, cost, self.rate_per_replica[i]),),
            note=self.note[i],
            serving=self.serving[i],
        )
        self._cache[i] = made
        return made

    def set_built(self, i: int, allocation: Allocation) -> None:
        """Row ``i`` is ``allocation`` (built apart); its columns take its values."""
        self.built[i] = self._cache[i] = allocation
        self.replicas[i] = allocation.replicas
        self.cost[i] = allocation.cost
        self.partial[i] = allocation.status is ServerStatus.PARTIAL
        self.required[i] = allocation.required_replicas

    def accelerators(self) -> set[str]:
        """Every accelerator a row uses (a mixed row's parts' included)."""
        used = set(self.accelerator)
        for a in self.built.values():
            used.update(p.accelerator for p in a.parts)
        return used


def is_columns(allocations: Mapping[str, Allocation]) -> bool:
    """Whether ``allocations`` are held as :class:`AllocationColumns`."""
    return type(allocations) is AllocationColumns
