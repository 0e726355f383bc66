"""Which start-up time the policy's horizon takes for a server, and why.

Three sources, in this order of precedence:

1. ``class`` — the server's ServiceClass sets ``spec.policy.startupTime``: an operator's explicit
   word for that class wins over any measurement (a class whose pods' readiness is misleading,
   or that must be pinned);
2. ``measured`` — its pods show one (:mod:`inferno.cluster.startup`, read by the collector when
   ``INFERNO_MEASURE_STARTUP`` is on), kept within [1 s, 86400 s];
3. ``setting`` — ``INFERNO_STARTUP_TIME`` (default 60 s): no pod of the server became Ready
   (none started yet, a cluster without kubelets) or measuring is off.

Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..cluster.inventory import ManagedDeployment
from ..cluster.plan import holders
from ..cluster.startup import MAX_STARTUP_S, MIN_STARTUP_S

__all__ = ["SOURCES", "Startup", "choose_startup", "measured_startups"]

SOURCES = ("class", "measured", "setting")


@dataclass(frozen=True, slots=True)
class Startup:
    """The start-up time (s) a server's horizon takes, and its source (:data:`SOURCES`)."""

    seconds: float
    source: str

    def to_json(self) -> dict[str, float | str]:
        return {"startup": self.seconds, "startupSource": self.source}


def choose_startup(setting: float, class_value: float | None, measured: float | None) -> Startup:
    """The start-up to use (see the module's docstring)."""
    if class_value is not None:
        return Startup(class_value, "class")
    if measured is not None and math.isfinite(measured):
        return Startup(min(max(measured, MIN_STARTUP_S), MAX_STARTUP_S), "measured")
    return Startup(setting, "setting")


def measured_startups(deployments: Iterable[ManagedDeployment]) -> dict[str, float]:
    """The measured start-up of each server whose pods showed one, by server name: its
    holder's, should several Deployments claim the name (:func:`~inferno.cluster.plan.holders`:
    a later claimant's slow pods do not lengthen another server's horizon)."""
    return {
        d.server: d.startup.seconds for d in holders(deployments).values() if d.startup is not None
    }
