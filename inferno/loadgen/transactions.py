"""Siege's summary of a load run (pure): transactions, availability, response time, transaction
rate, throughput and concurrency, over the recorded (start, end, ok) samples.

The definitions are siege's (``src/data.c`` of JoeDog/siege, and its manual's "Transactions",
"Availability", ... entries), with one deliberate difference: siege counts an HTTP 4xx/5xx answer as
a transaction and only socket failures as failed; an inference request that Triton refuses has
served nothing, so here *every* error is a failed transaction and the transactions are the
successful ones.

- transactions: requests answered without error (= successful transactions);
- availability: transactions / (transactions + failed) × 100;
- elapsed time: the run's wall time, from its start to the last answer (given by the driver);
- response time: mean time from send to answer of the transactions (and its percentiles);
- transaction rate: transactions / elapsed time;
- data transferred and throughput: the request payload (input tensor bytes) of the transactions,
  and that per second, in MB (2^20 bytes, as siege) — siege counts the bytes it *received*;
- concurrency: the summed response time of the transactions / elapsed time, the mean number of
  requests in flight; it equals transaction rate × response time (Little's law);
- longest and shortest transaction: the largest and smallest response time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..units import MS_PER_S

__all__ = ["MB", "SIEGE_PERCENTILES", "TransactionStats", "transaction_stats"]

#: siege's megabyte
MB = 1024.0 * 1024.0
#: the percentiles of the response time reported beside siege's mean
SIEGE_PERCENTILES = (50.0, 90.0, 95.0, 99.0)


@dataclass(frozen=True)
class TransactionStats:
    """Siege's numbers for one set of samples; times in seconds, NaN when there is nothing to
    measure (no transaction), ``None`` when the payload size is unknown."""

    transactions: int
    failed: int
    elapsed_s: float
    response_time_s: float
    transaction_rate: float  # transactions per second
    concurrency: float
    longest_s: float
    shortest_s: float
    percentiles_s: dict[float, float] = field(default_factory=dict)
    data_mb: float | None = None
    throughput_mb_s: float | None = None

    @property
    def successful(self) -> int:
        return self.transactions

    @property
    def availability(self) -> float:
        """Percent of the attempted requests that were answered without error (NaN: none)."""
        attempts = self.transactions + self.failed
        return 100.0 * self.transactions / attempts if attempts else float("nan")

    def to_json(self) -> dict[str, Any]:
        def ms(x: float) -> float | None:
            return _finite(x * MS_PER_S)

        return {
            "transactions": self.transactions,
            "availability": _finite(self.availability),
            "elapsedS": self.elapsed_s,
            "dataTransferredMB": self.data_mb,
            "responseTimeMs": ms(self.response_time_s),
            "responseTimePercentilesMs": {f"p{q:g}": ms(v) for q, v in self.percentiles_s.items()},
            "transactionRate": self.transaction_rate,
            "throughputMBps": self.throughput_mb_s,
            "concurrency": self.concurrency,
            "successfulTransactions": self.successful,
            "failedTransactions": self.failed,
            "longestTransactionMs": ms(self.longest_s),
            "shortestTransactionMs": ms(self.shortest_s),
        }

    def lines(self) -> list[str]:
        """Siege's block, in siege's units (secs, trans/sec, MB), with more decimals: inference
        times are milliseconds and payloads kilobytes."""

        def num(x: float | None, fmt: str) -> str:
            return "n/a" if x is None or not math.isfinite(x) else format(x, fmt)

        def mb(x: float | None) -> str:
            return num(x, ".2f" if x is not None and x >= 1 else ".4f")

        unknown = " (payload size unknown)" if self.data_mb is None else ""
        rows = [
            ("Transactions", f"{self.transactions}", "hits"),
            ("Availability", num(self.availability, ".2f"), "%"),
            ("Elapsed time", num(self.elapsed_s, ".2f"), "secs"),
            ("Data transferred", mb(self.data_mb), "MB" + unknown),
            ("Response time", num(self.response_time_s, ".3f"), "secs"),
            *(
                (f"Response time p{q:g}", num(v, ".3f"), "secs")
                for q, v in self.percentiles_s.items()
                if q in (50.0, 95.0, 99.0)
            ),
            ("Transaction rate", num(self.transaction_rate, ".2f"), "trans/sec"),
            ("Throughput", mb(self.throughput_mb_s), "MB/sec" + unknown),
            ("Concurrency", num(self.concurrency, ".2f"), ""),
            ("Successful transactions", f"{self.successful}", ""),
            ("Failed transactions", f"{self.failed}", ""),
            ("Longest transaction", num(self.longest_s, ".3f"), "secs"),
            ("Shortest transaction", num(self.shortest_s, ".3f"), "secs"),
        ]
        width = max(len(k) for k, _, _ in rows) + 1
        digits = max(len(v) for _, v, _ in rows)
        return [f"{k + ':':<{width}} {v:>{digits}} {u}".rstrip() for k, v, u in rows]


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def transaction_stats(
    start: ArrayLike,
    end: ArrayLike,
    ok: ArrayLike,
    elapsed: float,
    *,
    payload: ArrayLike | None = None,
) -> TransactionStats:
    """Siege's numbers for requests sent at ``start`` and answered at ``end`` (seconds, any
    origin), ``ok`` when answered without error, over a run of ``elapsed`` seconds.
    ``payload``, per request, is its size in bytes (``None``, or any NaN: unknown, and so are the
    data transferred and the throughput). Only the successful samples' times are used: a failed
    one may have no ``end`` (NaN)."""
    t0 = np.asarray(start, dtype=np.float64)
    t1 = np.asarray(end, dtype=np.float64)
    good = np.asarray(ok, dtype=bool)
    if not t0.shape == t1.shape == good.shape or t0.ndim != 1:
        raise ValueError(
            f"start, end and ok must be 1-D and of one length, got {t0.shape}, {t1.shape}, "
            f"{good.shape}"
        )
    if not (math.isfinite(elapsed) and elapsed > 0):
        raise ValueError(f"the elapsed time must be a finite number > 0 s, got {elapsed!r}")
    times = t1[good] - t0[good]
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError("a successful sample needs finite start ≤ end")
    n = int(times.size)
    total = float(times.sum())
    nan = float("nan")
    data_mb = throughput = None
    if payload is not None:
        size = np.asarray(payload, dtype=np.float64)
        if size.shape != good.shape:
            raise ValueError(f"payload must have one size per sample, got shape {size.shape}")
        if not np.isnan(size).any():
            data_mb = float(size[good].sum()) / MB
            throughput = data_mb / elapsed
    return TransactionStats(
        transactions=n,
        failed=int(good.size - n),
        elapsed_s=float(elapsed),
        response_time_s=total / n if n else nan,
        transaction_rate=n / elapsed,
        concurrency=total / elapsed,
        longest_s=float(times.max()) if n else nan,
        shortest_s=float(times.min()) if n else nan,
        percentiles_s={q: float(np.percentile(times, q)) if n else nan for q in SIEGE_PERCENTILES},
        data_mb=data_mb,
        throughput_mb_s=throughput,
    )
