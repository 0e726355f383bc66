"""The fast path of server rows (inferno.data.plain_rows) against the checked getters: whatever
it accepts it reads as they do, it accepts the plain shapes, and bad rows still get the
checked path's errors naming the field."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from inferno.data import load_system, system_from_documents
from inferno.data._json import Node
from inferno.data.plain_rows import plain_server
from inferno.data.system_files import _server
from inferno.errors import InputError
from inferno.system import Accelerator, ServiceClass

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"

CLASSES = {n: ServiceClass(n, 1) for n in ("Premium", "Bronze", "Free")}
ACCELERATORS = {n: Accelerator(n, n, 1, 1.0) for n in ("A100", "H100")}
TRITON = {"tm": "A100"}  # a model with Triton's batching: its maxBatchSize is bounded lower


def slow(row: object) -> Any:
    """The checked getters' result for the row: a Server or the error's (type, path, text)."""
    node = Node({"servers": [row]}, "request", "$").array("servers")[0]
    try:
        return _server(node.as_object(), CLASSES, ACCELERATORS, TRITON)
    except InputError as exc:
        return (type(exc).__name__, exc.path, exc.problem)


def random_value(rng: random.Random) -> object:
    return rng.choice(
        [None, 0, 1, 2, 7, -1, 2.0, 2.5, 1e-9, 1e12, 1e30, float("nan"), float("inf"), True,
         False, "", " ", "x", "A100", "XYZ", "Premium", "premium", [], {}, 10**30, 200, 64]
    )  # fmt: skip


def random_row(rng: random.Random) -> dict[str, Any]:
    """A row of the plain shape, then a few of its values or keys spoilt at random."""
    load: dict[str, Any] = {"arrivalRate": rng.uniform(0, 900)}
    if rng.random() < 0.3:
        load["avgLength"] = rng.randint(1, 4096)
    else:
        load["avgInTokens"] = rng.uniform(0, 2048)
        load["avgOutTokens"] = rng.randint(0, 2048)
    row: dict[str, Any] = {"name": f"s{rng.randint(0, 99)}", "model": rng.choice(["m", "tm"])}
    if rng.random() < 0.8:
        row["class"] = rng.choice(["Premium", "Bronze", "Free"])
    current: dict[str, Any] = {}
    if rng.random() < 0.5:
        current = {"accelerator": rng.choice(["A100", "H100", ""]), "numReplicas": 2}
        if rng.random() < 0.3:
            current["cost"] = 12.5
        if rng.random() < 0.3:
            current["maxBatch"] = 8
    if rng.random() < 0.5:
        current["load"] = load
    else:
        row["load"] = load
    if current:
        row["currentAlloc"] = current
    for key, value in (
        ("minNumReplicas", 2),
        ("maxNumReplicas", 5),
        ("maxBatchSize", 16),
        ("maxQueueSize", 40),
        ("keepAccelerator", True),
        ("batchTolerance", rng.choice([0.25, 0, 1, 0.99, -0.1, "x", True])),
        ("labels", {"a": "b"}),  # ignored
    ):
        if rng.random() < 0.15:
            row[key] = value
    for _ in range(rng.choice([0, 0, 1, 2])):  # spoil: a value, or a key's case
        target = rng.choice([row, load, current or row])
        keys = list(target)
        if not keys:
            continue
        key = rng.choice(keys)
        if rng.random() < 0.2:
            target[key.upper()] = target.pop(key)
        else:
            target[key] = random_value(rng)
    for key in ("arrivalCOV", "serviceCOV", "outTokensCOV", "inTokensCOV"):
        if rng.random() < 0.05:
            load[key] = rng.choice([0.5, -1, "x"])
    if rng.random() < 0.1:
        load["outTokensDist"] = rng.choice(["gamma", "lognormal", "weibull", 3, None])
    if rng.random() < 0.1:
        load["inTokensDist"] = rng.choice(["gamma", "lognormal", "pareto", 3, None])
    if rng.random() < 0.1:  # below, at or above the mean, not a number, below 1
        load["outTokensMax"] = rng.choice([5, 8192, 8192.5, 1e8, "x", 0.5, None])
    return row


def test_whatever_the_fast_path_accepts_it_reads_as_the_checked_path() -> None:
    rng = random.Random(13)
    accepted = 0
    for _ in range(4000):
        row = random_row(rng)
        before = copy.deepcopy(row)
        fast = plain_server(row, CLASSES, ACCELERATORS, TRITON)
        assert row == before  # the row is not changed
        if fast is not None:
            accepted += 1
            assert fast == slow(row), json.dumps(row)
    assert accepted > 1500  # the plain shapes do take the fast path


@pytest.mark.parametrize(
    "row",
    [
        {"name": "a", "model": "m", "load": {"arrivalRate": 60}},
        {"name": "a", "model": "m", "class": "Bronze",
         "currentAlloc": {"load": {"arrivalRate": 1.5}}},
        {"name": "a", "model": "m", "currentAlloc": {"accelerator": "H100", "numReplicas": 3,
         "maxBatch": 4, "cost": 7, "load": {"arrivalRate": 5, "avgLength": 100}}},
        {"name": "a", "model": "m", "minNumReplicas": 0, "maxNumReplicas": 0, "maxBatchSize": 0,
         "maxQueueSize": 0, "keepAccelerator": False, "extra": [1, 2]},
        {"name": "a", "model": "m", "load": None, "class": None, "currentAlloc": None},
        {"name": "a", "model": "tm", "maxBatchSize": 128, "load": {"arrivalRate": 0}},
        {"name": "a", "model": "m", "batchTolerance": 0.25},
    ],
)  # fmt: skip
def test_plain_rows_take_the_fast_path(row: dict[str, Any]) -> None:
    fast = plain_server(row, CLASSES, ACCELERATORS, TRITON)
    assert fast is not None
    assert fast == slow(row)


@pytest.mark.parametrize(
    "row",
    [
        {"name": "a", "model": "m", "load": {"arrivalRate": True}},  # a boolean is no number
        {"name": "a", "model": "m", "maxBatchSize": 2.0},  # integral float: the checked path
        {"name": "a", "model": "m", "Load": {"arrivalRate": 1}},  # another case of a key
        {"name": "a", "model": "m", "load": {"arrivalRate": 1}, "LOAD": {"arrivalRate": 2}},
        {"name": "a", "model": "tm", "maxBatchSize": 129},  # over the Triton bound
        {"name": "a", "model": "m", "class": "premium"},  # classes match exactly here
        {"name": "a", "model": "m", "currentAlloc": {"accelerator": "XYZ"}},
        {"name": "a", "model": "m", "minNumReplicas": 3, "maxNumReplicas": 2},
        {"name": " ", "model": "m"},
    ],
)
def test_other_rows_are_left_to_the_checked_path(row: dict[str, Any]) -> None:
    assert plain_server(row, CLASSES, ACCELERATORS, TRITON) is None


def sample_documents() -> dict[str, Any]:
    return {
        name: json.loads((SAMPLE / name).read_text())
        for name in ("accelerator-data.json", "model-data.json", "serviceclass-data.json")
    }


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"load": {"arrivalRate": -1}}, "$.servers[1].load.arrivalRate", "expected a number >= 0"),
        ({"load": {"arrivalRate": "9"}}, "$.servers[1].load.arrivalRate", "expected a number"),
        ({"maxBatchSize": 2.5}, "$.servers[1].maxBatchSize", "expected an integer"),
        ({"keepAccelerator": 1}, "$.servers[1].keepAccelerator", "expected a boolean"),
        ({"batchTolerance": 1}, "$.servers[1].batchTolerance", "<= 0.99"),
        ({"name": ""}, "$.servers[1].name", "non-empty"),
        (
            {"load": {"arrivalRate": 1, "avgOutTokens": 1e-6}},
            "$.servers[1].load.avgOutTokens",
            ">= 0.001",
        ),
        (
            {"currentAlloc": {"accelerator": "XYZ"}},
            "$.servers[1].currentAlloc.accelerator",
            "unknown accelerator 'XYZ'",
        ),
    ],
)
def test_bad_rows_still_name_the_field(change: dict[str, Any], path: str, words: str) -> None:
    good = {"name": "a", "class": "Premium", "model": "llama3_8b", "load": {"arrivalRate": 60}}
    bad = {**good, "name": "b", **change}
    docs = {**sample_documents(), "server-data.json": {"servers": [good, bad]}}
    with pytest.raises(InputError) as caught:
        system_from_documents(docs, "request")
    assert caught.value.path == path
    assert words in caught.value.problem


def test_a_system_reads_the_same_through_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The large sample and a generated system of every row shape the checked path accepts:
    equal Systems with the fast path and with it switched off."""
    import inferno.data.system_files as files

    docs = sample_documents()
    rng = random.Random(5)
    rows = []
    for i in range(400):
        row = random_row(rng)
        row["name"] = f"s{i}"
        row["model"] = rng.choice(["llama3_8b", "granite_13b"])
        if not isinstance(slow(row), tuple):  # accepted by the checked getters
            rows.append(row)
    assert len(rows) > 200
    docs["server-data.json"] = {"servers": rows}
    fast_sample, fast_rows = load_system(SAMPLE), system_from_documents(docs, "request")
    monkeypatch.setattr(files, "plain_server", lambda *a: None)
    assert load_system(SAMPLE) == fast_sample
    assert system_from_documents(docs, "request") == fast_rows
