"""The service-class file's rows (``serviceclass-data.json``) as
:class:`~inferno.system.ServiceClass`: targets per model (means, percentiles, throughput) and
priorities. Part of :mod:`.system_files`, which reads the whole system."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..system import ServiceClass, Target
from ._json import Node
from ._rows import frozen, rows
from .limits import MAX_COUNT, MAX_TIME_MS, MAX_TPS, MIN_TIME_MS

__all__ = ["DEFAULT_PRIORITY", "service_classes"]

DEFAULT_PRIORITY = 100


_PERCENTILE = re.compile(r"p(\d+(?:\.\d*)?)")


def _quantile(node: Node, *, allow_mean: bool = True) -> float | None:
    """A quantile given as 0.95, "p95" or "mean" (None)."""
    means = ', or "mean"' if allow_mean else ""
    expected = f'expected a quantile in (0, 1) such as 0.95, or "p95", "p99"{means}'
    if isinstance(node.value, str):
        text = node.value.strip().casefold()
        if text == "mean" and allow_mean:
            return None
        match = _PERCENTILE.fullmatch(text)
        if match is None or not 0 < float(match.group(1)) < 100:
            raise node.error(f"{expected}; got {node.value!r}")
        return float(match.group(1)) / 100
    value = node.as_number(maximum=1.0)
    if not 0 < value < 1:
        raise node.error(f"{expected}; got {value!r}")
    return value


def _slo(node: Node, key: str) -> float | None:
    """An SLO value; 0 (or absent) means no target, as in Go."""
    if key == "slo-tps":
        return node.number(key, None, minimum=0, maximum=MAX_TPS) or None
    return (
        node.number(key, None, minimum=0, maximum=MAX_TIME_MS, least_positive=MIN_TIME_MS) or None
    )


def _optional_quantile(node: Node, key: str) -> float | None:
    found = node.find(key)
    return None if found is None else _quantile(found)


def _target(model: str, node: Node) -> Target:
    ttw_node = node.find("slo-ttw-quantile")
    ttw_quantile = 0.95 if ttw_node is None else _quantile(ttw_node, allow_mean=False)
    assert ttw_quantile is not None
    target = Target(
        model=model,
        itl=_slo(node, "slo-itl"),
        ttft=_slo(node, "slo-ttft"),
        ttw=_slo(node, "slo-ttw"),
        tps=_slo(node, "slo-tps"),
        latency=_slo(node, "slo-latency"),
        ttft_quantile=_optional_quantile(node, "slo-ttft-quantile"),
        latency_quantile=_optional_quantile(node, "slo-latency-quantile"),
        ttw_quantile=ttw_quantile,
    )
    if all(v is None for v in (target.itl, target.ttft, target.ttw, target.tps, target.latency)):
        raise node.data_error(
            f"no SLO target for model {model!r}: give at least one of slo-itl, slo-ttft, slo-ttw,"
            " slo-latency, slo-tps (0 means no target)"
        )
    return target


@dataclass
class _ClassDraft:
    """A service class while its rows are merged."""

    priority: int | None = None
    targets: dict[str, Target] = field(default_factory=dict)


def _row_targets(row: Node) -> list[tuple[Node, str]]:
    """The (target node, model) pairs of a class row: flat (G0) and/or ``modelTargets``."""
    pairs: list[tuple[Node, str]] = []
    if row.has("model"):
        pairs.append((row, row.string("model", nonempty=True)))
    if row.has("modelTargets"):
        entries = [entry.as_object() for entry in row.array("modelTargets")]
        if not entries:
            raise row.member("modelTargets").data_error("a service class needs at least one target")
        pairs.extend((entry, entry.string("model", nonempty=True)) for entry in entries)
    if not pairs:
        raise row.error("a service class row needs 'model' (with its slo-* keys) or 'modelTargets'")
    return pairs


def service_classes(file: Node) -> dict[str, ServiceClass]:
    drafts: dict[str, _ClassDraft] = {}
    for row in rows(file, "serviceClasses"):
        name = row.string("name", nonempty=True)
        draft = drafts.setdefault(name, _ClassDraft())
        priority = row.integer("priority", None, minimum=1, maximum=MAX_COUNT)
        if priority is not None:
            if draft.priority is not None and draft.priority != priority:
                raise row.member("priority").data_error(
                    f"service class {name!r} is given priorities {draft.priority} and {priority}"
                )
            draft.priority = priority
        for node, model in _row_targets(row):
            if model in draft.targets:
                raise node.data_error(f"duplicate target of model {model!r} in class {name!r}")
            draft.targets[model] = _target(model, node)
    return {
        name: ServiceClass(
            name=name,
            priority=DEFAULT_PRIORITY if draft.priority is None else draft.priority,
            targets=frozen(draft.targets),
        )
        for name, draft in drafts.items()
    }
