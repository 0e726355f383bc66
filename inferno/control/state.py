"""What the controller remembers across restarts: the control policy's state (the decisions of
the scale-down window, each server's load forecaster and, with ``forecast_pool``, the pooled
forecaster's sum and shares), kept in the ConfigMap
``inferno-state`` of Inferno's namespace.

Saved after every cycle, restored when the controller starts, so a restart neither forgets the
recent decisions (and scales down early) nor needs a window to rebuild them. A state that cannot
be read is logged and ignored (the policy starts empty): it is a cache, never a reason to stop.

A ConfigMap holds at most 1 MiB. A document larger than :data:`MAX_STATE_BYTES` (a few thousand
servers, with the pooled forecast) leaves out, in this order and with a warning, what costs least
to rebuild: the pooled forecast (it restarts on its servers' own filters and pools again after a
few cycles), the smoothed tokens per request, then the forecasters of as many servers as it takes
(the last by name first). The scale-down window's decisions, the pending GPU switches and the
tuner's profiles are always kept.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..k8s import ClusterAPI, ClusterError
from .forecast import Track
from .guards import Entry
from .policy import PolicyState
from .pool import Pool, Share

__all__ = [
    "MAX_STATE_BYTES",
    "STATE_CONFIG_MAP",
    "StateStore",
    "fit_state",
    "state_from_json",
    "state_to_json",
]

logger = logging.getLogger(__name__)

STATE_CONFIG_MAP = "inferno-state"
_KEY = "policy.json"
_VERSION = 2  # 1: the history alone (still read)
#: entries kept per server and servers kept (a ConfigMap holds at most 1 MiB)
_MAX_ENTRIES = 64
_MAX_SERVERS = 5000
#: the largest document saved (a ConfigMap's data, keys and metadata hold at most 1 MiB)
MAX_STATE_BYTES = 1_000_000


def _track_doc(t: Track) -> list[Any]:
    return [t.level, t.trend, t.t, t.variance, t.n, t.smooth, t.jump] + (
        [list(t.season), t.seen_s] if t.season else []
    )


def _track_of(v: object, what: str) -> Track:
    """A forecaster's state from :func:`_track_doc`'s list; ValueError naming ``what``."""
    if (
        not isinstance(v, list)
        or len(v) not in (7, 9)
        or not all(_finite(x) for x in (*v[:4], *v[5:7]))
        or not isinstance(v[4], int)
        or isinstance(v[4], bool)
        or (len(v) == 9 and not (isinstance(v[7], list) and _finite(v[8])))
        or (len(v) == 9 and not all(_finite(x) for x in v[7]))
    ):
        raise ValueError(f"a malformed forecaster state of {what}: {str(v)[:80]}")
    level, trend, at, variance = (float(x) for x in v[:4])
    season = tuple(float(x) for x in v[7]) if len(v) == 9 else ()
    seen = float(v[8]) if len(v) == 9 else 0.0
    track = Track(level, trend, at, variance, int(v[4]), float(v[5]), float(v[6]), season, seen)
    if not track.is_valid():
        raise ValueError(f"an impossible forecaster state of {what}: {str(v)[:80]}")
    return track


#: a pooled share's fields, in the order they are saved (:class:`~inferno.control.pool.Share`)
_SHARE_FIELDS = (
    "share",
    "variance",
    "share_variance",
    "drift",
    "estimate",
    "hold_until",
    "n",
    "departures",
    "weight",
    "persist",
)


def _pool_doc(pool: Pool) -> dict[str, Any] | None:
    if pool.total is None or len(pool.shares) > _MAX_SERVERS:
        return None
    shares = {k: [getattr(v, f) for f in _SHARE_FIELDS] for k, v in sorted(pool.shares.items())}
    return {"total": _track_doc(pool.total), "shares": shares}


def _pool_of(doc: object) -> Pool:
    """The pooled forecaster saved by :func:`_pool_doc` (ValueError if malformed)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("shares"), dict):
        raise ValueError("pool is not an object with shares")
    total = _track_of(doc.get("total"), "the pool's sum")
    shares: dict[str, Share] = {}
    for server, v in doc["shares"].items():
        if (
            not isinstance(v, list)
            or len(v) != len(_SHARE_FIELDS)
            or not all(_finite(x) for x in v)
            or not all(isinstance(v[i], int) and v[i] >= 0 for i in (6, 7))
            or min(v[:3]) < 0
            or min(v[4], v[8], v[9]) < 0
        ):
            raise ValueError(f"a malformed pooled share of {server!r}: {str(v)[:80]}")
        f = [float(x) for x in v]
        shares[str(server)] = Share(
            share=f[0],
            variance=f[1],
            share_variance=f[2],
            drift=f[3],
            estimate=f[4],
            hold_until=f[5],
            n=int(v[6]),
            departures=int(v[7]),
            weight=f[8],
            persist=f[9],
        )
    return Pool(total, shares)


def state_to_json(state: PolicyState, max_bytes: int = MAX_STATE_BYTES) -> str:
    """The state's document, within ``max_bytes`` (:func:`fit_state`)."""
    return fit_state(state, max_bytes)[0]


def fit_state(state: PolicyState, max_bytes: int = MAX_STATE_BYTES) -> tuple[str, list[str]]:
    """The state's document within ``max_bytes`` (ASCII: a byte per character), and what was
    left out to fit it (empty: nothing), in the order of the module's docstring."""
    left: list[str] = []
    text = _dump(state)
    if len(text) > max_bytes and state.pool.total is not None:
        state = replace(state, pool=Pool())
        left.append("the pooled forecast")
        text = _dump(state)
    if len(text) > max_bytes and state.tokens:
        state = replace(state, tokens={})
        left.append("the smoothed tokens")
        text = _dump(state)
    kept = sorted(state.tracks)
    n = len(kept)
    while len(text) > max_bytes and n > 0:
        n //= 2
        text = _dump(replace(state, tracks={k: state.tracks[k] for k in kept[:n]}))
    if n < len(kept):
        left.append(f"the forecasters of {len(kept) - n} of {len(kept)} servers")
    return text, left


