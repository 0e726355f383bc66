"""Bad system data: every error names the file and the JSON path, and no raw traceback escapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferno.data import documents, limits, load_analyzer_problem, load_system
from inferno.errors import DataError, InputError
from inferno.model.profiles import G0Profile, Tokens

Files = dict[str, Any]


def base_files() -> Files:
    """A small valid system as {file name: JSON document}."""
    return {
        "accelerator-data.json": {
            "accelerators": [
                {"name": "A100", "type": "A100", "cost": 40},
                {"name": "H100", "type": "H100", "cost": 75},
            ]
        },
        "capacity-data.json": {"count": [{"type": "A100", "count": 8}]},
        "model-data.json": {
            "models": [
                {
                    "name": "m0",
                    "acc": "A100",
                    "alpha": 20,
                    "beta": 0.4,
                    "maxBatchSize": 32,
                    "atTokens": 512,
                },
                {
                    "name": "m0",
                    "acc": "H100",
                    "alpha": 12,
                    "beta": 0.2,
                    "maxBatchSize": 32,
                    "atTokens": 512,
                },
            ]
        },
        "serviceclass-data.json": {
            "serviceClasses": [
                {"name": "Premium", "model": "m0", "priority": 1, "slo-itl": 40, "slo-ttw": 500},
                {"name": "Free", "model": "m0", "priority": 3, "slo-itl": 160},
            ]
        },
        "server-data.json": {
            "servers": [
                {
                    "name": f"s{i}",
                    "class": "Premium",
                    "model": "m0",
                    "currentAlloc": {"load": {"arrivalRate": 60, "avgLength": 1024}},
                }
                for i in range(4)
            ]
        },
        "optimizer-data.json": {"optimizer": {"unlimited": False}},
    }


def write(directory: Path, files: Files) -> Path:
    for name, doc in files.items():
        text = doc if isinstance(doc, str) else json.dumps(doc)  # NaN stays a NaN literal
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def load(tmp_path: Path, change: Callable[[Files], None]) -> None:
    files = base_files()
    change(files)
    load_system(write(tmp_path, files))


def server3_load(files: Files) -> dict[str, Any]:
    load: dict[str, Any] = files["server-data.json"]["servers"][3]["currentAlloc"]["load"]
    return load


def set_arrival(value: object) -> Callable[[Files], None]:
    return lambda files: server3_load(files).__setitem__("arrivalRate", value)


def set_model(key: str, value: object, row: int = 1) -> Callable[[Files], None]:
    return lambda files: files["model-data.json"]["models"][row].__setitem__(key, value)


def set_server(key: str, value: object, row: int = 2) -> Callable[[Files], None]:
    return lambda files: files["server-data.json"]["servers"][row].__setitem__(key, value)


def set_optimizer(key: str, value: object) -> Callable[[Files], None]:
    return lambda files: files["optimizer-data.json"]["optimizer"].__setitem__(key, value)


def malformed(files: Files) -> None:
    files["server-data.json"] = '{\n  "servers": [\n    {"name": "s0",}\n  ]\n}'


def missing_file(name: str) -> Callable[[Files], None]:
    return lambda files: files.pop(name)


def duplicate_server(files: Files) -> None:
    files["server-data.json"]["servers"][2]["name"] = "s0"


def no_batch_time(files: Files) -> None:
    set_model("alpha", 0)(files)
    set_model("beta", 0)(files)


def nan_literal(files: Files) -> None:
    text = json.dumps(base_files()["server-data.json"], indent=1)
    files["server-data.json"] = text.replace('"arrivalRate": 60', '"arrivalRate": NaN', 2)


ACC, CAP, MDL, CLS, SRV, OPT = (
    "accelerator-data.json",
    "capacity-data.json",
    "model-data.json",
    "serviceclass-data.json",
    "server-data.json",
    "optimizer-data.json",
)
RATE3 = "$.servers[3].currentAlloc.load.arrivalRate"
BATCH1 = "$.models[1].maxBatchSize"


def case(
    name: str,
    change: Callable[[Files], None],
    file: str,
    path: str | None,
    *fragments: str,
    data_error: bool = False,
) -> Any:
    return pytest.param(change, file, path, fragments, data_error, id=name)


CASES = [
    case("malformed-json", malformed, SRV, None, "malformed JSON", "line 3", "column 19"),
    case("missing-models", missing_file(MDL), MDL, None, "required file is missing"),
    case("missing-capacity", missing_file(CAP), CAP, None, "required file is missing"),
    case("negative-rate", set_arrival(-2.5), SRV, RATE3, ">= 0", "-2.5"),
    case("zero-batch", set_model("maxBatchSize", 0), MDL, BATCH1, ">= 1", "got 0"),
    case("negative-batch", set_model("maxBatchSize", -4), MDL, BATCH1, ">= 1", "-4"),
    case("fractional-batch", set_model("maxBatchSize", 2.5), MDL, BATCH1, "integer", "2.5"),
    case("string-number", set_model("alpha", "12"), MDL, "$.models[1].alpha", "number", '"12"'),
    case("bool-number", set_arrival(True), SRV, RATE3, "expected a number", "boolean true"),
    case("list-object", set_server("currentAlloc", [1]), SRV, "$.servers[2].currentAlloc", "array"),
    case("no-batch-time", no_batch_time, MDL, "$.models[1]", "alpha + beta"),
    case(
        "unknown-acc",
        set_model("acc", "B200"),
        MDL,
        "$.models[1].acc",
        "B200",
        "A100, H100",
        data_error=True,
    ),
    case(
        "duplicate-profile",
        set_model("acc", "A100"),
        MDL,
        "$.models[1]",
        "duplicate",
        data_error=True,
    ),
    case(
        "unknown-class",
        set_server("class", "Gold"),
        SRV,
        "$.servers[2].class",
        "Gold",
        "Free, Premium",
        data_error=True,
    ),
    case(
        "unknown-current-acc",
        set_server("currentAlloc", {"accelerator": "TPU"}),
        SRV,
        "$.servers[2].currentAlloc.accelerator",
        "TPU",
        data_error=True,
    ),
    case("duplicate-server", duplicate_server, SRV, "$.servers[2].name", "'s0'", data_error=True),
    case(
        "max-replicas", set_server("maxNumReplicas", 0), SRV, "$.servers[2].maxNumReplicas", "got 0"
    ),
    case(
        "saturation-policy",
        set_optimizer("saturationPolicy", "Greedy"),
        OPT,
        "$.optimizer.saturationPolicy",
        "Greedy",
        "None, PriorityExhaustive, RoundRobin, PriorityRoundRobin",
    ),
    case("nan-literal", nan_literal, SRV, "$.servers[0].currentAlloc.load.arrivalRate", "NaN"),
    case("huge-integer", set_model("maxBatchSize", 10**30), MDL, BATCH1, "too large"),
    case("infinity", set_model("beta", float("inf")), MDL, "$.models[1].beta", "Infinity"),
]


@pytest.mark.parametrize(("change", "file", "path", "fragments", "is_data_error"), CASES)
def test_bad_system_data(
    tmp_path: Path,
    change: Callable[[Files], None],
    file: str,
    path: str | None,
    fragments: tuple[str, ...],
    is_data_error: bool,
) -> None:
    with pytest.raises(InputError) as info:
        load(tmp_path, change)
    err = info.value
    assert isinstance(err, DataError) is is_data_error
    assert err.source == str(tmp_path / file)
    assert file in str(err)
    assert err.path == path
    if path is not None:
        assert path in str(err)
    for fragment in fragments:
        assert fragment in str(err)


def test_max_replicas_message_names_the_minimum(tmp_path: Path) -> None:
    def change(files: Files) -> None:
        set_server("minNumReplicas", 3)(files)
        set_server("maxNumReplicas", 2)(files)

    with pytest.raises(InputError, match=r"maxNumReplicas: expected an integer >= 3, got 2"):
        load(tmp_path, change)


def row_case(file: str, doc: Any, path: str, fragment: str) -> Any:
    return pytest.param(file, doc, path, fragment, id=path)


def one_model(**row: Any) -> dict[str, Any]:
    return {"models": [{"name": "m", "acc": "A100", "maxBatchSize": 4, **row}]}


def one_class(**row: Any) -> dict[str, Any]:
    return {"serviceClasses": [{"name": "Free", **row}]}


def one_target(**target: Any) -> dict[str, Any]:
    return one_class(modelTargets=[{"model": "m0", **target}])


def one_server(**row: Any) -> dict[str, Any]:
    return {"servers": [{"name": "s", "model": "m0", **row}]}


def optimizer(**options: Any) -> dict[str, Any]:
    return {"optimizer": options}


A100 = {"type": "A100", "count": 1}
G1_DECODE = {"decodeParms": {"alpha": 1, "beta": 1}, "atTokens": 8}
FREE_M0 = {"name": "Free", "model": "m0", "slo-itl": 9}

ROW_CASES = [
    row_case(CAP, {"count": [A100, A100]}, "$.count[1].type", "duplicate"),
    row_case(CAP, {"count": [{"type": "A100", "count": -1}]}, "$.count[0].count", ">= 0"),
    row_case(
        ACC,
        {"accelerators": [{"name": "A100", "multiplicity": 0}]},
        "$.accelerators[0].multiplicity",
        ">= 1",
    ),
    row_case(
        ACC, {"accelerators": [{"name": "A100", "cost": -1}]}, "$.accelerators[0].cost", ">= 0"
    ),
    row_case(
        ACC,
        {"accelerators": [{"name": "A100", "nodeSelector": {"a": 1}}]},
        "$.accelerators[0].nodeSelector.a",
        "string",
    ),
    row_case(ACC, {"accelerator": []}, "$.accelerators", "required key"),
    row_case(ACC, [], "$", "expected an object"),
    row_case(MDL, one_model(), "$.models[0]", "no performance parameters"),
    row_case(MDL, one_model(kind="G5"), "$.models[0].kind", "G5"),
    row_case(MDL, one_model(alpha=1, beta=1), "$.models[0].atTokens", "required key"),
    row_case(MDL, one_model(alpha=1, beta=1, atTokens=0), "$.models[0].atTokens", "> 0"),
    row_case(MDL, one_model(**G1_DECODE), "$.models[0].prefillParms", "required key"),
    row_case(
        MDL, one_model(perfParms={"alpha": 1, "beta": -1}), "$.models[0].perfParms.beta", ">= 0"
    ),
    row_case(
        MDL, one_model(perfParms={"alpha": 1, "beta": 1}), "$.models[0].perfParms.gamma", "required"
    ),
    row_case(
        MDL, one_model(accCount=0, alpha=1, beta=1, atTokens=8), "$.models[0].accCount", ">= 1"
    ),
    row_case(
        MDL,
        one_model(kind="batch", alpha=1, beta=1, queueDelayMs=-1),
        "$.models[0].queueDelayMs",
        ">= 0",
    ),
    row_case(
        CLS,
        {"serviceClasses": [{**FREE_M0, "priority": 1}, {**FREE_M0, "model": "m1", "priority": 2}]},
        "$.serviceClasses[1].priority",
        "priorities 1 and 2",
    ),
    row_case(
        CLS,
        one_class(model="m0", priority=0, **{"slo-itl": 9}),
        "$.serviceClasses[0].priority",
        ">= 1",
    ),
    row_case(CLS, one_class(model="m0", **{"slo-itl": -9}), "$.serviceClasses[0].slo-itl", "-9"),
    row_case(CLS, one_class(model="m0", **{"slo-itl": 0}), "$.serviceClasses[0]", "no SLO target"),
    row_case(
        CLS,
        one_target(**{"slo-ttft": 9, "slo-ttft-quantile": "p100"}),
        "$.serviceClasses[0].modelTargets[0].slo-ttft-quantile",
        "p100",
    ),
    row_case(
        CLS,
        one_target(**{"slo-latency": 9, "slo-latency-quantile": 95}),
        "$.serviceClasses[0].modelTargets[0].slo-latency-quantile",
        "got 95",
    ),
    row_case(
        CLS,
        one_target(**{"slo-ttw": 9, "slo-ttw-quantile": "mean"}),
        "$.serviceClasses[0].modelTargets[0].slo-ttw-quantile",
        "mean",
    ),
    row_case(
        CLS,
        one_class(modelTargets=[{"model": "m0", "slo-tps": 9}, {"model": "m0", "slo-itl": 9}]),
        "$.serviceClasses[0].modelTargets[1]",
        "duplicate",
    ),
    row_case(CLS, one_class(modelTargets=[]), "$.serviceClasses[0].modelTargets", "at least one"),
    row_case(CLS, one_class(priority=1), "$.serviceClasses[0]", "modelTargets"),
    row_case(
        SRV,
        one_server(load={"arrivalRate": 1, "avgLength": 2, "avgInTokens": 3}),
        "$.servers[0].load",
        "not both",
    ),
    row_case(
        SRV, one_server(load={"avgLength": 2}), "$.servers[0].load.arrivalRate", "required key"
    ),
    row_case(
        SRV,
        one_server(load={"arrivalRate": 1, "avgOutTokens": -2}),
        "$.servers[0].load.avgOutTokens",
        ">= 0",
    ),
    row_case(SRV, {"servers": [{"model": "m0"}]}, "$.servers[0].name", "required key"),
    row_case(SRV, one_server(keepAccelerator="yes"), "$.servers[0].keepAccelerator", "boolean"),
    row_case(SRV, one_server(minNumReplicas=-1), "$.servers[0].minNumReplicas", ">= 0"),
    row_case(SRV, {"servers": {"name": "s"}}, "$.servers", "expected an array"),
    row_case(SRV, {"servers": ["s"]}, "$.servers[0]", "expected an object"),
    row_case(OPT, optimizer(batchPolicy="fastest"), "$.optimizer.batchPolicy", "memory, knee"),
    row_case(OPT, optimizer(milpTimeLimit=0), "$.optimizer.milpTimeLimit", "> 0"),
    row_case(OPT, optimizer(queueFactor=-1), "$.optimizer.queueFactor", ">= 0"),
    row_case(OPT, {"Optimiser": {}}, "$.optimizer", "required key"),
]


@pytest.mark.parametrize(("file", "doc", "path", "fragment"), ROW_CASES)
def test_more_bad_rows(tmp_path: Path, file: str, doc: Any, path: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        load(tmp_path, lambda files: files.__setitem__(file, doc))
    assert (info.value.source, info.value.path) == (str(tmp_path / file), path)
    assert fragment in str(info.value)
    assert path in str(info.value)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory"):
        load_system(tmp_path / "nowhere")


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"accelerator-data\.json: malformed JSON at line 1"):
        load(tmp_path, lambda files: files.__setitem__("accelerator-data.json", ""))


PROBLEM = {"RPS": 1, "maxBatchSize": 4, "AvgOutputTokens": 8, "alpha": 1, "beta": 1, "gamma": 0}


def problem_case(path: str, fragment: str, **changes: Any) -> Any:
    doc = {key: value for key, value in {**PROBLEM, **changes}.items() if value is not None}
    return pytest.param(json.dumps(doc), path, fragment, id=path)


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        problem_case("$.RPS", ">= 0", RPS=-1),
        problem_case("$.AvgOutputTokens", ">= 1", AvgOutputTokens=0),
        problem_case("$.gamma", "required key", gamma=None),
        problem_case("$.delta", "required key", kind="G1"),
        problem_case("$.kind", "G7", kind="G7"),
        problem_case("$.maxBatchSize", "integer", maxBatchSize="4"),
        problem_case("$.targetITL", "-5", targetITL=-5),
        problem_case("$.maxQueueSize", ">= 0", maxQueueSize=-1),
        problem_case("$", "alpha + beta", alpha=0, beta=0),
    ],
)
def test_bad_analyzer_problem(tmp_path: Path, text: str, path: str, fragment: str) -> None:
    file = tmp_path / "problem.json"
    file.write_text(text)
    with pytest.raises(InputError) as info:
        load_analyzer_problem(file)
    assert (info.value.source, info.value.path) == (str(file), path)
    assert fragment in str(info.value)


def test_malformed_analyzer_problem(tmp_path: Path) -> None:
    file = tmp_path / "problem.json"
    file.write_text('{"RPS": 1,\n "alpha": }')
    with pytest.raises(InputError, match=r"problem\.json: malformed JSON at line 2, column 11"):
        load_analyzer_problem(file)
    with pytest.raises(InputError, match="file not found"):
        load_analyzer_problem(tmp_path / "absent.json")


def _positions(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position (a path of keys and indices) inside a JSON document."""
    children: list[tuple[Any, Any]] = []
    if isinstance(doc, dict):
        children = list(doc.items())
    elif isinstance(doc, list):
        children = list(enumerate(doc))
    found = [prefix] if prefix else []
    for key, value in children:
        found.extend(_positions(value, (*prefix, key)))
    return found


