"""Loading Inferno's system data and the analyzer problem file in all their historical shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inferno.data import SYSTEM_FILES, AnalyzerProblem, load_analyzer_problem, load_system
from inferno.model.profiles import (
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Kind,
)
from inferno.system import BatchPolicy, Load, SaturationPolicy, System, Target

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "large"


def base_files() -> dict[str, Any]:
    """A small valid system (G0 shape) as {file name: JSON document}."""
    return {
        "accelerator-data.json": {
            "accelerators": [
                {"name": "A100", "type": "A100", "multiplicity": 1, "cost": 40},
                {"name": "2xH100", "type": "H100", "multiplicity": 2, "cost": 150},
            ]
        },
        "capacity-data.json": {"count": [{"type": "A100", "count": 8}]},
        "model-data.json": {
            "models": [
                {
                    "name": "m0",
                    "acc": "A100",
                    "accCount": 1,
                    "alpha": 20.5,
                    "beta": 0.4,
                    "maxBatchSize": 32,
                    "atTokens": 512,
                }
            ]
        },
        "serviceclass-data.json": {
            "serviceClasses": [
                {"name": "Premium", "model": "m0", "priority": 1, "slo-itl": 40, "slo-ttw": 500}
            ]
        },
        "server-data.json": {
            "servers": [
                {
                    "name": "s0",
                    "class": "Premium",
                    "model": "m0",
                    "currentAlloc": {"load": {"arrivalRate": 60, "avgLength": 1024}},
                }
            ]
        },
        "optimizer-data.json": {"optimizer": {"unlimited": False, "milpSolver": False}},
    }


def write_system(directory: Path, files: dict[str, Any]) -> Path:
    for name, doc in files.items():
        text = doc if isinstance(doc, str) else json.dumps(doc, indent=2)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def load_with(tmp_path: Path, **changes: Any) -> System:
    """Load the base system with some files replaced (keyword = file stem with '_' for '-')."""
    files = base_files()
    for stem, doc in changes.items():
        files[stem.replace("_", "-") + ".json"] = doc
    return load_system(write_system(tmp_path, files))


def models(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"models": list(rows)}


# -- the published G0 samples ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def large() -> System:
    return load_system(SAMPLES)


def test_samples_large_counts(large: System) -> None:
    assert len(large.accelerators) == 21
    assert len(large.profiles) == 170
    assert all(isinstance(p.profile, G0Profile) for p in large.profiles)
    assert len(large.servers) == 27
    assert large.capacity["MI300X"] == 144
    assert large.optimizer.unlimited is True
    assert large.optimizer.milp is False  # spelled "milpsolver" in the file


def test_samples_large_classes(large: System) -> None:
    priorities = {name: c.priority for name, c in large.classes.items()}
    assert priorities == {"Premium": 1, "Bronze": 2, "Free": 3, "Batch2K": 4}
    premium = large.classes["Premium"].targets["llama_7b"]
    assert (premium.itl, premium.ttw, premium.ttft, premium.tps) == (40, 500, None, None)
    assert premium.ttw_quantile == 0.95
    assert large.classes["Premium"].targets["llama_13b"].itl == 80
    batch = large.classes["Batch2K"].targets["llama_13b"]
    assert (batch.tps, batch.itl, batch.ttw) == (2000, None, None)


def test_samples_large_rows(large: System) -> None:
    mi300x = large.accelerators["MI300X"]
    assert (mi300x.type, mi300x.multiplicity, mi300x.cost) == ("MI300X", 1, 65)
    profile = next(
        p for p in large.profiles if (p.model, p.accelerator) == ("granite_13b", "MI300X")
    )
    assert profile.acc_count == 1
    assert profile.profile == G0Profile(alpha=7.77, beta=0.15, max_batch_size=76, at_tokens=512)
    server = next(s for s in large.servers if s.name == "Premium-granite_13b")
    assert server.service_class == "Premium"
    assert server.load == Load(120, in_tokens=0, out_tokens=1024, arrival_cov=1.5, service_cov=1.5)
    assert server.current.accelerator == ""
    assert server.min_replicas == 1


def test_system_files_names() -> None:
    assert set(SYSTEM_FILES) == {p.name for p in SAMPLES.glob("*-data.json")} - {
        "solution-data.json"
    }
    assert len(SYSTEM_FILES) == 6


def test_mappings_are_read_only(large: System) -> None:
    with pytest.raises(TypeError):
        large.accelerators["X"] = large.accelerators["A100"]  # type: ignore[index]
    with pytest.raises(TypeError):
        large.classes["Premium"].targets["x"] = Target("x")  # type: ignore[index]


# -- accelerators, capacity, optimizer ------------------------------------------------------------


def test_accelerator_defaults_and_node_selector(tmp_path: Path) -> None:
    system = load_with(
        tmp_path,
        accelerator_data={
            "accelerators": [
                {"name": "A100", "cost": 40, "memSize": 80},
                {
                    "NAME": "2xH100",
                    "Type": "H100",
                    "multiplicity": 2.0,
                    "cost": 150,
                    "nodeSelector": {"zone": "b", "gpu": "h100"},
                },
            ]
        },
    )
    a100, h100 = system.accelerators["A100"], system.accelerators["2xH100"]
    assert (a100.type, a100.multiplicity, a100.mem_size, a100.mem_bw) == ("A100", 1, 80, None)
    assert (h100.type, h100.multiplicity, h100.cost) == ("H100", 2, 150)
    assert h100.node_selector == (("gpu", "h100"), ("zone", "b"))


def test_optimizer_options(tmp_path: Path) -> None:
    system = load_with(
        tmp_path,
        optimizer_data={
            "optimizer": {
                "UNLIMITED": False,
                "heterogeneous": True,
                "MilpSolver": True,
                "useCplex": True,
                "saturationPolicy": "priorityroundrobin",
                "delayedBestEffort": True,
                "batchPolicy": "Knee",
                "exactWaitQuantile": True,
                "queueFactor": 2.5,
                "milpTimeLimit": 5,
            }
        },
    )
    opt = system.optimizer
    assert opt.unlimited is False and opt.heterogeneous is True and opt.milp is True
    assert opt.saturation_policy is SaturationPolicy.PRIORITY_ROUND_ROBIN
    assert opt.batch_policy is BatchPolicy.KNEE
    assert opt.delayed_best_effort and opt.exact_wait_quantile
    assert (opt.queue_factor, opt.milp_time_limit) == (2.5, 5)
    assert dict(system.capacity) == {"A100": 8}


def test_optional_files_when_unlimited(tmp_path: Path) -> None:
    files = base_files()
    del files["optimizer-data.json"], files["capacity-data.json"]
    system = load_system(str(write_system(tmp_path, files)))  # a str directory works too
    assert system.optimizer.unlimited is True
    assert system.optimizer.saturation_policy is SaturationPolicy.NONE
    assert dict(system.capacity) == {}


# -- model profiles in every shape ----------------------------------------------------------------


def test_g1_profile(tmp_path: Path) -> None:
    row = {
        "name": "m1",
        "acc": "A100",
        "accCount": 2,
        "maxBatchSize": 64,
        "atTokens": 1024,
        "decodeParms": {"alpha": 6.9, "beta": 0.08},
        "prefillParms": {"gamma": 12.1, "delta": 0.002},
    }
    (profile,) = load_with(tmp_path, model_data=models(row)).profiles
    assert (profile.model, profile.accelerator, profile.acc_count) == ("m1", "A100", 2)
    assert profile.profile == G1Profile(6.9, 0.08, 12.1, 0.002, 64, 1024)
    assert profile.profile.kind is Kind.G1


def test_g2_profile_at_tokens_optional(tmp_path: Path) -> None:
    rows = [
        {
            "name": "m2",
            "acc": "A100",
            "maxBatchSize": 48,
            "perfParms": {"alpha": 12, "beta": 0.05, "gamma": 5e-4},
        },
        {
            "name": "m2",
            "acc": "2xH100",
            "maxBatchSize": 48,
            "atTokens": 0,
            "perfParms": {"alpha": 8, "beta": 0.03, "gamma": 3e-4},
        },
        {
            "name": "m3",
            "acc": "A100",
            "maxBatchSize": 16,
            "atTokens": 256,
            "PERFPARMS": {"Alpha": 1, "Beta": 2, "Gamma": 3},
        },
    ]
    profiles = load_with(tmp_path, model_data=models(*rows)).profiles
    assert [p.profile for p in profiles] == [
        G2Profile(12, 0.05, 5e-4, 48, None),
        G2Profile(8, 0.03, 3e-4, 48, None),
        G2Profile(1, 2, 3, 16, 256),
    ]
    assert [p.acc_count for p in profiles] == [1, 1, 1]


def test_g3_profile(tmp_path: Path) -> None:
    rows = [
        {
            "name": "m",
            "acc": "A100",
            "maxBatchSize": 128,
            "maxNumTokens": 4096,
            "perfParms": {"alpha": 16, "beta": 0.067, "gamma": 6.67e-4},
        },
        {
            "name": "m",
            "acc": "2xH100",
            "kind": "g3",
            "maxBatchSize": 80,
            "perfParms": {"alpha": 8, "beta": 0.033, "gamma": 3.33e-4},
        },
    ]
    first, second = load_with(tmp_path, model_data=models(*rows)).profiles
    assert first.profile == G3Profile(16, 0.067, 6.67e-4, 128, None, 4096)
    assert second.profile == G3Profile(8, 0.033, 3.33e-4, 80, None, 8192)


def test_batch_profile(tmp_path: Path) -> None:
    rows = [
        {
            "name": "resnet",
            "acc": "A100",
            "kind": "batch",
            "alpha": 3,
            "beta": 0.5,
            "maxBatchSize": 32,
            "queueDelayMs": 2,
        },
        {
            "name": "resnet",
            "acc": "2xH100",
            "kind": "BATCH",
            "batchParms": {"alpha": 2, "beta": 0.25},
            "maxBatchSize": 64,
        },
    ]
    first, second = load_with(tmp_path, model_data=models(*rows)).profiles
    assert first.profile == BatchProfile(3, 0.5, 32, queue_delay_ms=2)
    assert second.profile == BatchProfile(2, 0.25, 64, queue_delay_ms=0)
    assert first.profile.kind is Kind.BATCH


def test_explicit_g0_kind_and_zero_parameter(tmp_path: Path) -> None:
    row = {
        "name": "m",
        "acc": "A100",
        "kind": "G0",
        "alpha": 0,
        "beta": 0.4,
        "maxBatchSize": 8,
        "atTokens": 100,
    }
    (profile,) = load_with(tmp_path, model_data=models(row)).profiles
    assert profile.profile == G0Profile(0, 0.4, 8, 100)


# -- service classes ------------------------------------------------------------------------------


def test_model_targets_classes(tmp_path: Path) -> None:
    classes = {
        "serviceClasses": [
            {
                "name": "Premium",
                "priority": 1,
                "modelTargets": [
                    {"model": "m0", "slo-itl": 20, "slo-ttft": 200, "slo-ttft-quantile": "p99"},
                    {"model": "m1", "SLO-TTW": 500, "slo-ttw-quantile": 0.9, "slo-itl": 0},
                ],
            },
            {
                "name": "Triton",
                "modelTargets": [
                    {"model": "resnet", "slo-latency": 50, "slo-latency-quantile": "p95"},
                    {"model": "bert", "slo-latency": 80, "slo-latency-quantile": "mean"},
                ],
            },
        ]
    }
    system = load_with(tmp_path, serviceclass_data=classes)
    premium, triton = system.classes["Premium"], system.classes["Triton"]
    assert premium.priority == 1
    assert triton.priority == 100  # Go's default low priority
    assert premium.targets["m0"] == Target("m0", itl=20, ttft=200, ttft_quantile=0.99)
    assert premium.targets["m1"] == Target("m1", ttw=500, ttw_quantile=0.9)  # itl 0: no target
    assert triton.targets["resnet"] == Target("resnet", latency=50, latency_quantile=0.95)
    assert triton.targets["bert"].latency_quantile is None


def test_flat_rows_merge_into_one_class(tmp_path: Path) -> None:
    classes = {
        "serviceClasses": [
            {"name": "Bronze", "model": "m0", "priority": 2, "slo-itl": 80, "slo-ttw": 1000},
            {"name": "Batch", "model": "m0", "priority": 4, "slo-tps": 2000},
            {"name": "Bronze", "model": "m1", "slo-itl": 160},
        ]
    }
    system = load_with(
        tmp_path,
        serviceclass_data=classes,
        server_data={"servers": [{"name": "s", "class": "Bronze", "model": "m0"}]},
    )
    bronze = system.classes["Bronze"]
    assert bronze.priority == 2
    assert set(bronze.targets) == {"m0", "m1"}
    assert bronze.targets["m1"].itl == 160
    assert system.classes["Batch"].targets["m0"].tps == 2000


# -- servers --------------------------------------------------------------------------------------


def test_servers_in_all_load_shapes(tmp_path: Path) -> None:
    classes = {
        "serviceClasses": [
            {"name": "Premium", "priority": 1, "modelTargets": [{"model": "m0", "slo-ttft": 100}]},
            {"name": "Free", "priority": 3, "modelTargets": [{"model": "m0", "slo-itl": 200}]},
        ]
    }
    servers = {
        "servers": [
            {
                "name": "pd",
                "class": "Premium",
                "model": "m0",
                "keepAccelerator": True,
                "minNumReplicas": 2,
                "maxNumReplicas": 5,
                "maxBatchSize": 16,
                "maxQueueSize": 0,
                "currentAlloc": {
                    "accelerator": "A100",
                    "numReplicas": 3,
                    "maxBatch": 16,
                    "cost": 120,
                    "itlAverage": 9.5,
                    "ttftAverage": 30,
                    "load": {"arrivalRate": 90, "avgInTokens": 128, "avgOutTokens": 512},
                },
            },
            {
                "NAME": "odd-case",
                "Model": "m0",
                "CURRENTALLOC": {"LOAD": {"ARRIVALRATE": 7.5, "AVGLENGTH": 300, "arrivalcov": 2}},
            },
            {
                "name": "top-level-load",
                "class": "",
                "model": "unknown-model",
                "maxBatchSize": 0,
                "load": {"arrivalRate": 10, "avgOutTokens": 100},
                "currentAlloc": {"load": {"arrivalRate": 999, "avgLength": 1}},
            },
            {"name": "no-load", "model": "m0", "minNumReplicas": 0},
        ]
    }
    pd, odd, top, idle = load_with(tmp_path, serviceclass_data=classes, server_data=servers).servers
    assert (pd.service_class, pd.keep_accelerator) == ("Premium", True)
    assert (pd.min_replicas, pd.max_replicas, pd.max_batch_size, pd.max_queue_size) == (2, 5, 16, 0)
    assert pd.load == Load(90, in_tokens=128, out_tokens=512)
    assert (pd.current.accelerator, pd.current.replicas, pd.current.max_batch) == ("A100", 3, 16)
    assert pd.current.cost == 120
    assert (odd.name, odd.service_class) == ("odd-case", "Free")
    assert odd.load == Load(7.5, in_tokens=0, out_tokens=300, arrival_cov=2)
    assert (top.service_class, top.model, top.max_batch_size) == ("Free", "unknown-model", None)
    assert top.load == Load(10, in_tokens=0, out_tokens=100)  # the top-level load wins
    assert (idle.load.arrival_rate, idle.min_replicas, idle.max_replicas) == (0, 0, None)


# -- the analyzer problem -------------------------------------------------------------------------

PROBLEM_DATA = """{
    "RPS": 3.0,
    "maxBatchSize": 48,
    "AvgInputTokens": 128,
    "AvgOutputTokens": 512,
    "alpha": 12,
    "beta": 0.05,
    "gamma": 0.0005,
    "maxQueueSize": 128,
    "targetTTFT": 60.0,
    "targetITL": 20.0
}"""  # queue-analysis's problem-data.json, verbatim


def test_analyzer_problem_reference(tmp_path: Path) -> None:
    path = tmp_path / "problem-data.json"
    path.write_text(PROBLEM_DATA)
    problem = load_analyzer_problem(path)
    assert problem == AnalyzerProblem(
        rps=3,
        max_batch_size=48,
        in_tokens=128,
        out_tokens=512,
        alpha=12,
        beta=0.05,
        gamma=0.0005,
        delta=0,
        max_queue_size=128,
        target_ttft=60,
        target_itl=20,
        kind=Kind.G2,
        max_num_tokens=8192,
    )


def test_analyzer_problem_other_kinds(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(
            {
                "rps": 1,
                "MAXBATCHSIZE": 8,
                "avginputtokens": 10,
                "avgOutputTokens": 20,
                "alpha": 1,
                "beta": 2,
                "gamma": 3,
                "delta": 0.5,
                "kind": "G1",
                "targetTTFT": 0,
            }
        )
    )
    problem = load_analyzer_problem(str(path))
    assert (problem.kind, problem.delta, problem.max_queue_size) == (Kind.G1, 0.5, None)
    assert (problem.target_ttft, problem.target_itl) == (None, None)
    path.write_text('{"RPS": 5, "maxBatchSize": 4, "alpha": 2, "beta": 1, "kind": "batch"}')
    batch = load_analyzer_problem(path)
    assert (batch.kind, batch.out_tokens, batch.gamma) == (Kind.BATCH, 0, 0)
    path.write_text(PROBLEM_DATA.replace("}", ', "maxNumTokens": 2048, "kind": "G3"}'))
    assert load_analyzer_problem(path).max_num_tokens == 2048
