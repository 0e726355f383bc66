"""Per-request records and their summaries over time windows.

Every request of a server gets one row in preallocated numpy columns (grown by doubling), indexed
by its request id (arrival order within the server): arrival, tokens, start of service, first
token, completion, replica and a rejection reason. Times are ms; NaN means "not (yet) happened".

Conventions (see :mod:`inferno.emulator.replica` for how each time is produced):

- ``start``: batch kind, the start of the batch it is in; LLM kinds, the start of the first
  iteration it takes part in (the iteration boundary at which it joins the running batch).
- ``first_token``: NaN for the batch kind. G0 and G1: the end of the request's first iteration
  (G1: its prefill iteration, which produces the first token). G2 and G3: the end of its first
  *decode* iteration, after its prefill — TTFT includes the first decode, as in the model.
- ``completion``: the end of the iteration producing its last token (batch kind: of its batch).
- ``replica``: the replica it was routed to (−1 when no replica was ready).
- ``reason``: 0 accepted, 1 rejected because the replica's queue was full, 2 rejected because
  the server had no ready replica.

TTFT = first_token − arrival; latency = completion − arrival; wait = start − arrival; ITL
(token-weighted, as a serving engine's inter-token histogram) = Σ(completion − first_token) /
Σ(output_tokens − 1) over requests with more than one output token.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..units import MS_PER_MIN

__all__ = [
    "REJECT_NO_REPLICA",
    "REJECT_QUEUE_FULL",
    "RecordStore",
    "RequestRecords",
    "Totals",
    "Window",
    "cumulative_counts",
]

logger = logging.getLogger(__name__)

F = NDArray[np.float64]
I32 = NDArray[np.int32]
I8 = NDArray[np.int8]
B = NDArray[np.bool_]

REJECT_QUEUE_FULL = 1
REJECT_NO_REPLICA = 2


class RecordStore:
    """The growable columns of one server's requests (internal to the emulator).

    Rows ``[0, n_arrived)`` are requests that have arrived; rows ``[n_arrived, n_generated)`` are
    drawn from the trace but still in the future. ``max_sojourn`` is the longest time any finished
    request spent in the system and ``open_from`` a row before which every request is finished:
    together they bound the rows a window query must scan.
    """

    __slots__ = (
        "arrival",
        "completion",
        "first_token",
        "input_tokens",
        "max_sojourn",
        "n_arrived",
        "n_generated",
        "open_from",
        "output_tokens",
        "reason",
        "replica",
        "start",
    )

    def __init__(self, capacity: int = 1024) -> None:
        cap = max(int(capacity), 16)
        self.arrival: F = np.full(cap, np.inf)
        self.input_tokens: I32 = np.zeros(cap, dtype=np.int32)
        self.output_tokens: I32 = np.zeros(cap, dtype=np.int32)
        self.start: F = np.full(cap, np.nan)
        self.first_token: F = np.full(cap, np.nan)
        self.completion: F = np.full(cap, np.nan)
        self.replica: I32 = np.full(cap, -1, dtype=np.int32)
        self.reason: I8 = np.zeros(cap, dtype=np.int8)
        self.n_arrived = 0
        self.n_generated = 0
        self.max_sojourn = 0.0
        self.open_from = 0

    def _grow(self, need: int) -> None:
        cap = self.arrival.size
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name, fill in (
            ("arrival", np.inf),
            ("input_tokens", 0),
            ("output_tokens", 0),
            ("start", np.nan),
            ("first_token", np.nan),
            ("completion", np.nan),
            ("replica", -1),
            ("reason", 0),
        ):
            old = getattr(self, name)
            arr = np.full(new, fill, dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)

    def add(
        self, times: F, input_tokens: NDArray[np.integer], output_tokens: NDArray[np.integer]
    ) -> None:
        """Append a window of future arrivals."""
        n = times.size
        lo = self.n_generated
        self._grow(lo + n)
        self.arrival[lo : lo + n] = times
        self.input_tokens[lo : lo + n] = input_tokens
        self.output_tokens[lo : lo + n] = output_tokens
        self.n_generated = lo + n

    def finished_before(self) -> int:
        """Advance and return ``open_from``: every row before it is completed or rejected."""
        lo, hi = self.open_from, self.n_arrived
        if lo < hi:
            done = np.isfinite(self.completion[lo:hi]) | (self.reason[lo:hi] != 0)
            k = int(np.argmin(done)) if not done.all() else hi - lo
            self.open_from = lo + k
        return self.open_from

    def rows_overlapping(self, t0: float, t1: float) -> slice:
        """Rows that may have been in the system during [t0, t1): arrival < t1 and not finished
        before t0."""
        n = self.n_arrived
        arr = self.arrival[:n]
        hi = int(np.searchsorted(arr, t1, side="left"))
        lo = int(np.searchsorted(arr, t0 - self.max_sojourn, side="left"))
        return slice(min(lo, self.finished_before(), hi), hi)


@dataclass(frozen=True, slots=True, eq=False)
class RequestRecords:
    """The arrived requests of one server, in arrival order (copies of the columns)."""

    arrival: F
    input_tokens: I32
    output_tokens: I32
    start: F
    first_token: F
    completion: F
    replica: I32
    reason: I8

    @classmethod
    def of(cls, store: RecordStore, rows: slice | None = None) -> RequestRecords:
        s = slice(0, store.n_arrived) if rows is None else rows
        return cls(
            store.arrival[s].copy(),
            store.input_tokens[s].copy(),
            store.output_tokens[s].copy(),
            store.start[s].copy(),
            store.first_token[s].copy(),
            store.completion[s].copy(),
            store.replica[s].copy(),
            store.reason[s].copy(),
        )

    def __len__(self) -> int:
        return int(self.arrival.size)

    @property
    def rejected(self) -> B:
        out: B = self.reason != 0
        return out

    @property
    def completed(self) -> B:
        out: B = np.isfinite(self.completion)
        return out

    @property
    def latency(self) -> F:
        """completion − arrival (NaN until completed)."""
        out: F = self.completion - self.arrival
        return out

    @property
    def wait(self) -> F:
        """start − arrival (NaN until started)."""
        out: F = self.start - self.arrival
        return out

    @property
    def ttft(self) -> F:
        """first_token − arrival (NaN for the batch kind and until the first token)."""
        out: F = self.first_token - self.arrival
        return out


@dataclass(frozen=True, slots=True)
class Totals:
    """Counts since the start: arrivals = completed + rejected + in_flight."""

    arrivals: int
    completed: int
    rejected: int
    in_flight: int


#: the bounds of the token histograms a window counts: vLLM's 1-2-5 buckets
#: (``vllm:request_prompt_tokens``, ``vllm:request_generation_tokens``), up to 10⁶ tokens
TOKEN_BUCKETS = tuple(float(m * 10**e) for e in range(7) for m in (1, 2, 5) if m * 10**e <= 10**6)


def cumulative_counts(values: NDArray[np.integer]) -> tuple[int, ...]:
    """Cumulative counts of ``values`` at :data:`TOKEN_BUCKETS`, then the total (+Inf)."""
    sorted_values = np.sort(values)
    counts = np.searchsorted(sorted_values, TOKEN_BUCKETS, side="right")
    return (*(int(c) for c in counts), int(values.size))


@dataclass(frozen=True, slots=True)
class Window:
    """What a server did during [t0, t1) (ms). NaN where there is nothing to average.

    Counts: requests that arrived (``arrivals``, ``rejections``: arrived in the window and were
    rejected) or completed (``completions``) in the window. Latency and ITL are over requests
    completed in the window, TTFT over requests whose first token came in the window, wait over
    requests that started in the window. ``in_flight``, ``queue`` (waiting, not yet started),
    ``busy`` (replicas serving at least one request), ``ready`` (replicas routed to: from ready
    until retired) and ``replicas`` (provisioned: from creation, start-up included, until gone
    after draining — what the accelerators are held for) are time averages over the window.
    """

    server: str
    t0: float
    t1: float
    arrivals: int
    completions: int
    rejections: int
    latency_mean: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    wait_mean: float
    wait_p95: float
    ttft_mean: float
    ttft_p50: float
    ttft_p95: float
    ttft_p99: float
    itl_mean: float
    input_tokens_mean: float
    output_tokens_mean: float
    in_flight: float
    queue: float
    busy: float
    ready: float
    replicas: float
    #: the prompt and generated tokens of the requests completed in the window, as a serving
    #: engine's histograms count them (cumulative counts at :data:`TOKEN_BUCKETS`, then +Inf)
    input_tokens_le: tuple[int, ...] = ()
    output_tokens_le: tuple[int, ...] = ()

    @property
    def arrival_rate_per_min(self) -> float:
        return self.arrivals / (self.t1 - self.t0) * MS_PER_MIN

    @property
    def throughput_per_min(self) -> float:
        return self.completions / (self.t1 - self.t0) * MS_PER_MIN


def _mean(x: F) -> float:
    return float(x.mean()) if x.size else math.nan


def _pcts(x: F, qs: tuple[float, ...]) -> list[float]:
    if not x.size:
        return [math.nan] * len(qs)
    return [float(v) for v in np.percentile(x, qs)]


def overlap_sum(begin: F, end: F, t0: float, t1: float) -> float:
    """Σ |[begin_i, end_i) ∩ [t0, t1)|."""
    if not begin.size:
        return 0.0
    return float(np.clip(np.minimum(end, t1) - np.maximum(begin, t0), 0.0, None).sum())


def summarize(
    server: str,
    store: RecordStore,
    t0: float,
    t1: float,
    now: float,
    busy_ms: float,
    ready_ms: float,
    replica_ms: float,
) -> Window:
    """The :class:`Window` of one server from its records (replica time integrals given)."""
    span = t1 - t0
    rows = store.rows_overlapping(t0, t1)
    arr = store.arrival[rows]
    start = store.start[rows]
    first = store.first_token[rows]
    done = store.completion[rows]
    reason = store.reason[rows]
    n_out = store.output_tokens[rows]
    arrived = (arr >= t0) & (arr < t1)
    finished = (done >= t0) & (done < t1)
    started = (start >= t0) & (start < t1)
    firsts = (first >= t0) & (first < t1)
    accepted = reason == 0
    latency = (done - arr)[finished]
    wait = (start - arr)[started]
    ttft = (first - arr)[firsts]
    multi = finished & (n_out > 1) & np.isfinite(first)
    tokens = float((n_out[multi] - 1).sum())
    itl = float((done - first)[multi].sum()) / tokens if tokens > 0 else math.nan
    end = np.where(np.isnan(done), now, done)[accepted]
    began = np.where(np.isnan(start), now, start)[accepted]
    in_flight = overlap_sum(arr[accepted], end, t0, t1) / span
    queue = overlap_sum(arr[accepted], began, t0, t1) / span
    lat = _pcts(latency, (50.0, 95.0, 99.0))
    tt = _pcts(ttft, (50.0, 95.0, 99.0))
    return Window(
        server=server,
        t0=t0,
        t1=t1,
        arrivals=int(arrived.sum()),
        completions=int(finished.sum()),
        rejections=int((arrived & ~accepted).sum()),
        latency_mean=_mean(latency),
        latency_p50=lat[0],
        latency_p95=lat[1],
        latency_p99=lat[2],
        wait_mean=_mean(wait),
        wait_p95=_pcts(wait, (95.0,))[0],
        ttft_mean=_mean(ttft),
        ttft_p50=tt[0],
        ttft_p95=tt[1],
        ttft_p99=tt[2],
        itl_mean=itl,
        input_tokens_mean=_mean(store.input_tokens[rows][arrived].astype(np.float64)),
        output_tokens_mean=_mean(n_out[arrived].astype(np.float64)),
        in_flight=in_flight,
        queue=queue,
        busy=busy_ms / span,
        ready=ready_ms / span,
        replicas=replica_ms / span,
        input_tokens_le=cumulative_counts(store.input_tokens[rows][finished]),
        output_tokens_le=cumulative_counts(n_out[finished]),
    )
