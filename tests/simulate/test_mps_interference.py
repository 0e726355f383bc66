"""MPS interference in the emulator and in ``inferno simulate`` (docs/gpu-partitions.md).

When the decision co-locates servers on a shared MPS GPU, the emulated cluster slows each one's
batches by the factor GPU-let's interference model predicts next to its co-runners (the model the
packing checked the co-location with; a server's own other replicas on the GPU count too);
alone, a replica runs at full speed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from inferno.emulator import Poisson, ServerSpec, Simulation
from inferno.model.profiles import BatchProfile
from inferno.partitions.interference import Constants, CoRunner, interference_factor
from inferno.simulate import load_scenario
from inferno.simulate.cluster import EmulatedCluster
from inferno.simulate.policies import peak_rate, size_servers
from inferno.simulate.run import run_scenario
from inferno.solver.gpulets import utilisation_table
from inferno.units import MS_PER_MIN

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "samples" / "scenarios" / "gpulets-mps.yaml"


def _run(factor: float) -> float:
    """Mean latency (ms) of a batch server at ~half load, its batches slowed by ``factor``."""
    spec = ServerSpec(BatchProfile(2.0, 0.5, 8), Poisson(0.2 * MS_PER_MIN), replicas=1)
    sim = Simulation({"s": spec}, seed=3)
    sim.set_slowdown("s", factor)
    sim.run_until(120_000.0)
    return sim.window("s", 10_000.0, 120_000.0).latency_mean


def test_the_emulator_slows_batches_by_the_factor() -> None:
    alone, slowed = _run(1.0), _run(1.2)
    assert slowed > 1.15 * alone  # each batch takes 1.2× (and queues more)
    # the same arrivals: with one request per batch at low load the ratio is about the factor
    spec = ServerSpec(BatchProfile(2.0, 0.5, 8), Poisson(0.001 * MS_PER_MIN), replicas=1)
    lat = []
    for factor in (1.0, 1.1):
        sim = Simulation({"s": spec}, seed=3)
        sim.set_slowdown("s", factor)
        assert sim.slowdown("s") == factor
        sim.run_until(600_000.0)
        lat.append(sim.window("s", 0.0, 600_000.0).latency_mean)
    assert lat[1] / lat[0] == pytest.approx(1.1, rel=1e-3)  # deterministic: 2.5 ms → 2.75 ms
    sim = Simulation({"s": spec}, seed=3)
    for bad in (0.9, float("nan")):
        with pytest.raises(ValueError, match="slowdown"):
            sim.set_slowdown("s", bad)


def test_the_cluster_applies_the_decisions_layout() -> None:
    scenario = load_scenario(SCENARIO)
    servers = list(scenario.system.servers)
    loads = {  # the peak of the run
        s.name: dataclasses.replace(
            s.load, arrival_rate=peak_rate(scenario.traces[s.name], scenario.duration_ms)
        )
        for s in servers
    }
    sizing = size_servers(scenario.static_docs, servers, loads)
    gpus = [g for g in sizing.layout["H100-80GB"]["gpus"] if g["mode"] == "mps"]
    assert any(len(set(g["servers"])) > 1 for g in gpus), "the decision co-locates servers"
    shared = [g for g in gpus if len(g["servers"]) > 1]  # a server's own replicas count too
    decisions = {n: d for n, d in sizing.decisions.items() if d.allocated}
    specs = {
        n: ServerSpec(BatchProfile(1.0, 0.1, 8), Poisson(1.0), batch_size=d.max_batch)
        for n, d in decisions.items()
    }
    sim = Simulation(specs, seed=1)
    cluster = EmulatedCluster(
        sim,
        scenario.system,
        {n: (d.accelerator, d.replicas, d.max_batch) for n, d in decisions.items()},
    )
    factors = cluster.apply_layout(sizing.layout)
    # each co-located server's factor is GPU-let's model next to its co-runner, computed here
    acc = scenario.system.accelerators
    table = utilisation_table(scenario.system)
    models = {s.name: s.model for s in servers}
    for gpu in shared:
        n = gpu["shares"]
        constants = Constants(*acc[f"H100-80GB:mps-{n}"].interference)
        owners = sorted(set(gpu["servers"]))
        for me in owners:
            you = [
                CoRunner(models[o], decisions[o].max_batch, 1 / n)
                for o in owners
                if o != me or gpu["servers"].count(me) > 1
            ]
            mine = CoRunner(models[me], decisions[me].max_batch, 1 / n)
            expected = interference_factor(constants, table, mine, you)
            assert expected is not None and expected >= 1
            assert sim.slowdown(me) == pytest.approx(expected)
            assert factors.get(me, 1.0) == pytest.approx(expected)
    for name in decisions:
        if not any(name in g["servers"] for g in shared):
            assert sim.slowdown(name) == 1.0
    # a layout without the co-location puts everyone back at full speed
    assert cluster.apply_layout({}) == {}
    assert all(sim.slowdown(n) == 1.0 for n in decisions)


def test_simulate_shows_the_interference_of_mps_co_location(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = load_scenario(SCENARIO)
    static = [p for p in scenario.policies if p.kind == "static"]
    short = dataclasses.replace(scenario, duration_s=60.0, policies=tuple(static))
    on = run_scenario(short)
    notes = on.runs[0].notes
    assert any("MPS co-runners slowed batches" in n for n in notes), notes
    slowed = on.runs[0].cluster.max_slowdowns
    assert slowed and all(f > 1 for f in slowed.values())

    monkeypatch.setattr(EmulatedCluster, "apply_layout", lambda self, layout: {})
    off = run_scenario(short)
    for name in slowed:
        lat_on = [r.window.latency_mean for r in on.runs[0].rows if r.server == name]
        lat_off = [r.window.latency_mean for r in off.runs[0].rows if r.server == name]
        # the same requests on the same replicas: only the batch times differ
        assert sum(lat_on) > sum(lat_off), name
