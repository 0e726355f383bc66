"""Who may call what: the invoke token (``/invoke``, ``/report``) and the pod's internal token
(``/collect``, ``/optimize``, ``/update``).

The internal token is generated when the pod starts, by whichever container starts first, into
a file on an emptyDir volume the four containers share (:func:`load_or_create_token`): nothing
outside the pod ever sees it. The invoke token comes from a Secret, as a variable or as a
mounted file (:class:`InvokeToken` re-reads the file when it changes, so rotating the Secret
needs no restart). Comparisons are constant-time.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
from pathlib import Path
from typing import TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel

from ..settings import Settings, SettingsError
from ._body import read_body

__all__ = [
    "InternalGate",
    "InvokeToken",
    "authorized",
    "internal_token",
    "load_or_create_token",
    "unauthorized",
]

M = TypeVar("M", bound=BaseModel)

logger = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16


def authorized(header: str | None, token: str) -> bool:
    """``header`` is ``Bearer <token>`` (constant-time comparison; an empty token never matches)."""
    if not token:
        return False
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def unauthorized(what: str) -> JSONResponse:
    return JSONResponse(
        {"error": f"{what}: a bearer token is required (Authorization: Bearer <token>)"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def load_or_create_token(path: str | Path) -> str:
    """The token in ``path``; if there is none yet, a new random one written there atomically
    (mode 0600: a temporary file hard-linked into place, so two containers starting at once
    agree on one token)."""
    target = Path(path)
    try:
        existing = target.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        raise SettingsError(f"INFERNO_INTERNAL_TOKEN_FILE={str(target)!r}: {exc}") from None
    if existing:
        return existing
    token = secrets.token_urlsafe(32)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token)
        try:
            os.link(tmp, target)
        except FileExistsError:
            pass  # another container was first: use its token
        finally:
            tmp.unlink(missing_ok=True)
        return target.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise SettingsError(f"INFERNO_INTERNAL_TOKEN_FILE={str(target)!r}: {exc}") from None


def internal_token(settings: Settings, *, in_process: bool = False) -> str | None:
    """The pod's internal token; None when authentication is off (``INFERNO_INSECURE``). In one
    process (``in_process``, the all-in-one mode) without a file, a token made in memory."""
    if settings.security.insecure:
        return None
    if settings.security.internal_token_file:
        return load_or_create_token(settings.security.internal_token_file)
    if in_process:
        return secrets.token_urlsafe(32)
    raise SettingsError(
        "INFERNO_INTERNAL_TOKEN_FILE is not set: the containers of the pod authenticate each "
        "other with a token in a shared file (or set INFERNO_INSECURE=true, for development)"
    )


class InvokeToken:
    """The token ``/invoke`` and ``/report`` require: ``INFERNO_INVOKE_TOKEN`` or the file of
    ``INFERNO_INVOKE_TOKEN_FILE`` (re-read when its modification time changes)."""

    def __init__(self, settings: Settings) -> None:
        self.insecure = settings.security.insecure
        self._value = settings.security.invoke_token
        self._path = (
            Path(settings.security.invoke_token_file)
            if settings.security.invoke_token_file
            else None
        )
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        """SettingsError unless a usable token is configured (or authentication is off)."""
        if self.insecure:
            return
        token = self.current()
        if len(token) < MIN_TOKEN_LENGTH:
            where = (
                f"INFERNO_INVOKE_TOKEN_FILE={str(self._path)!r}"
                if self._path is not None
                else "INFERNO_INVOKE_TOKEN"
            )
            raise SettingsError(
                f"{where}: an invoke token of at least {MIN_TOKEN_LENGTH} characters is "
                "required (see docs/security.md), or INFERNO_INSECURE=true for development"
            )

    def current(self) -> str:
        if self._path is None:
            return self._value
        with self._lock:
            try:
                st = self._path.stat()
                stamp = (st.st_mtime_ns, st.st_ino)
                if stamp != self._stamp:
                    self._value = self._path.read_text(encoding="utf-8").strip()
                    self._stamp = stamp
            except OSError as exc:
                logger.warning("invoke token file %s unreadable: %s", self._path, exc)
                return self._value
            return self._value

    def allows(self, request: Request) -> bool:
        return self.insecure or authorized(request.headers.get("authorization"), self.current())


class InternalGate:
    """What every internal route does first: the pod's token (401), then, for a body, its size,
    JSON and shape (413, 400); each refusal counted in ``rejected`` by reason."""

    def __init__(self, token: str | None, rejected: Counter, limit: int) -> None:
        self.token = token
        self.rejected = rejected
        self.limit = limit

    def refuse(self, request: Request, what: str) -> JSONResponse | None:
        """401 unless the request presents the token (None: no authentication)."""
        if self.token is None or authorized(request.headers.get("authorization"), self.token):
            return None
        self.rejected.labels("unauthorized").inc()
        return unauthorized(what)

    async def read(self, request: Request, model: type[M], what: str) -> M | JSONResponse:
        """The request's body as ``model``, or the answer that refuses the request."""
        refused = self.refuse(request, what)
        if refused is not None:
            return refused
        body = await read_body(request, model, self.limit)
        if isinstance(body, JSONResponse):
            self.rejected.labels("too_large" if body.status_code == 413 else "bad_request").inc()
        return body
