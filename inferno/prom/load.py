"""The managed servers' load, measured in Prometheus (the live path's load source).

:class:`PrometheusLoadSource` runs :func:`~inferno.prom.queries.server_queries` for each managed
Deployment and turns the answers into a :class:`~inferno.system.Load` per server (requests per
minute, tokens per request) plus observations (batch size, queue and compute time, latency
quantiles) that say how the servers behave.

Rules:

- A server without series (no pod scraped, a wrong model name, no traffic ever) or whose
  request rate is NaN/Inf gets **no** load, never a zero one: it is named in ``problems``.
- NaN and infinite values (0/0 when nothing ran in the window) are no data.
- Prometheus down, or refusing a query, raises (:class:`~inferno.prom.PrometheusError`): a
  measurement is all or nothing. So does a measurement in which no server at all has data
  (:class:`~inferno.prom.NoData`): the caller keeps its last decision.
- Tokens per request that cannot be measured (no token metrics: not an LLM, or the backend's
  metrics are off) come from the Deployment's load labels when it has them, else 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..cluster.inventory import ManagedDeployment
from ..settings import Settings, SettingsError
from ..system import Load
from ._client import NoData, PrometheusClient, PrometheusError
from .lengths import MIN_REQUESTS, LengthFit, counted, fit_lengths
from .queries import (
    REQUEST_SUCCESS,
    ServerQueries,
    ServerSelector,
    TokenMetrics,
    duration,
    offered_rpm,
    server_queries,
)

__all__ = [
    "LoadMeasurement",
    "LoadSource",
    "PrometheusLoadSource",
    "ServerObservation",
    "selector_for",
    "source_from_settings",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerObservation:
    """What Prometheus said about one server over the window (None: no data)."""

    server: str
    namespace: str
    deployment: str
    model: str  # the Triton model name the series were selected by
    load: Load | None = None
    completions_rpm: float | None = None
    pending_delta: float | None = None
    pending: float | None = None  # requests waiting at the end of the window
    avg_batch: float | None = None
    queue_ms: float | None = None
    compute_ms: float | None = None
    latency_ms: Mapping[str, float] = field(default_factory=dict)  # quantile → ms
    in_tokens: float | None = None  # measured (None: not measured; the Load may use labels)
    out_tokens: float | None = None
    lengths: LengthFit | None = None  # the output lengths' CV and family (None: not measured)
    in_lengths: LengthFit | None = None  # the input lengths' (None: not measured)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "namespace": self.namespace,
            "deployment": self.deployment,
            "model": self.model,
            "load": None if self.load is None else self.load.to_json(),
            "completionsRpm": self.completions_rpm,
            "pendingDelta": self.pending_delta,
            "pending": self.pending,
            "avgBatch": self.avg_batch,
            "queueMs": self.queue_ms,
            "computeMs": self.compute_ms,
            "latencyMs": dict(self.latency_ms),
            "inTokens": self.in_tokens,
            "outTokens": self.out_tokens,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class LoadMeasurement:
    """Loads by server name (only the servers measured), every server's observations, and
    the servers that could not be measured, with why."""

    window: float
    loads: dict[str, Load]
    observations: list[ServerObservation]
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "servers": [o.to_json() for o in self.observations],
            "problems": list(self.problems),
        }


class LoadSource(Protocol):
    """Measures the load of managed servers (the collector's optional dependency)."""

    name: str

    def measure(self, deployments: Sequence[ManagedDeployment]) -> LoadMeasurement: ...


def selector_for(d: ManagedDeployment) -> ServerSelector:
    """The series of ``d``'s server: its namespace, its Deployment's pods, its Triton model."""
    return ServerSelector(d.namespace, d.name, d.triton_model or d.model)


class PrometheusLoadSource:
    """Loads from Prometheus over the last ``window`` seconds."""

    name = "prometheus"

    def __init__(
        self,
        client: PrometheusClient,
        window: float = 60.0,
        tokens: TokenMetrics | None = None,
        lengths_window: float | None = None,
    ) -> None:
        duration(window)  # a bad window fails now, not at the first query
        if lengths_window is not None:
            duration(lengths_window)
        self.client = client
        self.window = window
        self.tokens = TokenMetrics() if tokens is None else tokens
        #: the window the lengths' histograms are fitted over where the load window holds
        #: fewer than MIN_REQUESTS (None, or not longer than the window: not widened)
        self.lengths_window = lengths_window

    def close(self) -> None:
        self.client.close()

    def measure(self, deployments: Sequence[ManagedDeployment]) -> LoadMeasurement:
        """Measure every server; see the module's rules."""
        at = self.client.now()
        loads: dict[str, Load] = {}
        observations: list[ServerObservation] = []
        problems: list[str] = []
        for d in deployments:
            obs = self._server(d, at)
            observations.append(obs)
            if obs.load is None:
                problems.append(obs.notes[0])
                logger.warning("load: %s", obs.notes[0])
            else:
                loads[d.server] = obs.load
                logger.debug("load of %s: %s", d.server, obs.load)
        if deployments and not loads:
            raise NoData(
                f"Prometheus at {self.client.base_url} has no request series for any of the "
                f"{len(deployments)} managed server(s) over the last {duration(self.window)}: "
                + "; ".join(problems)
            )
        return LoadMeasurement(self.window, loads, observations, problems)

    def _value(self, promql: str, at: float) -> float | None:
        """The query's one finite value, or None (no series, NaN/Inf, or several series)."""
        try:
            samples = self.client.query(promql, at=at)
        except NoData:
            return None
        values = [s.value for s in samples if math.isfinite(s.value)]
        if len(values) > 1:
            logger.warning("%d series answer %r, expected one: ignored", len(values), promql)
        return values[0] if len(values) == 1 else None

    def _server(self, d: ManagedDeployment, at: float) -> ServerObservation:
        sel = selector_for(d)
        q: ServerQueries = server_queries(sel, self.window, self.tokens)
        who = f"server {d.server} (Deployment {d.namespace}/{d.name}, Triton model {sel.model!r})"
        base = ServerObservation(d.server, d.namespace, d.name, sel.model)
        completions = self._value(q.completions_rpm, at)
        if completions is None or completions < 0:
            why = (
                f"{who}: no request rate in Prometheus over the last {duration(self.window)} "
                f"({REQUEST_SUCCESS}{{{sel.matchers()}}}): load not measured"
            )
            return replace(base, notes=(why,))
        notes: list[str] = []
        pending = self._value(q.pending_delta, at)
        if pending is None:
            notes.append("no pending-request series: the offered load is the completions alone")
        in_tokens = _non_negative(self._value(q.in_tokens, at))
        out_tokens = _non_negative(self._value(q.out_tokens, at))
        labels = d.load if d.load is not None else Load(0.0)
        if in_tokens is None or out_tokens is None:
            source = "the load labels" if d.load is not None else "0"
            missing = [
                name
                for name, value in (
                    (self.tokens.in_tokens, in_tokens),
                    (self.tokens.out_tokens, out_tokens),
                )
                if value is None
            ]
            notes.append(f"no tokens per request from {', '.join(missing)}: taken from {source}")
        wide: ServerQueries | None = None
        if self.lengths_window is not None and self.lengths_window > self.window:
            wide = server_queries(sel, self.lengths_window, self.tokens)
        lengths = in_lengths = None
        out_seen = in_seen = None
        if out_tokens is not None:
            lengths, out_seen = self._lengths(
                q.out_buckets,
                out_tokens,
                at,
                cap=d.max_output_tokens,
                wide=None if wide is None else (wide.out_buckets, wide.out_tokens),
            )
        if in_tokens:
            in_lengths, in_seen = self._lengths(
                q.in_buckets,
                in_tokens,
                at,
                wide=None if wide is None else (wide.in_buckets, wide.in_tokens),
            )
        for which, fit, seen in (("output", lengths, out_seen), ("prompt", in_lengths, in_seen)):
            if fit is not None and seen is not None and self.lengths_window is not None:
                notes.append(
                    f"{which} lengths fitted over the last {duration(self.lengths_window)} "
                    f"({fit.requests:.0f} requests; {seen:.0f} in the load window, fewer "
                    f"than the {MIN_REQUESTS:.0f} a fit takes)"
                )
            if fit is not None and fit.bounded:
                notes.append(
                    f"{which} lengths all within one or two histogram buckets: CV "
                    f"{fit.cv:.3g}, the most their span allows (no shape to fit)"
                )
        load = Load(
            offered_rpm(completions, pending or 0.0, self.window),
            labels.in_tokens if in_tokens is None else in_tokens,
            labels.out_tokens if out_tokens is None else out_tokens,
            out_tokens_cov=None if lengths is None else lengths.cv,
            out_tokens_dist=None if lengths is None else lengths.family,
            in_tokens_cov=None if in_lengths is None else in_lengths.cv,
            in_tokens_dist=None if in_lengths is None else in_lengths.family,
        )
        return replace(
            base,
            load=load,
            completions_rpm=completions,
            pending_delta=pending,
            pending=_non_negative(self._value(q.pending, at)),
            avg_batch=self._value(q.avg_batch, at),
            queue_ms=self._value(q.queue_ms, at),
            compute_ms=self._value(q.compute_ms, at),
            latency_ms=self._quantiles(q.latency_ms, at),
            in_tokens=in_tokens,
            out_tokens=out_tokens,
            lengths=lengths,
            in_lengths=in_lengths,
            notes=tuple(notes),
        )

    def _lengths(
        self,
        promql: str,
        mean: float,
        at: float,
        *,
        cap: int | None = None,
        wide: tuple[str, str] | None = None,
    ) -> tuple[LengthFit | None, float | None]:
        """The lengths' fit from a histogram's buckets (None: no histogram, or one
        that cannot say: :func:`~inferno.prom.lengths.fit_lengths`), served capped at ``cap``
        tokens (the Deployment's ``inferno.server/max-output-tokens``) if given. Where the
        window counts fewer than :data:`~inferno.prom.lengths.MIN_REQUESTS`, ``wide`` (the
        histogram's and the mean's queries over :attr:`lengths_window`) are fitted instead.
        Returns the fit and, when it is the wider window's, the requests the load window
        counted (else None)."""
        buckets = self._buckets(promql, at)
        if buckets is None:
            return None, None
        seen = counted(buckets)
        if wide is not None and seen < MIN_REQUESTS:
            wide_buckets = self._buckets(wide[0], at)
            wide_mean = _non_negative(self._value(wide[1], at))
            if wide_buckets is not None and wide_mean:
                return fit_lengths(wide_buckets, wide_mean, cap), seen
        return fit_lengths(buckets, mean, cap), None

    def _buckets(self, promql: str, at: float) -> list[tuple[float, float]] | None:
        """A histogram's (``le``, cumulative count) pairs (None: no histogram, or a bound
        that is not a number)."""
        try:
            samples = self.client.query(promql, at=at)
        except NoData:
            return None
        buckets = []
        for s in samples:
            try:
                buckets.append((float(s.labels.get("le", "nan")), s.value))
            except ValueError:
                return None
        return buckets

    def _quantiles(self, promql: str, at: float) -> dict[str, float]:
        try:
            samples = self.client.query(promql, at=at)
        except NoData:
            return {}
        return {
            s.labels["quantile"]: s.value
            for s in samples
            if "quantile" in s.labels and math.isfinite(s.value)
        }


def _non_negative(value: float | None) -> float | None:
    return None if value is None or value < 0 else value


def source_from_settings(settings: Settings) -> PrometheusLoadSource | None:
    """The Prometheus load source ``settings`` describe; None when ``PROMETHEUS_URL`` is empty
    (the load labels are used). A token file or CA file that cannot be read is a
    :class:`~inferno.settings.SettingsError` naming the variable."""
    if not settings.prometheus.prometheus_url:
        return None
    if settings.prometheus.prometheus_token_file:
        try:
            Path(settings.prometheus.prometheus_token_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(
                f"PROMETHEUS_TOKEN_FILE={settings.prometheus.prometheus_token_file!r}: "
                f"cannot read it: {exc}"
            ) from None
    try:
        client = PrometheusClient(
            settings.prometheus.prometheus_url,
            token=settings.prometheus.prometheus_token or None,
            token_file=settings.prometheus.prometheus_token_file or None,
            ca_file=settings.prometheus.prometheus_ca_file or None,
            timeout=settings.service.http_timeout,
        )
    except PrometheusError as exc:
        raise SettingsError(
            f"PROMETHEUS_CA_FILE={settings.prometheus.prometheus_ca_file!r}: {exc}"
        ) from None
    tokens = TokenMetrics(
        settings.prometheus.tokens_in_metric,
        settings.prometheus.tokens_out_metric,
        settings.prometheus.tokens_requests_metric,
        settings.prometheus.tokens_out_histogram,
        settings.prometheus.tokens_in_histogram,
    )
    logger.info(
        "loads from Prometheus at %s over %s windows (auth: %s, CA: %s)",
        settings.prometheus.prometheus_url,
        duration(settings.prometheus.load_window),
        "token file"
        if settings.prometheus.prometheus_token_file
        else "token"
        if settings.prometheus.prometheus_token
        else "none",
        settings.prometheus.prometheus_ca_file or "system",
    )
    return PrometheusLoadSource(
        client,
        settings.prometheus.load_window,
        tokens,
        lengths_window=settings.prometheus.lengths_window,
    )
