"""Kubernetes object names, checked before any of them reaches the API server.

Namespaces are RFC 1123 labels (at most 63 characters); Deployment and HPA names are RFC 1123
subdomains (at most 253). A name that is neither is refused with the reason: it cannot name an
object, and letting it through would put caller text into an API path.
"""

from __future__ import annotations

import re

__all__ = ["MAX_SERVER_NAME", "dns_label_problem", "dns_subdomain_problem", "server_name_problem"]

#: the longest server name (a Deployment's name at most; the messages between the pod's
#: containers carry no longer one)
MAX_SERVER_NAME = 253

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def dns_label_problem(name: object, what: str = "namespace") -> str | None:
    """None when ``name`` is an RFC 1123 label, else why not."""
    if not isinstance(name, str) or not name:
        return f"{what} must be a non-empty string"
    if len(name) > 63 or _LABEL.fullmatch(name) is None:
        return f"{what} {name[:80]!r} is not a DNS label (RFC 1123: a-z, 0-9, '-', at most 63)"
    return None


def dns_subdomain_problem(name: object, what: str = "name") -> str | None:
    """None when ``name`` is an RFC 1123 subdomain, else why not."""
    if not isinstance(name, str) or not name:
        return f"{what} must be a non-empty string"
    if len(name) > 253 or _SUBDOMAIN.fullmatch(name) is None:
        return f"{what} {name[:80]!r} is not a DNS subdomain (RFC 1123, at most 253 characters)"
    return None


def server_name_problem(name: object) -> str | None:
    """None when ``name`` can name a server (any text, as Inferno's samples' ``Premium-llama_7b``,
    of at most :data:`MAX_SERVER_NAME` characters, that UTF-8 can carry: no lone surrogate),
    else why not. Not a string: the data layer names that."""
    if not isinstance(name, str):
        return None
    if len(name) > MAX_SERVER_NAME:
        return f"server name {name[:80]!r}… is longer than {MAX_SERVER_NAME} characters"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"server name {name[:80]!r} is not valid text (a lone surrogate)"
    return None
