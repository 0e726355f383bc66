"""The control cycle's three steps as functions over an injected cluster adapter:
:func:`collect`, :func:`optimize` and :func:`actuate`. The services in :mod:`inferno.services`
expose them over HTTP; :mod:`inferno.control.cycle` runs them in order."""

from .actuate import ActuationReport, Outcome, actuate
from .collect import Collection, collect
from .optimize import OptimizeResult, optimize, read_static_data

__all__ = [
    "ActuationReport",
    "Collection",
    "OptimizeResult",
    "Outcome",
    "actuate",
    "collect",
    "optimize",
    "read_static_data",
]
