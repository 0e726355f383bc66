"""The serving-configuration fields of a model-data row (inferno.data.serving_rows): contention,
saturated throughput per instance count, resources levels; errors name the file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferno.data._json import Node, read_json
from inferno.data.serving_rows import contention, instance_throughput, model_row, resource_levels
from inferno.errors import InputError
from inferno.model.profiles import BatchProfile
from inferno.solver.recipe import ResourceLevel

ROW = {
    "name": "sleep",
    "acc": "CPU",
    "kind": "batch",
    "alpha": 50.0,
    "beta": 5.0,
    "maxBatchSize": 16,
    "instanceThroughput": {"1": 110.0, "2": 200.0},
    "contention": [1.0, 1.1],
    "resources": {
        "memory": "pss",
        "levels": [
            {"instances": 1, "rps": 0, "cpuMean": 0.01, "cpuP95": 0.02, "memoryPeakMiB": 300},
            {"rps": 50, "cpuMean": 0.2, "cpuP95": 0.3, "memoryPeakMiB": 310, "samples": 7},
        ],
    },
}


def node(row: dict[str, object]) -> Node:
    return Node(row, "model-data.json", "$.models[0]")


def test_a_profiled_row_parses_into_the_model_and_the_recipe() -> None:
    row = node(ROW)
    kappa = contention(row)
    assert kappa == (1.0, 1.1)
    # what system_files would hand the model
    p = BatchProfile(50.0, 5.0, 16, instances=2, contention=kappa)
    assert p.kappa == 1.1
    assert instance_throughput(row) == {1: 110.0, 2: 200.0}
    assert resource_levels(row) == (
        ResourceLevel(0.0, 0.01, 0.02, 300.0, 1, 0),
        ResourceLevel(50.0, 0.2, 0.3, 310.0, 1, 7),
    )


def test_a_row_without_the_fields_has_one_instance_and_no_resources() -> None:
    plain = node({"name": "m", "acc": "CPU"})
    assert contention(plain) == (1.0,)
    assert instance_throughput(plain) == {} and resource_levels(plain) == ()


@pytest.mark.parametrize(
    ("change", "where", "problem"),
    [
        ({"contention": [1.2, 1.3]}, "contention[0]", "κ(1) must be 1"),
        ({"contention": [1.0, 0.9]}, "contention[1]", ">= 1"),
        ({"contention": []}, "contention", "at least κ(1)"),
        ({"contention": [1.0] * 17}, "contention", "at most 16"),
        ({"instanceThroughput": {"two": 3.0}}, "instanceThroughput.two", "instance count"),
        ({"instanceThroughput": {"1": 0}}, 'instanceThroughput["1"]', "> 0"),
        ({"resources": {"levels": [{"rps": 1}]}}, "levels[0].cpuMean", "missing"),
        ({"resources": {}}, "resources.levels", "missing"),
        (
            {"resources": {"levels": [{**ROW["resources"]["levels"][0], "cpuP95": -1}]}},  # type: ignore[index]
            "levels[0].cpuP95",
            ">= 0",
        ),
    ],
)
def test_bad_fields_are_named(change: dict[str, object], where: str, problem: str) -> None:
    row = node({**ROW, **change})
    with pytest.raises(InputError) as err:
        contention(row)
        instance_throughput(row)
        resource_levels(row)
    text = str(err.value)
    assert where in text and problem in text and text.startswith("model-data.json")


def test_model_row_finds_the_model_on_the_accelerator(tmp_path: Path) -> None:
    path = tmp_path / "model-data.json"
    path.write_text(json.dumps({"models": [ROW, {**ROW, "acc": "A100"}]}))
    doc = read_json(path, str(path))
    assert model_row(doc, "sleep", "A100").string("acc") == "A100"
    with pytest.raises(
        InputError, match=r"no row of model 'sleep' on accelerator 'H100'.*sleep@CPU"
    ):
        model_row(doc, "sleep", "H100")
