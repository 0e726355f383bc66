"""End to end, the opt-in MIG application (manifests/optional/mig-apply.yaml) on a real API
server, as the manifests' ServiceAccount: the geometries of samples/gpulets land on the node an
administrator opted in, and the admission policy refuses every other change to a node.

Node objects are created by the test (no kubelet is needed: only their labels are used) and
deleted at the end, with the optional manifest and the namespace it needs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from inferno.cluster.mig_nodes import GPU_COUNT, MIG_CONFIG, MIG_MANAGED
from inferno.control.mig import CONFIG_KEY, MigOptions, apply_mig
from inferno.data import load_system
from inferno.data.solution_json import solution_to_json
from inferno.k8s import connect
from inferno.solver import solve

from .conftest import MANIFESTS, ROOT, Installed, Kubectl, service_account_kubeconfig

pytestmark = pytest.mark.skipif(
    not os.environ.get("KUBECONFIG"),
    reason="end-to-end: set KUBECONFIG to a disposable cluster (kind, minikube) to run",
)

OPTIONAL = MANIFESTS / "optional" / "mig-apply.yaml"
NAMESPACE = "gpu-operator"
MANAGED_NODE = "inferno-e2e-a100-managed"
FOREIGN_NODE = "inferno-e2e-a100-foreign"
A100 = "NVIDIA-A100-SXM4-80GB"


def _node(name: str, managed: bool) -> dict[str, Any]:
    labels = {"nvidia.com/gpu.product": A100, GPU_COUNT: "8"}
    if managed:
        labels[MIG_MANAGED] = "true"
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


@pytest.fixture
def mig_ready(kubectl: Kubectl, installed: Installed, tmp_path: Path) -> Iterator[Path]:
    """The optional manifest applied, two GPU nodes created; the ServiceAccount's kubeconfig."""
    had_namespace = kubectl.exists("namespace", NAMESPACE)
    try:
        if not had_namespace:
            kubectl.run("create", "namespace", NAMESPACE)
        kubectl.apply(OPTIONAL)
        for name, managed in ((MANAGED_NODE, True), (FOREIGN_NODE, False)):
            kubectl.run("create", "-f", "-", stdin=json.dumps(_node(name, managed)))
        yield service_account_kubeconfig(kubectl, tmp_path)
    finally:
        kubectl.run("delete", "node", MANAGED_NODE, FOREIGN_NODE, "--ignore-not-found", check=False)
        kubectl.delete(OPTIONAL)
        if not had_namespace:
            kubectl.run("delete", "namespace", NAMESPACE, "--ignore-not-found", check=False)


def _patch(kubectl: Kubectl, kubeconfig: Path, node: str, labels: Mapping[str, str | None]) -> str:
    """The ServiceAccount's server-side dry run of a merge patch of ``node``'s labels (a dry run
    changes nothing, and runs the admission policies): its error, "" if accepted."""
    body = json.dumps({"metadata": {"labels": dict(labels)}})
    proc = kubectl.run(
        "--kubeconfig", str(kubeconfig), "patch", "node", node, "--type", "merge", "-p", body,
        "--dry-run=server", check=False,
    )  # fmt: skip
    return proc.stderr if proc.returncode != 0 else ""


def _refused(
    kubectl: Kubectl, kubeconfig: Path, node: str, labels: Mapping[str, str | None], why: str
) -> str:
    """The policy's refusal of that patch, waiting up to 20 s for the policy to load."""
    deadline = time.monotonic() + 20
    while True:
        error = _patch(kubectl, kubeconfig, node, labels)
        if why in error or time.monotonic() > deadline:
            return error
        time.sleep(1)


def test_geometries_land_on_the_opted_in_node_only(kubectl: Kubectl, mig_ready: Path) -> None:
    system = load_system(ROOT / "samples" / "gpulets")
    solution = solution_to_json(solve(system), system)
    api = connect(kubeconfig=str(mig_ready))
    deadline = time.monotonic() + 20
    while True:  # the new bindings reach the authorizer's cache within seconds
        report = apply_mig(api, solution, MigOptions(namespace=NAMESPACE, max_nodes=5))
        assert report is not None
        if report["applied"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not report["errors"], report
    assert [c["node"] for c in report["applied"]] == [MANAGED_NODE]
    live = kubectl.json("get", "node", MANAGED_NODE)["metadata"]["labels"]
    config = report["applied"][0]["to"]
    assert live[MIG_CONFIG] == config
    foreign = kubectl.json("get", "node", FOREIGN_NODE)["metadata"]["labels"]
    assert MIG_CONFIG not in foreign
    cm = kubectl.json("get", "configmap", "inferno-mig-parted-config", "-n", NAMESPACE)
    doc = json.loads(cm["data"][CONFIG_KEY])
    enabled = [e for e in doc["mig-configs"][config] if e["mig-enabled"]]
    a100 = solution["layout"]["A100-80GB"]["migConfig"]
    assert sum(len(e["devices"]) for e in enabled) == len(a100)
    # the admission policy: nothing but the MIG label, and only on an opted-in node
    only_label = "may only change a node's nvidia.com/mig.config label"
    only_managed = "may only change nodes labelled inferno.ai/mig-managed=true"
    poison = {"inferno-e2e": "poisoned"}
    assert only_label in _refused(kubectl, mig_ready, MANAGED_NODE, poison, only_label)
    foreign_mig = {MIG_CONFIG: "all-disabled"}
    assert only_managed in _refused(kubectl, mig_ready, FOREIGN_NODE, foreign_mig, only_managed)
    opt_out = {MIG_MANAGED: None}
    assert only_managed in _refused(kubectl, mig_ready, MANAGED_NODE, opt_out, only_managed)
    assert _patch(kubectl, mig_ready, MANAGED_NODE, {MIG_CONFIG: "all-disabled"}) == ""
