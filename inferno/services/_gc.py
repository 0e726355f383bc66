"""The cyclic garbage collector paused while a large request is parsed or solved:
:func:`gc_paused`.

A 10,000-server request makes a few hundred thousand objects that reference counting frees; the
collections they trigger traverse the request and every live allocation again and again (0.35 s
of a 10,000-server solve, 0.1 s of parsing its body: bench/README.md, "The optimizer service").
Pauses nest and overlap across threads: the last one out enables the collector again, if it was
enabled before the first. Never held across an ``await`` (a slow client would keep it paused).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]

_LOCK = threading.Lock()
_PAUSES = {"active": 0, "was_enabled": 0}


@contextmanager
def gc_paused() -> Iterator[None]:
    """The collector paused for the block (see the module's docstring)."""
    with _LOCK:
        if _PAUSES["active"] == 0:
            _PAUSES["was_enabled"] = int(gc.isenabled())
            gc.disable()
        _PAUSES["active"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _PAUSES["active"] -= 1
            if _PAUSES["active"] == 0 and _PAUSES["was_enabled"]:
                gc.enable()
