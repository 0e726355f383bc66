"""The ``inferno`` command line: in-process through ``main`` and, for a few cases, as a subprocess.

The expected solution of ``samples/large`` is Inferno's published ``solution-data.json``; every
modified system is a copy of the sample in ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inferno.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "large"

# Inferno's published solution has an equal-cost tie for this server (MI300X x 2 replicas vs
# 2xMI300X x 1 replica, both cost 130): the cost must match, the replica count may not.
TIED_SERVERS = {"Premium-llama3_8b"}

ANALYZER_PROBLEM = {
    "RPS": 3.0,
    "maxBatchSize": 48,
    "AvgInputTokens": 128,
    "AvgOutputTokens": 512,
    "alpha": 12,
    "beta": 0.05,
    "gamma": 0.0005,
    "maxQueueSize": 128,
    "targetTTFT": 60.0,
    "targetITL": 20.0,
}


# -- helpers ------------------------------------------------------------------------------------


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def edit(path: Path, change: Callable[[Any], None]) -> None:
    data = read(path)
    change(data)
    write(path, data)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """Run ``inferno argv...`` in-process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def subprocess_cli(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferno", *(str(a) for a in argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_input_error(code: int, out: str, err: str, *fragments: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr holding every fragment, no traceback."""
    assert code == 2, (out, err)
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def published() -> dict[str, dict[str, Any]]:
    allocations: dict[str, dict[str, Any]] = read(SAMPLE / "solution-data.json")["allocations"]
    return allocations


def capacity() -> dict[str, int]:
    return {row["type"]: row["count"] for row in read(SAMPLE / "capacity-data.json")["count"]}


def server_names() -> list[str]:
    return [s["name"] for s in read(SAMPLE / "server-data.json")["servers"]]


def units_from_allocations(allocations: dict[str, dict[str, Any]]) -> Counter[str]:
    """Accelerator units per type, recomputed from the allocations and the sample's data."""
    accs = {a["name"]: a for a in read(SAMPLE / "accelerator-data.json")["accelerators"]}
    acc_count = {
        (m["name"], m["acc"]): m.get("accCount", 1)
        for m in read(SAMPLE / "model-data.json")["models"]
    }
    model = {s["name"]: s["model"] for s in read(SAMPLE / "server-data.json")["servers"]}
    units: Counter[str] = Counter()
    for name, a in allocations.items():
        acc = accs[a["accelerator"]]
        per_replica = acc.get("multiplicity", 1) * acc_count[(model[name], a["accelerator"])]
        units[acc.get("type") or acc["name"]] += a["numReplicas"] * per_replica
    return units


@pytest.fixture
def system(tmp_path: Path) -> Path:
    """A private copy of samples/large to edit."""
    target = tmp_path / "system"
    shutil.copytree(SAMPLE, target)
    return target


@pytest.fixture
def problem(tmp_path: Path) -> Path:
    path = tmp_path / "problem-data.json"
    write(path, ANALYZER_PROBLEM)
    return path


# -- optimize: the published sample -------------------------------------------------------------


def test_optimize_json_matches_published_solution(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "optimize", SAMPLE)
    expected = published()
    assert data["status"] == "optimal"
    assert data["unallocated"] == {}
    allocations = data["allocations"]
    assert set(allocations) == set(expected) == set(server_names())
    assert len(allocations) == 27
    for name, want in expected.items():
        got = allocations[name]
        for key in ("accelerator", "numReplicas", "maxBatch", "cost", "itlAverage", "waitAverage"):
            assert key in got, (name, key)
        assert got["load"]["arrivalRate"] == pytest.approx(want["load"]["arrivalRate"])
        assert got["cost"] == pytest.approx(want["cost"]), name
        if name not in TIED_SERVERS:
            assert got["numReplicas"] == want["numReplicas"], name
    assert data["totalCost"] == pytest.approx(sum(a["cost"] for a in expected.values()))


def test_optimize_table_has_a_row_per_server_and_the_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "optimize", SAMPLE, "--format", "table")
    assert code == 0, err
    lines = out.splitlines()
    for name in server_names():
        rows = [line for line in lines if line.split()[:1] == [name]]
        assert len(rows) == 1, name
    status = [line for line in lines if line.startswith("status:")]
    assert len(status) == 1
    assert "optimal" in status[0]
    match = re.search(r"total cost:\s*([\d,]+(?:\.\d+)?)", status[0])
    assert match is not None, status[0]
    total = sum(a["cost"] for a in published().values())
    assert float(match.group(1).replace(",", "")) == pytest.approx(total)