def _dump(state: PolicyState) -> str:
    tracks = {server: _track_doc(t) for server, t in sorted(state.tracks.items())[:_MAX_SERVERS]}
    pool = _pool_doc(state.pool)
    switches = {
        server: [acc, since]
        for server, (acc, since) in sorted(state.switches.items())[:_MAX_SERVERS]
    }
    tokens = {server: list(v) for server, v in sorted(state.tokens.items())[:_MAX_SERVERS]}
    doc = {
        "version": _VERSION,
        "history": _history_doc(state.history),
        "tracks": tracks,
        "switches": switches,
        "tokens": tokens,
        **({"pool": pool} if pool is not None else {}),
        **({"tuner": dict(state.tuner)} if state.tuner is not None else {}),
    }
    return json.dumps(doc, separators=(",", ":"))  # ASCII: non-ASCII names are escaped


def _history_doc(history: Mapping[str, tuple[Entry, ...]]) -> dict[str, list[list[Any]]]:
    return {
        server: [list(e) for e in entries[-_MAX_ENTRIES:]]
        for server, entries in sorted(history.items())[:_MAX_SERVERS]
    }


def state_from_json(text: str) -> PolicyState:
    """The state saved by :func:`state_to_json`, or a version-1 document (the window's history
    alone, as the controller wrote before the forecasters); ValueError if it is neither."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("version") not in (1, _VERSION):
        raise ValueError("not a version-1 or version-2 policy state")
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
                or not _finite(e[0])
                or not isinstance(e[1], str)
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in e[2:])
            ):
                raise ValueError(f"a malformed entry of {server!r}: {str(e)[:80]}")
            kept.append((float(e[0]), e[1], int(e[2]), int(e[3])))
        out[server] = tuple(kept)
    tracks: dict[str, Track] = {}
    raw_tracks = doc.get("tracks", {})
    if not isinstance(raw_tracks, dict):
        raise ValueError("tracks is not an object")
    for server, v in list(raw_tracks.items())[:_MAX_SERVERS]:
        tracks[str(server)] = _track_of(v, repr(server))
    switches: dict[str, tuple[str, float]] = {}
    raw_switches = doc.get("switches", {})
    if not isinstance(raw_switches, dict):
        raise ValueError("switches is not an object")
    for server, v in list(raw_switches.items())[:_MAX_SERVERS]:
        if not isinstance(v, list) or len(v) != 2 or not isinstance(v[0], str) or not _finite(v[1]):
            raise ValueError(f"a malformed pending switch of {server!r}: {str(v)[:80]}")
        switches[str(server)] = (v[0], float(v[1]))
    tokens: dict[str, tuple[float, float, float]] = {}
    raw_tokens = doc.get("tokens", {})
    if not isinstance(raw_tokens, dict):
        raise ValueError("tokens is not an object")
    for server, v in list(raw_tokens.items())[:_MAX_SERVERS]:
        if (
            not isinstance(v, list)
            or len(v) != 3
            or not all(_finite(x) for x in v)
            or min(v[0], v[1]) < 0
        ):
            raise ValueError(f"malformed smoothed tokens of {server!r}: {str(v)[:80]}")
        tokens[str(server)] = (float(v[0]), float(v[1]), float(v[2]))
    tuner = doc.get("tuner")
    if tuner is not None and not isinstance(tuner, dict):
        raise ValueError("tuner is not an object")
    # the tuner's document is checked by the optimizer that restores it
    pool = _pool_of(doc["pool"]) if "pool" in doc else Pool()
    return PolicyState(out, tracks, switches, tokens, tuner, pool)


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


class StateStore:
    """The policy state in the ConfigMap ``name`` of ``namespace`` (sync: call from a thread)."""

    def __init__(self, api: ClusterAPI, namespace: str, name: str = STATE_CONFIG_MAP) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self._left: list[str] = []  # what the last save left out (warned once, not every cycle)

    def load(self) -> PolicyState:
        """The saved state (empty when there is none or it is unusable: logged)."""
        try:
            found = self.api.get_config_map(self.namespace, self.name)
        except ClusterError as exc:
            logger.warning("policy state not read (starting empty): %s", exc)
            return PolicyState()
        if found is None:
            return PolicyState()
        data: Any = found.get("data") or {}
        text = data.get(_KEY) if isinstance(data, dict) else None
        if not isinstance(text, str):
            return PolicyState()
        try:
            state = state_from_json(text)
        except (ValueError, RecursionError) as exc:
            logger.warning(
                "policy state in %s/%s unusable (starting empty): %s",
                self.namespace,
                self.name,
                exc,
            )
            return PolicyState()
        logger.info(
            "policy state restored: %d servers' decisions, %d forecasters",
            len(state.history),
            len(state.tracks),
        )
        return state

    def save(self, state: PolicyState) -> str:
        """Save; the error ("" when saved)."""
        text, left = fit_state(state)
        if left and left != self._left:
            logger.warning(
                "policy state over %d bytes: saved without %s (rebuilt after a restart)",
                MAX_STATE_BYTES,
                ", ".join(left),
            )
        elif not left and self._left:
            logger.info("policy state saved whole again")
        self._left = left
        try:
            self.api.put_config_map(self.namespace, self.name, {_KEY: text})
        except ClusterError as exc:
            logger.warning("policy state not saved: %s", exc)
            return str(exc)
        return ""
