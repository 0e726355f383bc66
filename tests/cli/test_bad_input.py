"""Bad input through the real command line: exit status 2, one line on stderr, never a traceback.

Every case of :data:`CASES` runs ``inferno.cli.main`` in-process on a small valid input changed in
one place (a system directory for ``optimize`` and ``explain``, a problem file for ``analyze``, a
scenario for ``simulate``), and checks that the one line ``inferno: error: ...`` names the file,
the field and the cause. A few cases run ``python -m inferno`` in a subprocess, and the behaviour
kept for inputs that are not errors (an unknown model: a result, its server unallocated) is pinned
too, beside the rule's other side (an empty server list: exit 2, as ``simulate`` says).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from inferno.cli import main
from inferno.simulate import limits as sim_limits

Files = dict[str, Any]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "large"
HUGE_INT = "9" * 5000  # an integer literal beyond Python's 4300-digit limit on text to int


def base_files() -> Files:
    """A valid system: a G0, a G2, a G1 and a Triton batch-kind model, one server each."""
    return {
        "accelerator-data.json": {
            "accelerators": [
                {"name": "A100", "cost": 40, "memSize": 80, "memBW": 2000},
                {"name": "H100", "cost": 75},
            ]
        },
        "capacity-data.json": {
            "count": [{"type": "A100", "count": 64}, {"type": "H100", "count": 8}]
        },
        "model-data.json": {
            "models": [
                {"name": "m", "acc": "A100", "alpha": 20, "beta": 0.4, "maxBatchSize": 32,
                 "atTokens": 512},
                {"name": "g", "acc": "A100", "perfParms": {"alpha": 6, "beta": 0.1, "gamma": 0.01},
                 "maxBatchSize": 64},
                {"name": "d", "acc": "A100", "decodeParms": {"alpha": 10, "beta": 0.2},
                 "prefillParms": {"gamma": 5, "delta": 0.01}, "maxBatchSize": 32,
                 "atTokens": 512},
                {"name": "r", "acc": "A100", "kind": "batch", "alpha": 5, "beta": 1,
                 "maxBatchSize": 16},
            ]
        },
        "serviceclass-data.json": {
            "serviceClasses": [
                {
                    "name": "Premium",
                    "priority": 1,
                    "modelTargets": [
                        {"model": "m", "slo-itl": 40, "slo-ttw": 500},
                        {"model": "g", "slo-itl": 40, "slo-ttft": 500},
                        {"model": "d", "slo-itl": 80, "slo-ttft": 1000},
                        {"model": "r", "slo-latency": 200},
                    ],
                }
            ]
        },
        "server-data.json": {
            "servers": [
                {"name": "sm", "class": "Premium", "model": "m",
                 "currentAlloc": {"load": {"arrivalRate": 60, "avgLength": 1024}}},
                {"name": "sg", "class": "Premium", "model": "g",
                 "currentAlloc": {"load": {"arrivalRate": 60, "avgInTokens": 128,
                                           "avgOutTokens": 256}}},
                {"name": "sd", "class": "Premium", "model": "d",
                 "currentAlloc": {"load": {"arrivalRate": 60, "avgInTokens": 128,
                                           "avgOutTokens": 256}}},
                {"name": "sr", "class": "Premium", "model": "r",
                 "currentAlloc": {"load": {"arrivalRate": 600}}},
            ]
        },
        "optimizer-data.json": {"optimizer": {"unlimited": True}},
    }  # fmt: skip


def write_system(directory: Path, files: Files) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, doc in files.items():
        text = doc if isinstance(doc, str | bytes) else json.dumps(doc)  # NaN stays a NaN literal
        if isinstance(text, bytes):
            (directory / name).write_bytes(text)
        else:
            (directory / name).write_text(text, encoding="utf-8")
    return directory


def _set(doc: Any, dotted: str, value: Any) -> None:
    """``doc[a][b]...= value`` for ``dotted`` = "a.b..." (integer parts index lists)."""
    *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    for key in parents:
        doc = doc[key]
    doc[last] = value


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input: ``build`` writes it under a directory and returns the command's argv."""

    id: str
    build: Callable[[Path], list[str]]
    expect: tuple[str, ...] = ()
    monkey: dict[str, Any] = field(default_factory=dict)


def system_case(
    id: str,
    change: Callable[[Files], object],
    *expect: str,
    command: str = "optimize",
    flags: tuple[str, ...] = (),
) -> Case:
    def build(tmp: Path) -> list[str]:
        files = base_files()
        change(files)
        directory = write_system(tmp / "system", files)
        argv = [command, str(directory)]
        return [*argv, "sm", *flags] if command == "explain" else [*argv, *flags]

    return Case(id, build, expect)


def value_case(id: str, file: str, dotted: str, value: Any, *expect: str) -> Case:
    """``file``'s value at ``dotted`` replaced by ``value`` (``optimize``)."""
    return system_case(id, lambda f: _set(f[file], dotted, value), file, *expect)


def text_case(id: str, file: str, edit: Callable[[str], str], *expect: str) -> Case:
    """``file``'s JSON text edited (NaN literals, huge integers, broken syntax)."""

    def change(files: Files) -> None:
        files[file] = edit(json.dumps(files[file]))

    return system_case(id, change, file, *expect)


