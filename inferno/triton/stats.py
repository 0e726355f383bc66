"""Triton's per-model statistics (``GET /v2/models/<m>/stats``), parsed and differenced (pure).

The counters are cumulative since the server started. A measurement takes two snapshots and
uses :meth:`ModelStatistics.minus`. Times are nanoseconds in Triton and milliseconds here.

Semantics that matter:

- ``success``/``queue``/``compute_*`` in ``inference_stats`` are summed **per request**. Every
  request of a batch of b adds the whole batch's compute time.
- ``batch_stats`` has one row per batch size the model executed, with ``count`` = executions of
  that size and ``ns`` = their total time. This is what a profile is fitted on: executions of b
  requests took ``compute_infer_ms(b)`` on average.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InfernoError
from ..units import NS_PER_MS

__all__ = ["BatchStat", "ModelStatistics", "StatisticsError", "parse_statistics"]


class StatisticsError(InfernoError):
    """Triton's statistics answer is not what the protocol says."""


@dataclass(frozen=True, slots=True)
class BatchStat:
    """Executions of one batch size: how many, and their total compute times (ns)."""

    batch_size: int
    count: int
    compute_input_ns: int
    compute_infer_ns: int
    compute_output_ns: int

    @property
    def compute_ns(self) -> int:
        """Input + infer + output: what one execution occupies the model instance for."""
        return self.compute_input_ns + self.compute_infer_ns + self.compute_output_ns

    def mean_ms(self) -> float:
        """Mean time of one execution of this size, ms (input + infer + output)."""
        return self.compute_ns / self.count / NS_PER_MS if self.count else float("nan")


@dataclass(frozen=True, slots=True)
class ModelStatistics:
    """One model's counters at one moment (or the difference of two snapshots)."""

    model: str
    success: int = 0
    failure: int = 0
    inference_count: int = 0
    execution_count: int = 0
    queue_ns: int = 0
    compute_ns: int = 0  # input + infer + output, summed per request
    batches: Mapping[int, BatchStat] = field(default_factory=dict)

    def minus(self, earlier: ModelStatistics) -> ModelStatistics:
        """What happened between ``earlier`` and this snapshot."""
        batches = {}
        for b, now in self.batches.items():
            was = earlier.batches.get(b)
            if was is None:
                batches[b] = now
                continue
            diff = BatchStat(
                b,
                now.count - was.count,
                now.compute_input_ns - was.compute_input_ns,
                now.compute_infer_ns - was.compute_infer_ns,
                now.compute_output_ns - was.compute_output_ns,
            )
            if diff.count > 0:
                batches[b] = diff
        return ModelStatistics(
            self.model,
            self.success - earlier.success,
            self.failure - earlier.failure,
            self.inference_count - earlier.inference_count,
            self.execution_count - earlier.execution_count,
            self.queue_ns - earlier.queue_ns,
            self.compute_ns - earlier.compute_ns,
            batches,
        )

    @property
    def avg_batch(self) -> float:
        """Inferences per execution."""
        return self.inference_count / self.execution_count if self.execution_count else 0.0

    @property
    def queue_ms(self) -> float:
        """Mean queueing time per successful request, ms."""
        return self.queue_ns / self.success / NS_PER_MS if self.success else float("nan")

    @property
    def compute_ms(self) -> float:
        """Mean compute time per successful request, ms (a batch's time, request-weighted)."""
        return self.compute_ns / self.success / NS_PER_MS if self.success else float("nan")


def _int(obj: Mapping[str, Any], *keys: str) -> int:
    """A nested counter; gRPC-as-JSON writes 64-bit integers as strings; absent is 0."""
    node: Any = obj
    for k in keys:
        if not isinstance(node, Mapping) or k not in node:
            return 0
        node = node[k]
    try:
        return int(node)
    except (TypeError, ValueError):
        raise StatisticsError(f"{'.'.join(keys)}: expected an integer, got {node!r}") from None


def parse_statistics(body: Mapping[str, Any], model: str, *, source: str = "") -> ModelStatistics:
    """The statistics of ``model`` (all its versions summed) in a ``/stats`` answer."""
    rows = body.get("model_stats")
    where = f"statistics from {source}" if source else "statistics"
    if not isinstance(rows, list):
        raise StatisticsError(f"{where}: no 'model_stats' list")
    mine = [r for r in rows if isinstance(r, Mapping) and r.get("name") == model]
    if not mine:
        raise StatisticsError(f"{where}: no entry for model {model!r}")
    total = ModelStatistics(model)
    for row in mine:
        batches = dict(total.batches)
        for b in row.get("batch_stats") or []:
            size = _int(b, "batch_size")
            stat = BatchStat(
                size,
                _int(b, "compute_infer", "count"),
                _int(b, "compute_input", "ns"),
                _int(b, "compute_infer", "ns"),
                _int(b, "compute_output", "ns"),
            )
            if size in batches:
                old = batches[size]
                stat = BatchStat(
                    size,
                    old.count + stat.count,
                    old.compute_input_ns + stat.compute_input_ns,
                    old.compute_infer_ns + stat.compute_infer_ns,
                    old.compute_output_ns + stat.compute_output_ns,
                )
            batches[size] = stat
        inf = "inference_stats"
        total = ModelStatistics(
            model,
            total.success + _int(row, inf, "success", "count"),
            total.failure + _int(row, inf, "fail", "count"),
            total.inference_count + _int(row, "inference_count"),
            total.execution_count + _int(row, "execution_count"),
            total.queue_ns + _int(row, inf, "queue", "ns"),
            total.compute_ns
            + _int(row, inf, "compute_input", "ns")
            + _int(row, inf, "compute_infer", "ns")
            + _int(row, inf, "compute_output", "ns"),
            batches,
        )
    return total
