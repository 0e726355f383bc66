"""Scenarios for the tests of ``inferno simulate``. ``write_scenario`` writes a small scenario
next to a copy-free reference to the large sample (an absolute ``system`` path), so each test
runs in a few seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
SAMPLE = ROOT / "samples" / "large"
DEMO = ROOT / "samples" / "scenarios" / "demo.yaml"

#: two servers of the large sample with few replicas: quick to simulate
SMALL_SERVERS = ["Premium-llama3_8b", "Bronze-mistral_7b"]


def small_scenario(**overrides: Any) -> dict[str, Any]:
    """A 3-minute scenario on two servers of the large sample, every policy."""
    doc: dict[str, Any] = {
        "system": str(SAMPLE),
        "duration": 180,
        "seed": 7,
        "control_period": 30,
        "startup_delay": 60,
        "servers": list(SMALL_SERVERS),
        "traces": {"default": {"kind": "steps", "relative": True, "steps": [[0, 1.0], [60, 1.5]]}},
        "metrics": {"window": 30, "noise": 0.05},
        "policies": ["inferno", "static", {"hpa": {"target": 0.7}}, "queue"],
    }
    doc.update(overrides)
    return doc


def write_scenario(tmp: Path, doc: object, name: str = "scenario.yaml") -> Path:
    path = tmp / name
    if name.endswith(".json"):
        path.write_text(json.dumps(doc), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
