"""The Kubernetes manifests: manifests/ (Inferno itself) and services/yamls/ (sample servers).

Offline: every built-in object is validated against the Kubernetes OpenAPI schemas bundled with
``kubernetes-validate`` (the newest version it ships, strict: unknown fields are errors); every
ServiceClass against the CRD's own schema with ``jsonschema`` (draft 4, the dialect of a CRD's
openAPIV3Schema: ``exclusiveMinimum: true`` is a boolean there, and the ``x-kubernetes-*`` keys
are unknown keywords, which a validator ignores).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonpatch
import jsonschema
import kubernetes_validate
import pytest
import yaml

from inferno.cluster import labels as L
from inferno.cluster.inventory import parse_deployment
from inferno.cluster.plan import Decision, PlanSettings, plan_one
from inferno.data.system_files import system_from_documents
from inferno.settings import Settings, variables

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
SERVICES = ROOT / "services" / "yamls"
SAMPLES = ROOT / "samples" / "large"
GENERATOR = MANIFESTS / "make-configmap.py"

K8S_VERSION = kubernetes_validate.latest_version()
CONTAINERS = ("controller", "collector", "optimizer", "actuator")
CONFIGMAP_FILES = (
    "accelerator-data.json",
    "capacity-data.json",
    "model-data.json",
    "optimizer-data.json",
)
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

Doc = dict[str, Any]


# -- loading ------------------------------------------------------------------------------------


@cache
def _docs(directory: Path) -> tuple[tuple[str, Doc], ...]:
    out = []
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                out.append((path.name, doc))
    return tuple(out)


def manifest_docs() -> list[tuple[str, Doc]]:
    return list(_docs(MANIFESTS))


def service_docs() -> list[tuple[str, Doc]]:
    return list(_docs(SERVICES))


def all_docs() -> list[tuple[str, Doc]]:
    return manifest_docs() + service_docs()


def _id(item: tuple[str, Doc]) -> str:
    name, doc = item
    return f"{name}:{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def find(docs: list[tuple[str, Doc]], kind: str, name: str | None = None) -> list[Doc]:
    return [
        d
        for _, d in docs
        if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[tuple[str, Doc]], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def crd() -> Doc:
    return one(manifest_docs(), "CustomResourceDefinition", "serviceclasses.inferno.ai")


def crd_schema() -> Doc:
    (version,) = crd()["spec"]["versions"]
    schema: Doc = version["schema"]["openAPIV3Schema"]
    return schema


def serviceclass_validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(crd_schema())


def serviceclasses() -> list[Doc]:
    return find(manifest_docs(), "ServiceClass")


def inferno_deployment() -> Doc:
    return one(manifest_docs(), "Deployment", "inferno")


def sample_json(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


# -- every document -----------------------------------------------------------------------------


def test_every_file_has_well_formed_documents() -> None:
    for directory in (MANIFESTS, SERVICES):
        files = sorted(directory.glob("*.yaml"))
        assert files, f"no YAML in {directory}"
        for path in files:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
            assert docs, f"{path.name}: no document"
            for doc in docs:
                assert isinstance(doc, dict), path.name
                assert doc.get("apiVersion") and doc.get("kind"), path.name
                assert doc.get("metadata", {}).get("name"), f"{path.name}: {doc['kind']} unnamed"


@pytest.mark.parametrize(
    "item",
    [item for item in all_docs() if item[1]["kind"] != "ServiceClass"],
    ids=_id,
)
def test_builtin_kinds_validate_against_kubernetes_schemas(item: tuple[str, Doc]) -> None:
    _, doc = item
    validated = kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert validated == ".".join(K8S_VERSION.split(".")[:2])


def test_label_and_annotation_values_are_strings() -> None:
    def maps(doc: Doc) -> Iterator[tuple[str, dict[str, Any]]]:
        meta = doc.get("metadata") or {}
        yield "metadata", meta.get("labels") or {}
        yield "metadata", meta.get("annotations") or {}
        template = ((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}
        yield "template", template.get("labels") or {}
        yield "template", template.get("annotations") or {}

    for item in all_docs():
        for where, mapping in maps(item[1]):
            for key, value in mapping.items():
                assert isinstance(value, str), f"{_id(item)} {where}: {key}={value!r}"


def test_namespaces_and_apply_order() -> None:
    # kubectl applies a directory's files in name order: namespace first, the CRD before its CRs
    names = [p.name for p in sorted(MANIFESTS.glob("*.yaml"))]
    assert names[0] == "00-namespace.yaml"
    assert names.index("10-crd-serviceclass.yaml") < names.index("50-serviceclasses.yaml")
    assert find(manifest_docs(), "Namespace", "inferno")
    assert find(service_docs(), "Namespace", "inferno-servers")
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    for docs, namespace in ((manifest_docs(), "inferno"), (service_docs(), "inferno-servers")):
        for item in docs:
            meta = item[1]["metadata"]
            if item[1]["kind"] in cluster_scoped:
                assert "namespace" not in meta, _id(item)
            else:
                assert meta.get("namespace") == namespace, _id(item)


# -- the ServiceClass CRD -----------------------------------------------------------------------


def test_crd_names_versions_and_columns() -> None:
    spec = crd()["spec"]
    assert spec["group"] == "inferno.ai"
    assert spec["scope"] == "Cluster"
    assert spec["names"] == {
        "kind": "ServiceClass",
        "listKind": "ServiceClassList",
        "plural": "serviceclasses",
        "singular": "serviceclass",
        "shortNames": ["isc"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: (c["type"], c["jsonPath"]) for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Priority": ("integer", ".spec.priority"),
        "Models": ("integer", ".status.modelCount"),
        "Servers": ("string", ".status.summary"),
        "Valid": ("string", '.status.conditions[?(@.type=="Valid")].status'),
        "Age": ("date", ".metadata.creationTimestamp"),
    }


def test_crd_schema_is_structural_and_draft4() -> None:
    schema = crd_schema()
    jsonschema.Draft4Validator.check_schema(schema)
    junctors = ("anyOf", "allOf", "oneOf", "not")
    forbidden_in_junctors = {"type", "description", "default", "additionalProperties", "nullable"}

    def walk(node: Doc, path: str) -> None:
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            assert "type" in node, f"{path}: a structural schema gives every node a type"
        props = node.get("properties") or {}
        for key in junctors:
            branches = node.get(key) or []
            for branch in branches if isinstance(branches, list) else [branches]:
                bad = forbidden_in_junctors & set(branch)
                assert not bad, f"{path}.{key}: {sorted(bad)} not allowed inside {key}"
                for field in branch.get("required", []) + list(branch.get("properties", {})):
                    assert field in props, f"{path}.{key}: {field} is not a property outside {key}"
        if node.get("x-kubernetes-list-type") == "map":
            items = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in items.get("required", []), f"{path}: map key {key} must be required"
        for name, child in props.items():
            walk(child, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    walk(schema, "openAPIV3Schema")
    spec = schema["properties"]["spec"]
    assert schema["required"] == ["spec"]
    assert sorted(spec["required"]) == ["models", "priority"]
    assert schema["properties"]["status"] == {
        "type": "object",
        "description": schema["properties"]["status"].get("description"),
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_cel_rule_and_anyof_name_the_same_targets() -> None:
    items = crd_schema()["properties"]["spec"]["properties"]["models"]["items"]
    (validation,) = items["x-kubernetes-validations"]
    in_rule = set(re.findall(r"has\(self\.(\w+)\)", validation["rule"]))
    in_any_of = {field for branch in items["anyOf"] for field in branch["required"]}
    targets = {"itlMs", "ttftMs", "ttwMs", "latencyMs", "tokensPerSecond"}
    assert in_rule == in_any_of == targets
    assert all(len(branch["required"]) == 1 for branch in items["anyOf"])
    for field in targets:
        prop = items["properties"][field]
        assert (prop["type"], prop["minimum"], prop["exclusiveMinimum"]) == ("number", 0, True)
    for field in ("ttftQuantile", "latencyQuantile", "ttwQuantile"):
        prop = items["properties"][field]
        assert (prop["minimum"], prop["exclusiveMinimum"]) == (0, True)
        assert (prop["maximum"], prop["exclusiveMaximum"]) == (1, True)


@pytest.mark.parametrize("doc", serviceclasses(), ids=lambda d: d["metadata"]["name"])
def test_sample_serviceclasses_are_valid(doc: Doc) -> None:
    errors = [e.message for e in serviceclass_validator().iter_errors(doc)]
    assert errors == []
    assert DNS_SUBDOMAIN.match(doc["metadata"]["name"])
    models = [m["model"] for m in doc["spec"]["models"]]
    assert len(models) == len(set(models)), "x-kubernetes-list-type map: each model once"


def _base_class() -> Doc:
    return {
        "apiVersion": "inferno.ai/v1alpha1",
        "kind": "ServiceClass",
        "metadata": {"name": "gold"},
        "spec": {
            "priority": 1,
            "models": [{"model": "llama_7b", "itlMs": 40, "ttwQuantile": 0.95, "ttwMs": 500}],
        },
    }


def _set(path: str, value: Any) -> Doc:
    doc = _base_class()
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


_DELETE = object()

MALFORMED = {
    "priority 0": ("spec.priority", 0),
    "priority 101": ("spec.priority", 101),
    "priority not an integer": ("spec.priority", 1.5),
    "missing models": ("spec.models", _DELETE),
    "empty models": ("spec.models", []),
    "missing spec": ("spec", _DELETE),
    "entry without model": ("spec.models.0.model", _DELETE),
    "empty model name": ("spec.models.0.model", ""),
    "negative itlMs": ("spec.models.0.itlMs", -1),
    "zero itlMs (exclusive minimum)": ("spec.models.0.itlMs", 0),
    "quantile 1.5": ("spec.models.0.ttwQuantile", 1.5),
    "quantile 1 (exclusive maximum)": ("spec.models.0.ttwQuantile", 1),
    "quantile 0 (exclusive minimum)": ("spec.models.0.ttwQuantile", 0),
    "no target at all": ("spec.models.0", {"model": "llama_7b", "ttwQuantile": 0.9}),
    "target not a number": ("spec.models.0.ttftMs", "fast"),
    "policy: unknown field": ("spec.policy", {"boost": 2}),
    "policy: negative margin": ("spec.policy", {"marginZ": -1}),
    "policy: switch saving 1 (exclusive maximum)": ("spec.policy", {"switchMinSaving": 1}),
    "policy: pods not an integer": ("spec.policy", {"maxScaleUpPods": 1.5}),
}


def test_a_class_may_override_the_control_policy() -> None:
    policy = {"marginZ": 2, "scaleDownWindow": 300, "maxScaleUpPods": 4, "switchDelay": 600}
    assert serviceclass_validator().is_valid(_set("spec.policy", policy))
    from inferno.cluster.serviceclass import POLICY_KEYS

    # the CRD lists exactly the fields the controller reads
    props = crd_schema()["properties"]["spec"]["properties"]["policy"]["properties"]
    assert set(props) == set(POLICY_KEYS)


def test_the_base_serviceclass_of_the_malformed_cases_is_valid() -> None:
    assert serviceclass_validator().is_valid(_base_class())


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_serviceclass_is_rejected(case: str) -> None:
    path, value = MALFORMED[case]
    assert not serviceclass_validator().is_valid(_set(path, value))


def test_each_single_target_is_enough() -> None:
    for field in ("itlMs", "ttftMs", "ttwMs", "latencyMs", "tokensPerSecond"):
        doc = _set("spec.models.0", {"model": "m", field: 10})
        assert serviceclass_validator().is_valid(doc), field


def test_sample_serviceclasses_carry_the_samples_targets() -> None:
    rows = sample_json("serviceclass-data.json")["serviceClasses"]
    by_name = {d["metadata"]["name"]: d for d in serviceclasses()}
    assert sorted(by_name) == ["bronze", "free", "premium"]
    for cr_name, doc in by_name.items():
        expected = [r for r in rows if r["name"].lower() == cr_name]
        assert expected, cr_name
        assert {r["priority"] for r in expected} == {doc["spec"]["priority"]}
        got = {m["model"]: m for m in doc["spec"]["models"]}
        want = {
            r["model"]: {"model": r["model"], "itlMs": r["slo-itl"], "ttwMs": r["slo-ttw"]}
            for r in expected
        }
        assert got == want, cr_name


# -- Inferno's pod ------------------------------------------------------------------------------


def _env_names() -> set[str]:
    return {env for _, _, env, _, _ in variables()}


def test_inferno_deployment_has_the_four_services() -> None:
    dep = inferno_deployment()
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"
    assert pod["serviceAccountName"] == "inferno"
    assert pod["enableServiceLinks"] is False  # else the Service injects INFERNO_PORT=tcp://...
    containers = pod["containers"]
    assert [c["name"] for c in containers] == list(CONTAINERS)
    assert len({c["image"] for c in containers}) == 1
    assert containers[0]["image"] == "ghcr.io/inferno-project/inferno:0.1.0"
    defaults = Settings()
    for c in containers:
        name = c["name"]
        assert c["args"] == [name]
        assert "command" not in c, "the image's entrypoint is `inferno`"
        port = c["ports"][0]
        assert port["name"] == name and len(name) <= 15
        assert port["containerPort"] == getattr(defaults.ports, f"{name}_port")
        if name == "controller":
            assert len(c["ports"]) == 1
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                assert c[probe]["httpGet"] == {"path": path, "port": name}
        else:
            # its own port listens on 127.0.0.1: the kubelet probes its metrics-only port
            (metrics,) = c["ports"][1:]
            assert metrics["name"] == f"metrics-{name[:4]}"
            env = {e["name"]: e.get("value") for e in c["env"]}
            assert str(metrics["containerPort"]) == env["INFERNO_METRICS_PORT"]
            for probe in ("livenessProbe", "readinessProbe"):
                assert c[probe]["httpGet"] == {"path": "/metrics", "port": metrics["name"]}
        requests, limits = c["resources"]["requests"], c["resources"]["limits"]
        assert set(requests) == set(limits) == {"cpu", "memory"}


def test_inferno_env_is_what_settings_reads() -> None:
    pod = inferno_deployment()["spec"]["template"]["spec"]
    known = _env_names()
    envs = []
    for c in pod["containers"]:
        env = {e["name"]: e for e in c["env"]}
        assert set(env) <= known, f"{c['name']}: unknown variables {sorted(set(env) - known)}"
        envs.append(env)
        literal = {n: e["value"] for n, e in env.items() if "value" in e}
        settings = Settings.from_env(literal)
        defaults = Settings()
        for service in CONTAINERS:
            port = f"{service}_port"
            assert getattr(settings.ports, port) == getattr(defaults.ports, port)
        assert settings.service.control_period == 60
        assert settings.service.data_path == "/etc/inferno/data"
        assert env["INFERNO_NAMESPACE"]["valueFrom"] == {
            "fieldRef": {"fieldPath": "metadata.namespace"}
        }
        assert "INFERNO_INVOKE_TOKEN" not in env  # a mounted file: rotation without restart
        assert env["INFERNO_INTERNAL_TOKEN_FILE"]["value"].startswith("/var/run/inferno/internal/")
        assert settings.ports.bind_host == "127.0.0.1"
        if c["name"] == "controller":
            assert env["INFERNO_INVOKE_TOKEN_FILE"]["value"] == "/etc/inferno/invoke/token"
    own = {"INFERNO_INVOKE_TOKEN_FILE", "INFERNO_METRICS_PORT"}

    def shared(env: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in env.items() if k not in own}

    assert all(shared(e) == shared(envs[0]) for e in envs), "the same shared environment"


def test_static_data_is_mounted_read_only_where_it_is_read() -> None:
    pod = inferno_deployment()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    cm = one(manifest_docs(), "ConfigMap", "inferno-static-data")
    data_volumes = [n for n, v in volumes.items() if "configMap" in v]
    assert [volumes[n]["configMap"]["name"] for n in data_volumes] == [cm["metadata"]["name"]]
    for c in pod["containers"]:
        mounts = [m for m in c.get("volumeMounts", []) if m["name"] in data_volumes]
        if c["name"] in ("controller", "optimizer", "actuator"):
            assert mounts == [
                {"name": data_volumes[0], "mountPath": "/etc/inferno/data", "readOnly": True}
            ]
        else:
            assert mounts == []


def test_every_inferno_container_runs_as_non_root_and_locked_down() -> None:
    pod = inferno_deployment()["spec"]["template"]["spec"]
    pod_sc = pod["securityContext"]
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        sc = {**pod_sc, **c["securityContext"]}
        assert sc["runAsNonRoot"] is True, c["name"]
        assert sc["runAsUser"] == 10001, c["name"]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "privileged" not in c["securityContext"]


def test_prometheus_annotations_and_service_ports() -> None:
    dep = inferno_deployment()
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(Settings().ports.controller_port)
    svc = one(manifest_docs(), "Service", "inferno")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert (ports["http"]["port"], ports["http"]["targetPort"]) == (80, "controller")
    assert ports["metrics-controller"]["targetPort"] == "controller"
    for name in CONTAINERS[1:]:
        assert ports[f"metrics-{name}"]["targetPort"] == f"metrics-{name[:4]}"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    policy = one(manifest_docs(), "NetworkPolicy", "inferno")
    admitted = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    sibling_ports = {getattr(Settings().ports, f"{n}_port") for n in CONTAINERS[1:]}
    assert Settings().ports.controller_port in admitted and not admitted & sibling_ports


# -- RBAC ---------------------------------------------------------------------------------------


def _allows(rules: list[Doc], group: str, resource: str, verb: str) -> bool:
    return any(
        group in r.get("apiGroups", []) and resource in r["resources"] and verb in r["verbs"]
        for r in rules
    )


def test_cluster_role_grants_what_inferno_needs_and_no_more() -> None:
    rules = one(manifest_docs(), "ClusterRole", "inferno")["rules"]
    for group, resource, verbs in (
        ("apps", "deployments", ("get", "list", "watch", "patch")),
        ("autoscaling", "horizontalpodautoscalers", ("get", "list", "watch", "patch")),
        ("", "events", ("create", "patch")),
        ("events.k8s.io", "events", ("create", "patch")),
        ("inferno.ai", "serviceclasses", ("get", "list", "watch", "patch")),
        ("inferno.ai", "serviceclasses/status", ("get", "patch", "update")),
        ("apiextensions.k8s.io", "customresourcedefinitions", ("list", "watch")),
        ("", "namespaces", ("list", "watch")),
        ("", "pods", ("list",)),  # the start-up times (inferno.cluster.startup)
    ):
        for verb in verbs:
            assert _allows(rules, group, resource, verb), f"{verb} {group}/{resource}"
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "*" not in rule.get("apiGroups", []), rule
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule, rule
        assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(
            rule["verbs"]
        ), rule
        if "create" in rule["verbs"]:
            assert rule["resources"] == ["events"], rule
    assert not _allows(rules, "", "secrets", "get")
    assert not _allows(rules, "", "configmaps", "get"), "configmaps: only in namespace inferno"
    assert not _allows(rules, "apps", "deployments", "update")
    for verb in ("get", "watch", "create", "patch", "update", "delete"):
        assert not _allows(rules, "", "pods", verb), f"pods: list only, not {verb}"
    assert not _allows(rules, "", "pods/log", "get")
    assert not _allows(rules, "", "pods/exec", "create")


def test_configmaps_are_readable_in_the_inferno_namespace_only() -> None:
    """Read in Inferno's namespace; written only there, and patched only as inferno-state."""
    role = one(manifest_docs(), "Role", "inferno")
    assert role["metadata"]["namespace"] == "inferno"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["inferno-state"],
            "verbs": ["patch"],
        },
    ]


