"""Optimize: the static data (accelerators, profiles, capacity, solver options) plus what the
collector found, solved into decisions."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..cluster.decisions import decision_to_json, decisions_from_solution
from ..cluster.names import server_name_problem
from ..cluster.plan import Decision
from ..data import SYSTEM_FILES, system_from_documents
from ..data.solution_json import solution_to_json
from ..errors import InputError
from ..solver import SizingMemo, Solution, solve
from ..system import PerformanceModel, System
from ..tuning import PairKey, Theta, with_tuned_profiles

__all__ = [
    "STATIC_FILES",
    "OptimizeResult",
    "Prepared",
    "optimize",
    "prepare",
    "read_static_data",
    "solve_prepared",
]

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
    #: the tuned (α, β) the solve used, by (model, accelerator)
    applied: dict[PairKey, Theta] = field(default_factory=dict)
    #: tuned pairs the feasibility guard put back to their base profile, and why
    fallbacks: dict[PairKey, str] = field(default_factory=dict)
    tuning: dict[str, Any] | None = None  # the optimizer service's tuning section
    #: the tuner's filters after this solve (the controller keeps them across restarts)
    tuner_state: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "solution": self.solution,
            "decisions": [decision_to_json(d) for d in self.decisions],
            "notes": self.notes,
        }
        if self.tuning is not None:
            body["tuning"] = self.tuning
        return body


@dataclass(frozen=True)
class Prepared:
    """The system to solve (static data + the servers and classes given), the servers left out
    before solving (unknown class) and the notes so far."""

    system: System
    left_out: list[Decision]
    notes: list[str]


def prepare(
    static: Mapping[str, Any],
    servers: list[dict[str, Any]],
    service_classes: list[dict[str, Any]],
    *,
    origin: str = "static data",
    request: str = "request",
    model: str = "inferno",
) -> Prepared:
    """Validate and build the system :func:`optimize` solves (see there); InputError if the
    documents or the request are unusable."""
    default_model = PerformanceModel(model)
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
    seen: set[str] = set()
    # a row is copied only where it changes (a class spelt in another case, an unknown current
    # accelerator): the rows are read, never written, from here on
    for position, raw in enumerate(servers):
        if type(raw) is dict:
            row: dict[str, Any] = raw
        elif isinstance(raw, Mapping):
            row = dict(raw)
        else:
            raise InputError("expected an object", source=request, path=f"$.servers[{position}]")
        # a name no decision can carry, or one already decided: left out, said in the notes
        # (a decision of its own would be unusable, or contradict the first row's)
        name = row.get("name")
        bad_name = server_name_problem(name)
        if bad_name is None and isinstance(name, str) and name in seen:
            bad_name = f"duplicate server name {name!r} (its first row is decided)"
        if bad_name is not None:
            notes.append(f"$.servers[{position}] left out: {bad_name}")
            logger.warning("optimize: $.servers[%d] left out: %s", position, bad_name)
            continue
        if isinstance(name, str):
            seen.add(name)
        given = row.get("class")
        cls = str(given or "Free")
        # class labels match ServiceClass names case-insensitively (resource names are lowercase)
        spelt = canonical.get(cls.casefold())
        if spelt is not None:
            cls = spelt
            if given != cls:
                row = {**row, "class": cls}
        if cls not in known_classes:
            known = ", ".join(sorted(known_classes)) or "none"
            reason = f"unknown service class {cls!r} (known: {known})"
            left_out.append(Decision(server=str(row.get("name")), allocated=False, reason=reason))
            continue
        current = row.get("currentAlloc")
        acc = current.get("accelerator") if isinstance(current, Mapping) else None
        if acc and acc not in known_accs and isinstance(current, Mapping):
            notes.append(
                f"server {row.get('name')}: current accelerator {acc!r} is unknown; ignored"
            )
            row = {**row, "currentAlloc": {**current, "accelerator": ""}}
        usable.append(row)
        positions.append(position)
    sources = {"server-data.json": request}
    if service_classes:
        sources["serviceclass-data.json"] = request
    # a server whose row is unusable is left out with the reason, and the rest are decided:
    # one bad label must not stop every server (up to MAX_LEFT_OUT of them)
    while True:
        docs["server-data.json"] = {"servers": usable}
        try:
            system = system_from_documents(docs, origin, sources, model=default_model)
            break
        except InputError as exc:
            match = _SERVER_INDEX.match(exc.path or "") if exc.source == request else None
            if match is None or int(match[1]) >= len(usable) or len(left_out) >= MAX_LEFT_OUT:
                if exc.source == request and exc.path:
                    # name the server by its index in the request, not in the filtered list
                    exc.path = _SERVER_INDEX.sub(
                        lambda m: f"$.servers[{positions[int(m[1])]}]", exc.path
                    )
                raise
            i = int(match[1])
            where = _SERVER_INDEX.sub(f"$.servers[{positions[i]}]", exc.path or "")
            name = usable[i].get("name")
            reason = f"unusable server data: {where}: {exc.problem}"
            left_out.append(Decision(server=str(name)[:253], allocated=False, reason=reason))
            logger.warning("optimize: server %r left out: %s", name, reason)
            del usable[i]
            del positions[i]
    return Prepared(system, left_out, notes)


def _guarded_solve(
    system: System, tuned: Mapping[PairKey, Theta], memo: SizingMemo | None = None
) -> tuple[Solution, System, dict[PairKey, Theta], dict[PairKey, str], list[str]]:
    """Solve with the tuned profiles, under the feasibility guard: a server the base profiles
    allocate but the tuned ones leave unallocated gets its model's base profiles back (every
    tuned pair of that model), and the system is solved again; if that still leaves such a
    server, the base profiles are used for everything. Returns the solution, the system it
    solved, the tuned pairs applied, the pairs put back (with why) and notes."""
    applied = dict(tuned)
    solution = solve(with_tuned_profiles(system, applied), memo=memo)
    if not solution.unallocated:
        return solution, with_tuned_profiles(system, applied), applied, {}, []
    base = solve(system, memo=memo)
    lost = sorted(s for s in solution.unallocated if s in base.allocations)
    if not lost:
        return solution, with_tuned_profiles(system, applied), applied, {}, []
    model_of = {srv.name: srv.model for srv in system.servers}
    fallbacks: dict[PairKey, str] = {}
    notes: list[str] = []
    for server in lost:
        pairs = sorted(k for k in applied if k[0] == model_of[server])
        why = (
            f"with the tuned profile(s) server {server} is not allocated "
            f"({solution.unallocated[server].reason}); the base profile allocates it"
        )
        for key in pairs:
            fallbacks.setdefault(key, why)
            applied.pop(key, None)
        notes.append(
            f"tuning: {why}: base profile used for {model_of[server]} on "
            + (", ".join(k[1] for k in pairs) or "no tuned accelerator")
        )
    solution = solve(with_tuned_profiles(system, applied), memo=memo)
    still = sorted(s for s in solution.unallocated if s in base.allocations)
    if still:
        why = f"servers {', '.join(still)} still unallocated with the remaining tuned profiles"
        for key in applied:
            fallbacks.setdefault(key, why)
        notes.append(f"tuning: {why}: the base profiles are used for every model")
        applied = {}
        solution = base
    for note in notes:
        logger.warning("%s", note)
    return solution, with_tuned_profiles(system, applied), applied, fallbacks, notes


#: what a model evaluation can raise on values that passed validation but still break the maths
_NUMERIC = (ArithmeticError, ValueError, MemoryError, RecursionError)


def _isolating_solve(
    system: System, memo: SizingMemo | None = None
) -> tuple[Solution, System, list[Decision]]:
    """Solve; if the model fails on some server's values, find the servers it fails on (each
    solved alone), leave them out with the error as their reason, and solve the rest."""
    try:
        return solve(system, memo=memo), system, []
    except _NUMERIC as first:
        logger.warning(
            "optimize: the solve failed (%s: %s); isolating", type(first).__name__, first
        )
    culprits: list[Decision] = []
    keep = []
    for srv in system.servers:
        try:
            solve(replace(system, servers=(srv,)))
        except _NUMERIC as exc:
            why = f"the model cannot evaluate this server: {type(exc).__name__}: {exc}"
            culprits.append(Decision(server=srv.name, allocated=False, reason=why[:4096]))
        else:
            keep.append(srv)
    rest = replace(system, servers=tuple(keep))
    return solve(rest, memo=memo), rest, culprits


#: the most replicas any decision may carry (a larger one is a data error, not a plan)
MAX_DECISION_REPLICAS = 1_000_000
_TOO_MANY = "needs more replicas than any decision may carry"


def _bounded(d: Decision) -> Decision:
    if d.allocated and d.replicas > MAX_DECISION_REPLICAS:
        why = f"{_TOO_MANY} ({d.replicas:.3g} > {MAX_DECISION_REPLICAS}): check its load"
        return Decision(server=d.server, allocated=False, reason=why)
    return d


def _with_stays(
    decisions: list[Decision],
    system: System,
    gpu_node_label: str,
    memo: SizingMemo | None = None,
) -> list[Decision]:
    """Each decision that moves a server off its current accelerator, with ``stay``: the
    cheapest decision keeping it there (the server alone, ``keepAccelerator``), which the
    control policy uses while it defers the switch."""
    by_name = {srv.name: srv for srv in system.servers}
    movers = [
        replace(by_name[d.server], keep_accelerator=True)
        for d in decisions
        if d.allocated
        and d.server in by_name
        and by_name[d.server].current.accelerator
        and by_name[d.server].current.accelerator != d.accelerator
    ]
    if not movers:
        return decisions
    try:
        kept = solve(replace(system, servers=tuple(movers)), memo=memo)
    except _NUMERIC as exc:  # the main solve passed: a failure here only loses the option
        logger.warning("optimize: no stay decisions (%s: %s)", type(exc).__name__, exc)
        return decisions
    sub = replace(system, servers=tuple(movers))
    stays = {d.server: d for d in decisions_from_solution(kept, sub, gpu_node_label)}
    return [
        replace(d, stay=_bounded(stays[d.server])) if d.server in stays else d for d in decisions
    ]


def solve_prepared(
    prepared: Prepared,
    *,
    gpu_node_label: str = "nvidia.com/gpu.product",
    tuned: Mapping[PairKey, Theta] | None = None,
    memo: SizingMemo | None = None,
) -> OptimizeResult:
    """Solve a prepared system, with the tuned (α, β) of ``tuned`` replacing the base profiles'
    (under the feasibility guard of :func:`_guarded_solve`). ``memo``: the candidates' sizing
    kept across solves (:class:`~inferno.solver.SizingMemo`: the same answers, bit for bit, for
    the servers it was filled with)."""
    system = prepared.system
    notes = list(prepared.notes)
    applied: dict[PairKey, Theta] = {}
    fallbacks: dict[PairKey, str] = {}
    known = {(p.model, p.accelerator) for p in system.profiles}
    usable = {k: v for k, v in (tuned or {}).items() if k in known}
    left_out = list(prepared.left_out)
    if usable:
        solution, system, applied, fallbacks, guard_notes = _guarded_solve(system, usable, memo)
        notes.extend(guard_notes)
    else:
        solution, system, culprits = _isolating_solve(system, memo)
        left_out.extend(culprits)
    decisions = [_bounded(d) for d in decisions_from_solution(solution, system, gpu_node_label)]
    decisions = _with_stays(decisions, system, gpu_node_label, memo)
    too_many = [d for d in decisions if not d.allocated and d.reason.startswith(_TOO_MANY)]
    decisions += left_out
    left_out += too_many
    body = solution_to_json(solution, system)
    for d in left_out:
        body["allocations"].pop(d.server, None)
        body["unallocated"][d.server] = d.reason
    if left_out and body["status"] in ("optimal", "feasible"):
        body["status"] = "partially-allocated"
    return OptimizeResult(body, decisions, notes, applied=applied, fallbacks=fallbacks)


def optimize(
    static: Mapping[str, Any],
    servers: list[dict[str, Any]],
    service_classes: list[dict[str, Any]],
    *,
    gpu_node_label: str = "nvidia.com/gpu.product",
    origin: str = "static data",
    request: str = "request",
    tuned: Mapping[PairKey, Theta] | None = None,
    model: str = "inferno",
) -> OptimizeResult:
    """Solve. Service classes from the cluster replace ``serviceclass-data.json`` when there are
    any. A server of an unknown class, or whose current accelerator is unknown, is not an error
    for the others: it gets a decision "not allocated" with the reason (and keeps what it has).

    ``tuned`` (model, accelerator) → (α, β) replaces those profiles' parameters (online tuning,
    :mod:`inferno.tuning`); a tuned profile that leaves a server unallocated which the base
    profiles allocate is put back to its base (``fallbacks``, and a note).

    ``model`` (``inferno`` or ``accurate``: the services' ``INFERNO_MODEL``) is the performance
    model the servers are sized with unless ``optimizer-data.json`` names one.

    Errors in the static documents name ``origin/<file>``; errors in the servers or classes given
    name ``request`` and the server's index in the list given."""
    prepared = prepare(
        static, servers, service_classes, origin=origin, request=request, model=model
    )
    return solve_prepared(prepared, gpu_node_label=gpu_node_label, tuned=tuned)


#: unusable server rows left out of one request before the request itself is refused
MAX_LEFT_OUT = 64

_SERVER_INDEX = re.compile(r"^\$\.servers\[(\d+)\]")


def _class_names(doc: object) -> set[str]:
    if not isinstance(doc, Mapping):
        return set()
    rows = doc.get("serviceClasses") or []
    return {str(r.get("name")) for r in rows if isinstance(r, Mapping) and r.get("name")}
