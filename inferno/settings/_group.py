"""What every option group shares: :class:`SettingsError`, :func:`option` (a field with its
variable and meaning) and :class:`Group` (the checks run when a group is made)."""

from __future__ import annotations

import math
import re
from dataclasses import Field, field
from typing import Any, ClassVar

from ..errors import InfernoError

__all__ = ["DNS_LABEL", "METRIC_NAME", "URL", "Group", "SettingsError", "finite", "option"]


class SettingsError(InfernoError, ValueError):
    """A setting with a bad value."""


def option(default: Any, env: str, doc: str, *, flat: str = "", secret: bool = False) -> Any:
    """A field of an option group: its default, variable and meaning (``flat``: its name among
    :meth:`Settings.from_env`'s keyword overrides, when not the field's own)."""
    meta = {"env": env, "doc": doc, "flat": flat}
    return field(default=default, repr=not secret, metadata=meta)


class Group:
    """Checks of an option group, run when it is made."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise SettingsError for a bad value (subclasses)."""

    def _require(self, name: str, ok: bool, expected: str) -> None:
        if not ok:
            f = self.__dataclass_fields__[name]
            value = getattr(self, name)
            raise SettingsError(f"{f.metadata['env']}={value!r}: expected {expected}")


def finite(x: float) -> bool:
    """An int or float that is finite."""
    return isinstance(x, int | float) and math.isfinite(x)


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
URL = re.compile(r"https?://[^\s/?#]+(/\S*)?")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
