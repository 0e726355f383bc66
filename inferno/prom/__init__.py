"""Prometheus: the live path's load source (docs/metrics.md).

:class:`PrometheusClient` is the only code that talks HTTP to Prometheus; :mod:`.queries` builds
the PromQL for a managed server (pure); :class:`PrometheusLoadSource` turns the answers into each
server's :class:`~inferno.system.Load` and observations. Failures are typed
(:class:`PrometheusError`: :class:`PrometheusUnavailable`, :class:`PrometheusQueryError`,
:class:`NoData`) so the collector can fail the cycle and keep the last decision.
"""

from __future__ import annotations

from ._client import (
    NoData,
    PrometheusClient,
    PrometheusError,
    PrometheusQueryError,
    PrometheusUnavailable,
    Sample,
)
from .load import (
    LoadMeasurement,
    LoadSource,
    PrometheusLoadSource,
    ServerObservation,
    selector_for,
    source_from_settings,
)
from .queries import ServerQueries, ServerSelector, TokenMetrics, server_queries

__all__ = [
    "LoadMeasurement",
    "LoadSource",
    "NoData",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusLoadSource",
    "PrometheusQueryError",
    "PrometheusUnavailable",
    "Sample",
    "ServerObservation",
    "ServerQueries",
    "ServerSelector",
    "TokenMetrics",
    "selector_for",
    "server_queries",
    "source_from_settings",
]