def test_optimize_default_format_is_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "optimize", SAMPLE)
    assert code == 0
    assert any(line.startswith("status:") for line in out.splitlines())


@pytest.mark.parametrize("solver", ["milp", "greedy"])
def test_optimize_solver_override_unlimited(
    capsys: pytest.CaptureFixture[str], solver: str
) -> None:
    data = run_json(capsys, "optimize", SAMPLE, "--solver", solver)
    assert data["status"] == "optimal"
    assert set(data["allocations"]) == set(server_names())
    total = sum(a["cost"] for a in published().values())
    assert data["totalCost"] <= total + 1e-6
    assert data["totalCost"] == pytest.approx(sum(a["cost"] for a in data["allocations"].values()))


@pytest.mark.parametrize("solver", ["milp", "greedy"])
def test_optimize_limited_respects_capacity(
    capsys: pytest.CaptureFixture[str], solver: str
) -> None:
    data = run_json(capsys, "optimize", SAMPLE, "--solver", solver, "--limited")
    assert data["status"] in {"optimal", "partially-allocated"}
    assert set(data["allocations"]) | set(data["unallocated"]) == set(server_names())
    cap = capacity()
    used = data["unitsUsed"]
    for kind, count in used.items():
        assert kind in cap, kind
        assert count <= cap[kind], (kind, count, cap[kind])
    assert dict(units_from_allocations(data["allocations"])) == used


def test_optimize_milp_limited_allocates_everything(capsys: pytest.CaptureFixture[str]) -> None:
    """The sample's capacity is enough for all servers: the exact solver must find it."""
    data = run_json(capsys, "optimize", SAMPLE, "--solver", "milp", "--limited")
    assert data["status"] == "optimal"
    assert data["unallocated"] == {}
    unlimited = sum(a["cost"] for a in published().values())
    assert data["totalCost"] >= unlimited - 1e-6


# -- optimize: input errors exit 2 --------------------------------------------------------------


def test_missing_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    assert_input_error(*run(capsys, "optimize", missing), str(missing))


def test_missing_required_file(capsys: pytest.CaptureFixture[str], system: Path) -> None:
    (system / "model-data.json").unlink()
    assert_input_error(*run(capsys, "optimize", system), "model-data.json", "missing")


def test_malformed_json(capsys: pytest.CaptureFixture[str], system: Path) -> None:
    (system / "server-data.json").write_text('{"servers": [\n', encoding="utf-8")
    assert_input_error(*run(capsys, "optimize", system), "server-data.json", "JSON")


def test_negative_arrival_rate(capsys: pytest.CaptureFixture[str], system: Path) -> None:
    def change(data: Any) -> None:
        data["servers"][3]["currentAlloc"]["load"]["arrivalRate"] = -5

    edit(system / "server-data.json", change)
    assert_input_error(
        *run(capsys, "optimize", system),
        "server-data.json",
        "$.servers[3].currentAlloc.load.arrivalRate",
        "-5",
    )


def test_unknown_accelerator_in_model_data(
    capsys: pytest.CaptureFixture[str], system: Path
) -> None:
    def change(data: Any) -> None:
        data["models"][2]["acc"] = "TPU9"

    edit(system / "model-data.json", change)
    assert_input_error(
        *run(capsys, "optimize", system), "model-data.json", "$.models[2].acc", "TPU9"
    )


