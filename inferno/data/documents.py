"""Reading a user's JSON or YAML file into Python values, with every failure an InputError.

Besides malformed text, two inputs break Python's own parsers: an integer literal longer than
Python's limit on int-from-text conversion (``ValueError``), and arrays or objects nested deeper
than its recursion limit (``RecursionError``, from ``json`` and from PyYAML alike). Both become an
:class:`~inferno.errors.InputError` naming the file, and any document nested deeper than
:data:`~inferno.data.limits.MAX_NESTING` levels is refused as well, so that code walking it
recursively later is safe. The nesting walk visits each distinct container once per level, so a
YAML document whose aliases repeat one node many times (or refer to itself) costs no more than
its text.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import InputError
from .limits import MAX_INT_DIGITS, MAX_NESTING

__all__ = ["nested_too_deeply", "parse_json", "parse_yaml", "read_document", "read_text"]

logger = logging.getLogger(__name__)

_TOO_DEEP = f"nesting deeper than {MAX_NESTING} levels"
_TOO_LONG = f"integer with more than {MAX_INT_DIGITS} digits"


def read_text(path: Path, source: str) -> str:
    """The text of the file at ``path`` (UTF-8, with or without a BOM)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", source=source) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text: {exc.reason} at byte {exc.start}", source=source
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", source=source) from None


def nested_too_deeply(value: object, limit: int = MAX_NESTING) -> bool:
    """Whether arrays/objects are nested more than ``limit`` levels deep in ``value``."""
    level: list[object] = [value]
    for _ in range(limit + 1):
        containers = {id(v): v for v in level if isinstance(v, dict | list)}  # each one once
        if not containers:
            return False
        level = [
            child
            for container in containers.values()
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    return True


def _int_too_long(exc: ValueError) -> bool:
    return "integer string conversion" in str(exc)


def parse_json(text: str, source: str) -> object:
    """The value of a JSON text (``NaN`` and ``Infinity`` parse; the getters refuse them)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise InputError(problem, source=source) from None
    except RecursionError:
        raise InputError(_TOO_DEEP, source=source) from None
    except ValueError as exc:
        problem = _TOO_LONG if _int_too_long(exc) else f"malformed JSON: {exc}"
        raise InputError(problem, source=source) from None
    if nested_too_deeply(value):
        raise InputError(_TOO_DEEP, source=source)
    return value


def parse_yaml(text: str, source: str) -> object:
    """The value of a YAML text (safe loader: plain data only)."""
    import yaml  # here: reading JSON (every system file) needs no YAML parser (20 ms to import)

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"malformed YAML{where}: {problem}", source=source) from None
    except RecursionError:
        raise InputError(_TOO_DEEP, source=source) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar its constructor rejects
        if isinstance(exc, ValueError) and _int_too_long(exc):
            raise InputError(_TOO_LONG, source=source) from None
        raise InputError(f"malformed YAML: {exc}", source=source) from None
    if nested_too_deeply(value):
        raise InputError(_TOO_DEEP, source=source)
    return value


def read_document(path: Path, source: str) -> object:
    """A JSON (``.json``) or YAML (anything else) file's value."""
    text = read_text(path, source)
    logger.debug("parsing %s", source)
    if path.suffix.lower() == ".json":
        return parse_json(text, source)
    return parse_yaml(text, source)
