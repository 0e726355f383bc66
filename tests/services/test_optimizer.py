"""The optimizer app: POST /optimize against the static data of samples/large."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from inferno.data import load_system
from inferno.services import optimizer
from inferno.solver import solve

from . import SAMPLE, client, settings


def sample_servers() -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = json.loads((SAMPLE / "server-data.json").read_text())["servers"]
    return servers


async def test_probes_and_metrics() -> None:
    registry = CollectorRegistry()
    app = optimizer.create_app(settings(), registry=registry)
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


async def test_readyz_503_without_static_data(tmp_path: Path) -> None:
    app = optimizer.create_app(
        settings(data_path=str(tmp_path / "absent")), registry=CollectorRegistry()
    )
    async with client(app) as http:
        r = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200
        o = await http.post("/optimize", json={"servers": []})
    assert r.status_code == 503
    assert "static data directory not found" in r.json()["error"]
    assert o.status_code == 503  # our configuration, not the caller's fault


async def test_optimize_matches_the_solver_on_the_sample() -> None:
    app = optimizer.create_app(settings(), registry=CollectorRegistry())
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


async def test_negative_arrival_rate_is_a_400_naming_the_field() -> None:
    servers = sample_servers()[:3]
    servers[1]["currentAlloc"]["load"]["arrivalRate"] = -5
    app = optimizer.create_app(settings(), registry=CollectorRegistry())
    async with client(app) as http:
        r = await http.post("/optimize", json={"servers": servers})
        text = (await http.get("/metrics")).text
    assert r.status_code == 400
    message = r.json()["error"]
    assert "servers[1].currentAlloc.load.arrivalRate" in message
    assert ">= 0" in message
    assert 'inferno_optimizer_solves_total{status="error"} 1.0' in text


async def test_malformed_body_is_a_422() -> None:
    app = optimizer.create_app(settings(), registry=CollectorRegistry())
    async with client(app) as http:
        assert (await http.post("/optimize", json={"serviceClasses": []})).status_code == 422
        assert (await http.post("/optimize", json={"servers": "all"})).status_code == 422
        assert (await http.post("/optimize", content=b"{not json")).status_code == 422


async def test_static_data_is_reread_when_a_file_changes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    (data / "server-data.json").unlink()  # the servers come from the request
    servers = sample_servers()[:1]
    name = servers[0]["name"]
    registry = CollectorRegistry()
    app = optimizer.create_app(settings(data_path=str(data)), registry=registry)
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
    with pytest.raises(InputError) as err:
        optimize(static, [unknown, good, bad], [], origin="static")
    assert err.value.source == "request"
    assert err.value.path is not None and err.value.path.startswith("$.servers[2]")
