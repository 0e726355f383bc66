"""A small typed walker over parsed JSON that names the path of every value it rejects.

Inferno's Go original decodes its files with ``encoding/json``: object keys match struct fields
case-insensitively (an exact match wins) and unknown keys are ignored. :class:`Node` follows those
rules. ``null`` counts as absent, as it leaves a Go field at its zero value. Every getter checks the
type and the range of the value and raises :class:`~inferno.errors.InputError` with the file name,
the JSON path (``$.servers[3].currentAlloc.load.arrivalRate``), what was expected and what was seen.
Numbers are always finite and bounded: the number and integer getters require a ``maximum`` (the
bounds are in :mod:`inferno.data.limits`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn, overload

from ..errors import DataError, InputError
from .documents import parse_json, read_text

__all__ = ["Node", "describe", "read_json"]

_MAX_INT = 2**63 - 1  # Go's int
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class _Required:
    """Marker of a getter called without a default: the key must be present."""


_REQUIRED = _Required()


def read_json(path: Path, source: str) -> Node:
    """Parse the JSON file at ``path``; ``source`` is the name errors give it."""
    return Node(parse_json(read_text(path, source), source), source, "$")


def describe(value: object) -> str:
    """A short rendering of a JSON value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int) and abs(value) > _MAX_INT:
        return "a number too large"
    if isinstance(value, int | float):
        if math.isfinite(value):
            return f"the number {value!r}"
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {json.dumps(shown)}"
    if isinstance(value, list):
        return f"an array of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return "an object"
    return repr(value)  # pragma: no cover - json.loads yields nothing else


