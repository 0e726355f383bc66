"""The optimizer app: POST /optimize against the static data of samples/large."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from inferno.control import tuner as tuner_module
from inferno.control.optimizer import Optimizer
from inferno.data import load_system
from inferno.services import optimizer
from inferno.solver import solve
from inferno.system import PerformanceModel

from . import SAMPLE, client, settings


def sample_servers() -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = json.loads((SAMPLE / "server-data.json").read_text())["servers"]
    return servers


async def test_probes_and_metrics() -> None:
    registry = CollectorRegistry()
    app = optimizer.create_app(settings(), token=None, registry=registry)
    async with client(app) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        r = await http.post("/optimize", json={"servers": sample_servers()[:2]})
        assert r.status_code == 200
        text = (await http.get("/metrics")).text
    for name in (
        "inferno_optimizer_replicas{",
        "inferno_optimizer_cost{",
        "inferno_optimizer_predicted_itl_ms{",
        "inferno_optimizer_predicted_wait_ms{",
        "inferno_optimizer_solve_seconds_count 1.0",
        'inferno_optimizer_solves_total{status="optimal"} 1.0',
        "inferno_optimizer_static_data_loads_total 1.0",
    ):
        assert name in text, name
    server = sample_servers()[0]["name"]
    acc = r.json()["solution"]["allocations"][server]["accelerator"]
    assert f'inferno_optimizer_replicas{{accelerator="{acc}",server="{server}"}}' in text


async def test_a_request_while_a_solve_runs_is_refused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One solve at a time: a request arriving while one runs (a controller that stopped
    waiting for the last one) is a 503 naming why, with Retry-After, not a second solve beside
    it; the running solve finishes and the optimizer takes requests again."""
    entered, release = threading.Event(), threading.Event()
    real = Optimizer.run

    def slow(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(30)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Optimizer, "run", slow)
    app = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    body = {"servers": sample_servers()[:2]}
    async with client(app) as http:
        first = asyncio.create_task(http.post("/optimize", json=body))
        assert await asyncio.to_thread(entered.wait, 30)
        second = await http.post("/optimize", json=body)
        release.set()
        done = await first
        third = await http.post("/optimize", json=body)
        text = (await http.get("/metrics")).text
    assert second.status_code == 503
    assert second.json()["error"].startswith("busy: a solve started")
    assert "INFERNO_HTTP_TIMEOUT" in second.json()["error"]
    assert second.json()["runningSeconds"] >= 0
    assert int(second.headers["Retry-After"]) >= 1
    assert done.status_code == 200 and third.status_code == 200
    assert 'inferno_optimizer_solves_total{status="busy"} 1.0' in text


async def test_readyz_503_without_static_data(tmp_path: Path) -> None:
    app = optimizer.create_app(
        settings(data_path=str(tmp_path / "absent")), token=None, registry=CollectorRegistry()
    )
    async with client(app) as http:
        r = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200
        o = await http.post("/optimize", json={"servers": []})
    assert r.status_code == 503
    assert "static data directory not found" in r.json()["error"]
    assert o.status_code == 503  # our configuration, not the caller's fault


async def test_optimize_matches_the_solver_on_the_sample() -> None:
    app = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/optimize", json={"servers": sample_servers(), "serviceClasses": []})
    assert r.status_code == 200
    body = r.json()
    expected = solve(load_system(SAMPLE))
    got = {d["server"]: d for d in body["decisions"]}
    assert set(got) == {s["name"] for s in sample_servers()}
    for name, a in expected.allocations.items():
        assert got[name]["allocated"] is True
        assert (got[name]["accelerator"], got[name]["replicas"]) == (a.accelerator, a.replicas)
        assert got[name]["maxBatch"] == a.max_batch
    assert body["solution"]["status"] == str(expected.status)
    assert set(body["solution"]["allocations"]) == set(expected.allocations)


async def test_a_negative_arrival_rate_leaves_that_server_unallocated_naming_the_field() -> None:
    servers = sample_servers()[:3]
    servers[1]["currentAlloc"]["load"]["arrivalRate"] = -5
    app = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/optimize", json={"servers": servers})
        text = (await http.get("/metrics")).text
    assert r.status_code == 200
    body = r.json()
    message = body["solution"]["unallocated"][servers[1]["name"]]
    assert "servers[1].currentAlloc.load.arrivalRate" in message
    assert ">= 0" in message
    assert set(body["solution"]["allocations"]) == {servers[0]["name"], servers[2]["name"]}
    assert body["solution"]["status"] == "partially-allocated"
    assert "inferno_optimizer_unallocated_servers 1.0" in text