def test_bindings_bind_the_service_account() -> None:
    sa = one(manifest_docs(), "ServiceAccount", "inferno")
    subject = {"kind": "ServiceAccount", "name": "inferno", "namespace": "inferno"}
    assert sa["metadata"]["namespace"] == "inferno"
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = one(manifest_docs(), kind, "inferno")
        assert binding["subjects"] == [subject]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": "inferno",
        }


# -- the static data ConfigMap ------------------------------------------------------------------


def test_configmap_is_in_sync_with_the_samples(tmp_path: Path) -> None:
    out = tmp_path / "configmap.yaml"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--samples", str(SAMPLES), "--output", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    committed = MANIFESTS / "45-configmap-static-data.yaml"
    assert out.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8"), (
        "manifests/45-configmap-static-data.yaml is stale: run python3 manifests/make-configmap.py"
    )
    cm = yaml.safe_load(committed.read_text(encoding="utf-8"))
    assert tuple(cm["data"]) == CONFIGMAP_FILES
    for name, text in cm["data"].items():
        assert text == (SAMPLES / name).read_text(encoding="utf-8"), name
    assert committed.read_text(encoding="utf-8").startswith("# GENERATED")


def test_configmap_generator_round_trips_awkward_text() -> None:
    spec = importlib.util.spec_from_file_location("make_configmap", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for text in (
        "{}",
        "{}\n",
        "{}\n\n\n",
        '  {"a": 1}\n',
        "\n\n{}",
        '{\n\n  "a": "x"  \n}\n',
        "\t{}\n",
    ):
        loaded = yaml.safe_load("data:\n  k: " + module.block_scalar(text, 2))
        assert loaded["data"]["k"] == text, repr(text)


def test_configmap_data_is_a_system_with_classes_and_servers_added() -> None:
    cm = one(manifest_docs(), "ConfigMap", "inferno-static-data")
    documents = {name: json.loads(text) for name, text in cm["data"].items()}
    documents["serviceclass-data.json"] = sample_json("serviceclass-data.json")
    documents["server-data.json"] = sample_json("server-data.json")
    system = system_from_documents(documents, "configmap")
    assert len(system.servers) == len(documents["server-data.json"]["servers"])


# -- the sample inference servers ---------------------------------------------------------------


def served_deployments() -> list[Doc]:
    return find(service_docs(), "Deployment")


def test_served_deployments_carry_inferno_labels() -> None:
    deployments = served_deployments()
    assert len(deployments) == 3
    class_names = {d["metadata"]["name"] for d in serviceclasses()}
    class_models = {
        d["metadata"]["name"]: {m["model"] for m in d["spec"]["models"]} for d in serviceclasses()
    }
    models = {m["name"] for m in sample_json("model-data.json")["models"]}
    servers = set()
    for dep in deployments:
        name = dep["metadata"]["name"]
        labels = dep["metadata"]["labels"]
        assert labels[L.MANAGED] == "true", name
        for key in (L.SERVER_NAME, L.MODEL, L.SERVICE_CLASS):
            assert labels.get(key), f"{name}: label {key} missing"
        assert labels[L.SERVICE_CLASS] in class_names, f"{name}: no ServiceClass for its class"
        assert labels[L.MODEL] in models, f"{name}: model not in samples/large/model-data.json"
        assert labels[L.MODEL] in class_models[labels[L.SERVICE_CLASS]], f"{name}: no targets"
        for key in (L.LOAD_RPM, L.LOAD_IN_TOKENS, L.LOAD_OUT_TOKENS):
            assert float(labels[key]) >= 0, f"{name}: {key}"
        servers.add(labels[L.SERVER_NAME])
    assert len(servers) == len(deployments), "server names are unique"
    annotated = [d for d in deployments if L.MAX_REPLICAS in d["metadata"].get("annotations", {})]
    assert [d["metadata"]["annotations"][L.MAX_REPLICAS] for d in annotated] == ["8"]


def test_served_deployments_parse_as_inferno_reads_them() -> None:
    settings = Settings()
    for dep in served_deployments():
        labels = dep["metadata"]["labels"]
        d = parse_deployment(dep)
        assert (d.namespace, d.name) == ("inferno-servers", dep["metadata"]["name"])
        assert d.server == labels[L.SERVER_NAME]
        assert d.model == labels[L.MODEL]
        assert d.service_class == labels[L.SERVICE_CLASS]
        assert d.load is not None and d.load.arrival_rate == float(labels[L.LOAD_RPM])
        assert d.container_name == "triton"
        assert d.mode == "auto"
        # the GPU, the node selector and the batch-size variable are where the plan patches them
        assert d.resources["limits"][settings.plan.gpu_resource] == "1"
        assert d.resources["requests"][settings.plan.gpu_resource] == "1"
        assert d.node_selector == {settings.service.gpu_node_label: d.accelerator}
        assert dict(d.env)[settings.plan.batch_env] == str(d.max_batch)
        assert d.max_replicas == (
            8 if L.MAX_REPLICAS in dep["metadata"].get("annotations", {}) else None
        )


def test_each_server_has_a_service_with_triton_ports() -> None:
    services = {s["metadata"]["name"]: s for s in find(service_docs(), "Service")}
    for dep in served_deployments():
        svc = services[dep["metadata"]["name"]]
        assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
        assert sorted(p["port"] for p in svc["spec"]["ports"]) == [8000, 8001, 8002]
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        assert c["image"] == "nvcr.io/nvidia/tritonserver:25.01-vllm-python-py3"
        assert sorted(p["containerPort"] for p in c["ports"]) == [8000, 8001, 8002]


def test_dep3_has_a_cpu_hpa_on_its_deployment() -> None:
    docs = [d for f, d in service_docs() if f == "dep3.yaml"]
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": dep["metadata"]["name"],
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert "cpu" in c["resources"]["requests"], "CPU utilisation needs a CPU request"
    assert "replicas" not in dep["spec"], "the HPA owns the replicas"
    assert len(find(service_docs(), "HorizontalPodAutoscaler")) == 1


def _apply_json_patch(doc: Doc, ops: tuple[dict[str, Any], ...]) -> Doc:
    """RFC 6902 as the API server applies it (``test`` ops included)."""
    out: Doc = jsonpatch.apply_patch(doc, [dict(op) for op in ops])
    return out


def test_the_plans_patches_apply_to_the_sample_deployments() -> None:
    for served in served_deployments():
        dep = copy.deepcopy(served)
        dep["spec"].setdefault("replicas", 1)  # as the API server defaults it
        d = parse_deployment(dep)
        decision = Decision(
            server=d.server,
            accelerator="2xA100",
            replicas=3,
            max_batch=19,
            gpus_per_replica=2,
            node_selector={"nvidia.com/gpu.product": "A100-80GB"},
        )
        action = plan_one(d, decision, PlanSettings())
        assert action.kind == "update"
        patched = _apply_json_patch(dep, action.patch)
        kubernetes_validate.validate(patched, K8S_VERSION, strict=True)
        after = parse_deployment(patched)
        assert (after.accelerator, after.max_batch, after.replicas) == ("2xA100", 19, 3)
        assert dict(after.env)["INFERNO_MAX_BATCH_SIZE"] == "19"
        assert after.resources["limits"]["nvidia.com/gpu"] == "2"
        assert after.resources["requests"]["nvidia.com/gpu"] == "2"
        assert after.node_selector == {"nvidia.com/gpu.product": "A100-80GB"}


# -- the Triton start-up script -----------------------------------------------------------------


def _startup(dep: Doc) -> tuple[list[str], dict[str, str]]:
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in c["env"]}
    return c["command"] + c["args"], env