class Node:
    """One JSON value with the file (``source``) and the path (``path``) it came from.

    A member's or item's path is built when it is first asked for (an error message), not when
    the node is made: a 10,000-server file makes hundreds of thousands of nodes, and almost none
    is ever reported."""

    __slots__ = ("_folded", "_key", "_parent", "_path", "source", "value")

    def __init__(self, value: object, source: str, path: str) -> None:
        self.value = value
        self.source = source
        self._path: str | None = path
        self._parent: Node | None = None
        self._key: str | int = ""
        self._folded: dict[str, str] | None = None

    @classmethod
    def _child(cls, parent: Node, value: object, key: str | int) -> Node:
        node = cls.__new__(cls)
        node.value = value
        node.source = parent.source
        node._path = None
        node._parent = parent
        node._key = key
        node._folded = None
        return node

    @property
    def path(self) -> str:
        if self._path is None:
            assert self._parent is not None
            key = self._key
            if isinstance(key, int):
                self._path = f"{self._parent.path}[{key}]"
            else:
                self._path = self._parent.child_path(key)
        return self._path

    @path.setter
    def path(self, value: str) -> None:
        self._path = value

    def __repr__(self) -> str:
        return f"Node({self.source}:{self.path})"

    # -- errors ---------------------------------------------------------------------------------

    def error(self, problem: str) -> InputError:
        """An :class:`InputError` located at this node."""
        return InputError(problem, source=self.source, path=self.path)

    def data_error(self, problem: str) -> DataError:
        """A :class:`DataError` (inconsistent but well-formed input) located at this node."""
        return DataError(problem, source=self.source, path=self.path)

    def _wrong_type(self, expected: str) -> NoReturn:
        raise self.error(f"expected {expected}, got {describe(self.value)}")

    # -- navigation -----------------------------------------------------------------------------

    def child_path(self, key: str) -> str:
        """The path of the member ``key`` of this object (whether it exists or not)."""
        return f"{self.path}.{key}" if _SIMPLE_KEY.match(key) else f"{self.path}[{json.dumps(key)}]"

    def _mapping(self) -> dict[str, object]:
        if not isinstance(self.value, dict):
            self._wrong_type("an object")
        return self.value

    def find(self, key: str) -> Node | None:
        """The member ``key`` of this object, matched as Go does (exact, else case-insensitive).

        Returns None when the key is absent or its value is ``null``.
        """
        members = self._mapping()
        if key in members:
            found: str | None = key
        else:
            if self._folded is None:
                # Go keeps the last of several case-insensitive matches: later keys overwrite
                self._folded = {k.casefold(): k for k in members}
            found = self._folded.get(key.casefold())
        if found is None or members[found] is None:
            return None
        return Node._child(self, members[found], found)

    def has(self, key: str) -> bool:
        """Whether this object has a non-null member ``key`` (case-insensitively)."""
        return self.find(key) is not None

    def member(self, key: str) -> Node:
        """The member ``key``, which must be present."""
        node = self.find(key)
        if node is None:
            raise InputError(
                f"required key {key!r} is missing", source=self.source, path=self.child_path(key)
            )
        return node

    # -- conversions of this node ---------------------------------------------------------------

    def as_object(self) -> Node:
        """This node, checked to be an object."""
        self._mapping()
        return self

    def as_array(self) -> list[Node]:
        """The items of this array."""
        if not isinstance(self.value, list):
            self._wrong_type("an array")
        return [Node._child(self, v, i) for i, v in enumerate(self.value)]

    def as_items(self) -> Iterator[tuple[str, Node]]:
        """The (key, value) members of this object, in file order (null members included)."""
        for key, value in self._mapping().items():
            yield key, Node._child(self, value, key)

    def as_string(self, *, nonempty: bool = False) -> str:
        """This string value."""
        if not isinstance(self.value, str):
            self._wrong_type("a string")
        if nonempty and not self.value.strip():
            raise self.error("expected a non-empty string")
        return self.value

    def as_boolean(self) -> bool:
        """This boolean value (numbers and strings are not booleans)."""
        if not isinstance(self.value, bool):
            self._wrong_type("a boolean (true or false)")
        return self.value

    def as_number(
        self,
        *,
        maximum: float,
        minimum: float | None = None,
        above: float | None = None,
        least_positive: float | None = None,
    ) -> float:
        """This finite number, checked to be ``<= maximum``, and ``>= minimum`` and ``> above``
        when given; with ``least_positive`` a positive value must be at least that much."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._wrong_type("a number")
        if (isinstance(value, int) and abs(value) > _MAX_INT) or not math.isfinite(value):
            self._wrong_type("a finite number")
        if minimum is not None and value < minimum:
            raise self.error(f"expected a number >= {minimum:g}, got {value!r}")
        if above is not None and value <= above:
            raise self.error(f"expected a number > {above:g}, got {value!r}")
        if value > maximum:
            raise self.error(f"expected a number <= {maximum:g}, got {value!r}")
        if least_positive is not None and 0 < value < least_positive:
            zero = " (or 0)" if above is None else ""
            raise self.error(f"expected a number >= {least_positive:g}{zero}, got {value!r}")
        return float(value)

    def as_integer(self, *, maximum: int, minimum: int | None = None) -> int:
        """This integer value (an integral number such as ``2.0`` is accepted), checked to be
        ``<= maximum`` and ``>= minimum`` when given."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._wrong_type("an integer")
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            self._wrong_type("an integer")
        if abs(value) > _MAX_INT:
            self._wrong_type("an integer of at most 19 digits")
        number = int(value)
        if minimum is not None and number < minimum:
            raise self.error(f"expected an integer >= {minimum}, got {value!r}")
        if number > maximum:
            raise self.error(f"expected an integer <= {maximum}, got {value!r}")
        return number

    # -- typed getters of members ---------------------------------------------------------------

    @overload
    def number(
        self,
        key: str,
        *,
        maximum: float,
        minimum: float | None = ...,
        above: float | None = ...,
        least_positive: float | None = ...,
    ) -> float: ...
    @overload
    def number(
        self,
        key: str,
        default: float,
        *,
        maximum: float,
        minimum: float | None = ...,
        above: float | None = ...,
        least_positive: float | None = ...,
    ) -> float: ...
    @overload
    def number(
        self,
        key: str,
        default: None,
        *,
        maximum: float,
        minimum: float | None = ...,
        above: float | None = ...,
        least_positive: float | None = ...,
    ) -> float | None: ...
    def number(
        self,
        key: str,
        default: float | _Required | None = _REQUIRED,
        *,
        maximum: float,
        minimum: float | None = None,
        above: float | None = None,
        least_positive: float | None = None,
    ) -> float | None:
        """The number at ``key`` (at most ``maximum``); required unless a default is given."""
        node = self.member(key) if isinstance(default, _Required) else self.find(key)
        if node is None:
            assert not isinstance(default, _Required)
            return default
        return node.as_number(
            maximum=maximum, minimum=minimum, above=above, least_positive=least_positive
        )

    @overload
    def integer(self, key: str, *, maximum: int, minimum: int | None = ...) -> int: ...
    @overload
    def integer(
        self, key: str, default: int, *, maximum: int, minimum: int | None = ...
    ) -> int: ...
    @overload
    def integer(
        self, key: str, default: None, *, maximum: int, minimum: int | None = ...
    ) -> int | None: ...
    def integer(
        self,
        key: str,
        default: int | _Required | None = _REQUIRED,
        *,
        maximum: int,
        minimum: int | None = None,
    ) -> int | None:
        """The integer at ``key`` (at most ``maximum``); required unless a default is given."""
        node = self.member(key) if isinstance(default, _Required) else self.find(key)
        if node is None:
            assert not isinstance(default, _Required)
            return default
        return node.as_integer(maximum=maximum, minimum=minimum)

    @overload
    def string(self, key: str, *, nonempty: bool = ...) -> str: ...
    @overload
    def string(self, key: str, default: str, *, nonempty: bool = ...) -> str: ...
    @overload
    def string(self, key: str, default: None, *, nonempty: bool = ...) -> str | None: ...
    def string(
        self, key: str, default: str | _Required | None = _REQUIRED, *, nonempty: bool = False
    ) -> str | None:
        """The string at ``key``; required unless a default is given."""
        node = self.member(key) if isinstance(default, _Required) else self.find(key)
        if node is None:
            assert not isinstance(default, _Required)
            return default
        return node.as_string(nonempty=nonempty)

    def boolean(self, key: str, default: bool = False) -> bool:
        """The boolean at ``key`` (``default`` when absent)."""
        node = self.find(key)
        return default if node is None else node.as_boolean()

    def obj(self, key: str) -> Node | None:
        """The object at ``key``, or None when absent."""
        node = self.find(key)
        return None if node is None else node.as_object()

    def array(self, key: str, *, required: bool = False) -> list[Node]:
        """The items of the array at ``key`` (empty when absent and not required)."""
        node = self.member(key) if required else self.find(key)
        return [] if node is None else node.as_array()
