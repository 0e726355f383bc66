"""What the system files' readers share: a file's rows, a frozen mapping, a list of names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TypeVar

from ._json import Node
from .limits import MAX_TOKENS, MIN_TOKENS

__all__ = ["frozen", "known", "rows", "tokens"]

_V = TypeVar("_V")


def frozen(mapping: Mapping[str, _V]) -> Mapping[str, _V]:
    return MappingProxyType(dict(mapping))


def known(names: Iterable[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed) if listed else "none"


def rows(file: Node, key: str) -> list[Node]:
    """The array ``key`` of a file's top-level object, each item checked to be an object."""
    return [row.as_object() for row in file.as_object().array(key, required=True)]


def tokens(node: Node, key: str, default: float) -> float:
    """A token count: 0, or in [MIN_TOKENS, MAX_TOKENS]."""
    return node.number(key, default, minimum=0, maximum=MAX_TOKENS, least_positive=MIN_TOKENS)
