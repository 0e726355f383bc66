"""The policy state's ConfigMap through the real client against kmock: created once, then
patched, read back."""

from __future__ import annotations

import asyncio

import kmock as kmock_lib

from inferno.control.forecast import Track
from inferno.control.policy import PolicyState
from inferno.control.state import StateStore
from inferno.k8s import KubeCluster

CM = "v1/configmaps"


async def test_the_state_is_created_then_patched_and_read_back(
    emulator: kmock_lib.KubernetesEmulator, cluster: KubeCluster
) -> None:
    emulator.resources[CM] = kmock_lib.ResourceInfo(
        kind="ConfigMap",
        singular="configmap",
        namespaced=True,
        verbs={"get", "list", "create", "patch"},
    )
    store = StateStore(cluster, "inferno")
    assert await asyncio.to_thread(store.load) == PolicyState()
    first = PolicyState({"a": ((1.0, "A100", 8, 3),)}, {"a": Track(50.0, 0.1, 1.0, 0.02, 3, 49.0)})
    assert await asyncio.to_thread(store.save, first) == ""
    assert await asyncio.to_thread(store.load) == first
    second = PolicyState(
        {"a": ((1.0, "A100", 8, 3), (2.0, "A100", 8, 5)), "b": ((2.0, "H100", 4, 1),)},
        {"a": Track(60.0, 0.2, 2.0, 0.03, 4, 55.0)},
    )
    assert await asyncio.to_thread(store.save, second) == ""  # the create is a 409: patched
    assert await asyncio.to_thread(store.load) == second
    methods = [(r.method.upper(), str(r.url.path)) for r in emulator if "configmaps" in str(r.url)]
    assert ("POST", "/api/v1/namespaces/inferno/configmaps") in methods
    assert ("PATCH", "/api/v1/namespaces/inferno/configmaps/inferno-state") in methods
