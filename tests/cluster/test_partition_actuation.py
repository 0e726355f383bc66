"""A decision onto a GPU partition, as the actuator enacts it: the partition's resource replaces
the whole-GPU one in limits (and requests), its node labels replace the other strategy's, and
moving back to whole GPUs undoes both. The accelerators come from the data files' partitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cluster.test_plan import applied, decision, settled, triton
from inferno.cluster.inventory import parse_deployment
from inferno.cluster.plan import PlanSettings, plan
from inferno.cluster.validate import Guards, StaticLimits, decision_problem
from inferno.data import load_system
from inferno.system import System

GPU = "nvidia.com/gpu"
MIG = "nvidia.com/mig-3g.40gb"
PRODUCT = "nvidia.com/gpu.product"


def system(tmp_path: Path, **partitions: Any) -> System:
    acc = {
        "name": "A100-80GB",
        "cost": 40,
        "nodeSelector": {PRODUCT: "NVIDIA-A100-SXM4-80GB"},
        "partitions": {"mig": ["1g.10gb", "3g.40gb"], "mps": [2], **partitions},
    }
    model = {"name": "llama_13b", "acc": "A100-80GB", "kind": "batch", "alpha": 4, "beta": 1}
    docs = {
        "accelerator-data.json": {"accelerators": [acc]},
        "model-data.json": {"models": [model | {"maxBatchSize": 32, "serialFraction": 0.5}]},
        "serviceclass-data.json": {
            "serviceClasses": [{"name": "P", "model": "llama_13b", "slo-latency": 50}]
        },
        "server-data.json": {
            "servers": [
                {"name": "llama", "class": "P", "model": "llama_13b", "load": {"arrivalRate": 60}}
            ]
        },
    }
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    return load_system(tmp_path)


def enact(obj: dict[str, Any], sys_: System, accelerator: str) -> dict[str, Any]:
    acc = sys_.accelerators[accelerator]
    dec = decision("llama", accelerator=accelerator, selector=dict(acc.node_selector))
    limits = StaticLimits.from_system(sys_)
    assert decision_problem(dec, "llama_13b", limits, Guards()) is None
    cfg = PlanSettings()
    resource = limits.resource_of(accelerator, cfg.gpu_resource)
    [action] = plan([parse_deployment(obj)], [dec], PlanSettings(gpu_resource=resource))
    return applied(obj, action)


def test_mig_mixed_slice_takes_its_own_resource_and_labels(tmp_path: Path) -> None:
    sys_ = system(tmp_path)
    out = enact(settled(), sys_, "A100-80GB:3g.40gb")
    limits = triton(out)["resources"]["limits"]
    assert limits[MIG] == "1" and GPU not in limits
    selector = out["spec"]["template"]["spec"]["nodeSelector"]
    assert selector[PRODUCT] == "NVIDIA-A100-SXM4-80GB"
    assert selector["nvidia.com/mig.strategy"] == "mixed"
    assert selector["kubernetes.io/arch"] == "amd64"  # the Deployment's own labels stay
    # and back to a whole GPU: the MIG resource and the strategy label go
    back = enact(out, sys_, "A100-80GB")
    limits = triton(back)["resources"]["limits"]
    assert limits[GPU] == "1" and MIG not in limits
    selector = back["spec"]["template"]["spec"]["nodeSelector"]
    assert "nvidia.com/mig.strategy" not in selector
    assert selector[PRODUCT] == "NVIDIA-A100-SXM4-80GB"


def test_requests_follow_the_limits(tmp_path: Path) -> None:
    obj = settled()
    res = triton(obj)["resources"]
    res["requests"] = {GPU: "1", "cpu": "2"}
    out = enact(obj, system(tmp_path), "A100-80GB:3g.40gb")
    requests = triton(out)["resources"]["requests"]
    assert requests == {"cpu": "2", MIG: "1"}


def test_mig_single_strategy_and_mps_use_the_gpu_resource(tmp_path: Path) -> None:
    single = system(tmp_path, strategy="single")
    out = enact(settled(), single, "A100-80GB:1g.10gb")
    assert triton(out)["resources"]["limits"][GPU] == "1"
    selector = out["spec"]["template"]["spec"]["nodeSelector"]
    assert selector[PRODUCT] == "NVIDIA-A100-SXM4-80GB-MIG-1g.10gb"
    assert selector["nvidia.com/mig.strategy"] == "single"
    mps = enact(settled(), single, "A100-80GB:mps-2")
    selector = mps["spec"]["template"]["spec"]["nodeSelector"]
    assert selector["nvidia.com/gpu.sharing-strategy"] == "mps"
    assert selector[PRODUCT] == "NVIDIA-A100-SXM4-80GB-SHARED"
    limits = triton(mps)["resources"]["limits"]
    assert limits[GPU] == "1" and not any(k.startswith("nvidia.com/mig-") for k in limits)


def test_renamed_mps_resource(tmp_path: Path) -> None:
    sys_ = system(tmp_path, mpsResource="nvidia.com/gpu.shared")
    out = enact(settled(), sys_, "A100-80GB:mps-2")
    limits = triton(out)["resources"]["limits"]
    assert limits["nvidia.com/gpu.shared"] == "1" and GPU not in limits


def test_a_decision_with_the_whole_gpu_selector_on_a_slice_is_refused(tmp_path: Path) -> None:
    sys_ = system(tmp_path)
    dec = decision(
        "llama", accelerator="A100-80GB:3g.40gb", selector={PRODUCT: "NVIDIA-A100-SXM4-80GB"}
    )
    problem = decision_problem(dec, "llama_13b", StaticLimits.from_system(sys_), Guards())
    assert problem is not None and "nodeSelector" in problem
