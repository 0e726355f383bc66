"""ServiceClass custom resources (``serviceclasses.inferno.ai``) as the solver's service classes.

The CRD's schema checks shapes and ranges; :func:`problems` checks what a schema cannot (a model
listed twice, a quantile without its target, a throughput class mixed with latency targets), and
:func:`class_row` turns a resource into a row of Inferno's ``serviceclass-data.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TARGET_KEYS", "class_row", "problems"]

#: CRD field -> serviceclass-data key
TARGET_KEYS = {
    "itlMs": "slo-itl",
    "ttftMs": "slo-ttft",
    "ttwMs": "slo-ttw",
    "latencyMs": "slo-latency",
    "tokensPerSecond": "slo-tps",
    "ttftQuantile": "slo-ttft-quantile",
    "latencyQuantile": "slo-latency-quantile",
    "ttwQuantile": "slo-ttw-quantile",
}
_TARGETS = ("itlMs", "ttftMs", "ttwMs", "latencyMs", "tokensPerSecond")
_QUANTILE_OF = {"ttftQuantile": "ttftMs", "latencyQuantile": "latencyMs", "ttwQuantile": "ttwMs"}


def problems(spec: Mapping[str, Any]) -> list[str]:
    """What is wrong with a ServiceClass spec beyond its schema (empty: nothing)."""
    out: list[str] = []
    priority = spec.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool) or not 1 <= priority <= 100:
        out.append(f"spec.priority must be an integer from 1 to 100, got {priority!r}")
    models = spec.get("models")
    if not isinstance(models, list) or not models:
        out.append("spec.models must list at least one model")
        return out
    seen: set[str] = set()
    for i, m in enumerate(models):
        where = f"spec.models[{i}]"
        if not isinstance(m, Mapping):
            out.append(f"{where} must be an object")
            continue
        name = m.get("model")
        if not isinstance(name, str) or not name:
            out.append(f"{where}.model must be a non-empty string")
        elif name in seen:
            out.append(f"{where}.model {name!r} is listed twice")
        else:
            seen.add(name)
        for key in _TARGETS:
            v = m.get(key)
            if v is not None and (
                not isinstance(v, int | float) or isinstance(v, bool) or not v > 0
            ):
                out.append(f"{where}.{key} must be a number > 0, got {v!r}")
        if not any(m.get(k) is not None for k in _TARGETS):
            out.append(f"{where} has no target: give one of {', '.join(_TARGETS)}")
        for q, target in _QUANTILE_OF.items():
            v = m.get(q)
            if v is None:
                continue
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v < 1:
                out.append(f"{where}.{q} must be in (0, 1), got {v!r}")
            elif m.get(target) is None:
                out.append(f"{where}.{q} is given without {target}")
        if m.get("tokensPerSecond") is not None and any(
            m.get(k) is not None for k in ("ttftMs", "latencyMs", "ttwMs", "itlMs")
        ):
            out.append(
                f"{where}: tokensPerSecond makes a throughput class; "
                "it cannot carry latency targets too"
            )
    return out


def class_row(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A ServiceClass resource as a ``serviceclass-data.json`` row (modelTargets shape)."""
    spec = resource.get("spec") or {}
    name = str((resource.get("metadata") or {}).get("name", ""))
    targets = []
    for m in spec.get("models") or []:
        row: dict[str, Any] = {"model": m.get("model")}
        for key, data_key in TARGET_KEYS.items():
            if m.get(key) is not None:
                row[data_key] = m[key]
        targets.append(row)
    return {"name": name, "priority": spec.get("priority"), "modelTargets": targets}
