"""PromQL for one managed server: pure functions, no I/O (docs/metrics.md shows their output).

**Which series are the server's.** Prometheus' Kubernetes service discovery labels every series
with the ``namespace`` and ``pod`` it was scraped from; a Deployment's pods are named
``<deployment>-<ReplicaSet hash>-<pod hash>``, and Triton labels its metrics with the ``model``
they count. A server's series are therefore those with::

    namespace="<namespace>", pod=~"<deployment>-[a-z0-9]+-[a-z0-9]+", model="<Triton model>"

(PromQL regular expressions are anchored, so ``llama`` does not select the pods of ``llama-7b``.)

**Deleted pods.** Every quantity is a ``sum by (namespace, model)`` over the pods of a ``rate``,
``increase`` or ``delta`` over the window, never an instant value of a counter. A pod deleted
during the window (scaled down, rolled by an update) keeps its samples up to its last scrape;
``rate`` over a series that stopped does not extrapolate past its last sample by more than half
a scrape interval, so the pod contributes what it served while alive, and nothing afterwards;
its replacement contributes from its first scrape. The sum is the server's traffic over the
window whatever the pod churn. Residual error: the requests a deleted pod served after its last
scrape (at most one scrape interval's worth) are missed, and a pod's first interval after it
starts is under-counted by the same amount. Counter resets (a restarted container) are handled
by ``rate``/``increase``.

**Units.** Rates in requests per minute (Inferno's unit), times in milliseconds (Triton counts
microseconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..units import S_PER_MIN

__all__ = [
    "COMPUTE_DURATION",
    "EXEC_COUNT",
    "INFERENCE_COUNT",
    "PENDING",
    "QUEUE_DURATION",
    "REQUEST_FAILURE",
    "REQUEST_SUCCESS",
    "REQUEST_SUMMARY",
    "ServerQueries",
    "ServerSelector",
    "TokenMetrics",
    "duration",
    "offered_rpm",
    "server_queries",
]

# Triton's metrics (https://docs.nvidia.com/deeplearning/triton-inference-server/: Metrics)
REQUEST_SUCCESS = "nv_inference_request_success"  # counter, requests
REQUEST_FAILURE = "nv_inference_request_failure"  # counter, requests
INFERENCE_COUNT = "nv_inference_count"  # counter, inferences (batch items)
EXEC_COUNT = "nv_inference_exec_count"  # counter, model executions (batches)
QUEUE_DURATION = "nv_inference_queue_duration_us"  # counter, µs over successful requests
COMPUTE_DURATION = "nv_inference_compute_infer_duration_us"  # counter, µs over requests
PENDING = "nv_inference_pending_request_count"  # gauge, requests waiting for the backend
REQUEST_SUMMARY = "nv_inference_request_summary_us"  # summary (--metrics-config
# summary_latencies=true): end-to-end request latency quantiles, µs

#: the labels a server's series are grouped by
GROUP = "namespace, model"

_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")


@dataclass(frozen=True, slots=True)
class TokenMetrics:
    """The metric names tokens per request are read from (configurable: vLLM's by default).

    ``in_tokens`` and ``out_tokens`` are counters of prompt and generated tokens, ``requests``
    the counter of the requests they belong to. Triton's vLLM backend exports the first two but
    no request counter of its own: Triton's ``nv_inference_request_success`` counts the same
    requests. TensorRT-LLM: ``nv_llm_input_token_len_sum``, ``nv_llm_output_token_len_sum`` and
    ``nv_llm_input_token_len_count``.
    """

    in_tokens: str = "vllm:prompt_tokens_total"
    out_tokens: str = "vllm:generation_tokens_total"
    requests: str = REQUEST_SUCCESS
    #: a histogram of generated tokens per request (its ``_bucket`` series): the output
    #: lengths' CV and family (:mod:`inferno.prom.lengths`); TensorRT-LLM:
    #: ``nv_llm_output_token_len``
    out_histogram: str = "vllm:request_generation_tokens"
    #: the same of prompt tokens per request: the input lengths' CV and family; TensorRT-LLM:
    #: ``nv_llm_input_token_len``
    in_histogram: str = "vllm:request_prompt_tokens"


@dataclass(frozen=True, slots=True)
class ServerSelector:
    """Where a server's series are: its namespace, Deployment and Triton model name."""

    namespace: str
    deployment: str
    model: str

    def matchers(self) -> str:
        """The label matchers selecting the server's series (without braces)."""
        pods = _regex_literal(self.deployment) + "-[a-z0-9]+-[a-z0-9]+"
        return (
            f"namespace={_string(self.namespace)}, pod=~{_string(pods)}, "
            f"model={_string(self.model)}"
        )


@dataclass(frozen=True, slots=True)
class ServerQueries:
    """The PromQL read for one server over one window (each answers one series, or none)."""

    completions_rpm: str  # requests completed (success + failure) per minute
    pending_delta: str  # growth of the pending count over the window (requests, may be < 0)
    pending: str  # requests waiting now (the backlog the control policy drains)
    avg_batch: str  # inferences per model execution
    queue_ms: str  # mean queueing time per request, ms
    compute_ms: str  # mean compute (infer) time per request, ms
    latency_ms: str  # request latency quantiles, ms: one series per ``quantile`` label
    in_tokens: str  # mean prompt tokens per request
    out_tokens: str  # mean generated tokens per request
    out_buckets: str  # generated tokens per request: requests per ``le`` bucket (cumulative)
    in_buckets: str  # prompt tokens per request, the same

    def items(self) -> list[tuple[str, str]]:
        """(name, PromQL) pairs, in the order above."""
        return [(f.name, str(getattr(self, f.name))) for f in fields(self)]


def duration(seconds: float) -> str:
    """A PromQL range duration: whole seconds as ``60s``, otherwise milliseconds."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a window must be a positive number of seconds, not {seconds!r}")
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def server_queries(
    selector: ServerSelector, window: float, tokens: TokenMetrics | None = None
) -> ServerQueries:
    """The queries for ``selector``'s server over the last ``window`` seconds."""
    tokens = TokenMetrics() if tokens is None else tokens
    w = duration(window)
    sel = selector.matchers()

    def summed(fn: str, metric: str) -> str:
        return f"sum by ({GROUP}) ({fn}({metric}{{{sel}}}[{w}]))"

    def per_request(metric: str, requests: str = REQUEST_SUCCESS) -> str:
        return f"{summed('increase', metric)} / {summed('increase', requests)}"

    return ServerQueries(
        completions_rpm=(
            f"60 * ({summed('rate', REQUEST_SUCCESS)} + {summed('rate', REQUEST_FAILURE)})"
        ),
        pending_delta=summed("delta", PENDING),
        pending=f"sum by ({GROUP}) ({PENDING}{{{sel}}})",
        avg_batch=per_request(INFERENCE_COUNT, EXEC_COUNT),
        queue_ms=f"{per_request(QUEUE_DURATION)} / 1000",
        compute_ms=f"{per_request(COMPUTE_DURATION)} / 1000",
        latency_ms=f"max by ({GROUP}, quantile) ({REQUEST_SUMMARY}{{{sel}}}) / 1000",
        in_tokens=per_request(tokens.in_tokens, tokens.requests),
        out_tokens=per_request(tokens.out_tokens, tokens.requests),
        out_buckets=f"sum by ({GROUP}, le) (increase({tokens.out_histogram}_bucket{{{sel}}}[{w}]))",
        in_buckets=f"sum by ({GROUP}, le) (increase({tokens.in_histogram}_bucket{{{sel}}}[{w}]))",
    )


def offered_rpm(completions_rpm: float, pending_delta: float, window: float) -> float:
    """Offered load, requests per minute: what completed (successes and failures) plus what
    arrived and is still waiting. A pending count that shrank (a backlog being worked off) is
    not subtracted: the offered load is never taken below the completions."""
    return completions_rpm + S_PER_MIN * max(0.0, pending_delta) / window


def _string(value: str) -> str:
    """A PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _regex_literal(text: str) -> str:
    """``text`` matched literally in a (RE2) regular expression."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)