def _replace(doc: Any, position: tuple[Any, ...], value: object) -> None:
    for key in position[:-1]:
        doc = doc[key]
    doc[position[-1]] = value


WRONG_VALUES: list[object] = [None, "x", "", -1, 0, 2.5, 10**30, float("nan"), True, [], [1], {}]


def test_no_raw_exception_escapes(tmp_path: Path) -> None:
    """Any value swapped for a wrong one is either accepted or reported as an InputError."""
    reported = 0
    for file, doc in base_files().items():
        for position in _positions(doc):
            for value in WRONG_VALUES:

                def change(
                    files: Files, file: str = file, pos: Any = position, value: object = value
                ) -> None:
                    _replace(files[file], pos, value)

                try:
                    load(tmp_path, change)
                except InputError as err:
                    # the error may surface in a file that refers to the changed one
                    assert err.source in {str(tmp_path / name) for name in base_files()}
                    assert str(err).startswith(str(tmp_path))
                    reported += 1
    assert reported > 100


# --- bounds (inferno.data.limits) ----------------------------------------------------------------

BOUNDED = [
    # (file, position in the document, the largest accepted value, a value just above, path)
    (SRV, ("servers", 3, "currentAlloc", "load", "arrivalRate"), limits.MAX_ARRIVAL_RATE,
     limits.MAX_ARRIVAL_RATE * 1.000001, RATE3),
    (SRV, ("servers", 3, "currentAlloc", "load", "avgLength"), limits.MAX_TOKENS,
     limits.MAX_TOKENS + 1, "$.servers[3].currentAlloc.load.avgLength"),
    (SRV, ("servers", 2, "maxBatchSize"), limits.MAX_BATCH_SIZE, limits.MAX_BATCH_SIZE + 1,
     "$.servers[2].maxBatchSize"),
    (SRV, ("servers", 2, "maxQueueSize"), limits.MAX_QUEUE_SIZE, limits.MAX_QUEUE_SIZE + 1,
     "$.servers[2].maxQueueSize"),
    (SRV, ("servers", 2, "maxNumReplicas"), limits.MAX_COUNT, limits.MAX_COUNT + 1,
     "$.servers[2].maxNumReplicas"),
    (MDL, ("models", 1, "maxBatchSize"), limits.MAX_BATCH_SIZE, limits.MAX_BATCH_SIZE + 1, BATCH1),
    (MDL, ("models", 1, "alpha"), limits.MAX_PROFILE_PARAMETER,
     limits.MAX_PROFILE_PARAMETER * 1.000001, "$.models[1].alpha"),
    (MDL, ("models", 1, "atTokens"), limits.MAX_TOKENS, limits.MAX_TOKENS + 1,
     "$.models[1].atTokens"),
    (ACC, ("accelerators", 0, "cost"), limits.MAX_COST, limits.MAX_COST * 1.000001,
     "$.accelerators[0].cost"),
    (CAP, ("count", 0, "count"), limits.MAX_COUNT, limits.MAX_COUNT + 1, "$.count[0].count"),
    (CLS, ("serviceClasses", 0, "slo-ttw"), limits.MAX_TIME_MS, limits.MAX_TIME_MS * 1.000001,
     "$.serviceClasses[0].slo-ttw"),
    (CLS, ("serviceClasses", 0, "priority"), limits.MAX_COUNT, limits.MAX_COUNT + 1,
     "$.serviceClasses[0].priority"),
    (OPT, ("optimizer", "queueFactor"), limits.MAX_QUEUE_FACTOR, limits.MAX_QUEUE_FACTOR + 1,
     "$.optimizer.queueFactor"),
    (OPT, ("optimizer", "milpTimeLimit"), limits.MAX_MILP_TIME_LIMIT,
     limits.MAX_MILP_TIME_LIMIT + 1, "$.optimizer.milpTimeLimit"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("file", "position", "largest", "above", "path"),
    BOUNDED,
    ids=[path for *_, path in BOUNDED],
)
def test_each_bound_accepts_its_value_and_refuses_more(
    tmp_path: Path, file: str, position: tuple[Any, ...], largest: float, above: float, path: str
) -> None:
    load(tmp_path, lambda files: _replace(files[file], position, largest))
    with pytest.raises(InputError) as info:
        load(tmp_path, lambda files: _replace(files[file], position, above))
    assert info.value.path == path
    assert info.value.source == str(tmp_path / file)
    assert "<=" in info.value.problem


@pytest.mark.parametrize(
    ("position", "value", "accepted"),
    [
        (("servers", 3, "currentAlloc", "load", "avgLength"), 0, True),
        (("servers", 3, "currentAlloc", "load", "avgLength"), limits.MIN_TOKENS, True),
        (("servers", 3, "currentAlloc", "load", "avgLength"), limits.MIN_TOKENS / 2, False),
        (("servers", 3, "currentAlloc", "load", "avgLength"), 5e-324, False),
    ],
)
def test_a_positive_token_count_has_a_floor(
    tmp_path: Path, position: tuple[Any, ...], value: float, accepted: bool
) -> None:
    def change(files: Files) -> None:
        _replace(files[SRV], position, value)

    if accepted:
        load(tmp_path, change)
    else:
        with pytest.raises(InputError, match=r"expected a number >= 0\.001 \(or 0\)"):
            load(tmp_path, change)


def test_a_triton_batch_is_bounded_lower_than_a_chain_batch(tmp_path: Path) -> None:
    def batch_kind(size: int, batching: str) -> Callable[[Files], None]:
        def change(files: Files) -> None:
            row = files[MDL]["models"][1]
            row.update({"kind": "batch", "batching": batching, "maxBatchSize": size})
            row.pop("atTokens")

        return change

    load(tmp_path, batch_kind(limits.MAX_TRITON_BATCH_SIZE, "triton"))
    load(tmp_path, batch_kind(limits.MAX_BATCH_SIZE, "chain"))
    with pytest.raises(InputError, match='batching: "chain"') as info:
        load(tmp_path, batch_kind(limits.MAX_TRITON_BATCH_SIZE + 1, "triton"))
    assert info.value.path == BATCH1


def test_every_server_row_error_is_under_its_row(tmp_path: Path) -> None:
    """The optimizer service leaves out the server an error's path names ($.servers[i]...)."""
    for key, value in [("maxBatchSize", 10**9), ("maxQueueSize", 10**9), ("minNumReplicas", -1)]:
        with pytest.raises(InputError) as info:
            load(tmp_path, set_server(key, value))
        assert (info.value.path or "").startswith("$.servers[2]."), info.value


# --- reading files: nesting and long integers (inferno.data.documents) ---------------------------


def test_nesting_is_measured_in_levels() -> None:
    def deep(levels: int) -> object:
        value: object = 1
        for _ in range(levels):
            value = [value]
        return value

    assert not documents.nested_too_deeply(deep(limits.MAX_NESTING))
    assert documents.nested_too_deeply(deep(limits.MAX_NESTING + 1))
    assert not documents.nested_too_deeply({"a": {"b": [1, {"c": 2}]}}, 4)
    assert documents.nested_too_deeply({"a": {"b": [1, {"c": []}]}}, 4)


def test_shared_and_self_referencing_nodes_cost_their_text() -> None:
    shared: list[object] = [1]
    for _ in range(40):  # 2^40 paths, 40 distinct lists
        shared = [shared, shared]
    assert not documents.nested_too_deeply(shared)
    loop: list[object] = []
    loop.append(loop)
    assert documents.nested_too_deeply(loop)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[" * 100_000 + "]" * 100_000, "nesting deeper than 64 levels"),
        ("[" * 65 + "]" * 65, "nesting deeper than 64 levels"),
        ("9" * 5000, "integer with more than 4300 digits"),
        ('{"a": 1,}', "malformed JSON at line 1"),
    ],
)
def test_json_text_errors_name_the_file(text: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        documents.parse_json(text, "f.json")
    assert info.value.source == "f.json" and words in info.value.problem


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: " + "[" * 100_000 + "]" * 100_000, "nesting deeper than 64 levels"),
        ("a: &x [*x]", "nesting deeper than 64 levels"),
        ("a: " + "9" * 5000, "integer with more than 4300 digits"),
        ("a: [1", "malformed YAML"),
        ("a: !!int zz", "malformed YAML"),
    ],
)
def test_yaml_text_errors_name_the_file(text: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        documents.parse_yaml(text, "f.yaml")
    assert info.value.source == "f.yaml" and words in info.value.problem


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory, expected a file"):
        documents.read_text(tmp_path, "here")


# --- the model's own caps ----------------------------------------------------------------------


def test_the_memory_scaled_batch_is_capped() -> None:
    from inferno.model.points import MAX_BATCH, OperatingPoints

    # maxBatchSize·atTokens/tokens = 100000·1e7/0.001: 1e15 without the cap
    profile, tokens = G0Profile(20.0, 0.4, 100_000, 1e7), Tokens(0.0, 0.001)
    pts = OperatingPoints.of([profile], [tokens])
    assert pts.n_batch[0] == MAX_BATCH == limits.MAX_BATCH_SIZE
    assert pts.n_max[0] == 10 * MAX_BATCH  # G0's default queue, 9N
    # a queue factor of 1000 asks for a queue of 1e8: the queue is capped too
    pts = OperatingPoints.of([profile], [tokens], queue_factor=1000.0)
    assert pts.n_max[0] == MAX_BATCH + limits.MAX_QUEUE_SIZE


def test_a_zero_service_time_stays_finite() -> None:
    from inferno.model.points import OperatingPoints

    pts = OperatingPoints.of([G0Profile(5e-324, 0.0, 32, 512)], [Tokens(0.0, 1024.0)])
    assert np.isfinite(pts.mu_1).all() and np.isfinite(pts.mu_n).all()


def test_the_response_time_chain_is_bounded() -> None:
    from inferno.model import percentiles

    assert percentiles.response_states(16, 16 + 900) <= percentiles.MAX_RESPONSE_STATES
    with pytest.raises(InputError, match="maxQueueSize"):
        percentiles.ResponseTime(0.01, np.ones(16), 16 + 2000, np.ones(16 + 2001))
