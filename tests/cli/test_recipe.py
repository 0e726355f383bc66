"""``inferno recipe DIR SERVER``: the container's requests/limits and an HPA from a profiled row's
resources at the decision; the objects validated offline against Kubernetes' schemas
(kubernetes-validate, strict) — the HPA as it is, the Deployment patch merged into each sample
Deployment as ``kubectl patch`` (strategic merge: containers by name) would."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from inferno.cli import main
from inferno.cli.recipe import parse_cpu, parse_memory_mib
from inferno.solver.recipe import ResourceLevel, interpolate

ROOT = Path(__file__).resolve().parents[2]
K8S = kubernetes_validate.latest_version()

LEVELS = [
    {"instances": 1, "rps": 0, "cpuMean": 0.02, "cpuP95": 0.05, "memoryPeakMiB": 400},
    {"instances": 1, "rps": 18, "cpuMean": 0.10, "cpuP95": 0.15, "memoryPeakMiB": 410},
    {"instances": 1, "rps": 110, "cpuMean": 0.50, "cpuP95": 0.70, "memoryPeakMiB": 430},
    {"instances": 1, "rps": 160, "cpuMean": 0.70, "cpuP95": 0.90, "memoryPeakMiB": 440},
]
RPM = 6000.0  # 100 req/s


def system(tmp: Path, levels: list[dict[str, Any]] | None = LEVELS) -> Path:
    row: dict[str, Any] = {
        "name": "sleep",
        "acc": "CPU",
        "kind": "batch",
        "alpha": 50.0,
        "beta": 5.0,
        "maxBatchSize": 16,
    }
    if levels is not None:
        row["resources"] = {"memory": "pss", "levels": levels}
    files = {
        "accelerator-data.json": {"accelerators": [{"name": "CPU", "cost": 1.0}]},
        "model-data.json": {"models": [row]},
        "server-data.json": {
            "servers": [
                {
                    "name": "sleep-server",
                    "class": "Premium",
                    "model": "sleep",
                    "currentAlloc": {"load": {"arrivalRate": RPM, "avgLength": 1}},
                }
            ]
        },
        "serviceclass-data.json": {
            "serviceClasses": [
                {"name": "Premium", "priority": 1, "model": "sleep", "slo-latency": 500}
            ]
        },
    }
    for name, doc in files.items():
        (tmp / name).write_text(json.dumps(doc))
    return tmp


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def strategic_merge(dep: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The patch's containers merged into the Deployment's by name (their resources' requests
    and limits key by key), as the API server merges a strategic-merge patch."""
    out = copy.deepcopy(dep)
    mine = out["spec"]["template"]["spec"]["containers"]
    for c in patch["spec"]["template"]["spec"]["containers"]:
        (target,) = [t for t in mine if t["name"] == c["name"]]
        res = target.setdefault("resources", {})
        for part in ("requests", "limits"):
            res.setdefault(part, {}).update(c["resources"][part])
    return out


def test_recipe_prints_a_patch_and_an_hpa_that_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["recipe", str(system(tmp_path)), "sleep-server", "-n", "live"], capsys)
    assert code == 0
    assert out.startswith("# server sleep-server (model sleep): ")
    patch, hpa = yaml.safe_load_all(out)
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "triton" and patch["metadata"]["namespace"] == "live"
    kubernetes_validate.validate(hpa, K8S, strict=True)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "sleep-server"
    # the decision: one replica at 100 req/s; the requests cover the p95 CPU and the peak there
    code, js, _ = run(["recipe", str(tmp_path), "sleep-server", "--json"], capsys)
    recipe = json.loads(js)["recipe"]
    rate = recipe["ratePerReplica"]
    pts = [(lv["rps"], lv["cpuP95"]) for lv in LEVELS]
    assert rate == pytest.approx(RPM / 60 / hpa["spec"]["minReplicas"])
    assert parse_cpu(container["resources"]["requests"]["cpu"]) >= interpolate(pts, rate)
    mem = interpolate([(lv["rps"], lv["memoryPeakMiB"]) for lv in LEVELS], rate)
    assert parse_memory_mib(container["resources"]["requests"]["memory"]) >= mem
    assert parse_memory_mib(container["resources"]["limits"]["memory"]) >= max(
        lv["memoryPeakMiB"] for lv in LEVELS if lv["rps"] <= recipe["maxRatePerReplica"]
    )
    assert parse_cpu(container["resources"]["limits"]["cpu"]) >= parse_cpu(
        container["resources"]["requests"]["cpu"]
    )
    # on each sample Deployment, the patch keeps the GPU and validates
    for path in sorted((ROOT / "services" / "yamls").glob("dep*.yaml")):
        for dep in yaml.safe_load_all(path.read_text()):
            if not dep or dep["kind"] != "Deployment":
                continue
            patched = strategic_merge(dep, patch)
            kubernetes_validate.validate(patched, K8S, strict=True)
            (c,) = patched["spec"]["template"]["spec"]["containers"]
            assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
            assert c["resources"]["requests"]["cpu"] == container["resources"]["requests"]["cpu"]


