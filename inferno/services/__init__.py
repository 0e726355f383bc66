"""The four HTTP services of Inferno's pod, as FastAPI app factories (the Go original's four
containers): the controller (port 3300: ``/invoke``, ``/report`` and the periodic cycle), the
collector (3301: ``GET /collect``), the optimizer (3302: ``POST /optimize``) and the actuator
(3303: ``POST /update``). Each also serves ``/healthz``, ``/readyz`` and ``/metrics`` from the
:class:`prometheus_client.CollectorRegistry` it is given.

Routes are thin: the work is in :mod:`inferno.control` (``ControlLoop``, ``Optimizer``,
``actuate``, ``collect``); the wire format is :mod:`inferno.services.messages`; the metrics are
:mod:`inferno.services.metrics`; who may call what is :mod:`inferno.services._auth`
(docs/security.md). The collector, optimizer and actuator listen on the pod's loopback and
require the pod's internal token; the controller requires the invoke token.
"""

from __future__ import annotations

from . import actuator, collector, controller, optimizer

__all__ = ["actuator", "collector", "controller", "optimizer"]
