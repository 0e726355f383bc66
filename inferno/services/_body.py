"""Reading a request body: bounded in size, in nesting and in shape, or a 4xx that says why.

FastAPI would answer 422 for a shape error and 500 for JSON nested deeper than Python's
recursion limit; the routes read their bodies here instead: more than ``limit`` bytes is 413,
malformed or too deeply nested JSON is 400, and a body that does not validate is 400 naming the
field (``servers[3].name: ...``).
"""

from __future__ import annotations

import json
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from ._common import error
from ._gc import gc_paused

__all__ = ["read_body", "validation_message"]

M = TypeVar("M", bound=BaseModel)


def validation_message(exc: ValidationError, limit: int = 5) -> str:
    """``loc: message`` for the first ``limit`` errors."""
    parts = []
    for e in exc.errors()[:limit]:
        where = "".join(
            f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
            for i, p in enumerate(e.get("loc", ()))
        )
        parts.append(f"{where or 'body'}: {e.get('msg', 'invalid')}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


async def read_body(request: Request, model: type[M], limit: int) -> M | JSONResponse:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return error(413, f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return error(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    with gc_paused():  # a large body's objects trigger collections that only traverse them
        return _parsed(raw, model)


def _parsed(raw: bytes, model: type[M]) -> M | JSONResponse:
    try:
        obj = json.loads(raw)
    except RecursionError:
        return error(400, "malformed JSON: nested too deeply")
    except ValueError as exc:
        return error(400, f"malformed JSON: {exc}")
    try:
        return model.model_validate(obj)
    except RecursionError:
        return error(400, "malformed JSON: nested too deeply")
    except ValidationError as exc:
        return error(400, f"invalid {model.__name__}: {validation_message(exc)}")
