"""Read the single-server analyzer's problem file (queue-analysis ``problem-data.json``).

``{"RPS", "maxBatchSize", "AvgInputTokens", "AvgOutputTokens", "alpha", "beta", "gamma",
"maxQueueSize", "targetTTFT", "targetITL"}`` as in the Go ``ProblemData`` (keys match
case-insensitively), plus this project's optional ``delta`` (G1), ``kind`` and ``maxNumTokens``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..model.profiles import DEFAULT_MAX_NUM_TOKENS, Kind
from ._json import Node, read_json
from .limits import (
    MAX_BATCH_SIZE,
    MAX_PROFILE_PARAMETER,
    MAX_QUEUE_SIZE,
    MAX_RPS,
    MAX_TIME_MS,
    MAX_TOKENS,
    MAX_TRITON_BATCH_SIZE,
    MIN_TIME_MS,
    MIN_TOKENS,
)
from .system_files import parse_kind

__all__ = ["AnalyzerProblem", "load_analyzer_problem"]


@dataclass(frozen=True, slots=True)
class AnalyzerProblem:
    """One server to analyze: rate (requests/s), request shape, profile parameters and targets (ms).

    ``max_queue_size`` None = the model's default queue; a target None = no target.
    """

    rps: float
    max_batch_size: int
    in_tokens: float
    out_tokens: float
    alpha: float
    beta: float
    gamma: float
    delta: float = 0.0
    max_queue_size: int | None = None
    target_ttft: float | None = None
    target_itl: float | None = None
    kind: Kind = Kind.G2
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS


def load_analyzer_problem(path: str | Path) -> AnalyzerProblem:
    """Read and check an analyzer problem file (bounds: :mod:`inferno.data.limits`)."""
    node = read_json(Path(path), str(path)).as_object()
    kind_node = node.find("kind")
    kind = Kind.G2 if kind_node is None else parse_kind(kind_node)
    alpha, beta = _param(node, "alpha"), _param(node, "beta")
    if alpha + beta <= 0:
        raise node.error("alpha + beta must be > 0 (a batch would take no time)")
    if kind is Kind.BATCH:  # request/response: tokens are optional and unused
        out_tokens = node.number(
            "AvgOutputTokens", 0.0, minimum=0, maximum=MAX_TOKENS, least_positive=MIN_TOKENS
        )
    else:
        out_tokens = node.number("AvgOutputTokens", minimum=1, maximum=MAX_TOKENS)
    if kind in (Kind.G1, Kind.G2, Kind.G3):
        gamma = _param(node, "gamma")
    else:
        gamma = node.number("gamma", 0.0, minimum=0, maximum=MAX_PROFILE_PARAMETER)
    # the analyzer's batch kind is Triton's batching (the bulk model)
    max_batch = MAX_TRITON_BATCH_SIZE if kind is Kind.BATCH else MAX_BATCH_SIZE
    return AnalyzerProblem(
        rps=node.number("RPS", minimum=0, maximum=MAX_RPS),
        max_batch_size=node.integer("maxBatchSize", minimum=1, maximum=max_batch),
        in_tokens=node.number(
            "AvgInputTokens", 0.0, minimum=0, maximum=MAX_TOKENS, least_positive=MIN_TOKENS
        ),
        out_tokens=out_tokens,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        delta=_param(node, "delta") if kind is Kind.G1 else 0.0,
        max_queue_size=node.integer("maxQueueSize", None, minimum=0, maximum=MAX_QUEUE_SIZE),
        target_ttft=_target(node, "targetTTFT"),
        target_itl=_target(node, "targetITL"),
        kind=kind,
        max_num_tokens=node.integer(
            "maxNumTokens", DEFAULT_MAX_NUM_TOKENS, minimum=1, maximum=int(MAX_TOKENS)
        ),
    )


def _param(node: Node, key: str) -> float:
    """A required profile parameter (alpha, beta, gamma, delta)."""
    return node.number(key, minimum=0, maximum=MAX_PROFILE_PARAMETER)


def _target(node: Node, key: str) -> float | None:
    """A target in ms; 0 (or absent) means no target, as in Go."""
    return (
        node.number(key, None, minimum=0, maximum=MAX_TIME_MS, least_positive=MIN_TIME_MS) or None
    )
