"""The service tests. Their fakes and builders (an in-memory cluster, managed Deployments, the
in-process stack of the four apps) are in :mod:`fakes`; re-exported here for the tests' imports."""

from .fakes import (
    AUTH,
    INTERNAL,
    INVOKE,
    NS,
    SAMPLE,
    FakeCluster,
    Stack,
    client,
    closed_port,
    make_deployment,
    sample_cluster,
    service_class,
    settings,
)

__all__ = [
    "AUTH",
    "INTERNAL",
    "INVOKE",
    "NS",
    "SAMPLE",
    "FakeCluster",
    "Stack",
    "client",
    "closed_port",
    "make_deployment",
    "sample_cluster",
    "service_class",
    "settings",
]
