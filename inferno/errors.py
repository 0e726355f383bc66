"""The exception tree of Inferno.

Every error a user can cause derives from :class:`InfernoError`; catching that one class is enough
for a caller that only wants to report and stop. Infeasible or unallocatable servers are *not*
errors: they are result statuses (see :mod:`inferno.solver`).
"""

from __future__ import annotations

__all__ = ["DataError", "InfernoError", "InputError"]


class InfernoError(Exception):
    """Base class of every error raised on purpose by Inferno."""


class InputError(InfernoError):
    """Bad input: a file that cannot be read, malformed JSON, or a value that fails validation.

    ``source`` names the file (or other origin), ``path`` the JSON path inside it
    (``$.models[3].alpha``), and ``problem`` says what is wrong, in words a user can act on.
    """

    def __init__(self, problem: str, *, source: str | None = None, path: str | None = None) -> None:
        self.problem = problem
        self.source = source
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.path) if part)
        return f"{where}: {self.problem}" if where else self.problem


class DataError(InputError):
    """Input that is well-formed but inconsistent (an unknown model, a duplicate name...)."""
