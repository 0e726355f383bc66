"""The four HTTP services of Inferno's pod, as FastAPI app factories (the Go original's four
containers): the controller (port 3300: ``/invoke``, ``/report`` and the periodic cycle), the
collector (3301: ``GET /collect``), the optimizer (3302: ``POST /optimize``) and the actuator
(3303: ``POST /update``). Each also serves ``/healthz``, ``/readyz`` and ``/metrics`` from the
:class:`prometheus_client.CollectorRegistry` it is given.

Each factory takes the :class:`~inferno.settings.Settings` and its dependencies (a
:class:`~inferno.k8s.ClusterAPI`, the :class:`~inferno.control.cycle.Phases`), so tests and the
all-in-one mode build them in-process.
"""

from __future__ import annotations

from . import actuator, collector, controller, optimizer

__all__ = ["actuator", "collector", "controller", "optimizer"]