async def test_malformed_body_is_a_400_naming_the_field() -> None:
    app = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(app) as http:
        missing = await http.post("/optimize", json={"serviceClasses": []})
        wrong = await http.post("/optimize", json={"servers": "all"})
        broken = await http.post("/optimize", content=b"{not json")
    assert missing.status_code == wrong.status_code == broken.status_code == 400
    assert "servers" in missing.json()["error"] and "servers" in wrong.json()["error"]
    assert "malformed JSON" in broken.json()["error"]


async def test_static_data_is_reread_when_a_file_changes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    (data / "server-data.json").unlink()  # the servers come from the request
    servers = sample_servers()[:1]
    name = servers[0]["name"]
    registry = CollectorRegistry()
    app = optimizer.create_app(settings(data_path=str(data)), token=None, registry=registry)
    async with client(app) as http:
        first = (await http.post("/optimize", json={"servers": servers})).json()
        again = (await http.post("/optimize", json={"servers": servers})).json()
        assert registry.get_sample_value("inferno_optimizer_static_data_loads_total") == 1
        acc = first["solution"]["allocations"][name]["accelerator"]
        cost = first["solution"]["allocations"][name]["cost"]
        assert again["solution"]["allocations"][name]["cost"] == cost

        # triple the price of the chosen accelerator
        path = data / "accelerator-data.json"
        doc = json.loads(path.read_text())
        for a in doc["accelerators"]:
            if a["name"] == acc:
                a["cost"] *= 3
        stat = path.stat()
        path.write_text(json.dumps(doc))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))

        after = (await http.post("/optimize", json={"servers": servers})).json()
    assert registry.get_sample_value("inferno_optimizer_static_data_loads_total") == 2
    changed = after["solution"]["allocations"][name]
    assert (changed["accelerator"], changed["cost"]) != (acc, cost)


def test_a_bad_server_is_named_by_its_index_in_the_request() -> None:
    """Servers of unknown classes are left out before validation; the error still counts them."""
    from inferno.control.optimize import optimize, read_static_data
    from inferno.errors import InputError

    static = read_static_data("samples/large")
    good = {
        "name": "ok",
        "class": "Premium",
        "model": "llama_7b",
        "currentAlloc": {"load": {"arrivalRate": 60, "avgLength": 1024}},
    }
    unknown = {**good, "name": "stray", "class": "NoSuchClass"}
    bad = {**good, "name": "bad", "currentAlloc": {"load": {"arrivalRate": -1, "avgLength": 1024}}}
    result = optimize(static, [unknown, good, bad], [], origin="static")
    unallocated = result.solution["unallocated"]
    assert unallocated["bad"].startswith("unusable server data: $.servers[2]"), unallocated
    assert "unknown service class" in unallocated["stray"]
    assert "ok" in result.solution["allocations"]  # the others are decided
    # a malformed request as a whole (not one server) is still an error
    with pytest.raises(InputError) as err:
        optimize(static, [good, "not an object"], [], origin="static")  # type: ignore[list-item]
    assert err.value.source == "request" and err.value.path == "$.servers[1]"


# --- online tuning -----------------------------------------------------------------------------

TUNED_SERVER = "Premium-llama_7b"
BASE_G2 = (9.74, 0.53)  # llama_7b on G2 in samples/large (G0: τ(b) = 1024·(α + β·b))
TRUE_G2 = (1.3 * BASE_G2[0], 1.3 * BASE_G2[1])


def tuning_request(occupancy: float) -> dict[str, Any]:
    """Two sample servers running on G2 and what the collector measured on them: llama_7b
    runs 30% slower than its profile says; llama_13b has too few requests to be used."""
    servers = [s for s in sample_servers() if s["name"] in (TUNED_SERVER, "Premium-llama_13b")]
    for s in servers:
        s["currentAlloc"].update({"accelerator": "G2", "numReplicas": 2})
    z = 1024 * (TRUE_G2[0] + TRUE_G2[1] * occupancy)  # ms per request
    rpm = occupancy * 2 * 60_000 / z  # Little's law over two replicas
    measured = [
        {
            "server": TUNED_SERVER,
            "computeMs": z,
            "avgBatch": 1.0,  # what Triton shows for a continuous-batching backend
            "completionsRpm": rpm,
            "load": {"arrivalRate": rpm, "avgInTokens": 0.0, "avgOutTokens": 1024.0},
        },
        {
            "server": "Premium-llama_13b",
            "computeMs": 20_000.0,
            "avgBatch": 1.0,
            "completionsRpm": 1.0,
            "load": {"arrivalRate": 1.0, "avgInTokens": 0.0, "avgOutTokens": 1024.0},
        },
    ]
    return {
        "servers": servers,
        "observations": {"window": 600, "servers": measured, "problems": []},
    }