def test_input_error_as_subprocess(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    proc = subprocess_cli("optimize", missing)
    assert_input_error(proc.returncode, proc.stdout, proc.stderr, str(missing))


def test_malformed_json_as_subprocess(system: Path) -> None:
    (system / "capacity-data.json").write_text("{,}", encoding="utf-8")
    proc = subprocess_cli("optimize", system, "--limited")
    assert_input_error(proc.returncode, proc.stdout, proc.stderr, "capacity-data.json")


# -- optimize: result statuses are not errors ---------------------------------------------------


def test_server_without_profile_is_unallocated(
    capsys: pytest.CaptureFixture[str], system: Path
) -> None:
    def servers(data: Any) -> None:
        data["servers"][0]["model"] = "unknown_model"

    def classes(data: Any) -> None:
        data["serviceClasses"].append(
            {"name": "Premium", "model": "unknown_model", "slo-itl": 40, "slo-ttw": 500}
        )

    name = read(system / "server-data.json")["servers"][0]["name"]
    edit(system / "server-data.json", servers)
    edit(system / "serviceclass-data.json", classes)
    data = run_json(capsys, "optimize", system)
    assert data["status"] == "partially-allocated"
    assert set(data["unallocated"]) == {name}
    assert data["unallocated"][name]
    assert name not in data["allocations"]
    assert len(data["allocations"]) == 26


def test_unmeetable_slo_is_unallocated(capsys: pytest.CaptureFixture[str], system: Path) -> None:
    def change(data: Any) -> None:
        for row in data["serviceClasses"]:
            if row["name"] == "Premium" and row["model"] == "granite_13b":
                row["slo-itl"] = 0.5

    edit(system / "serviceclass-data.json", change)
    data = run_json(capsys, "optimize", system)
    assert data["status"] == "partially-allocated"
    assert set(data["unallocated"]) == {"Premium-granite_13b"}
    assert data["unallocated"]["Premium-granite_13b"]
    assert len(data["allocations"]) == 26


def _limit_capacity(system: Path) -> None:
    def optimizer(data: Any) -> None:
        data["optimizer"]["unlimited"] = False

    edit(system / "optimizer-data.json", optimizer)


@pytest.mark.parametrize("solver", ["greedy", "milp"])
def test_capacity_too_small_for_one_server(
    capsys: pytest.CaptureFixture[str], system: Path, solver: str
) -> None:
    def servers(data: Any) -> None:
        for row in data["servers"]:
            if row["name"] == "Free-llama_70b":
                row["currentAlloc"]["load"]["arrivalRate"] = 1e6

    _limit_capacity(system)
    edit(system / "server-data.json", servers)
    data = run_json(capsys, "optimize", system, "--solver", solver)
    assert data["status"] == "partially-allocated"
    assert set(data["unallocated"]) == {"Free-llama_70b"}
    assert data["unallocated"]["Free-llama_70b"]
    assert len(data["allocations"]) == 26
    cap = capacity()
    assert all(count <= cap[kind] for kind, count in data["unitsUsed"].items())


def test_no_capacity_at_all_is_infeasible(capsys: pytest.CaptureFixture[str], system: Path) -> None:
    def counts(data: Any) -> None:
        for row in data["count"]:
            row["count"] = 0

    _limit_capacity(system)
    edit(system / "capacity-data.json", counts)
    data = run_json(capsys, "optimize", system)
    assert data["status"] == "infeasible"
    assert data["allocations"] == {}
    assert set(data["unallocated"]) == set(server_names())
    assert all(data["unallocated"].values())

    code, out, err = run(capsys, "optimize", system)
    assert code == 0, err
    assert "infeasible" in out
    for name in server_names():
        assert name in out


# -- analyze ------------------------------------------------------------------------------------


def test_analyze_target_mode_by_default(capsys: pytest.CaptureFixture[str], problem: Path) -> None:
    code, out, err = run(capsys, "analyze", problem)
    assert code == 0, err
    data = json.loads(out)
    assert data["throughput"] == pytest.approx(2.8741095, rel=1e-3)
    assert data["RPSTargetTTFT"] == pytest.approx(2.910594, rel=1e-3)
    assert data["RPSTargetITL"] == pytest.approx(2.8741095, rel=1e-3)
    assert data["avgITL"] == pytest.approx(20.0, rel=1e-3)
    assert data["feasible"] is True


def test_analyze_solve_mode(capsys: pytest.CaptureFixture[str], problem: Path) -> None:
    code, out, err = run(capsys, "analyze", problem, "--mode", "solve")
    assert code == 0, err
    data = json.loads(out)
    assert data["throughput"] == pytest.approx(3.0, rel=1e-3)
    assert data["avgRespTime"] == pytest.approx(10568.446, rel=1e-3)
    assert data["avgTTFT"] == pytest.approx(75.31746, rel=1e-3)
    assert data["maxRPS"] == pytest.approx(3.8208232, rel=1e-3)
    assert data["RPSTargetTTFT"] == 0
    assert data["RPSTargetITL"] == 0


def test_analyze_unreachable_target_is_not_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "tight.json"
    write(path, {**ANALYZER_PROBLEM, "targetITL": 1.0})
    code, out, err = run(capsys, "analyze", path)
    assert code == 0, err
    assert json.loads(out)["feasible"] is False


def test_analyze_zero_rps_in_solve_mode_is_an_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "zero.json"
    write(path, {**ANALYZER_PROBLEM, "RPS": 0})
    assert_input_error(*run(capsys, "analyze", path, "--mode", "solve"), str(path), "$.RPS")


def test_analyze_table(capsys: pytest.CaptureFixture[str], problem: Path) -> None:
    code, out, err = run(capsys, "analyze", problem, "--format", "table")
    assert code == 0, err
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines() if line.strip()}
    for key in ("throughput", "avgITL", "RPSTargetTTFT", "RPSTargetITL", "maxRPS"):
        assert key in rows, key
    assert float(rows["throughput"]) == pytest.approx(2.87, abs=0.01)