def test_quantities() -> None:
    assert parse_cpu("7500m") == 7.5 and parse_cpu("2") == 2.0
    assert parse_memory_mib("2Gi") == 2048 and parse_memory_mib("1048576") == 1.0
    assert math.isclose(parse_memory_mib("1G"), 1e9 / 2**20)
    assert ResourceLevel(0, 0, 0, 0).instances == 1


@pytest.mark.parametrize(
    ("levels", "extra", "problem"),
    [
        (None, [], "has no resources data: run `inferno profile"),
        (LEVELS, ["--node-memory", "300Mi"], "exceeds the node's allocatable 300 MiB"),
        (LEVELS, ["--node-memory", "lots"], "--node-memory 'lots'"),
        (LEVELS, ["--node-cpu", "-1"], "--node-cpu '-1'"),
        (LEVELS, ["--instances", "2"], "not with 2"),
        (LEVELS, ["--instances", "0"], "--instances must be from 1 to 16 (Triton's"),
        (LEVELS, ["--instances", "17"], "--instances must be from 1 to 16 (Triton's"),
        (LEVELS, ["--cpu-headroom", "-1"], "cpu-headroom"),
        (LEVELS, ["--deployment", "Bad_Name"], "is not a DNS"),
        ([{**LEVELS[0], "cpuP95": "x"}], [], "levels[0].cpuP95: expected a number"),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    levels: list[dict[str, Any]] | None,
    extra: list[str],
    problem: str,
) -> None:
    code, out, err = run(["recipe", str(system(tmp_path, levels)), "sleep-server", *extra], capsys)
    assert code == 2 and not out
    assert err.startswith("inferno: error: ") and problem in err and len(err.splitlines()) == 1


def test_an_unknown_or_unallocated_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = system(tmp_path)
    code, _, err = run(["recipe", str(d), "nope"], capsys)
    assert code == 2 and "no server named 'nope'; known: sleep-server" in err
    classes = json.loads((d / "serviceclass-data.json").read_text())
    classes["serviceClasses"][0]["slo-latency"] = 1  # below one batch's time: nothing serves it
    (d / "serviceclass-data.json").write_text(json.dumps(classes))
    code, _, err = run(["recipe", str(d), "sleep-server"], capsys)
    assert code == 2 and "is not allocated" in err


def test_recipe_decides_with_optimizes_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The flags that change a decision (here the queue: none beyond the batch) are optimize's:
    the recipe is of the decision ``optimize`` prints with the same flags, not of the data's."""
    directory = system(tmp_path)
    classes = directory / "serviceclass-data.json"
    doc = json.loads(classes.read_text())
    doc["serviceClasses"][0]["slo-latency"] = 150  # binding: the queue then moves λ*
    classes.write_text(json.dumps(doc))
    rates = {}
    for flags in ([], ["--queue-factor", "0"]):
        code, js, _ = run(["recipe", str(directory), "sleep-server", "--json", *flags], capsys)
        assert code == 0
        code, sol, _ = run(["optimize", str(directory), "--format", "json", *flags], capsys)
        assert code == 0
        decided = json.loads(sol)["allocations"]["sleep-server"]
        recipe = json.loads(js)["recipe"]
        assert recipe["maxRatePerReplica"] * 60.0 == pytest.approx(decided["maxRatePerReplica"])
        assert recipe["ratePerReplica"] * 60.0 * decided["numReplicas"] == pytest.approx(RPM)
        rates[tuple(flags)] = recipe["maxRatePerReplica"]
    assert rates[()] < rates[("--queue-factor", "0")]