def replace_text(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, (old, text)
        return text.replace(old, new, 1)

    return edit


RATE0 = "servers.0.currentAlloc.load.arrivalRate"
S0 = "$.servers[0]"


def _cv_beyond_the_cap(files: Files) -> None:
    _set(files["server-data.json"], "servers.1.currentAlloc.load.outTokensCOV", 1.5)
    _set(files["server-data.json"], "servers.1.currentAlloc.load.outTokensMax", 512)


def _limited_without_capacity(files: Files) -> None:
    files.pop("capacity-data.json")
    _set(files["optimizer-data.json"], "optimizer.unlimited", False)


LOAD0 = f"{S0}.currentAlloc.load"
LOAD1 = "$.servers[1].currentAlloc.load"

SYSTEM_VALUES = [
    # (id, file, dotted path, value, expected JSON path, expected words)
    ("rate-1e308", "server-data.json", "servers.0.currentAlloc.load.arrivalRate", 1e308,
     f"{LOAD0}.arrivalRate", "<= 1e+09"),
    ("rate-above-bound", "server-data.json", "servers.0.currentAlloc.load.arrivalRate", 1.000001e9,
     f"{LOAD0}.arrivalRate", "<= 1e+09"),
    ("rate-negative", "server-data.json", "servers.0.currentAlloc.load.arrivalRate", -2.5,
     f"{LOAD0}.arrivalRate", ">= 0"),
    ("length-1e308", "server-data.json", "servers.0.currentAlloc.load.avgLength", 1e308,
     f"{LOAD0}.avgLength", "<= 1e+07"),
    ("length-subnormal", "server-data.json", "servers.0.currentAlloc.load.avgLength", 5e-324,
     f"{LOAD0}.avgLength", ">= 0.001"),
    ("in-tokens-1e308", "server-data.json", "servers.1.currentAlloc.load.avgInTokens", 1e308,
     f"{LOAD1}.avgInTokens", "<= 1e+07"),
    ("out-tokens-above-bound", "server-data.json", "servers.1.currentAlloc.load.avgOutTokens",
     10_000_001, f"{LOAD1}.avgOutTokens", "<= 1e+07"),
    ("out-tokens-tiny", "server-data.json", "servers.1.currentAlloc.load.avgOutTokens", 1e-300,
     f"{LOAD1}.avgOutTokens", ">= 0.001"),
    ("out-tokens-dist-unknown", "server-data.json", "servers.1.currentAlloc.load.outTokensDist",
     "weibull", "$.servers[1].currentAlloc.load.outTokensDist",
     "unknown output-length family 'weibull'; expected one of gamma, lognormal"),
    ("out-tokens-dist-number", "server-data.json", "servers.1.currentAlloc.load.outTokensDist",
     1.5, "$.servers[1].currentAlloc.load.outTokensDist", "string"),
    ("out-tokens-max-below-mean", "server-data.json", "servers.1.currentAlloc.load.outTokensMax",
     1, f"{LOAD1}.outTokensMax", "outTokensMax (1) is below avgOutTokens"),
    ("out-tokens-max-1e308", "server-data.json", "servers.1.currentAlloc.load.outTokensMax",
     1e308, f"{LOAD1}.outTokensMax", "<= 1e+07"),
    ("out-tokens-max-zero", "server-data.json", "servers.1.currentAlloc.load.outTokensMax",
     0, f"{LOAD1}.outTokensMax", ">= 1"),
    ("in-tokens-dist-unknown", "server-data.json", "servers.1.currentAlloc.load.inTokensDist",
     "pareto", "$.servers[1].currentAlloc.load.inTokensDist",
     "unknown input-length family 'pareto'; expected one of gamma, lognormal"),
    ("in-tokens-cov-negative", "server-data.json", "servers.1.currentAlloc.load.inTokensCOV",
     -0.5, f"{LOAD1}.inTokensCOV", ">= 0"),
    ("arrival-cov-1e308", "server-data.json", "servers.0.currentAlloc.load.arrivalCOV", 1e308,
     f"{LOAD0}.arrivalCOV", "<= 1e+12"),
    ("service-cov-negative", "server-data.json", "servers.0.currentAlloc.load.serviceCOV", -1,
     f"{LOAD0}.serviceCOV", ">= 0"),
    ("num-replicas-1e9", "server-data.json", "servers.0.currentAlloc.numReplicas", 10**9,
     f"{S0}.currentAlloc.numReplicas", "<= 1000000"),
    ("current-max-batch-1e9", "server-data.json", "servers.0.currentAlloc.maxBatch", 10**9,
     f"{S0}.currentAlloc.maxBatch", "<= 100000"),
    ("current-cost-1e308", "server-data.json", "servers.0.currentAlloc.cost", 1e308,
     f"{S0}.currentAlloc.cost", "<= 1e+12"),
    ("min-replicas-1e9", "server-data.json", "servers.0.minNumReplicas", 10**9,
     f"{S0}.minNumReplicas", "<= 1000000"),
    ("max-replicas-1e9", "server-data.json", "servers.0.maxNumReplicas", 10**9,
     f"{S0}.maxNumReplicas", "<= 1000000"),
    ("server-max-batch-1e9", "server-data.json", "servers.0.maxBatchSize", 10**9,
     f"{S0}.maxBatchSize", "<= 100000"),
    ("server-max-batch-above-bound", "server-data.json", "servers.2.maxBatchSize", 100_001,
     "$.servers[2].maxBatchSize", "<= 100000"),
    ("server-max-batch-triton", "server-data.json", "servers.3.maxBatchSize", 129,
     "$.servers[3].maxBatchSize", "<= 128"),
    ("max-queue-1e7", "server-data.json", "servers.0.maxQueueSize", 10**7,
     f"{S0}.maxQueueSize", "<= 1000000"),
    ("max-queue-negative", "server-data.json", "servers.0.maxQueueSize", -1,
     f"{S0}.maxQueueSize", ">= 0"),
    ("alpha-1e308", "model-data.json", "models.0.alpha", 1e308, "$.models[0].alpha", "<= 1e+07"),
    ("beta-negative", "model-data.json", "models.0.beta", -1, "$.models[0].beta", ">= 0"),
    ("model-max-batch-1e9", "model-data.json", "models.0.maxBatchSize", 10**9,
     "$.models[0].maxBatchSize", "<= 100000"),
    ("model-max-batch-0", "model-data.json", "models.0.maxBatchSize", 0,
     "$.models[0].maxBatchSize", ">= 1"),
    ("at-tokens-1e308", "model-data.json", "models.0.atTokens", 1e308, "$.models[0].atTokens",
     "<= 1e+07"),
    ("at-tokens-tiny", "model-data.json", "models.0.atTokens", 1e-300, "$.models[0].atTokens",
     ">= 0.001"),
    ("acc-count-1e9", "model-data.json", "models.0.accCount", 10**9, "$.models[0].accCount",
     "<= 1000000"),
    ("gamma-1e308", "model-data.json", "models.1.perfParms.gamma", 1e308,
     "$.models[1].perfParms.gamma", "<= 1e+07"),
    ("max-num-tokens-1e9", "model-data.json", "models.1.maxNumTokens", 10**9,
     "$.models[1].maxNumTokens", "<= 10000000"),
    ("delta-1e308", "model-data.json", "models.2.prefillParms.delta", 1e308,
     "$.models[2].prefillParms.delta", "<= 1e+07"),
    ("decode-alpha-negative", "model-data.json", "models.2.decodeParms.alpha", -5,
     "$.models[2].decodeParms.alpha", ">= 0"),
    ("triton-batch-129", "model-data.json", "models.3.maxBatchSize", 129,
     "$.models[3].maxBatchSize", "<= 128"),
    ("queue-delay-1e308", "model-data.json", "models.3.queueDelayMs", 1e308,
     "$.models[3].queueDelayMs", "<= 1e+09"),
    # issue 12: Triton's batching delay and instance counts out of range
    ("queue-delay-over-a-minute", "model-data.json", "models.3.queueDelayMs", 60_001,
     "$.models[3].queueDelayMs", "expected a batching delay <= 60000 ms"),
    ("contention-17-instances", "model-data.json", "models.3.contention", [1.0] + [1.1] * 16,
     "$.models[3].contention", "at most 16 factors (Inferno's instance limit), got 17"),
    ("contention-kappa1-not-1", "model-data.json", "models.3.contention", [1.5, 2.0],
     "$.models[3].contention[0]", "κ(1) must be 1"),
    ("acc-cost-1e308", "accelerator-data.json", "accelerators.0.cost", 1e308,
     "$.accelerators[0].cost", "<= 1e+12"),
    ("multiplicity-1e9", "accelerator-data.json", "accelerators.0.multiplicity", 10**9,
     "$.accelerators[0].multiplicity", "<= 1000000"),
    ("mem-size-1e308", "accelerator-data.json", "accelerators.0.memSize", 1e308,
     "$.accelerators[0].memSize", "<= 1e+12"),
    ("mem-bw-negative", "accelerator-data.json", "accelerators.0.memBW", -1,
     "$.accelerators[0].memBW", ">= 0"),
    ("capacity-1e9", "capacity-data.json", "count.0.count", 10**9, "$.count[0].count",
     "<= 1000000"),
    ("priority-1e9", "serviceclass-data.json", "serviceClasses.0.priority", 10**9,
     "$.serviceClasses[0].priority", "<= 1000000"),
    ("slo-itl-1e308", "serviceclass-data.json", "serviceClasses.0.modelTargets.0.slo-itl", 1e308,
     "$.serviceClasses[0].modelTargets[0].slo-itl", "<= 1e+09"),
    ("slo-ttw-1e308", "serviceclass-data.json", "serviceClasses.0.modelTargets.0.slo-ttw", 1e308,
     "$.serviceClasses[0].modelTargets[0].slo-ttw", "<= 1e+09"),
    ("slo-ttft-tiny", "serviceclass-data.json", "serviceClasses.0.modelTargets.1.slo-ttft", 1e-300,
     "$.serviceClasses[0].modelTargets[1].slo-ttft", ">= 1e-06"),
    ("slo-latency-1e308", "serviceclass-data.json", "serviceClasses.0.modelTargets.3.slo-latency",
     1e308, "$.serviceClasses[0].modelTargets[3].slo-latency", "<= 1e+09"),
    ("slo-tps-1e308", "serviceclass-data.json", "serviceClasses.0.modelTargets.1.slo-tps", 1e308,
     "$.serviceClasses[0].modelTargets[1].slo-tps", "<= 1e+09"),
    ("queue-factor-1e308", "optimizer-data.json", "optimizer.queueFactor", 1e308,
     "$.optimizer.queueFactor", "<= 1000"),
    ("queue-factor-negative", "optimizer-data.json", "optimizer.queueFactor", -1,
     "$.optimizer.queueFactor", ">= 0"),
    ("milp-time-limit-1e9", "optimizer-data.json", "optimizer.milpTimeLimit", 1e9,
     "$.optimizer.milpTimeLimit", "<= 86400"),
    # wrong types: the field is named, and what was seen
    ("rate-string", "server-data.json", "servers.0.currentAlloc.load.arrivalRate", "60",
     f"{LOAD0}.arrivalRate", 'the string "60"'),
    ("alpha-boolean", "model-data.json", "models.0.alpha", True, "$.models[0].alpha",
     "the boolean true"),
    ("batch-list", "model-data.json", "models.0.maxBatchSize", [32], "$.models[0].maxBatchSize",
     "an array of 1 item"),
    ("cost-object", "accelerator-data.json", "accelerators.0.cost", {"cents": 40},
     "$.accelerators[0].cost", "an object"),
    ("priority-string", "serviceclass-data.json", "serviceClasses.0.priority", "high",
     "$.serviceClasses[0].priority", "expected an integer"),
    ("batch-fraction", "model-data.json", "models.0.maxBatchSize", 32.5,
     "$.models[0].maxBatchSize", "expected an integer"),
    ("rate-null", "server-data.json", "servers.0.currentAlloc.load.arrivalRate", None,
     f"{LOAD0}.arrivalRate", "required key 'arrivalRate' is missing"),
    ("servers-object", "server-data.json", "servers", {}, "$.servers", "expected an array"),
    ("server-row-string", "server-data.json", "servers.0", "sm", "$.servers[0]",
     "expected an object"),
    ("huge-int-batch", "model-data.json", "models.0.maxBatchSize", 10**4000,
     "$.models[0].maxBatchSize", "at most 19 digits"),
    ("huge-int-rate", "server-data.json", "servers.0.currentAlloc.load.arrivalRate", 10**30,
     f"{LOAD0}.arrivalRate", "a number too large"),
    ("huge-int-replicas", "server-data.json", "servers.0.currentAlloc.numReplicas", 10**25,
     f"{S0}.currentAlloc.numReplicas", "at most 19 digits"),
]  # fmt: skip

CASES: list[Case] = [
    value_case(id, file, dotted, value, path, words)
    for id, file, dotted, value, path, words in SYSTEM_VALUES
]

NUMBER_60 = '"arrivalRate": 60'
CASES += [
    text_case("rate-nan", "server-data.json", replace_text(NUMBER_60, '"arrivalRate": NaN'),
              f"{LOAD0}.arrivalRate", "expected a finite number, got NaN"),
    text_case("alpha-infinity", "model-data.json", replace_text('"alpha": 20', '"alpha": Infinity'),
              "$.models[0].alpha", "got Infinity"),
    text_case("cost-minus-infinity", "accelerator-data.json",
              replace_text('"cost": 40', '"cost": -Infinity'), "$.accelerators[0].cost",
              "-Infinity"),
    text_case("rate-1e400", "server-data.json", replace_text(NUMBER_60, '"arrivalRate": 1e400'),
              f"{LOAD0}.arrivalRate", "finite"),
    text_case("rate-5000-digits", "server-data.json",
              replace_text(NUMBER_60, f'"arrivalRate": {HUGE_INT}'),
              "integer with more than 4300 digits"),
    text_case("model-5000-digits", "model-data.json",
              replace_text('"maxBatchSize": 32', f'"maxBatchSize": {HUGE_INT}'),
              "integer with more than 4300 digits"),
    text_case("deep-50000", "server-data.json", lambda _: nested(50_000),
              "nesting deeper than 64 levels"),
    text_case("deep-65-under-a-key", "model-data.json",
              lambda t: t[:-1] + f', "notes": {nested(65)}}}', "nesting deeper than 64 levels"),
    text_case("deep-2000", "accelerator-data.json", lambda _: nested(2000),
              "nesting deeper than 64 levels"),
    text_case("top-level-array", "server-data.json", lambda _: "[]", "$: expected an object"),
    text_case("empty-file", "server-data.json", lambda _: "", "malformed JSON at line 1"),
    system_case("not-utf8", lambda f: f.update({"server-data.json": b'{"servers": [\xff]}'}),
                "server-data.json", "not UTF-8"),
    system_case("optimizer-not-object", lambda f: _set(f["optimizer-data.json"], "optimizer", 3),
                "$.optimizer", "expected an object"),
    system_case("unknown-accelerator", lambda f: _set(f["model-data.json"], "models.0.acc", "TPU"),
                "$.models[0].acc", "unknown accelerator 'TPU'"),
    system_case("unknown-class",
                lambda f: _set(f["server-data.json"], "servers.1.class", "Gold"),
                "$.servers[1].class", "unknown service class 'Gold'"),
    system_case("duplicate-server",
                lambda f: _set(f["server-data.json"], "servers.1.name", "sm"),
                "$.servers[1].name", "duplicate server name"),
    system_case("missing-model-file", lambda f: f.pop("model-data.json"),
                "model-data.json", "required file is missing"),
    system_case("out-tokens-max-below-cv", _cv_beyond_the_cap, "server-data.json",
                f"{LOAD1}.outTokensCOV", "(1.5) is more than lengths of mean 256 served at most",
                "outTokensMax (512) tokens can have (1)"),
    system_case("capacity-missing-when-limited", lambda f: _limited_without_capacity(f),
                "capacity-data.json", "required file is missing"),
]  # fmt: skip

CASES += [
    text_case(f"malformed-{name.removesuffix('-data.json')}", name, lambda t: t[:-1],
              name, "malformed JSON at line 1")
    for name in base_files()
]  # fmt: skip


def _server_data_is_a_directory(tmp: Path) -> list[str]:
    files = base_files()
    files.pop("server-data.json")
    directory = write_system(tmp / "system", files)
    (directory / "server-data.json").mkdir()
    return ["optimize", str(directory)]


def _file_as_directory(tmp: Path) -> list[str]:
    (tmp / "notes.txt").write_text("x", encoding="utf-8")
    return ["optimize", str(tmp / "notes.txt")]


CASES += [
    Case("missing-directory", lambda tmp: ["optimize", str(tmp / "nowhere")],
         ("nowhere", "not a directory")),
    Case("file-as-directory", _file_as_directory, ("notes.txt", "not a directory")),
    Case("server-data-is-a-directory", _server_data_is_a_directory,
         ("server-data.json", "required file is missing")),
    # command-line values
    system_case("queue-factor-flag-nan", lambda f: None, "--queue-factor",
                flags=("--queue-factor", "nan")),
    system_case("queue-factor-flag-inf", lambda f: None, "--queue-factor",
                flags=("--queue-factor", "inf")),
    system_case("queue-factor-flag-negative", lambda f: None, "--queue-factor",
                flags=("--queue-factor", "-1")),
    system_case("queue-factor-flag-huge", lambda f: None, "--queue-factor", "[0, 1000]",
                flags=("--queue-factor", "1e9")),
    system_case("limited-without-capacity", lambda f: f.pop("capacity-data.json"),
                "capacity-data.json", "--limited", flags=("--limited",)),
    # a model limit: the exact latency percentiles of a queue of 2000 need 2 million states
    # explain
    system_case("explain-unknown-server",
                lambda f: _set(f["server-data.json"], "servers.0.name", "x"),
                "no server named 'sm'", command="explain"),
    system_case("explain-rate-1e308",
                lambda f: _set(f["server-data.json"], f"{RATE0}", 1e308),
                f"{LOAD0}.arrivalRate", "<= 1e+09", command="explain"),
    system_case("explain-deep", lambda f: f.update({"model-data.json": nested(10_000)}),
                "model-data.json", "nesting deeper than 64 levels", command="explain"),
    Case("explain-missing-directory", lambda tmp: ["explain", str(tmp / "nowhere"), "sm"],
         ("not a directory",)),
]  # fmt: skip


# --- analyze -------------------------------------------------------------------------------------


def base_problem() -> dict[str, Any]:
    return {
        "RPS": 5, "maxBatchSize": 64, "AvgInputTokens": 128, "AvgOutputTokens": 256,
        "alpha": 6, "beta": 0.1, "gamma": 0.01, "maxQueueSize": 640,
    }  # fmt: skip


def analyze_case(id: str, change: Callable[[dict[str, Any]], object] | str, *expect: str) -> Case:
    def build(tmp: Path) -> list[str]:
        if isinstance(change, str):
            text = change
        else:
            problem = base_problem()
            change(problem)
            text = json.dumps(problem)
        (tmp / "problem.json").write_text(text, encoding="utf-8")
        return ["analyze", str(tmp / "problem.json")]

    return Case(id, build, ("problem.json", *expect))


def with_(**values: Any) -> Callable[[dict[str, Any]], object]:
    return lambda problem: problem.update(values)


CASES += [
    analyze_case("analyze-rps-1e308", with_(RPS=1e308), "$.RPS", "<= 1.66667e+07"),
    analyze_case("analyze-rps-nan", '{"RPS": NaN, "maxBatchSize": 8, "AvgOutputTokens": 8, '
                 '"alpha": 1, "beta": 1, "gamma": 0}', "$.RPS", "NaN"),
    analyze_case("analyze-rps-negative", with_(RPS=-1), "$.RPS", ">= 0"),
    analyze_case("analyze-batch-1e9", with_(maxBatchSize=10**9), "$.maxBatchSize", "<= 100000"),
    analyze_case("analyze-triton-batch-129", with_(kind="batch", maxBatchSize=129),
                 "$.maxBatchSize", "<= 128"),
    analyze_case("analyze-out-tokens-1e308", with_(AvgOutputTokens=1e308), "$.AvgOutputTokens",
                 "<= 1e+07"),
    analyze_case("analyze-in-tokens-tiny", with_(AvgInputTokens=1e-300), "$.AvgInputTokens",
                 ">= 0.001"),
    analyze_case("analyze-alpha-1e308", with_(alpha=1e308), "$.alpha", "<= 1e+07"),
    analyze_case("analyze-gamma-boolean", with_(gamma=True), "$.gamma", "the boolean true"),
    analyze_case("analyze-queue-1e9", with_(maxQueueSize=10**9), "$.maxQueueSize", "<= 1000000"),
    analyze_case("analyze-target-ttft-1e308", with_(targetTTFT=1e308), "$.targetTTFT", "<= 1e+09"),
    analyze_case("analyze-target-itl-tiny", with_(targetITL=1e-300), "$.targetITL", ">= 1e-06"),
    analyze_case("analyze-max-num-tokens-1e9", with_(kind="G3", maxNumTokens=10**9),
                 "$.maxNumTokens", "<= 10000000"),
    analyze_case("analyze-5000-digits", f'{{"RPS": {HUGE_INT}}}',
                 "integer with more than 4300 digits"),
    analyze_case("analyze-deep", nested(50_000), "nesting deeper than 64 levels"),
    analyze_case("analyze-malformed", '{"RPS": 5,', "malformed JSON at line 1"),
    analyze_case("analyze-unknown-kind", with_(kind="G9"), "$.kind", "unknown profile kind 'G9'"),
    analyze_case("analyze-top-level-array", "[1, 2]", "$: expected an object"),
    analyze_case("analyze-rps-string", with_(RPS="5"), "$.RPS", 'the string "5"'),
    Case("analyze-missing-file", lambda tmp: ["analyze", str(tmp / "none.json")],
         ("none.json", "file not found")),
    Case("analyze-directory", lambda tmp: ["analyze", str(tmp)],
         ("is a directory, expected a file",)),
]  # fmt: skip


# --- simulate ------------------------------------------------------------------------------------


def scenario_case(
    id: str, doc: dict[str, Any] | str, *expect: str, name: str = "scenario.yaml"
) -> Case:
    """A scenario (a mapping written as YAML or JSON by ``name``, or raw text)."""

    def build(tmp: Path) -> list[str]:
        path = tmp / name
        if isinstance(doc, str):
            text = doc
        elif name.endswith(".json"):
            text = json.dumps(doc)
        else:
            text = yaml.safe_dump(doc, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return ["simulate", str(path), "--quiet", "--no-plots", "--out", str(tmp / "out")]

    return Case(id, build, (name, *expect))


def small_scenario(**overrides: Any) -> dict[str, Any]:
    """Three minutes of two servers of the large sample, every policy, changed by ``overrides``."""
    doc: dict[str, Any] = {
        "system": str(SAMPLE),
        "duration": 180,
        "seed": 7,
        "control_period": 30,
        "servers": ["Premium-llama3_8b", "Bronze-mistral_7b"],
        "traces": {"default": {"kind": "steps", "relative": True, "steps": [[0, 1.0], [60, 1.5]]}},
        "policies": ["inferno", "static", {"hpa": {"target": 0.7}}, "queue"],
    }
    return {**doc, **overrides}


def one_policy(**overrides: Any) -> dict[str, Any]:
    """A small scenario, static only, changed by ``overrides``."""
    return small_scenario(**{"policies": ["static"], **overrides})


def default_trace(**trace: Any) -> dict[str, Any]:
    return one_policy(traces={"default": trace})


SYSTEM_LINE = f"system: {SAMPLE}\n"

CASES += [
    scenario_case("sim-duration-1e308-json", one_policy(duration=1e308), "$.duration", "≤ 1e+07",
                  name="scenario.json"),
    scenario_case("sim-duration-1e308-yaml", SYSTEM_LINE + "duration: 1.0e+308\n", "$.duration",
                  "≤ 1e+07"),
    scenario_case("sim-duration-1e9", one_policy(duration=1e9), "$.duration", "≤ 1e+07",
                  name="scenario.json"),
    scenario_case("sim-duration-yaml-text", SYSTEM_LINE + "duration: 1e9\n", "$.duration",
                  "1.0e+9"),
    scenario_case("sim-duration-zero", one_policy(duration=0), "$.duration", "> 0"),
    scenario_case("sim-duration-nan", SYSTEM_LINE + "duration: .nan\n", "$.duration", "finite"),
    scenario_case("sim-duration-inf", SYSTEM_LINE + "duration: .inf\n", "$.duration", "finite"),
    scenario_case("sim-duration-string", one_policy(duration="long"), "$.duration",
                  'expected a number, got "long"'),
    scenario_case("sim-period-1e-9", one_policy(control_period=1e-9), "$.control_period", "≥ 1",
                  name="scenario.json"),
    scenario_case("sim-period-half-second", one_policy(control_period=0.5), "$.control_period",
                  "≥ 1"),
    scenario_case("sim-seed-5000-digits", SYSTEM_LINE + f"duration: 60\nseed: {'9' * 5000}\n",
                  "integer with more than 4300 digits"),
    scenario_case("sim-seed-30-digits", one_policy(seed=10**30), "$.seed",
                  "an integer of 31 digits"),
    scenario_case("sim-seed-negative", one_policy(seed=-1), "$.seed", "≥ 0"),
    scenario_case("sim-startup-1e308", one_policy(startup_delay=1e308), "$.startup_delay",
                  "≤ 1e+07"),
    scenario_case("sim-max-queue-1e9", one_policy(max_queue=10**9), "$.max_queue", "≤ 1000000"),
    scenario_case("sim-poisson-rate-1e308", default_trace(kind="poisson", rate=1e308),
                  "$.traces.default.rate", "≤ 1e+09"),
    scenario_case("sim-relative-rate-too-high",
                  default_trace(kind="poisson", relative=True, rate=1e8),
                  "$.traces.default.rate", "more than the limit of 1e+09"),
    scenario_case("sim-step-start-1e308",
                  default_trace(kind="steps", steps=[[1e308, 60]]),
                  "$.traces.default.steps[0][0]", "≤ 1e+07"),
    scenario_case("sim-step-rate-negative", default_trace(kind="steps", steps=[[0, -1]]),
                  "$.traces.default.steps[0][1]", "≥ 0"),
    scenario_case("sim-step-rate-nan",
                  SYSTEM_LINE + "duration: 60\ntraces: {default: {kind: steps, "
                  "steps: [[0, .nan]]}}\n", "$.traces.default.steps[0][1]", "finite"),
    scenario_case("sim-diurnal-period-1e308",
                  default_trace(kind="diurnal", period=1e308), "$.traces.default.period",
                  "≤ 1e+07"),
    scenario_case("sim-bursts-mean-1e308",
                  default_trace(kind="bursts", burst=120, base_mean=1e308),
                  "$.traces.default.base_mean", "≤ 1e+07"),
    scenario_case("sim-tokens-n-1e9", one_policy(tokens={"default": {"out": {"kind": "fixed",
                  "n": 10**9}}}), "$.tokens.default.out.n", "≤ 10000000"),
    scenario_case("sim-tokens-1e308", one_policy(tokens={"default": {"out": 1e308}}),
                  "$.tokens.default.out", "≤ 1e+07"),
    scenario_case("sim-empirical-huge", one_policy(tokens={"default": {"out": {
                  "kind": "empirical", "values": [10**9]}}}), "$.tokens.default.out.values[0]",
                  "[0, 1e+07]"),
    scenario_case("sim-window-1e308", one_policy(metrics={"window": 1e308}), "$.metrics.window",
                  "≤ 1e+07"),
    scenario_case("sim-hpa-target-1e9", one_policy(policies=[{"hpa": {"target": 1e9}}]),
                  "$.policies[0].hpa.target", "≤ 1000"),
    scenario_case("sim-headroom-1e308", one_policy(policies=[{"inferno": {"headroom": 1e308}}]),
                  "$.policies[0].inferno.headroom", "expected a number in [0, 10]"),
    scenario_case("sim-min-replicas-1e9", one_policy(policies=[{"queue": {"min_replicas": 10**9}}]),
                  "$.policies[0].queue.min_replicas", "≤ 1000000"),
    scenario_case("sim-deep-yaml", "a: " + nested(50_000) + "\n", "nesting deeper than 64 levels"),
    scenario_case("sim-deep-flow-mapping", "a: " + "{a: " * 100 + "1" + "}" * 100 + "\n",
                  "nesting deeper than 64 levels"),
    scenario_case("sim-self-referencing-alias", SYSTEM_LINE + "duration: 60\nx: &a [*a]\n",
                  "nesting deeper than 64 levels"),
    scenario_case("sim-deep-json", nested(50_000), "nesting deeper than 64 levels",
                  name="scenario.json"),
    scenario_case("sim-malformed-yaml", SYSTEM_LINE + "duration: [60\n", "malformed YAML"),
    scenario_case("sim-malformed-json", '{"duration": 60', "malformed JSON at line 1",
                  name="scenario.json"),
    scenario_case("sim-empty-server-list", one_policy(servers=[]), "$.servers",
                  "expected a non-empty list"),
    scenario_case("sim-run-too-large", {"system": str(SAMPLE), "duration": 7200},
                  "estimated at", "more than the limit of 5,000,000", "--force"),
    Case("sim-missing-file", lambda tmp: ["simulate", str(tmp / "none.yaml")],
         ("none.yaml", "file not found")),
    Case("sim-directory", lambda tmp: ["simulate", str(tmp)], ("is a directory, expected a file",)),
]  # fmt: skip


def _scenario_on_bad_system(tmp: Path) -> list[str]:
    files = base_files()
    _set(files["server-data.json"], "servers.0.currentAlloc.load.arrivalRate", 1e308)
    system = write_system(tmp / "system", files)
    path = tmp / "scenario.yaml"
    path.write_text(f"system: {system}\nduration: 60\n", encoding="utf-8")
    return ["simulate", str(path), "--quiet"]


CASES.append(
    Case(
        "sim-bad-system-data",
        _scenario_on_bad_system,
        ("server-data.json", f"{LOAD0}.arrivalRate", "<= 1e+09"),
    )
)


# --- load (the closed loop's flags; checked before any connection: the port is never reached) ----


def load_case(id: str, flags: tuple[str, ...], *expect: str, model: str = "m") -> Case:
    return Case(id, lambda tmp: ["load", "127.0.0.1:1", "-m", model, *flags, "-q"], expect)


CASES += [
    load_case("load-users-zero", ("--users", "0"), "--users must be ≥ 1, got 0"),
    load_case("load-users-negative", ("-u", "-3"), "--users must be ≥ 1, got -3"),
    load_case("load-users-too-many", ("--users", "20000"), "--users", "limit of 10000"),
    load_case("load-think-negative", ("--users", "2", "--think", "-1"), "--think",
              "≥ 0 s, got -1.0"),
    load_case("load-think-exp-negative", ("--users", "2", "--think", "exp:-0.5"), "--think",
              "≥ 0 s"),
    load_case("load-think-nan", ("--users", "2", "--think", "nan"), "--think", "finite"),
    load_case("load-think-reversed", ("--users", "2", "--think", "uniform:3,1"), "--think",
              "reversed"),
    load_case("load-think-garbage", ("--users", "2", "--think", "soon"), "--think",
              "expected S, exp:MEAN or uniform:A,B"),
    load_case("load-duration-negative", ("--users", "2", "--duration", "-5"), "--duration",
              "> 0 s, got -5.0"),
    load_case("load-duration-zero", ("--users", "2", "-d", "0"), "--duration"),
    load_case("load-duration-inf", ("--users", "2", "-d", "inf"), "--duration", "finite"),
    load_case("load-reps-zero", ("--users", "2", "--reps", "0"), "--reps must be ≥ 1"),
    load_case("load-drain-negative", ("--users", "2", "--drain", "-1"), "--drain"),
    load_case("load-rate-with-users", ("--users", "2"), "--model m=5", "the model name only",
              model="m=5"),
    load_case("load-trace-with-users", ("--users", "2", "--trace", "t.yaml"), "--trace",
              "open loop"),
    load_case("load-think-without-users", ("--think", "1"), "--think is for the closed loop",
              model="m=5"),
    load_case("load-reps-without-users", ("--reps", "3"), "--reps is for the closed loop",
              model="m=5"),
]  # fmt: skip


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_line(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = case.build(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith("inferno: error: "), err
    for words in case.expect:
        assert words in lines[0], (words, lines[0])


# --- what is not an error ----------------------------------------------------------------------


def test_an_unknown_model_leaves_its_server_unallocated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = base_files()
    _set(files["server-data.json"], "servers.1.model", "nobody")
    assert main(["optimize", str(write_system(tmp_path, files))]) == 0
    out, err = capsys.readouterr()
    assert "UNALLOCATED sg: no performance profile for model 'nobody'" in out
    assert err == ""


def test_a_profile_without_contention_falls_back_to_one_instance_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12: deciding instances and delay needs the row's contention; without it the server
    is sized with one instance and its own delay, and optimize and explain say so."""
    files = base_files()
    _set(files["model-data.json"], "models.3.queueDelayMs", 1.5)
    directory = write_system(tmp_path / "plain", files)
    assert main(["optimize", str(directory), "--decide-serving"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    says = "serving not decided (no contention data: profile with --instances-run): 1 instance"
    (row,) = [line for line in out.splitlines() if line.startswith("sr ")]
    assert says in row and "delay 1500 µs" in row
    assert says not in out.replace(row, "")  # the other kinds have nothing to decide
    assert main(["optimize", str(directory)]) == 0  # not asked: nothing said
    assert "serving not decided" not in capsys.readouterr().out
    files["optimizer-data.json"]["optimizer"]["decideServing"] = True
    assert main(["explain", str(write_system(tmp_path / "asked", files)), "sr"]) == 0
    assert f"Serving: {says}, delay 1500 µs" in capsys.readouterr().out
    # with contention the server is decided instead
    _set(files["model-data.json"], "models.3.contention", [1.0, 1.2])
    assert main(["optimize", str(write_system(tmp_path / "kappa", files)), "--format", "json"]) == 0
    sr = json.loads(capsys.readouterr().out)["allocations"]["sr"]
    assert sr["instances"] in (1, 2) and sr["maxQueueDelayUs"] >= 0


def test_a_delay_shorter_than_a_batch_on_one_instance_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real Triton closes the next batch while one runs, so one instance with a delay shorter
    than its shortest batch (α + β = 6 ms here) queues longer than the model predicts under load
    (docs/triton.md): optimize's note and explain's verdict say so; a longer delay, no delay, or
    two instances have nothing to flag."""
    says = "delay 1.5 ms < a batch's 6.0 ms on one instance: a real Triton closes the next batch"
    files = base_files()
    _set(files["model-data.json"], "models.3.queueDelayMs", 1.5)
    short = write_system(tmp_path / "short", files)
    assert main(["optimize", str(short)]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("sr ")]
    assert says in row
    assert "closes the next batch" not in out.replace(row, "")  # not the LLM kinds
    assert main(["explain", str(short), "sr"]) == 0
    assert f"Caution: {says}" in capsys.readouterr().out
    for value in (8.0, 0.0):
        _set(files["model-data.json"], "models.3.queueDelayMs", value)
        assert main(["optimize", str(write_system(tmp_path / f"d{value}", files))]) == 0
        assert "closes the next batch" not in capsys.readouterr().out
    # two instances decided with a delay: the other instance takes the closed batch
    _set(files["model-data.json"], "models.3.queueDelayMs", 1.5)
    _set(files["model-data.json"], "models.3.contention", [1.0, 1.0])
    kappa = write_system(tmp_path / "kappa", files)
    assert main(["optimize", str(kappa), "--decide-serving", "--format", "json"]) == 0
    sr = json.loads(capsys.readouterr().out)["allocations"]["sr"]
    assert main(["optimize", str(kappa), "--decide-serving"]) == 0
    flagged = "closes the next batch" in capsys.readouterr().out
    assert flagged == (sr["instances"] == 1 and 0 < sr["maxQueueDelayUs"] < 6000)


def test_an_empty_server_list_is_bad_input_as_in_simulate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rule: what is not a system is exit 2 (no servers at all, like a reference to an
    undefined class); a server nothing can serve (an unknown model above) is a result."""
    files = base_files()
    files["server-data.json"] = {"servers": []}
    assert main(["optimize", str(write_system(tmp_path, files))]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "server-data.json: $.servers: no servers: nothing to optimize" in err


def test_values_at_the_bounds_are_solved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The largest accepted values give a solution, not an overflow."""
    files = base_files()
    _set(files["server-data.json"], "servers.0.currentAlloc.load.arrivalRate", 1e9)
    _set(files["server-data.json"], "servers.0.maxBatchSize", 100_000)
    _set(files["server-data.json"], "servers.1.currentAlloc.load.avgInTokens", 1e7)
    _set(files["server-data.json"], "servers.3.maxBatchSize", 128)
    _set(files["model-data.json"], "models.0.alpha", 1e7)
    _set(files["accelerator-data.json"], "accelerators.0.cost", 1e12)
    assert main(["optimize", str(write_system(tmp_path, files)), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out)["allocations"]


# --- --force -----------------------------------------------------------------------------------


def _tiny_scenario(tmp: Path) -> Path:
    doc = small_scenario(duration=60, servers=["Premium-llama3_8b"], policies=["static"])
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_force_skips_the_estimate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sim_limits, "MAX_EVENTS", 10)  # the tiny run is "too large" now
    path = _tiny_scenario(tmp_path)
    argv = ["simulate", str(path), "--quiet", "--no-plots", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than the limit of 10" in err and "--force" in err
    assert main([*argv, "--force"]) == 0
    out, err = capsys.readouterr()
    assert "static" in out and err == ""


# --- the real process ----------------------------------------------------------------------------


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferno", *argv], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: ["optimize", str(write_system(tmp, _with_rate(1e308)))], "<= 1e+09"),
        (lambda tmp: ["optimize", str(write_system(tmp, _with_text_rate(HUGE_INT)))], "4300"),
        (lambda tmp: ["analyze", str(_write(tmp / "p.json", nested(100_000)))], "nesting"),
        (lambda tmp: ["simulate", str(_write(tmp / "s.yaml", "a: " + nested(100_000)))], "nesting"),
    ],
    ids=["optimize-1e308", "optimize-huge-int", "analyze-deep", "simulate-deep"],
)
def test_the_process_prints_one_line(
    tmp_path: Path, make: Callable[[Path], list[str]], words: str
) -> None:
    done = _run(*make(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1 and words in done.stderr, done.stderr


def _with_rate(rate: float) -> Files:
    files = base_files()
    _set(files["server-data.json"], "servers.0.currentAlloc.load.arrivalRate", rate)
    return files


def _with_text_rate(rate: str) -> Files:
    files = base_files()
    files["server-data.json"] = json.dumps(files["server-data.json"]).replace(
        NUMBER_60, f'"arrivalRate": {rate}', 1
    )
    return files


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _both_models(
    where: Path, files: Files, capsys: pytest.CaptureFixture[str]
) -> dict[str, dict[str, Any]]:
    """The solution JSON (with percentiles) of ``files`` under each model."""
    directory = write_system(where, files)
    out = {}
    for model in ("inferno", "accurate"):
        args = ["optimize", str(directory), "--model", model, "--percentiles"]
        assert main([*args, "--format", "json"]) == 0
        out[model] = json.loads(capsys.readouterr().out)
    return out


def test_the_lengths_family_reaches_the_accurate_percentiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """outTokensDist: lognormal moves the accurate mode's latency percentiles (a lognormal's
    tail, not a gamma's, of the same mean and variance) and nothing of the chain's; the solution
    JSON keeps the load's length CV and family."""
    files = base_files()
    _set(files["server-data.json"], "servers.1.currentAlloc.load.outTokensCOV", 1.5)
    outputs = {}
    for family in ("gamma", "lognormal"):
        _set(files["server-data.json"], "servers.1.currentAlloc.load.outTokensDist", family)
        for model, out in _both_models(tmp_path / family, files, capsys).items():
            outputs[family, model] = out
    name = files["server-data.json"]["servers"][1]["name"]

    def p95(family: str, model: str) -> float:
        return float(outputs[family, model]["allocations"][name]["latencyP95"])

    assert p95("lognormal", "accurate") < p95("gamma", "accurate")
    assert p95("lognormal", "inferno") == p95("gamma", "inferno")
    load = outputs["lognormal", "accurate"]["allocations"][name]["load"]
    assert load["outTokensCOV"] == 1.5 and load["outTokensDist"] == "lognormal"


def test_the_input_lengths_reach_the_accurate_percentiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """inTokensCOV widens the accurate mode's TTFT percentiles (the request's own prompt) and
    nothing of the chain's; the solution JSON keeps the input lengths' CV and family."""
    files = base_files()
    outputs = {}
    for cov in (0.0, 1.5):
        _set(files["server-data.json"], "servers.1.currentAlloc.load.inTokensCOV", cov)
        _set(files["server-data.json"], "servers.1.currentAlloc.load.inTokensDist", "lognormal")
        for model, out in _both_models(tmp_path / str(cov), files, capsys).items():
            outputs[cov, model] = out
    name = files["server-data.json"]["servers"][1]["name"]

    def p95(cov: float, model: str) -> float:
        return float(outputs[cov, model]["allocations"][name]["ttftP95"])

    assert p95(1.5, "accurate") > p95(0.0, "accurate")
    assert p95(1.5, "inferno") == p95(0.0, "inferno")
    load = outputs[1.5, "accurate"]["allocations"][name]["load"]
    assert load["inTokensCOV"] == 1.5 and load["inTokensDist"] == "lognormal"


def test_offer_no_delay_is_read_from_the_optimizer_data_and_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """offerNoDelay (or --offer-no-delay) adds c > 1 without a delay to the options explain
    lists; without it they are not compared."""
    files = base_files()
    _set(files["model-data.json"], "models.3.contention", [1.0, 1.2])
    plain = write_system(tmp_path / "plain", files)
    files["optimizer-data.json"]["optimizer"]["decideServing"] = True
    asked = write_system(tmp_path / "asked", files)
    assert main(["explain", str(asked), "sr"]) == 0
    decided = capsys.readouterr().out
    assert "c=2 D=" in decided  # c = 2 is compared, with a delay only
    assert "c=2 D=0 µs" not in decided and "2 instance(s), delay 0 µs" not in decided
    files["optimizer-data.json"]["optimizer"]["offerNoDelay"] = True
    assert main(["explain", str(write_system(tmp_path / "data", files)), "sr"]) == 0
    by_data = capsys.readouterr().out
    assert "c=2 D=0 µs" in by_data or "2 instance(s), delay 0 µs" in by_data
    assert (
        main(["optimize", str(plain), "--decide-serving", "--offer-no-delay", "--format", "json"])
        == 0
    )
    by_flag = json.loads(capsys.readouterr().out)["allocations"]["sr"]
    assert main(["optimize", str(write_system(tmp_path / "data2", files)), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["allocations"]["sr"] == by_flag
    files["optimizer-data.json"]["optimizer"]["offerNoDelay"] = "yes"
    assert main(["optimize", str(write_system(tmp_path / "bad", files))]) == 2
    assert "offerNoDelay" in capsys.readouterr().err


def test_the_most_output_tokens_reach_the_accurate_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """outTokensMax: the G2 server's lognormal lengths served capped at 4× their mean; the
    accurate mode's numbers move (no lengths past the cap slow its batch), the chain's do not,
    and the solution JSON keeps the cap."""
    files = base_files()
    _set(files["server-data.json"], "servers.1.currentAlloc.load.outTokensCOV", 1.5)
    _set(files["server-data.json"], "servers.1.currentAlloc.load.outTokensDist", "lognormal")
    outputs = {}
    for most in (None, 1024):
        if most is not None:
            _set(files["server-data.json"], "servers.1.currentAlloc.load.outTokensMax", most)
        for model, out in _both_models(tmp_path / str(most), files, capsys).items():
            outputs[most, model] = out
    name = files["server-data.json"]["servers"][1]["name"]

    def alloc(most: int | None, model: str) -> dict[str, Any]:
        out: dict[str, Any] = outputs[most, model]["allocations"][name]
        return out

    assert alloc(1024, "inferno") == {
        **alloc(None, "inferno"),
        "load": alloc(1024, "inferno")["load"],
    }
    assert alloc(1024, "accurate") != {
        **alloc(None, "accurate"),
        "load": alloc(1024, "accurate")["load"],
    }
    assert alloc(1024, "accurate")["load"]["outTokensMax"] == 1024
