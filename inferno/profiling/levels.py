"""One measured level of a profile: what the client saw, what the server executed and, with
``--pid``, the server process's resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .resources import ResourceUse

__all__ = ["Level"]


@dataclass(frozen=True)
class Level:
    """One (batch, concurrency) level: what the client saw and what the server executed."""

    batch: int  # items per request
    concurrency: int  # closed-loop workers; 0: open-loop Poisson arrivals
    requests: int
    seconds: float
    client_mean_ms: float
    client_p95_ms: float
    executions: dict[int, tuple[int, float]] = field(default_factory=dict)  # b → (count, mean ms)
    resources: ResourceUse | None = None  # the server process's use, with --pid

    @property
    def throughput(self) -> float:
        """Items per second."""
        return self.requests * self.batch / self.seconds if self.seconds > 0 else 0.0

    @property
    def request_rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        out = {
            "batch": self.batch,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "seconds": self.seconds,
            "clientMeanMs": self.client_mean_ms,
            "clientP95Ms": self.client_p95_ms,
            "itemsPerSecond": self.throughput,
            "executions": {
                str(b): {"count": c, "meanMs": m} for b, (c, m) in self.executions.items()
            },
        }
        if self.resources is not None:
            out["resources"] = self.resources.to_json()
        return out