def test_analyze_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    assert_input_error(*run(capsys, "analyze", missing), str(missing))


# -- explain ------------------------------------------------------------------------------------


def test_explain_lists_every_candidate_and_marks_the_choice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "explain", SAMPLE, "Premium-granite_13b")
    assert code == 0, err
    lines = out.splitlines()
    accelerators = {
        m["acc"] for m in read(SAMPLE / "model-data.json")["models"] if m["name"] == "granite_13b"
    }
    # The candidate table: from the header's dashed rule to the blank line before the verdict.
    start = next(i for i, line in enumerate(lines) if line.startswith("---"))
    end = lines.index("", start)
    rows: dict[str, str] = {}
    for line in lines[start + 1 : end]:
        tokens = line.replace("*", " ").split()
        if tokens and tokens[0] in accelerators:
            assert tokens[0] not in rows, tokens[0]
            rows[tokens[0]] = line
    assert set(rows) == accelerators
    assert len(rows) == end - start - 1  # no other rows
    chosen = [acc for acc, line in rows.items() if line.lstrip().startswith("*")]
    assert chosen == ["MI300X"]
    verdict = [line for line in lines if line.strip()][-1]
    assert "ttw" in verdict
    assert re.search(r"\b65(\.0+)?\b", verdict), verdict


def test_explain_decides_with_optimizes_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """``explain --model accurate`` explains the decision ``optimize --model accurate`` made
    (the sample's Premium-mixtral_8_7b: fewer MI300X replicas than the chain's), not the
    data's default model's."""
    server = "Premium-mixtral_8_7b"
    chosen = {}
    for flags in ([], ["--model", "accurate"]):
        code, out, err = run(capsys, "optimize", SAMPLE, "--format", "json", *flags)
        assert code == 0, err
        alloc = json.loads(out)["allocations"][server]
        code, out, err = run(capsys, "explain", SAMPLE, server, *flags)
        assert code == 0, err
        (row,) = [line.split() for line in out.splitlines() if line.startswith("* ")]
        assert row[1] == alloc["accelerator"] and int(row[6]) == alloc["numReplicas"]
        chosen[tuple(flags)] = alloc["numReplicas"]
    assert chosen[("--model", "accurate")] < chosen[()]


