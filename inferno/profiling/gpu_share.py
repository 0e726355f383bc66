"""A model row's ``gpuShare`` from Triton's statistics (pure): the device-side share of a batch's
compute, the part MPS interference slows (:func:`inferno.partitions.interference.batch_factor`:
a co-located batch of τ ms takes τ·(s·α + 1 − s)).

Triton times every execution in three phases (the ``batch_stats`` rows of
``/v2/models/<m>/stats``, per batch size; :mod:`inferno.triton.stats`):

- ``compute_input``: preparing the input tensors for the backend (for a GPU model, the copies
  from host to device memory);
- ``compute_infer``: the backend's execute;
- ``compute_output``: handing the outputs back (device to host copies, the response tensors).

``gpuShare`` = infer / (input + infer + output), summed over the executions of every level the
fit used (so weighted by time, the larger batches counting more). It approximates the GPU part of
a batch: on a GPU backend "infer" is the kernels **plus** their launch and framework overheads on
the host (those are not slowed by a co-runner, so the share is an upper bound, on the safe side);
with a CPU or Python backend "infer" is all of the model's own work, and the share says how much
of the batch is that work rather than Triton's copies. Nsight Systems' GPU busy time over the
batch time is the finer measure. Without Triton's statistics (client timing) there is no split:
the row leaves ``gpuShare`` out and the solver slows the whole batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..triton import ModelStatistics
from ..units import NS_PER_MS

__all__ = ["ComputeSplit"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ComputeSplit:
    """Triton's compute time of a set of executions, by phase (ns), and how many executions."""

    input_ns: int = 0
    infer_ns: int = 0
    output_ns: int = 0
    executions: int = 0

    def plus(self, delta: ModelStatistics) -> ComputeSplit:
        """This split with the executions of ``delta`` (two snapshots' difference) added."""
        split = self
        for stat in delta.batches.values():
            if stat.count <= 0:
                continue
            split = ComputeSplit(
                split.input_ns + stat.compute_input_ns,
                split.infer_ns + stat.compute_infer_ns,
                split.output_ns + stat.compute_output_ns,
                split.executions + stat.count,
            )
        return split

    @property
    def total_ns(self) -> int:
        return self.input_ns + self.infer_ns + self.output_ns

    @property
    def share(self) -> float | None:
        """infer / (input + infer + output), in (0, 1]; None when Triton timed no compute (or
        no infer phase, or a counter went backwards: a server restarted between snapshots)."""
        parts = (self.input_ns, self.infer_ns, self.output_ns)
        if self.infer_ns <= 0 or min(parts) < 0:
            return None
        return self.infer_ns / self.total_ns

    def problem(self) -> str:
        """Why :attr:`share` is None (empty when it is not)."""
        if self.share is not None:
            return ""
        if self.executions <= 0:
            return "Triton's statistics recorded no executions"
        if min(self.input_ns, self.infer_ns, self.output_ns) < 0:
            return "a compute counter of Triton's statistics went backwards (a restart?)"
        return "Triton's statistics recorded no compute_infer time"

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.share,
            "executions": self.executions,
            "computeMs": {
                "input": self.input_ns / NS_PER_MS,
                "infer": self.infer_ns / NS_PER_MS,
                "output": self.output_ns / NS_PER_MS,
            },
        }
