"""Reading Inferno's input files: the system data directory and the analyzer's problem file.

Keys match case-insensitively and unknown keys are ignored, as in the Go original; every bad value
raises :class:`~inferno.errors.InputError` naming the file and the JSON path.
"""

from __future__ import annotations

from .analyzer_file import AnalyzerProblem, load_analyzer_problem
from .system_files import SYSTEM_FILES, load_system, system_from_documents

__all__ = [
    "SYSTEM_FILES",
    "AnalyzerProblem",
    "load_analyzer_problem",
    "load_system",
    "system_from_documents",
]