def _kubernetes_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of command/args ($$ is an escaped $)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env[name] if name in env else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def test_startup_scripts_are_identical_and_untouched_by_kubernetes_expansion() -> None:
    scripts = set()
    for dep in served_deployments():
        command, env = _startup(dep)
        assert command[:2] == ["/bin/sh", "-c"] and len(command) == 3
        assert _kubernetes_expand(command[2], env) == command[2]
        scripts.add(command[2])
    assert len(scripts) == 1


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_startup_script_writes_the_batch_size_and_execs_triton(tmp_path: Path) -> None:
    command, env = _startup(served_deployments()[0])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "nvidia-smi", 'echo "GPU 0: A100 (UUID: a)"\necho "GPU 1: A100 (UUID: b)"\n')
    _stub(bin_dir, "tritonserver", 'echo "$@" > "$MODEL_REPOSITORY/args"\n')
    repo = tmp_path / "models"
    run_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        **env,
        "INFERNO_MAX_BATCH_SIZE": "19",
        "MODEL_REPOSITORY": str(repo),
    }
    done = subprocess.run(
        ["sh", "-c", command[2]], env=run_env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    model_dir = repo / env["MODEL_NAME"]
    engine = json.loads((model_dir / "1" / "model.json").read_text(encoding="utf-8"))
    assert engine["max_num_seqs"] == 19
    assert engine["tensor_parallel_size"] == 2
    assert engine["model"] == env["HF_MODEL"]
    config = (model_dir / "config.pbtxt").read_text(encoding="utf-8")
    assert 'backend: "vllm"' in config and "max_batch_size: 0" in config
    args = (repo / "args").read_text(encoding="utf-8").split()
    assert f"--model-repository={repo}" in args

    run_env["INFERNO_MAX_BATCH_SIZE"] = "lots"
    done = subprocess.run(
        ["sh", "-c", command[2]], env=run_env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert "INFERNO_MAX_BATCH_SIZE=lots" in done.stderr


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_startup_script_writes_the_instances_and_checks_the_delay(tmp_path: Path) -> None:
    command, env = _startup(served_deployments()[0])
    assert env["INFERNO_INSTANCES"] == "1" and env["INFERNO_MAX_QUEUE_DELAY_US"] == "0"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "nvidia-smi", 'echo "GPU 0: A100 (UUID: a)"\n')
    _stub(bin_dir, "tritonserver", "true\n")
    repo = tmp_path / "models"
    run_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        **env,
        "INFERNO_INSTANCES": "3",
        "INFERNO_MAX_QUEUE_DELAY_US": "2500",
        "MODEL_REPOSITORY": str(repo),
    }

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", command[2]], env=run_env, capture_output=True, text=True, timeout=30
        )

    done = run()
    assert done.returncode == 0, done.stderr
    config = (repo / env["MODEL_NAME"] / "config.pbtxt").read_text(encoding="utf-8")
    assert "instance_group [ { count: 3, kind: KIND_MODEL } ]" in config
    assert "instances=3 max_queue_delay_us=2500" in done.stdout
    for name, bad in (("INFERNO_INSTANCES", "0"), ("INFERNO_MAX_QUEUE_DELAY_US", "-5")):
        run_env = {**run_env, "INFERNO_INSTANCES": "1", "INFERNO_MAX_QUEUE_DELAY_US": "0"}
        run_env[name] = bad
        done = run()
        assert done.returncode == 1 and f"{name}={bad}" in done.stderr


# -- the image ----------------------------------------------------------------------------------


def test_dockerfile_builds_wheels_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert froms == ["FROM python:3.11-slim AS build", "FROM python:3.11-slim"]
    build, final = text.split("\nFROM python:3.11-slim\n")
    assert "pip wheel . " in build
    assert "/wheels" in final and "--no-index" in final
    assert not re.search(r"build-essential|gcc|apt-get", final)
    assert "USER 10001" in lines
    assert 'ENTRYPOINT ["inferno"]' in lines and 'CMD ["controller"]' in lines
    defaults = Settings()
    exposed = next(line for line in lines if line.startswith("EXPOSE "))
    assert exposed.split()[1:] == [str(getattr(defaults.ports, f"{s}_port")) for s in CONTAINERS]
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("inferno", "pyproject.toml", "README.md"):
        assert needed not in ignored, needed
    assert ".venv" in ignored and ".git" in ignored and "tests" in ignored
