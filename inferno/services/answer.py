"""The optimizer's answer as JSON bytes, written straight from the result.

``OptimizeAnswer.of(result).wire()`` validates 10,000 decisions into pydantic models and dumps
them again before the JSON encoder runs (0.3–0.5 s of a 10,000-server answer). The answer built
here is the same JSON value: every decision whose fields are of the plain types and within the
message's bounds (:mod:`inferno.services.messages`) is written as its wire object directly, the
free-form sections (``solution``, ``tuning``, ``tunerState``) go through the same pydantic
conversion as the message's ``Row`` fields, and the whole is encoded by pydantic-core's JSON
writer (the encoder FastAPI's dependency already ships; about 4× the stdlib's speed on this
shape). A result with anything else — a name over its bound, a non-finite cost, a number of
another type — is left to the message path (:func:`answer_body` returns None), which accepts or
refuses it as it always has.
"""

from __future__ import annotations

import math
from typing import Any

import pydantic_core
from pydantic import TypeAdapter

from ..cluster.plan import Decision
from ..control.optimize import OptimizeResult
from .messages import MAX_ITEMS

__all__ = ["answer_body"]

_NAME = 253  # the messages' Name bound
_TEXT = 4096  # Text
_COUNT = 1_000_000  # Count
_SELECTOR_ITEMS = 64

_ROW: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def _row(value: object) -> bytes:
    """A ``Row`` field's JSON as the message writes it (validated, then dumped: non-finite
    numbers become null)."""
    return _ROW.dump_json(_ROW.validate_python(value))


def _name(value: object) -> bool:
    return type(value) is str and len(value) <= _NAME


def _count(value: object) -> bool:
    return type(value) is int and 0 <= value <= _COUNT


def _decision(d: Decision, nested: bool = False) -> dict[str, Any] | None:
    """``DecisionMessage.of(d).wire()``, or None when ``d`` is not of the plain shape."""
    selector = d.node_selector
    cost = d.cost
    if not (
        type(d) is Decision
        and _name(d.server)
        and _name(d.accelerator)
        and _count(d.replicas)
        and _count(d.max_batch)
        and _count(d.gpus_per_replica)
        and type(d.allocated) is bool
        and type(d.reason) is str
        and _name(d.bound)
        and (cost is None or (type(cost) is float and math.isfinite(cost)))
        and type(selector) is dict
        and len(selector) <= _SELECTOR_ITEMS
        and all(_name(k) and _name(v) for k, v in selector.items())
    ):
        return None
    stay: dict[str, Any] | None = None
    if d.stay is not None and not nested:
        stay = _decision(d.stay, nested=True)  # one level: the message drops the stay's own
        if stay is None:
            return None
    return {
        "server": d.server,
        "accelerator": d.accelerator,
        "replicas": d.replicas,
        "maxBatch": d.max_batch,
        "gpusPerReplica": d.gpus_per_replica,
        "nodeSelector": dict(selector),
        "allocated": d.allocated,
        "reason": d.reason[:_TEXT],
        "cost": cost,
        "bound": d.bound,
        "stay": stay,
    }


def answer_body(result: OptimizeResult) -> bytes | None:
    """The JSON of ``OptimizeAnswer.of(result).wire()``, or None (use the message)."""
    if len(result.decisions) > MAX_ITEMS or len(result.notes) > MAX_ITEMS:
        return None
    if not all(type(n) is str for n in result.notes):
        return None
    decisions = []
    for d in result.decisions:
        wire = _decision(d)
        if wire is None:
            return None
        decisions.append(wire)
    try:
        return _write(result, decisions)
    except (ValueError, pydantic_core.PydanticSerializationError):
        return None  # a section the message refuses too (a key not a string), a lone surrogate


def _write(result: OptimizeResult, decisions: list[dict[str, Any]]) -> bytes:
    parts = [b'{"solution":', _row(result.solution), b',"decisions":']
    parts += [pydantic_core.to_json(decisions), b',"notes":']
    parts += [pydantic_core.to_json([n[:_TEXT] for n in result.notes])]
    for key, section in (("tuning", result.tuning), ("tunerState", result.tuner_state)):
        if section is not None:
            parts += [f',"{key}":'.encode(), _row(section)]
    parts.append(b"}")
    return b"".join(parts)
