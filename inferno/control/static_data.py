"""The static data (accelerators, profiles, capacity, solver options): the ConfigMap
``inferno-static-data`` mounted as files, re-read whenever a file changes.

The cache is keyed by each file's modification time, size and inode, so the ConfigMap's atomic
symlink swap is seen too. The optimizer solves with it; the actuator checks decisions against it
(:class:`~inferno.cluster.validate.StaticLimits`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..cluster.validate import StaticLimits
from ..data import system_from_documents
from ..errors import InputError
from .optimize import STATIC_FILES, read_static_data

__all__ = ["StaticData"]

logger = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int, int] | tuple[str], ...]


class StaticData:
    """The static JSON documents of a directory, re-read when one of its files changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.loads = 0  # how many times the files were read
        self._lock = threading.Lock()
        self._key: Fingerprint | None = None
        self._docs: dict[str, Any] = {}
        self._limits: StaticLimits | None = None

    def _fingerprint(self) -> Fingerprint:
        if not self.path.is_dir():
            raise InputError("static data directory not found", source=str(self.path))
        key: list[tuple[str, int, int, int] | tuple[str]] = []
        for name in STATIC_FILES:
            try:
                st = os.stat(self.path / name)  # follows the ConfigMap's symlinks
            except FileNotFoundError:
                key.append((name,))
            except OSError as exc:
                raise InputError(f"cannot read: {exc}", source=str(self.path / name)) from None
            else:
                key.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(key)

    def get(self) -> dict[str, Any]:
        """The documents (InputError if the directory or a file is unreadable or malformed)."""
        with self._lock:
            key = self._fingerprint()  # before reading: a change while reading is seen next time
            if key != self._key:
                self._docs = read_static_data(self.path)
                self._key = key
                self._limits = None
                self.loads += 1
                logger.info("read static data from %s: %s", self.path, sorted(self._docs))
            return self._docs

    def limits(self) -> StaticLimits:
        """What the static data allows a decision to say (InputError if it is unusable)."""
        docs = self.get()
        with self._lock:
            if self._limits is None:
                full = {
                    "serviceclass-data.json": {"serviceClasses": []},
                    **docs,
                    "server-data.json": {"servers": []},
                }
                self._limits = StaticLimits.from_system(system_from_documents(full, str(self.path)))
            return self._limits
