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
from .messages import MAX_DELAY_US, MAX_ITEMS

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


def _decision(d: Decision, nested: bool = False) -> dict[str, Any] | None:
    """``DecisionMessage.of(d).wire()``, or None when ``d`` is not of the plain shape: names
    are strings of at most 253 characters, counts ints in 0..1,000,000 (the messages' bounds;
    written out, not called: this runs once per server)."""
    if type(d) is not Decision:
        return None
    server, accelerator, bound = d.server, d.accelerator, d.bound
    replicas, max_batch, gpus = d.replicas, d.max_batch, d.gpus_per_replica
    selector = d.node_selector
    cost = d.cost
    if not (
        type(server) is str
        and len(server) <= _NAME
        and type(accelerator) is str
        and len(accelerator) <= _NAME
        and type(replicas) is int
        and 0 <= replicas <= _COUNT
        and type(max_batch) is int
        and 0 <= max_batch <= _COUNT
        and type(gpus) is int
        and 0 <= gpus <= _COUNT
        and type(d.allocated) is bool
        and type(d.reason) is str
        and type(bound) is str
        and len(bound) <= _NAME
        and (cost is None or (type(cost) is float and math.isfinite(cost)))
        and type(selector) is dict
        and len(selector) <= _SELECTOR_ITEMS
        and type(d.instances) is int
        and 0 <= d.instances <= _COUNT
        and type(d.max_queue_delay_us) is int
        and -1 <= d.max_queue_delay_us <= MAX_DELAY_US
    ):
        return None
    for key, value in selector.items():
        if not (type(key) is str and len(key) <= _NAME and type(value) is str):
            return None
        if len(value) > _NAME:
            return None
    stay: dict[str, Any] | None = None
    if d.stay is not None and not nested:
        stay = _decision(d.stay, nested=True)  # one level: the message drops the stay's own
        if stay is None:
            return None
    return {
        "server": server,
        "accelerator": accelerator,
        "replicas": replicas,
        "maxBatch": max_batch,
        "gpusPerReplica": gpus,
        "nodeSelector": dict(selector),
        "allocated": d.allocated,
        "reason": d.reason[:_TEXT],
        "cost": cost,
        "bound": bound,
        "stay": stay,
        "instances": d.instances,
        "maxQueueDelayUs": d.max_queue_delay_us,
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