def test_explain_unknown_server(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", SAMPLE, "No-such-server")
    assert_input_error(code, out, err, "No-such-server")
    for name in server_names():
        assert name in err


# -- help and subprocess ------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["optimize", "--help"]])
def test_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_help_as_subprocess() -> None:
    proc = subprocess_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("optimize", "analyze", "explain"):
        assert command in proc.stdout


def test_optimize_as_subprocess_prints_a_table() -> None:
    proc = subprocess_cli("optimize", "samples/large")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["server", "accelerator"]
    assert set(lines[1]) <= {"-", " "}
    for name in server_names():
        assert sum(1 for line in lines if line.split()[:1] == [name]) == 1, name
    assert any(line.startswith("status: optimal") for line in lines)


def test_the_parser_loads_no_numerical_or_web_stack() -> None:
    """`inferno --help` (and any command until it runs) imports neither numpy nor scipy, nor the
    web or cluster stacks: each command imports what it uses when it runs."""
    import subprocess
    import sys

    code = (
        "import sys; from inferno.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('numpy', 'scipy', 'fastapi', 'kubernetes', 'kopf', "
        "'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_optimizing_the_sample_imports_no_scipy() -> None:
    """scipy (0.4 s of imports) is loaded by what uses it — the MILP, Triton's bulk model, the
    percentiles — not by a plain solve of G0 servers."""
    import subprocess
    import sys

    code = (
        "import sys, io, contextlib; from inferno.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['optimize', {str(SAMPLE)!r}, '--format', 'json'])\n"
        "print('scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version_greedy_note_and_singular_replica(capsys: pytest.CaptureFixture[str]) -> None:
    from inferno import __version__
    from inferno.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"inferno {__version__}"

    assert main(["optimize", str(ROOT / "samples" / "large"), "--solver", "greedy"]) == 0
    captured = capsys.readouterr()
    assert "greedy applies under capacity limits" in captured.err
    assert "greedy applies" not in captured.out  # stdout stays the solution alone

    assert main(["explain", str(ROOT / "samples" / "large"), "Bronze-mistral_7b"]) == 0
    out = capsys.readouterr().out
    assert "needs 1 replica" in out and "1 replicas" not in out


def test_percentiles_mark_the_servers_that_miss_a_p95_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The large sample's slo-ttw is a 95th-percentile target that Inferno's rule judges on the
    mean: with --percentiles, the servers whose exact p95 wait exceeds it are marked, with the
    numbers, and counted; every other server's p95 is within its target."""
    code, out, err = run(capsys, "optimize", SAMPLE, "--percentiles")
    assert code == 0, err
    lines = out.splitlines()
    header = lines[0]
    p95_at = header.index("p95 wait|TTFT")
    marked = [line for line in lines if "MISSES p95 wait" in line]
    assert marked
    targets = {
        (c["name"], c["model"]): c.get("slo-ttw", math.inf)
        for c in json.loads((SAMPLE / "serviceclass-data.json").read_text())["serviceClasses"]
    }
    servers = {
        s["name"]: (s["class"], s["model"])
        for s in json.loads((SAMPLE / "server-data.json").read_text())["servers"]
    }
    for line in lines[2:]:
        name = line.split()[:1]
        if not name or name[0] not in servers:
            continue
        p95 = float(line[p95_at:].split()[0].replace(",", ""))
        target = targets[servers[name[0]]]
        assert ("MISSES p95 wait" in line) == (p95 > target), line
    assert f"p95 targets: {len(marked)} allocated server(s) miss one" in out


def test_analyze_percentiles_units_and_load_fraction(
    capsys: pytest.CaptureFixture[str], problem: Path
) -> None:
    """--percentiles adds the exact p50/p95/p99 of wait, TTFT and response time (ordered, and
    around the mean); loadFraction is the load (throughput / maxRPS), which utilization is not;
    the table names each value's unit."""
    code, out, err = run(capsys, "analyze", problem, "--percentiles")
    assert code == 0, err
    data = json.loads(out)
    assert data["loadFraction"] == pytest.approx(data["throughput"] / data["maxRPS"])
    assert data["loadFraction"] < 0.9 < data["utilization"]  # busy ≠ loaded
    for what in ("WaitTime", "TTFT", "RespTime"):
        p50, p95, p99 = (data[f"p{q}{what}"] for q in (50, 95, 99))
        assert 0 <= p50 <= p95 <= p99, what
    assert data["p50RespTime"] < data["avgRespTime"] < data["p99RespTime"]
    code, out, err = run(capsys, "analyze", problem, "--percentiles", "--format", "table")
    assert code == 0, err
    assert "throughput (req/s)" in out and "p95RespTime (ms)" in out
    assert "utilization (share of time a batch runs: not the load)" in out


def test_every_argument_of_every_command_says_what_it_is() -> None:
    import argparse

    from inferno.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = {
        name: [a.dest for a in command._actions if not a.help]
        for name, command in sub.choices.items()
    }
    assert {k: v for k, v in missing.items() if v} == {}


@pytest.mark.parametrize("servers", [200, 201])
def test_json_is_indented_up_to_200_servers_and_compact_above(
    servers: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inferno.cli.optimize import PRETTY_MAX

    assert PRETTY_MAX == 200
    shutil.copytree(SAMPLE, tmp_path, dirs_exist_ok=True)
    doc = json.loads((SAMPLE / "server-data.json").read_text())
    first = doc["servers"][0]
    doc["servers"] = [first | {"name": f"s{k}"} for k in range(servers)]
    (tmp_path / "server-data.json").write_text(json.dumps(doc))
    (tmp_path / "solution-data.json").unlink(missing_ok=True)
    assert main(["optimize", str(tmp_path), "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert len(json.loads(out)["allocations"]) == servers
    lines = out.strip().count("\n") + 1
    assert (lines > servers) if servers <= PRETTY_MAX else lines == 1
