"""The Kubernetes adapter: the only package that imports the ``kubernetes`` client.

:class:`ClusterAPI` is what the rest of Inferno needs from a cluster; :class:`KubeCluster`
implements it with the official client (sync), :func:`connect` builds one from the in-cluster
service account or a kubeconfig. Every API failure surfaces as :class:`ClusterError` with the HTTP
status, so callers can report it per object and carry on.
"""

from __future__ import annotations

from ._api import ClusterAPI, ClusterError, Event
from ._client import KubeCluster, connect

__all__ = ["ClusterAPI", "ClusterError", "Event", "KubeCluster", "connect"]
