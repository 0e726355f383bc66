"""The admission policies' CEL rules, evaluated (cel-python) on the changes they must allow and
refuse: manifests/25-admission-policy.yaml (Deployments stay managed) and
manifests/optional/mig-apply.yaml (a node's MIG label only, on opted-in nodes). The e2e suite
checks the same walls on a real API server; this runs everywhere."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy.adapter import json_to_cel

ROOT = Path(__file__).resolve().parent.parent
SA = "system:serviceaccount:inferno:inferno"
Doc = dict[str, Any]


def _policy(path: Path) -> Doc:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    (policy,) = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    return dict(policy)


def _allowed(
    policy: Doc, old: Doc, new: Doc, *, user: str = SA, namespace: str = ""
) -> tuple[bool, list[str]]:
    """Whether the policy admits the update ``old`` → ``new`` by ``user`` (its match conditions,
    then every validation); the messages of the validations that fail."""
    env = celpy.Environment()
    activation = {
        "object": json_to_cel(new),
        "oldObject": json_to_cel(old),
        "request": json_to_cel({"userInfo": {"username": user}, "namespace": namespace}),
    }

    def holds(expression: str) -> bool:
        return bool(env.program(env.compile(expression)).evaluate(activation))

    if not all(holds(c["expression"]) for c in policy["spec"].get("matchConditions", [])):
        return True, []
    failed = [v["message"] for v in policy["spec"]["validations"] if not holds(v["expression"])]
    return not failed, failed


# -- nodes: manifests/optional/mig-apply.yaml ---------------------------------------------------

MIG = _policy(ROOT / "manifests" / "optional" / "mig-apply.yaml")
NODE: Doc = {
    "metadata": {
        "name": "gpu-1",
        "labels": {"inferno.ai/mig-managed": "true", "nvidia.com/gpu.count": "8"},
        "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
    },
    "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
}


def _node_change(change: Callable[[Doc], None], old: Doc = NODE) -> Doc:
    new = copy.deepcopy(old)
    change(new)
    return new


def _set_label(name: str, value: str | None) -> Callable[[Doc], None]:
    def apply(node: Doc) -> None:
        if value is None:
            node["metadata"]["labels"].pop(name, None)
        else:
            node["metadata"]["labels"][name] = value

    return apply


def test_the_mig_label_of_an_opted_in_node_may_change() -> None:
    ok, why = _allowed(MIG, NODE, _node_change(_set_label("nvidia.com/mig.config", "inferno-a")))
    assert ok, why
    labelled = _node_change(_set_label("nvidia.com/mig.config", "all-disabled"))
    ok, why = _allowed(MIG, labelled, _node_change(_set_label("nvidia.com/mig.config", "x")))
    assert ok, why


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set_label("inferno-e2e", "poisoned"), "only change a node's nvidia.com/mig.config"),
        (_set_label("nvidia.com/gpu.count", "16"), "only change a node's nvidia.com/mig.config"),
        (_set_label("inferno.ai/mig-managed", None), "labelled inferno.ai/mig-managed=true"),
        (lambda n: n["spec"].update(unschedulable=True), "spec or annotations"),
        (lambda n: n["metadata"]["annotations"].update(x="y"), "spec or annotations"),
    ],
    ids=["another-label", "gpu-count", "opt-out", "spec", "annotation"],
)
def test_every_other_node_change_is_refused(change: Callable[[Doc], None], message: str) -> None:
    ok, why = _allowed(MIG, NODE, _node_change(change))
    assert not ok and any(message in m for m in why), why


def test_a_node_not_opted_in_is_refused_and_others_are_not_judged() -> None:
    foreign = _node_change(_set_label("inferno.ai/mig-managed", None))
    mig = _set_label("nvidia.com/mig.config", "x")
    ok, why = _allowed(MIG, foreign, _node_change(mig, foreign))
    assert not ok and any("inferno.ai/mig-managed=true" in m for m in why)
    # opting a node in is the administrator's: Inferno cannot add the label itself
    ok, _ = _allowed(
        MIG, foreign, _node_change(_set_label("inferno.ai/mig-managed", "true"), foreign)
    )
    assert not ok
    # any other user is not matched
    ok, _ = _allowed(MIG, foreign, _node_change(mig, foreign), user="system:node:gpu-1")
    assert ok


# -- Deployments: manifests/25-admission-policy.yaml ---------------------------------------------

MANAGED = _policy(ROOT / "manifests" / "25-admission-policy.yaml")
DEPLOYMENT: Doc = {
    "metadata": {"name": "dep1", "labels": {"inferno.server.managed": "true"}},
    "spec": {"replicas": 2},
}


def test_a_managed_deployment_may_be_scaled_but_not_in_kube_system() -> None:
    scaled = copy.deepcopy(DEPLOYMENT)
    scaled["spec"]["replicas"] = 5
    assert _allowed(MANAGED, DEPLOYMENT, scaled, namespace="servers")[0]
    assert not _allowed(MANAGED, DEPLOYMENT, scaled, namespace="kube-system")[0]


def test_a_deployment_neither_managed_before_nor_after_is_refused() -> None:
    foreign = copy.deepcopy(DEPLOYMENT)
    foreign["metadata"]["labels"] = {"app": "x"}
    adopted = copy.deepcopy(foreign)
    adopted["metadata"]["labels"]["inferno.server.managed"] = "true"
    assert not _allowed(MANAGED, foreign, adopted, namespace="servers")[0]
    released = copy.deepcopy(DEPLOYMENT)
    released["metadata"]["labels"]["inferno.server.managed"] = "false"
    assert not _allowed(MANAGED, DEPLOYMENT, released, namespace="servers")[0]
    # another user is not matched
    assert _allowed(MANAGED, foreign, adopted, user="admin", namespace="servers")[0]
