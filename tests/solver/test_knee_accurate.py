"""``batchPolicy: knee`` with the accurate model: the knee is the accurate model's, found by
sizing every batch size with that model (not the chain's knee, sized with the accurate model)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _systems import one_model_system, server

from inferno.model.accurate import build_points
from inferno.model.profile_arrays import ProfileArrays
from inferno.model.profiles import G2Profile
from inferno.model.sizing import SloArrays, size
from inferno.solver import solve
from inferno.system import Accelerator, BatchPolicy, OptimizerSpec, PerformanceModel, Target
from inferno.units import MS_PER_MIN

PROFILE = G2Profile(12.0, 0.05, 5e-4, 64)  # N = 64 at 128 + 128 tokens
TARGET = Target("g", itl=20.0)
TOKENS = 128.0


def _solved(model: str, policy: BatchPolicy) -> tuple[int, int, float]:
    system = one_model_system(
        "g",
        {"G": PROFILE},
        [server("s", 600, model="g", in_tokens=TOKENS, out_tokens=TOKENS)],
        {"gold": TARGET},
        accelerators={"G": Accelerator("G", type="G", cost=1.0)},
        optimizer=OptimizerSpec(batch_policy=policy, model=PerformanceModel(model)),
    )
    a = solve(system).allocations["s"]
    return a.max_batch, a.max_batch_memory, a.max_rate_per_replica


def _rates(model: str, n_memory: int) -> np.ndarray:
    """λ* (per minute) at every batch 1..n_memory, sized with ``model`` (independently of the
    knee's code: one point per batch size)."""
    batches = np.arange(1, n_memory + 1, dtype=np.float64)
    points = build_points(
        model,
        ProfileArrays.of([PROFILE] * n_memory),
        np.full(n_memory, TOKENS),
        np.full(n_memory, TOKENS),
        batch=batches,
    )
    cols = [np.full(n_memory, math.nan) for _ in range(8)]
    cols[0] = np.full(n_memory, TARGET.itl)
    # the accurate model judges slo-ttw on its true quantile (as the candidates do)
    slo = SloArrays.of_columns(cols, exact_wait_quantile=model == "accurate")
    return np.asarray(size(points, slo).rate) * MS_PER_MIN


@pytest.mark.parametrize("model", ["inferno", "accurate"])
def test_the_knee_is_the_selected_models(model: str) -> None:
    batch, n_memory, rate = _solved(model, BatchPolicy.KNEE)
    rates = _rates(model, n_memory)
    best = float(np.nanmax(rates))
    good = np.flatnonzero(np.nan_to_num(rates, nan=-1.0) >= 0.99 * best)
    assert batch == int(good[0]) + 1  # the smallest batch within 1% of the model's best
    assert rate == pytest.approx(rates[batch - 1], rel=1e-9)


def test_the_two_models_knees_differ_here() -> None:
    """Where the accurate model's capacity falls faster with the batch (G2's join stalls), its
    knee is a smaller batch than the chain's, and its rate there is its own λ*."""
    chain, accurate = _solved("inferno", BatchPolicy.KNEE), _solved("accurate", BatchPolicy.KNEE)
    assert accurate[0] < chain[0] < chain[1]
    # the chain's knee sized with the accurate model is not within 1% of the accurate best
    rates = _rates("accurate", chain[1])
    assert rates[chain[0] - 1] < 0.99 * float(np.nanmax(rates))
