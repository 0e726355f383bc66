"""ServiceClass custom resources (``serviceclasses.inferno.ai``) as the solver's service classes.

The CRD's schema checks shapes and ranges; :func:`problems` checks what a schema cannot (a model
listed twice, a quantile without its target, a throughput class mixed with latency targets), and
:func:`class_row` turns a resource into a row of Inferno's ``serviceclass-data.json``;
:func:`class_status` is what the controller writes back to a resource's ``status`` after a cycle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..settings import PolicyOptions, SettingsError
from .inventory import ManagedDeployment

__all__ = ["POLICY_KEYS", "TARGET_KEYS", "class_policy", "class_row", "class_status", "problems"]

#: CRD ``spec.policy`` field -> the control policy setting it overrides for the class's servers
POLICY_KEYS = {
    "headroom": "headroom",
    "marginZ": "margin_z",
    "startupTime": "startup_time",
    "scaleDownWindow": "stabilization_window",
    "maxScaleUpPods": "max_scale_up_pods",
    "maxScaleUpPercent": "max_scale_up_percent",
    "maxScaleDownPods": "max_scale_down_pods",
    "maxScaleDownPercent": "max_scale_down_percent",
    "switchMinSaving": "switch_min_saving",
    "switchDelay": "switch_delay",
}
_INTEGER_POLICY = {"maxScaleUpPods", "maxScaleDownPods"}


def class_policy(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The control policy settings ``spec.policy`` overrides, by setting name (ValueError naming
    the field when one is unknown or out of range)."""
    raw = spec.get("policy")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError("spec.policy must be an object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = POLICY_KEYS.get(str(key))
        if name is None:
            known = ", ".join(POLICY_KEYS)
            raise ValueError(f"spec.policy.{key} is not a setting a class may override ({known})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"spec.policy.{key} must be a number, got {value!r}")
        if key in _INTEGER_POLICY and not isinstance(value, int):
            raise ValueError(f"spec.policy.{key} must be an integer, got {value!r}")
        checked: dict[str, Any] = {name: value}
        try:
            PolicyOptions(**checked)
        except SettingsError as exc:
            raise ValueError(f"spec.policy.{key}: {exc}") from None
        out[name] = value
    return out


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
    try:
        class_policy(spec)
    except ValueError as exc:
        out.append(str(exc))
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
    out: dict[str, Any] = {"name": name, "priority": spec.get("priority"), "modelTargets": targets}
    overrides = class_policy(spec) if spec.get("policy") is not None else {}
    if overrides:
        out["policy"] = overrides  # read by the control policy; the solver ignores it
    return out


#: the CRD's mean targets -> (the solution JSON's prediction, the quantile field that replaces
#: the mean, the percentile prefix in the solution JSON)
_PREDICTED = {
    "itlMs": ("itlAverage", None, None),
    "ttftMs": ("ttftAverage", "ttftQuantile", "ttft"),
    "ttwMs": ("waitAverage", "ttwQuantile", "wait"),
    "latencyMs": ("latencyAverage", "latencyQuantile", "latency"),
}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _model_targets(service_class: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """model -> its targets in the CRD's terms (``itlMs``...), from a ``class_row``."""
    back = {data_key: key for key, data_key in TARGET_KEYS.items()}
    out: dict[str, dict[str, Any]] = {}
    for row in service_class.get("modelTargets") or []:
        if isinstance(row, Mapping) and row.get("model"):
            out[str(row["model"])] = {back[k]: v for k, v in row.items() if k in back}
    return out


def _check(target: Mapping[str, Any], allocation: Mapping[str, Any]) -> list[str]:
    """The targets the allocation's predictions miss (a target without a prediction in the
    solution, e.g. a throughput or a quantile not computed, is left to the solver's sizing)."""
    missed = []
    for key, (mean_key, quantile_key, stat) in _PREDICTED.items():
        goal = _number(target.get(key))
        if goal is None:
            continue
        quantile = _number(target.get(quantile_key)) if quantile_key else None
        if quantile is not None:
            field = f"{stat}P{round(quantile * 100):d}"
            what = f"p{round(quantile * 100):d} {stat}"
        else:
            field, what = mean_key, f"mean {mean_key.removesuffix('Average')}"
        value = _number(allocation.get(field))
        if value is not None and value > goal * (1 + 1e-9):
            missed.append(f"predicted {what} {value:g} ms > target {goal:g} ms")
    return missed


def class_status(
    service_class: Mapping[str, Any],
    deployments: Sequence[ManagedDeployment],
    solution: Mapping[str, Any],
    *,
    now: dt.datetime,
) -> dict[str, Any]:
    """The ``status`` of a ServiceClass after a cycle: one entry per managed Deployment of the
    class, with the allocation decided for its server, the predicted latencies there, the class's
    target for its model, and whether the prediction meets it.

    ``service_class`` is a :func:`class_row`; ``solution`` is the optimizer's solution JSON
    (``allocations``, ``unallocated``). A server left unallocated keeps its current allocation
    (the actuator never scales it to zero): it is reported with that allocation, no prediction,
    ``meetsTarget: false`` and the reason.
    """
    name = str(service_class.get("name", ""))
    targets = _model_targets(service_class)
    allocations: Mapping[str, Any] = solution.get("allocations") or {}
    unallocated: Mapping[str, Any] = solution.get("unallocated") or {}
    servers = []
    for d in sorted(deployments, key=lambda x: (x.namespace, x.name)):
        if d.service_class.casefold() != name.casefold():  # as the optimizer matches them
            continue
        target = targets.get(d.model, {})
        allocation = allocations.get(d.server)
        entry: dict[str, Any] = {
            "server": d.server,
            "namespace": d.namespace,
            "deployment": d.name,
            "model": d.model,
        }
        reasons: list[str] = []
        if not isinstance(allocation, Mapping):
            entry["accelerator"] = d.accelerator
            entry["replicas"] = d.replicas
            entry["predicted"] = {"itlMs": None, "ttftMs": None, "waitMs": None}
            reasons.append(str(unallocated.get(d.server) or "not in the solution"))
        else:
            entry["accelerator"] = str(allocation.get("accelerator", ""))
            entry["replicas"] = int(allocation.get("numReplicas") or 0)
            predicted: dict[str, Any] = {
                "itlMs": _number(allocation.get("itlAverage")),
                "ttftMs": _number(allocation.get("ttftAverage")),
                "waitMs": _number(allocation.get("waitAverage")),
            }
            if _number(allocation.get("latencyAverage")) is not None:
                predicted["latencyMs"] = _number(allocation.get("latencyAverage"))
            entry["predicted"] = predicted
            if allocation.get("status") == "partial":
                reasons.append("granted fewer replicas than its targets need")
            if not target:
                reasons.append(f"the class has no target for model {d.model!r}")
            reasons += _check(target, allocation)
        entry["target"] = dict(target)
        entry["meetsTarget"] = not reasons
        if reasons:
            entry["reason"] = "; ".join(reasons)
        servers.append(entry)
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meeting = sum(1 for e in servers if e["meetsTarget"])
    return {
        "servers": servers,
        "lastCycle": stamp,
        # what `kubectl get serviceclasses` shows (a printer column cannot count a list)
        "modelCount": len(targets),
        "summary": f"{meeting}/{len(servers)} meet targets",
    }
