"""The baselines' algorithms on hand-made metric sequences, and the peak of each trace kind."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from inferno.emulator import Bursts, Diurnal, Poisson, Replay, Steps
from inferno.simulate import HpaAlgorithm, peak_rate


def test_hpa_desired_is_ceil_current_times_ratio() -> None:
    hpa = HpaAlgorithm(target=0.5, tolerance=0.1, stabilization_window_s=0.0, max_replicas=100)
    assert hpa.recommend(0.0, 4, 0.9) == 8  # ⌈4 × 0.9/0.5⌉ = ⌈7.2⌉
    assert hpa.recommend(15.0, 10, 0.75) == 15  # ⌈10 × 1.5⌉, exact: no float creep to 16
    assert hpa.recommend(30.0, 10, 0.2) == 4  # ⌈10 × 0.4⌉, no stabilisation window


def test_hpa_tolerance_keeps_the_current_count() -> None:
    hpa = HpaAlgorithm(target=0.7, tolerance=0.1, stabilization_window_s=0.0)
    assert hpa.recommend(0.0, 6, 0.7 * 1.09) == 6  # |ratio − 1| ≤ tolerance
    assert hpa.recommend(1.0, 6, 0.7 * 0.91) == 6
    assert hpa.recommend(2.0, 6, 0.7 * 1.12) == 7  # ⌈6.72⌉
    assert hpa.recommend(3.0, 6, 0.7 * 0.85) == 6  # ⌈5.1⌉ = 6
    assert hpa.recommend(4.0, 6, 0.7 * 0.8) == 5  # ⌈4.8⌉


def test_hpa_scale_down_stabilisation_window() -> None:
    """Scale-down only to the highest recommendation of the last window; scale-up at once."""
    hpa = HpaAlgorithm(target=1.0, tolerance=0.0, stabilization_window_s=300.0, max_replicas=50)
    seq = [
        (0.0, 10, 1.0, 10),  # raw 10
        (60.0, 10, 2.0, 20),  # raw 20: up at once
        (120.0, 20, 0.5, 20),  # raw 10, but 20 was recommended 60 s ago
        (240.0, 20, 0.25, 20),  # raw 5; 20 (t=60) still within 300 s
        (359.0, 20, 0.25, 20),  # t=60 is 299 s ago: still in the window
        (361.0, 20, 0.25, 10),  # 20 left the window; max(5, 10 @120, 5 @240, 5 @359) = 10
        (421.0, 10, 0.5, 5),  # 10 @120 left the window too: max(5 @240, 5 @359, 5 @361, 5) = 5
    ]
    for t, current, metric, expected in seq:
        assert hpa.recommend(t, current, metric) == expected, (t, current, metric)


def test_hpa_bounds_and_scale_up_limit() -> None:
    hpa = HpaAlgorithm(target=0.5, tolerance=0.1, stabilization_window_s=0.0, min_replicas=2)
    assert hpa.recommend(0.0, 1, 5.0) == 4  # ⌈1 × 10⌉ capped by max(2 × 1, 4)
    assert hpa.recommend(1.0, 10, 5.0) == 20  # capped by 2 × current
    assert hpa.recommend(2.0, 3, 0.01) == 2  # min_replicas
    bounded = HpaAlgorithm(target=0.5, stabilization_window_s=0.0, max_replicas=6)
    assert bounded.recommend(0.0, 5, 1.0) == 6
    # no metric, no replica: nothing changes
    assert bounded.recommend(1.0, 5, math.nan) == 5
    assert bounded.recommend(2.0, 0, 1.0) == 0
    with pytest.raises(ValueError):
        HpaAlgorithm(target=0.0)


def test_queue_scaler_is_ceil_held_over_target() -> None:
    """KEDA-style: desired = ⌈held / target per replica⌉ via the per-replica average value."""
    q = HpaAlgorithm(target=16.0, tolerance=0.1, stabilization_window_s=0.0, max_replicas=100)
    held, current = 100.0, 4
    assert q.recommend(0.0, current, held / current) == math.ceil(held / 16.0)  # 7
    assert q.recommend(1.0, 7, 110.0 / 7) == 7  # 110/(16·7) = 0.98: within tolerance


def test_peak_rates() -> None:
    hour = 3_600_000.0
    assert peak_rate(Poisson(120.0), hour) == pytest.approx(120.0)
    steps = Steps([(0, 100.0), (600, 300.0), (1200, 50.0)])
    assert peak_rate(steps, hour) == pytest.approx(300.0)
    assert peak_rate(steps, 500_000.0) == pytest.approx(100.0)  # the 300 comes later
    assert peak_rate(Diurnal(100.0, 0.5, 3600.0), hour) == pytest.approx(150.0, rel=1e-4)
    assert peak_rate(Bursts(60.0, 600.0, 300.0, 30.0), hour) == 600.0
    times = np.array([1_000.0, 2_000.0, 61_000.0, 62_000.0, 63_000.0])
    replay = Replay(times, np.zeros(5, dtype=np.int64), np.ones(5, dtype=np.int64))
    assert peak_rate(replay, hour) == 3.0


def test_the_scalers_are_bounded_by_the_peak_on_their_own_accelerator(tmp_path: Path) -> None:
    """Premium-llama_7b's peak allocation (1 MI300X replica at 120 req/min) is on another GPU
    type than its allocation at 40% load (G2): an HPA kept on G2 must be allowed the G2
    replicas the peak needs, not the one MI300X replica."""
    from inferno.simulate import load_scenario
    from inferno.simulate.policies import size_servers
    from inferno.system import Load

    from .scenarios import small_scenario, write_scenario

    doc = small_scenario(servers=["Premium-llama_7b"], policies=["hpa"], sizing={"quantile": 0.99})
    sc = load_scenario(write_scenario(tmp_path, doc))
    (srv,) = sc.system.servers
    low = size_servers(sc.static_docs, [srv], {srv.name: Load(48.0, 0, 1024)}).decisions
    peak = size_servers(sc.static_docs, [srv], {srv.name: Load(120.0, 0, 1024)}).decisions
    kept = size_servers(
        sc.static_docs,
        [srv],
        {srv.name: Load(120.0, 0, 1024)},
        keep={srv.name: low[srv.name].accelerator},
    ).decisions
    assert low[srv.name].accelerator != peak[srv.name].accelerator
    assert kept[srv.name].accelerator == low[srv.name].accelerator
    assert kept[srv.name].replicas > peak[srv.name].replicas
