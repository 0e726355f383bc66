"""A fake Prometheus over :class:`httpx.MockTransport`: canned answers by PromQL text.

``fake.answers[promql]`` is what that query returns:

- a number: one series ``{namespace, model}`` with that value, at the time asked for (NaN and
  infinities are written as Prometheus writes them, ``"NaN"``, ``"+Inf"``);
- a list of ``(labels, value)`` or ``(labels, value, timestamp)``: those series;
- an :class:`httpx.Response`: answered as is;
- an exception: raised by the transport (``httpx.ReadTimeout``, ``httpx.ConnectError``...).

A query without an answer gets an empty vector. ``fake.requests`` records every request.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from inferno.prom import PrometheusClient

NOW = 1_700_000_000.0
URL = "http://prometheus.monitoring:9090"


def prom_value(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x))


def vector(series: Sequence[tuple[Any, ...]], at: float = NOW) -> dict[str, Any]:
    """An instant-vector answer: ``(labels, value)`` or ``(labels, value, timestamp)``; the
    timestamp is by default the evaluation time, as Prometheus answers."""
    result = []
    for item in series:
        labels, value = item[0], item[1]
        ts = item[2] if len(item) > 2 else at
        result.append({"metric": dict(labels), "value": [ts, prom_value(value)]})
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


class FakePrometheus:
    def __init__(self, answers: Mapping[str, Any] | None = None) -> None:
        self.answers: dict[str, Any] = dict(answers or {})
        self.requests: list[httpx.Request] = []
        self.labels = {"namespace": "inference", "model": "llama_7b"}

    @property
    def queries(self) -> list[str]:
        return [r.url.params["query"] for r in self.requests]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.get(request.url.params.get("query", ""))
        at = float(request.url.params.get("time", NOW))
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        if answer is None:
            return httpx.Response(200, json=vector([], at))
        if isinstance(answer, list):
            return httpx.Response(200, json=vector(answer, at))
        return httpx.Response(200, json=vector([(self.labels, float(answer))], at))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def client(self, clock: Callable[[], float] = lambda: NOW, **kw: Any) -> PrometheusClient:
        kw.setdefault("timeout", 5.0)
        return PrometheusClient(URL, transport=self.transport(), clock=clock, **kw)