def pair_of(body: dict[str, Any], model: str, acc: str) -> dict[str, Any]:
    found = [
        p for p in body["tuning"]["profiles"] if (p["model"], p["accelerator"]) == (model, acc)
    ]
    assert len(found) == 1, body["tuning"]
    pair: dict[str, Any] = found[0]
    return pair


async def test_observations_tune_the_profile_over_cycles() -> None:
    registry = CollectorRegistry()
    app = optimizer.create_app(settings(), token=None, registry=registry)
    alphas: list[float] = []
    async with client(app) as http:
        for occupancy in (4.0, 16.0, 8.0, 24.0, 12.0, 20.0, 6.0, 18.0):
            r = await http.post("/optimize", json=tuning_request(occupancy))
            assert r.status_code == 200
            body = r.json()
            pair = pair_of(body, "llama_7b", "G2")
            assert (pair["kind"], pair["applied"], pair["fallback"]) == ("G0", True, None)
            assert pair["base"] == {"alpha": BASE_G2[0], "beta": BASE_G2[1]}
            alphas.append(pair["tuned"]["alpha"])
            by_server = {o["server"]: o for o in body["tuning"]["observations"]}
            assert by_server[TUNED_SERVER]["outcome"] == "accepted"
            assert by_server[TUNED_SERVER]["batchSource"] == "occupancy"
            assert by_server[TUNED_SERVER]["batch"] == pytest.approx(occupancy)
            assert by_server["Premium-llama_13b"]["reasonClass"] == "few-requests"
        text = (await http.get("/metrics")).text
    assert len(set(alphas)) == len(alphas)  # it moves every cycle
    assert abs(alphas[-1] - TRUE_G2[0]) < 0.25 * abs(BASE_G2[0] - TRUE_G2[0])
    assert pair["tuned"]["beta"] == pytest.approx(TRUE_G2[1], rel=0.1)
    assert pair["updates"] == 8
    # the solve used the tuned profile: slower than the base, so it costs more than the
    # base answer for the same servers
    base = solve(load_system(SAMPLE))
    assert (
        body["solution"]["allocations"][TUNED_SERVER]["cost"] >= base.allocations[TUNED_SERVER].cost
    )
    labels = 'accelerator="G2",model="llama_7b"'
    assert registry.get_sample_value(
        "inferno_optimizer_tuned_alpha", {"model": "llama_7b", "accelerator": "G2"}
    ) == pytest.approx(alphas[-1])
    assert f"inferno_optimizer_tuned_beta{{{labels}}}" in text
    assert f"inferno_optimizer_tuning_applied{{{labels}}} 1.0" in text
    assert (
        registry.get_sample_value(
            "inferno_optimizer_tuning_updates_total", {"outcome": "accepted", "reason": "none"}
        )
        == 8
    )
    assert (
        registry.get_sample_value(
            "inferno_optimizer_tuning_updates_total",
            {"outcome": "skipped", "reason": "few-requests"},
        )
        == 8
    )


async def test_the_state_is_per_app_and_without_observations_nothing_is_tuned() -> None:
    first = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    second = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(first) as a, client(second) as b:
        for occupancy in (4.0, 16.0):
            await a.post("/optimize", json=tuning_request(occupancy))
        tuned = (await a.post("/optimize", json=tuning_request(8.0))).json()
        fresh = (await b.post("/optimize", json=tuning_request(8.0))).json()
        plain = await a.post("/optimize", json={"servers": tuning_request(8.0)["servers"]})
    assert pair_of(tuned, "llama_7b", "G2")["updates"] == 3
    assert pair_of(fresh, "llama_7b", "G2")["updates"] == 1
    assert "tuning" not in plain.json()  # no observations: the base profiles, as before


async def test_tuning_can_be_disabled() -> None:
    registry = CollectorRegistry()
    app = optimizer.create_app(settings(tuning_enabled=False), token=None, registry=registry)
    async with client(app) as http:
        body = (await http.post("/optimize", json=tuning_request(8.0))).json()
        text = (await http.get("/metrics")).text
    assert body["tuning"]["enabled"] is False
    assert body["tuning"]["profiles"] == []
    assert "INFERNO_TUNING_ENABLED" in body["tuning"]["notes"][0]
    assert "inferno_optimizer_tuned_alpha{" not in text


async def test_a_tuning_failure_never_fails_the_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(tuner_module, "update", boom)
    app = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/optimize", json=tuning_request(8.0))
    assert r.status_code == 200
    assert TUNED_SERVER in r.json()["solution"]["allocations"]
    assert "tuning failed (RuntimeError: bug)" in r.json()["tuning"]["notes"][0]


async def test_malformed_observations_are_a_400() -> None:
    app = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/optimize", json={"servers": [], "observations": [1, 2]})
    assert r.status_code == 400
    assert "observations" in r.json()["error"]


