"""What the controller remembers across restarts: the control policy's history (the decisions
of the scale-down window), kept in the ConfigMap ``inferno-state`` of Inferno's namespace.

Saved after every cycle, restored when the controller starts, so a restart neither forgets the
recent decisions (and scales down early) nor needs a window to rebuild them. A state that cannot
be read is logged and ignored (the policy starts empty): it is a cache, never a reason to stop.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from ..k8s import ClusterAPI, ClusterError
from .policy import Entry

__all__ = ["STATE_CONFIG_MAP", "StateStore", "history_from_json", "history_to_json"]

logger = logging.getLogger(__name__)

STATE_CONFIG_MAP = "inferno-state"
_KEY = "policy.json"
_VERSION = 1
#: entries kept per server and servers kept (a ConfigMap holds at most 1 MiB)
_MAX_ENTRIES = 64
_MAX_SERVERS = 5000


def history_to_json(history: Mapping[str, tuple[Entry, ...]]) -> str:
    servers = {
        server: [list(e) for e in entries[-_MAX_ENTRIES:]]
        for server, entries in sorted(history.items())[:_MAX_SERVERS]
    }
    return json.dumps({"version": _VERSION, "history": servers}, separators=(",", ":"))


def history_from_json(text: str) -> dict[str, tuple[Entry, ...]]:
    """The history saved by :func:`history_to_json` (ValueError if it is not that)."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        raise ValueError("not a version-1 policy state")
    raw = doc.get("history")
    if not isinstance(raw, dict):
        raise ValueError("history is not an object")
    out: dict[str, tuple[Entry, ...]] = {}
    for server, entries in list(raw.items())[:_MAX_SERVERS]:
        if not isinstance(server, str) or not isinstance(entries, list):
            raise ValueError(f"history of {server!r} is not a list")
        kept: list[Entry] = []
        for e in entries[-_MAX_ENTRIES:]:
            if (
                not isinstance(e, list)
                or len(e) != 4
                or not isinstance(e[0], int | float)
                or not math.isfinite(e[0])
                or not isinstance(e[1], str)
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in e[2:])
            ):
                raise ValueError(f"a malformed entry of {server!r}: {str(e)[:80]}")
            kept.append((float(e[0]), e[1], int(e[2]), int(e[3])))
        out[server] = tuple(kept)
    return out


class StateStore:
    """The policy state in the ConfigMap ``name`` of ``namespace`` (sync: call from a thread)."""

    def __init__(self, api: ClusterAPI, namespace: str, name: str = STATE_CONFIG_MAP) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name

    def load(self) -> dict[str, tuple[Entry, ...]]:
        """The saved history ({} when there is none or it is unusable: logged)."""
        try:
            found = self.api.get_config_map(self.namespace, self.name)
        except ClusterError as exc:
            logger.warning("policy state not read (starting empty): %s", exc)
            return {}
        if found is None:
            return {}
        data: Any = found.get("data") or {}
        text = data.get(_KEY) if isinstance(data, dict) else None
        if not isinstance(text, str):
            return {}
        try:
            history = history_from_json(text)
        except (ValueError, RecursionError) as exc:
            logger.warning(
                "policy state in %s/%s unusable (starting empty): %s",
                self.namespace,
                self.name,
                exc,
            )
            return {}
        logger.info("policy state restored: %d servers", len(history))
        return history

    def save(self, history: Mapping[str, tuple[Entry, ...]]) -> str:
        """Save; the error ("" when saved)."""
        try:
            self.api.put_config_map(self.namespace, self.name, {_KEY: history_to_json(history)})
        except ClusterError as exc:
            logger.warning("policy state not saved: %s", exc)
            return str(exc)
        return ""
