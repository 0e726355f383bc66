"""The optional manifests (manifests/optional/): valid Kubernetes objects, not applied by
``kubectl apply -f manifests/``, and granting no more than their feature needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ROOT / "manifests" / "optional"
K8S_VERSION = kubernetes_validate.latest_version()


def _docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(OPTIONAL.glob("*.yaml")):
        out += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return out


@pytest.mark.parametrize("item", _docs(), ids=lambda i: f"{i[0]}:{i[1]['kind']}")
def test_optional_objects_validate_against_kubernetes_schemas(
    item: tuple[str, dict[str, Any]],
) -> None:
    validated = kubernetes_validate.validate(item[1], K8S_VERSION, strict=True)
    assert validated == ".".join(K8S_VERSION.split(".")[:2])


def test_a_directory_apply_does_not_reach_them() -> None:
    # kubectl apply -f manifests/ reads the directory's own files, not its subdirectories
    assert not list((ROOT / "manifests").glob("mig*.yaml"))
    assert (OPTIONAL / "mig-apply.yaml").is_file()


def test_mig_apply_grants_nodes_list_and_patch_and_one_configmap() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for _, d in _docs()}
    role = docs[("ClusterRole", "inferno-mig-nodes")]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "patch"]}
    ]
    cm = docs[("Role", "inferno-mig-parted-config")]
    named = [r for r in cm["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["inferno-mig-parted-config"],
            "verbs": ["get", "patch"],
        }
    ]
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        (binding,) = [d for (k, _), d in docs.items() if k == kind]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "inferno", "namespace": "inferno"}
        ]
    policy = docs[("ValidatingAdmissionPolicy", "inferno-mig-label-only")]
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [
        {"apiGroups": [""], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": ["nodes"]}
    ]
    text = " ".join(v["expression"] for v in policy["spec"]["validations"])
    assert "inferno.ai/mig-managed" in text and "nvidia.com/mig.config" in text
    binding = docs[("ValidatingAdmissionPolicyBinding", "inferno-mig-label-only")]
    assert binding["spec"] == {
        "policyName": "inferno-mig-label-only",
        "validationActions": ["Deny"],
    }
