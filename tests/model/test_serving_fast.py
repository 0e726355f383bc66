"""The vectorised batching-delay chain (inferno/model/bulk_delay.py) against the values of the
loop it replaced: tests/model/serving_reference.json, written by make_serving_reference.py at
commit 0af4550 (one window at a time, the run's first arrival integrated by Gauss–Legendre).
The closed forms sum the same probabilities: means and distributions agree to 1e-9 relative
(probabilities below 1e-12 compared absolutely)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferno.model.bulk_instances import serving_metrics, serving_time
from inferno.model.bulk_multi import MAX_EXACT_INSTANCES

pytestmark = pytest.mark.slow  # 1,120 cases: about 40 s

_ALL = json.loads(Path(__file__).with_name("serving_reference.json").read_text())
#: no delay with c > 1 is solved by its own chain since (inferno/model/bulk_multi.py,
#: tests/model/test_bulk_multi.py): the reference's cases of it are the old approximation's
REFERENCE = {
    part: [c for c in cases if not (c["delay"] == 0 and 1 < c["c"] <= MAX_EXACT_INSTANCES)]
    for part, cases in _ALL.items()
}
#: the distributions drop their least likely atoms, 1e-7 of the mass in all
#: (bulk_delay_time._DROPPED_MASS); which ones fall under that line can move with the last
#: digits of the chain, so probabilities are compared to 1e-10 absolute
ATOL = 1e-10
FIELDS = ("throughput", "response", "service", "wait", "avg_batch", "utilization")


def _args(case: dict[str, Any]) -> tuple[tuple[float, float, int, int, float], dict[str, Any]]:
    pos = (case["alpha"], case["beta"], int(case["n"]), int(case["k"]), case["rate"])
    kw = {"delay": case["delay"], "instances": int(case["c"]), "kappa": case["kappa"]}
    # c > 1 with a delay: the reference is the virtual instance's (the delay chain on τ/c); the
    # chain over the residual times that replaced it is tests/model/test_bulk_multi_delay.py's
    kw["virtual"] = True
    return pos, kw


def test_the_grid_covers_the_paths() -> None:
    cases = REFERENCE["metrics"]
    assert len(cases) > 900  # 1,120 less the 160 with no delay and c > 1
    n_k = {(c["n"], c["k"]) for c in cases}
    assert any(k < 2 * n for n, k in n_k)  # a run can fill the queue: the quadrature's path
    assert any(k >= 5 * n for n, k in n_k)  # the solver's queue: the closed forms
    tau_n = [c["kappa"] * (c["alpha"] + c["beta"] * c["n"]) / c["c"] for c in cases]
    assert any(c["delay"] > t for c, t in zip(cases, tau_n, strict=True))  # leftover windows


@pytest.mark.parametrize("part", range(4))
def test_means_match_the_loop_they_replaced(part: int) -> None:
    for case in REFERENCE["metrics"][part::4]:
        pos, kw = _args(case)
        m = serving_metrics(*pos, **kw)
        for f in FIELDS:
            ref = case[f]
            err = abs(getattr(m, f) - ref) / abs(ref)
            assert err <= 1e-9, (case, f, getattr(m, f))
        assert abs(m.blocking - case["blocking"]) <= 1e-12 + 1e-9 * case["blocking"], case


@pytest.mark.parametrize(
    "case",
    REFERENCE["times"],
    ids=lambda c: f"N{c['n']}-c{c['c']}-D{c['delay']:.3g}-r{c['rate']:.3g}",
)
def test_distributions_match_the_loop_they_replaced(case: dict[str, Any]) -> None:
    pos, kw = _args(case)
    rt = serving_time(*pos, **kw)
    times = np.array(case["times"])
    np.testing.assert_allclose(rt.survival(times), case["survival"], rtol=1e-9, atol=ATOL)
    np.testing.assert_allclose(rt.wait_survival(times), case["wait_survival"], rtol=1e-9, atol=ATOL)
