"""Inferno: keeps inference servers on Kubernetes GPU clusters inside their latency SLOs at the
lowest GPU cost.

The public surface is small: :func:`inferno.data.load_system` reads a system,
:func:`inferno.solver.solve` allocates it, and :mod:`inferno.errors` holds the exception tree.
"""

from .errors import DataError, InfernoError, InputError

__all__ = ["DataError", "InfernoError", "InputError", "__version__"]

__version__ = "0.1.0"
