"""The Kubernetes adapter: the only package that imports the ``kubernetes`` client.

:class:`ClusterAPI` is what the rest of Inferno needs from a cluster; :class:`KubeCluster`
implements it with the official client (sync), :func:`connect` builds one from the in-cluster
service account or a kubeconfig (both loaded on first use). Every API failure surfaces as
:class:`ClusterError` with the HTTP status, so callers can report it per object and carry on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._api import ClusterAPI, ClusterError, Event

if TYPE_CHECKING:
    from ._client import KubeCluster, connect

__all__ = ["ClusterAPI", "ClusterError", "Event", "KubeCluster", "connect"]


def __getattr__(name: str) -> Any:
    """:class:`KubeCluster` and :func:`connect` load the ``kubernetes`` client (about 0.3 s) on
    first use: commands that only need :class:`ClusterError` or :class:`ClusterAPI` (``inferno
    simulate``'s emulated cluster) do not pay for it."""
    if name in ("KubeCluster", "connect"):
        from . import _client

        return getattr(_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