async def test_a_restarted_optimizer_continues_from_the_tuner_state_it_is_handed() -> None:
    """The answer carries the tuner's filters; a new optimizer (a restart) handed them in the
    request continues the filter (updates keep counting) instead of starting from the base
    profile; an optimizer that has filters of its own ignores what it is handed; a bad state is
    a note, never an error."""
    first = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(first) as a:
        for occupancy in (4.0, 16.0, 8.0):
            body = (await a.post("/optimize", json=tuning_request(occupancy))).json()
    kept = body["tunerState"]
    assert pair_of(body, "llama_7b", "G2")["updates"] == 3
    restarted = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(restarted) as b:
        again = (
            await b.post("/optimize", json={**tuning_request(24.0), "tunerState": kept})
        ).json()
        # now it has filters of its own: a stale state handed again is not taken
        ignored = (
            await b.post("/optimize", json={**tuning_request(12.0), "tunerState": kept})
        ).json()
    assert pair_of(again, "llama_7b", "G2")["updates"] == 4
    assert pair_of(ignored, "llama_7b", "G2")["updates"] == 5
    fresh = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    bad = {"version": 1, "filters": [{"model": "llama_7b", "accelerator": "G2", "kind": "G9"}]}
    async with client(fresh) as c:
        r = await c.post("/optimize", json={**tuning_request(8.0), "tunerState": bad})
    assert r.status_code == 200
    assert pair_of(r.json(), "llama_7b", "G2")["updates"] == 1  # started afresh
    assert any("tuner state not restored" in n and "G9" in n for n in r.json()["tuning"]["notes"])


async def test_a_tuner_state_beyond_the_bounds_is_not_restored_and_every_answer_is_200() -> None:
    """A handed-back state whose θ is 1e308 (before: a NaN replica count cast to an integer,
    a 500 on this request and every later one, the controller handing the state back each
    cycle): not restored, said in the notes, and the servers decided."""
    kept = (
        await _answer(optimizer.create_app(settings(), token=None, registry=CollectorRegistry()))
    )["tunerState"]
    for f in kept["filters"]:
        f["theta"] = [1e308, 1e308]
    app = optimizer.create_app(settings(), token=None, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/optimize", json={**tuning_request(8.0), "tunerState": kept})
        later = await http.post("/optimize", json=tuning_request(8.0))
    assert r.status_code == 200 and later.status_code == 200
    assert any("theta must be within" in n for n in r.json()["tuning"]["notes"])
    assert all(d["allocated"] for d in r.json()["decisions"])


async def _answer(app: Any) -> dict[str, Any]:
    async with client(app) as http:
        out: dict[str, Any] = (await http.post("/optimize", json=tuning_request(8.0))).json()
    return out


def _decided(body: dict[str, Any]) -> dict[str, tuple[str, int, int]]:
    return {
        d["server"]: (d["accelerator"], d["replicas"], d["maxBatch"])
        for d in body["decisions"]
        if d["allocated"]
    }


def _solved(model: str) -> dict[str, tuple[str, int, int]]:
    system = load_system(SAMPLE)
    spec = replace(system.optimizer, model=PerformanceModel(model))
    solution = solve(replace(system, optimizer=spec))
    return {n: (a.accelerator, a.replicas, a.max_batch) for n, a in solution.allocations.items()}


async def test_inferno_model_accurate_sizes_with_the_accurate_model() -> None:
    """INFERNO_MODEL=accurate: the service decides as the solver does with the accurate model,
    which on the large sample differs from the chain's for some servers."""
    chain, accurate = _solved("inferno"), _solved("accurate")
    differ = sorted(n for n in chain if chain[n] != accurate[n])
    assert differ, "the sample no longer tells the two models apart"
    answers = {}
    for model in ("inferno", "accurate"):
        app = optimizer.create_app(settings(model=model), token=None, registry=CollectorRegistry())
        async with client(app) as http:
            r = await http.post("/optimize", json={"servers": sample_servers()})
        assert r.status_code == 200
        answers[model] = _decided(r.json())
    assert answers["inferno"] == chain
    assert answers["accurate"] == accurate
    assert all(answers["accurate"][n] != answers["inferno"][n] for n in differ)


async def test_the_optimizer_data_model_wins_over_the_setting(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    doc = json.loads((data / "optimizer-data.json").read_text())
    doc["optimizer"]["model"] = "inferno"
    (data / "optimizer-data.json").write_text(json.dumps(doc))
    cfg = settings(data_path=str(data), model="accurate")
    app = optimizer.create_app(cfg, token=None, registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/optimize", json={"servers": sample_servers()})
    assert r.status_code == 200
    assert _decided(r.json()) == _solved("inferno")
