"""Reading Inferno's input files: the system data directory and the analyzer's problem file.

Keys match case-insensitively and unknown keys are ignored, as in the Go original; every bad value
raises :class:`~inferno.errors.InputError` naming the file and the JSON path.

The names below load on first use: reading a file (``data.documents``) loads no model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analyzer_file import AnalyzerProblem, load_analyzer_problem
    from .system_files import SYSTEM_FILES, load_system, system_from_documents

__all__ = [
    "SYSTEM_FILES",
    "AnalyzerProblem",
    "load_analyzer_problem",
    "load_system",
    "system_from_documents",
]

_HOME = {
    "AnalyzerProblem": "analyzer_file",
    "load_analyzer_problem": "analyzer_file",
    "SYSTEM_FILES": "system_files",
    "load_system": "system_files",
    "system_from_documents": "system_files",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
