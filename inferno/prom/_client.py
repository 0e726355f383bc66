"""The one module that talks HTTP to Prometheus: instant queries (``GET /api/v1/query``).

Errors are typed, so a caller can tell "Prometheus is not there" from "the query is wrong" from
"there is nothing to measure":

- :class:`PrometheusUnavailable`: no connection, a timeout, or an HTTP 5xx answer.
- :class:`PrometheusQueryError`: an HTTP 4xx answer (a bad query, missing or wrong credentials),
  a body with ``"status": "error"`` (Prometheus' ``errorType`` and ``error`` are kept), or an
  answer that is not Prometheus' JSON.
- :class:`NoData`: the query ran but returned no series (or only stale ones, below).

Values are parsed as Prometheus writes them: ``"NaN"``, ``"+Inf"`` and ``"-Inf"`` become the
float values; judging them is the caller's business. Every query is evaluated at an explicit
``time``; an instant-vector sample carries that evaluation time, so a sample much older than the
time asked for (a stale answer from a caching proxy in front of Prometheus) is dropped.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from ..errors import InfernoError

__all__ = [
    "NoData",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusUnavailable",
    "Sample",
]

logger = logging.getLogger(__name__)

QUERY_PATH = "/api/v1/query"


class PrometheusError(InfernoError):
    """Prometheus could not answer a query. ``query`` is the PromQL (when there was one)."""

    def __init__(self, message: str, *, query: str = "") -> None:
        self.query = query
        super().__init__(message)


class PrometheusUnavailable(PrometheusError):
    """No connection, a timeout or an HTTP 5xx: Prometheus is down or overloaded."""

    def __init__(self, message: str, *, query: str = "", status: int | None = None) -> None:
        self.status = status
        super().__init__(message, query=query)


class PrometheusQueryError(PrometheusError):
    """Prometheus refused the query: HTTP 4xx, or ``"status": "error"`` (``error_type`` and
    ``error`` are Prometheus' ``errorType`` and ``error``), or an answer that is not its JSON."""

    def __init__(
        self,
        message: str,
        *,
        query: str = "",
        status: int | None = None,
        error_type: str = "",
        error: str = "",
    ) -> None:
        self.status = status
        self.error_type = error_type
        self.error = error
        super().__init__(message, query=query)


class NoData(PrometheusError):
    """The query returned no series (a missing metric, no matching pods, or only stale samples)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant query's answer: its labels, evaluation time and value."""

    labels: Mapping[str, str] = field(default_factory=dict)
    timestamp: float = 0.0
    value: float = math.nan


class PrometheusClient:
    """Instant queries against one Prometheus (or a compatible API: Thanos, Mimir...).

    ``base_url`` is where ``/api/v1/query`` lives below (a path prefix is kept). ``token`` is
    sent as ``Authorization: Bearer``; ``token_file`` is read again for every query (projected
    service-account tokens rotate). ``ca_file`` is a PEM bundle to verify the server's
    certificate (default: the system's). ``max_sample_age`` is how much older than the time
    asked for a sample may be before it is dropped as stale. ``transport`` replaces the network
    (tests); ``clock`` gives the evaluation time (default: now).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        token_file: str | None = None,
        ca_file: str | None = None,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        max_sample_age: float = 60.0,
    ) -> None:
        if token and token_file:
            raise PrometheusError("give a token or a token file, not both")
        self.base_url = base_url.rstrip("/")
        self._token = token or None
        self._token_file = token_file or None
        self._clock = clock
        self._max_age = max_sample_age
        verify: ssl.SSLContext | bool = True
        if ca_file:
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise PrometheusError(f"cannot use the CA file {ca_file}: {exc}") from None
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            verify=verify,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def now(self) -> float:
        """The clock's time: what a query is evaluated at unless told otherwise."""
        return self._clock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        token = self._token
        if self._token_file is not None:
            try:
                token = Path(self._token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise PrometheusError(
                    f"cannot read the token file {self._token_file}: {exc}"
                ) from None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def query(self, promql: str, *, at: float | None = None) -> list[Sample]:
        """Evaluate ``promql`` at ``at`` (default: the clock's now); one :class:`Sample` per
        series. Raises :class:`NoData` when there is none (after dropping stale samples)."""
        when = self._clock() if at is None else at
        params = {"query": promql, "time": _time_param(when)}
        try:
            response = self._http.get(QUERY_PATH, params=params, headers=self._headers())
        except httpx.TimeoutException as exc:
            raise PrometheusUnavailable(
                f"Prometheus at {self.base_url} did not answer in time ({type(exc).__name__})",
                query=promql,
            ) from None
        except httpx.TransportError as exc:
            raise PrometheusUnavailable(
                f"cannot reach Prometheus at {self.base_url}: {type(exc).__name__}: {exc}",
                query=promql,
            ) from None
        body = _json(response)
        if response.status_code >= 500:
            raise PrometheusUnavailable(
                f"Prometheus at {self.base_url}: HTTP {response.status_code}{_reason(body)}",
                query=promql,
                status=response.status_code,
            )
        if response.status_code >= 300 or not isinstance(body, Mapping):
            raise _refused(self.base_url, response, body, promql)
        if body.get("status") != "success":
            raise _refused(self.base_url, response, body, promql)
        for warning in body.get("warnings") or []:
            logger.warning("Prometheus warns about %r: %s", promql, warning)
        samples = _samples(body.get("data"), promql)
        fresh = [s for s in samples if s.timestamp >= when - self._max_age]
        if len(fresh) < len(samples):
            logger.warning(
                "Prometheus answered %r with %d stale sample(s) (older than %gs): ignored",
                promql,
                len(samples) - len(fresh),
                self._max_age,
            )
        if not fresh:
            raise NoData(f"no series for {promql}", query=promql)
        return fresh


def _time_param(when: float) -> str:
    """Seconds since the epoch, at millisecond resolution (what Prometheus keeps)."""
    return f"{when:.3f}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _reason(body: Any) -> str:
    if isinstance(body, Mapping) and body.get("error"):
        kind = body.get("errorType")
        return f": {kind}: {body['error']}" if kind else f": {body['error']}"
    return ""


def _refused(base_url: str, response: httpx.Response, body: Any, promql: str) -> Exception:
    status = response.status_code
    if not isinstance(body, Mapping) or "status" not in body:
        return PrometheusQueryError(
            f"{base_url}{QUERY_PATH}: HTTP {status}: not a Prometheus API answer "
            "(check PROMETHEUS_URL and the credentials)",
            query=promql,
            status=status,
        )
    error_type = str(body.get("errorType") or "")
    error = str(body.get("error") or "")
    return PrometheusQueryError(
        f"Prometheus refused the query: HTTP {status}{_reason(body)} (query: {promql})",
        query=promql,
        status=status,
        error_type=error_type,
        error=error,
    )


def _number(raw: Any, promql: str) -> tuple[float, float]:
    """A ``[timestamp, "value"]`` pair; Prometheus writes NaN and infinities as text."""
    try:
        ts, value = raw
        return float(ts), float(value)
    except (TypeError, ValueError):
        raise PrometheusQueryError(
            f"malformed sample {raw!r} in the answer to {promql}", query=promql
        ) from None


def _samples(data: Any, promql: str) -> list[Sample]:
    if not isinstance(data, Mapping):
        raise PrometheusQueryError(f"no 'data' in the answer to {promql}", query=promql)
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        ts, value = _number(result, promql)
        return [Sample({}, ts, value)]
    if kind != "vector" or not isinstance(result, list):
        raise PrometheusQueryError(
            f"expected an instant vector, got {kind!r}, in the answer to {promql}", query=promql
        )
    out: list[Sample] = []
    for item in result:
        if not isinstance(item, Mapping):
            raise PrometheusQueryError(f"malformed series in the answer to {promql}", query=promql)
        labels = item.get("metric") or {}
        ts, value = _number(item.get("value"), promql)
        out.append(Sample({str(k): str(v) for k, v in labels.items()}, ts, value))
    return out
