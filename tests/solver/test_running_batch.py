"""The running batch kept *and sized for* (a server's ``batchTolerance``,
:func:`inferno.solver.running_batch.keep_running_batch`).

The large sample's Free-llama_70b fits batch 16 on 4xMI250 at exactly 1024 output tokens, so a
measured mean a little above (a noisy window, smoothed) drops the memory-bound batch to 15. The
actuator's hysteresis then kept the running 16 but the replicas were sized for 15: about 6% more
than the batch that runs needs, every other cycle. With the tolerance the solver keeps 16 and
sizes for it, unless the tokens exceed its fit by more than the memory slack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferno.control.optimize import optimize, read_static_data
from inferno.model.profile_arrays import MEMORY_SLACK

ROOT = Path(__file__).resolve().parents[2] / "samples" / "large"


@pytest.fixture(scope="module")
def static() -> Any:
    return read_static_data(ROOT)


def row(tokens: float, batch: int, tolerance: float | None, rate: float = 440.0) -> dict[str, Any]:
    r: dict[str, Any] = {
        "name": "Free-llama_70b",
        "class": "Free",
        "model": "llama_70b",
        "keepAccelerator": True,
        "currentAlloc": {
            "accelerator": "4xMI250",
            "numReplicas": 30,
            "maxBatch": batch,
            "load": {"arrivalRate": rate, "avgInTokens": 0, "avgOutTokens": tokens},
        },
    }
    if tolerance is not None:
        r["batchTolerance"] = tolerance
    return r


def decide(static: Any, r: dict[str, Any]) -> tuple[int, int]:
    (d,) = optimize(static, [r], []).decisions
    assert d.allocated and d.accelerator == "4xMI250"
    return d.max_batch, d.replicas


def test_a_length_just_past_the_running_batch_keeps_it_and_its_replicas(static: Any) -> None:
    at_fit = decide(static, row(1024.0, 16, None))
    past = decide(static, row(1030.0, 16, None))
    kept = decide(static, row(1030.0, 16, 0.25))
    assert at_fit[0] == 16 and past[0] == 15  # the memory-bound batch drops by one
    assert past[1] > at_fit[1]  # and batch 15 needs more replicas
    pinned = row(1030.0, 16, None)
    pinned["maxBatchSize"] = 16  # the batch forced: what batch 16 needs at these tokens
    assert kept == decide(static, pinned)  # kept: sized for the batch that runs
    assert kept[1] < past[1]


def test_a_length_beyond_the_slack_drops_the_batch(static: Any) -> None:
    beyond = 1024.0 * (1.0 + 2.0 * MEMORY_SLACK)
    assert decide(static, row(beyond, 16, 0.25))[0] == 15  # batch 16 no longer fits


def test_a_smaller_running_batch_is_sized_for_not_only_kept(static: Any) -> None:
    """Running 14 where 16 fits: kept (within the tolerance), with the replicas batch 14
    needs, not the fewer that batch 16 would."""
    free = decide(static, row(1024.0, 14, None))
    kept = decide(static, row(1024.0, 14, 0.25))
    assert free[0] == 16 and kept[0] == 14
    assert kept[1] > free[1]


def test_beyond_the_tolerance_or_on_another_type_nothing_is_kept(static: Any) -> None:
    assert decide(static, row(1024.0, 10, 0.25))[0] == 16  # 16 is 60% above 10
    other = row(1030.0, 16, 0.25)
    other["currentAlloc"]["accelerator"] = "MI300X"
    other["keepAccelerator"] = False
    (d,) = optimize(static, [other], []).decisions
    assert not (d.accelerator == "4xMI250" and d.max_batch == 16)


@pytest.mark.parametrize("bad", [-0.1, 1.0, "x", True])
def test_a_bad_tolerance_names_the_field(static: Any, bad: object) -> None:
    r = row(1024.0, 16, None)
    r["batchTolerance"] = bad
    result = optimize(static, [r], [])
    assert not result.decisions or not result.decisions[0].allocated
    assert "batchTolerance" in str(result.solution) + " ".join(result.notes)
