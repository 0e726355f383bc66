"""The optimizer app's sizing memo (``INFERNO_SIZING_MEMO_ENTRIES``): the controller's next
period (the same servers, new rates) is answered from the memo with the answer a service
without one gives, to the last bit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from inferno.services import optimizer
from inferno.settings import Settings, SettingsError

from . import SAMPLE, client, settings


def rows(scale: float = 1.0) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = json.loads((SAMPLE / "server-data.json").read_text())["servers"]
    for i, s in enumerate(servers):
        load = s["currentAlloc"]["load"]
        load["arrivalRate"] = load["arrivalRate"] * (scale if i % 2 else 2.0 - scale)
    return servers


async def answers(entries: int, bodies: list[list[dict[str, Any]]]) -> list[Any]:
    app = optimizer.create_app(
        settings().with_overrides(sizing_memo_entries=entries),
        token=None,
        registry=CollectorRegistry(),
    )
    out = []
    async with client(app) as http:
        for servers in bodies:
            r = await http.post("/optimize", json={"servers": servers})
            assert r.status_code == 200, r.text
            out.append(r.json())
    memo = app.state.sizing_memo
    if entries == 0:
        assert memo is None
    else:  # the first request sized every candidate; the others found them all
        stats = memo.stats()
        assert stats.entries > 0 and stats.misses == stats.entries
        assert stats.hits == (len(bodies) - 1) * stats.entries
    return out


async def test_the_next_periods_answer_as_a_service_without_a_memo() -> None:
    bodies = [rows(), rows(), rows(0.8), rows(1.2)]
    with_memo = await answers(100_000, bodies)
    without = await answers(0, bodies)
    assert with_memo == without  # every JSON value, floats exactly
    assert with_memo[0] == with_memo[1]
    assert with_memo[2]["solution"] != with_memo[0]["solution"]  # the rates did matter


def test_a_bad_memo_size_is_refused_naming_the_variable() -> None:
    for bad in ("-1", "500001", "20000000", "many"):
        with pytest.raises(SettingsError, match="INFERNO_SIZING_MEMO_ENTRIES"):
            Settings.from_env({"INFERNO_SIZING_MEMO_ENTRIES": bad})
    assert Settings.from_env({"INFERNO_SIZING_MEMO_ENTRIES": "0"}).service.sizing_memo_entries == 0
    top = Settings.from_env({"INFERNO_SIZING_MEMO_ENTRIES": "500000"})
    assert top.service.sizing_memo_entries == 500_000
