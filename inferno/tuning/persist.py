"""The tuner's filters as JSON, so that they survive a restart of the optimizer.

The controller keeps the document the optimizer returns after each tuning step (with the control
policy's state, in the ConfigMap ``inferno-state``) and hands it back in its requests; an
optimizer whose tuner is empty (it just started) restores it. What is read is checked as any
input: every number finite, covariances symmetric with non-negative variances, counters
non-negative integers, at most :data:`MAX_FILTERS` filters; anything else is a ``ValueError``
naming the filter, and the tuner starts empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..model.profiles import Kind
from .tuner import FilterState, PairKey, TunerState

__all__ = ["MAX_FILTERS", "state_from_json", "state_to_json"]

VERSION = 1
#: filters kept (one per (model, accelerator) pair in use)
MAX_FILTERS = 10_000
_MAX_STREAK = 1_000


def state_to_json(state: TunerState) -> dict[str, Any]:
    filters = []
    for (model, accelerator), f in sorted(state.filters.items())[:MAX_FILTERS]:
        filters.append(
            {
                "model": model,
                "accelerator": accelerator,
                "kind": str(f.kind),
                "base": list(f.base),
                "theta": list(f.theta),
                "cov": [list(row) for row in f.cov],
                "updates": f.updates,
                "rejections": f.rejections,
                "resets": f.resets,
                "streak": f.streak,
                "streakSign": f.streak_sign,
                "streakScales": list(f.streak_scales[-_MAX_STREAK:]),
            }
        )
    return {"version": VERSION, "filters": filters}


def _pair(raw: object, name: str, where: str) -> tuple[float, float]:
    if not isinstance(raw, list) or len(raw) != 2 or not all(_finite(x) for x in raw):
        raise ValueError(f"{where}: {name} must be two finite numbers")
    return (float(raw[0]), float(raw[1]))


def _count(raw: Mapping[str, Any], name: str, where: str, low: int = 0) -> int:
    value = raw.get(name, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= 10**12:
        raise ValueError(f"{where}: {name} must be an integer ≥ {low}")
    return value


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def state_from_json(doc: object, bounds: float | None = None) -> TunerState:
    """The state :func:`state_to_json` wrote (ValueError naming what is wrong otherwise).
    ``bounds``: the tuner's (``INFERNO_TUNING_BOUNDS``): every θ must lie within [base / bounds,
    base · bounds], as the tuner keeps it, or the document is refused (a θ of 1e308 sized
    every replica's rate to nothing)."""
    if not isinstance(doc, Mapping) or doc.get("version") != VERSION:
        raise ValueError("not a version-1 tuner state")
    raw_filters = doc.get("filters")
    if not isinstance(raw_filters, list) or len(raw_filters) > MAX_FILTERS:
        raise ValueError(f"filters must be a list of at most {MAX_FILTERS}")
    filters: dict[PairKey, FilterState] = {}
    for i, raw in enumerate(raw_filters):
        where = f"filters[{i}]"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: not an object")
        model, accelerator = raw.get("model"), raw.get("accelerator")
        if not isinstance(model, str) or not isinstance(accelerator, str):
            raise ValueError(f"{where}: model and accelerator must be names")
        try:
            kind = Kind(str(raw.get("kind")))
        except ValueError:
            raise ValueError(f"{where}: unknown profile kind {raw.get('kind')!r}") from None
        cov_raw = raw.get("cov")
        if not isinstance(cov_raw, list) or len(cov_raw) != 2:
            raise ValueError(f"{where}: cov must be a 2×2 matrix")
        cov = (_pair(cov_raw[0], "cov", where), _pair(cov_raw[1], "cov", where))
        if cov[0][0] < 0 or cov[1][1] < 0 or not math.isclose(cov[0][1], cov[1][0]):
            raise ValueError(f"{where}: cov must be symmetric with non-negative variances")
        sign = raw.get("streakSign", 0)
        if sign not in (-1, 0, 1) or isinstance(sign, bool):
            raise ValueError(f"{where}: streakSign must be -1, 0 or 1")
        scales = raw.get("streakScales", [])
        if (
            not isinstance(scales, list)
            or len(scales) > _MAX_STREAK
            or not all(_finite(x) for x in scales)
        ):
            raise ValueError(f"{where}: streakScales must be finite numbers")
        theta = _pair(raw.get("theta"), "theta", where)
        base = _pair(raw.get("base"), "base", where)
        if min(*theta, *base) < 0:
            raise ValueError(f"{where}: theta and base must be ≥ 0")
        if bounds is not None and not all(
            b / bounds * (1 - 1e-9) <= t <= b * bounds * (1 + 1e-9)
            for t, b in zip(theta, base, strict=True)
        ):
            raise ValueError(f"{where}: theta must be within a factor {bounds:g} of base")
        filters[(model, accelerator)] = FilterState(
            kind=kind,
            base=base,
            theta=theta,
            cov=cov,
            updates=_count(raw, "updates", where),
            rejections=_count(raw, "rejections", where),
            resets=_count(raw, "resets", where),
            streak=_count(raw, "streak", where),
            streak_sign=int(sign),
            streak_scales=tuple(float(x) for x in scales),
        )
    return TunerState(MappingProxyType(filters))
