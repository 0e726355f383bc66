"""Optimize: the static data (accelerators, profiles, capacity, solver options) plus what the
collector found, solved into decisions."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cluster.decisions import decision_to_json, decisions_from_solution
from ..cluster.plan import Decision
from ..data import SYSTEM_FILES, system_from_documents
from ..data.solution_json import solution_to_json
from ..errors import InputError
from ..solver import solve

__all__ = ["STATIC_FILES", "OptimizeResult", "optimize", "read_static_data"]

logger = logging.getLogger(__name__)

#: files read from the static data (the ConfigMap); servers come from the cluster
STATIC_FILES = tuple(f for f in SYSTEM_FILES if f != "server-data.json")


def read_static_data(path: str | Path) -> dict[str, Any]:
    """The static JSON documents present in ``path`` (InputError if unreadable or malformed)."""
    root = Path(path)
    if not root.is_dir():
        raise InputError("static data directory not found", source=str(root))
    docs: dict[str, Any] = {}
    for name in STATIC_FILES:
        f = root / name
        if not f.is_file():
            continue
        try:
            docs[name] = json.loads(f.read_text(encoding="utf-8-sig"))
        except ValueError as exc:
            raise InputError(f"malformed JSON: {exc}", source=str(f)) from None
        except OSError as exc:
            raise InputError(f"cannot read: {exc}", source=str(f)) from None
    return docs


@dataclass(frozen=True)
class OptimizeResult:
    solution: dict[str, Any]  # Inferno's solution JSON (+ status, unallocated)
    decisions: list[Decision]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "solution": self.solution,
            "decisions": [decision_to_json(d) for d in self.decisions],
            "notes": self.notes,
        }


def optimize(
    static: Mapping[str, Any],
    servers: list[dict[str, Any]],
    service_classes: list[dict[str, Any]],
    *,
    gpu_node_label: str = "nvidia.com/gpu.product",
    origin: str = "static data",
    request: str = "request",
) -> OptimizeResult:
    """Solve. Service classes from the cluster replace ``serviceclass-data.json`` when there are
    any. A server of an unknown class, or whose current accelerator is unknown, is not an error
    for the others: it gets a decision "not allocated" with the reason (and keeps what it has).

    Errors in the static documents name ``origin/<file>``; errors in the servers or classes given
    name ``request`` and the server's index in the list given."""
    docs = dict(static)
    if service_classes:
        docs["serviceclass-data.json"] = {"serviceClasses": service_classes}
    known_classes = _class_names(docs.get("serviceclass-data.json"))
    known_accs = {
        str(a.get("name"))
        for a in (docs.get("accelerator-data.json") or {}).get("accelerators") or []
        if isinstance(a, Mapping)
    }
    usable: list[dict[str, Any]] = []
    positions: list[int] = []  # index in ``servers`` of each usable row
    left_out: list[Decision] = []
    notes: list[str] = []
    canonical = {name.casefold(): name for name in known_classes}
    for position, row in enumerate(servers):
        cls = str(row.get("class") or "Free")
        # class labels match ServiceClass names case-insensitively (resource names are lowercase)
        if cls.casefold() in canonical:
            cls = canonical[cls.casefold()]
            row = {**row, "class": cls}
        if cls not in known_classes:
            known = ", ".join(sorted(known_classes)) or "none"
            reason = f"unknown service class {cls!r} (known: {known})"
            left_out.append(Decision(server=str(row.get("name")), allocated=False, reason=reason))
            continue
        current = dict(row.get("currentAlloc") or {})
        acc = current.get("accelerator")
        if acc and acc not in known_accs:
            notes.append(
                f"server {row.get('name')}: current accelerator {acc!r} is unknown; ignored"
            )
            current["accelerator"] = ""
            row = {**row, "currentAlloc": current}
        usable.append(row)
        positions.append(position)
    docs["server-data.json"] = {"servers": usable}
    sources = {"server-data.json": request}
    if service_classes:
        sources["serviceclass-data.json"] = request
    try:
        system = system_from_documents(docs, origin, sources)
    except InputError as exc:
        if exc.source == request and exc.path:
            # name the server by its index in the request, not in the filtered list
            exc.path = _SERVER_INDEX.sub(lambda m: f"$.servers[{positions[int(m[1])]}]", exc.path)
        raise
    solution = solve(system)
    decisions = decisions_from_solution(solution, system, gpu_node_label) + left_out
    body = solution_to_json(solution, system)
    for d in left_out:
        body["unallocated"][d.server] = d.reason
    if left_out and body["status"] in ("optimal", "feasible"):
        body["status"] = "partially-allocated"
    return OptimizeResult(body, decisions, notes)


_SERVER_INDEX = re.compile(r"^\$\.servers\[(\d+)\]")


def _class_names(doc: object) -> set[str]:
    if not isinstance(doc, Mapping):
        return set()
    rows = doc.get("serviceClasses") or []
    return {str(r.get("name")) for r in rows if isinstance(r, Mapping) and r.get("name")}
