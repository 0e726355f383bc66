"""Online tuning on real observations: the collector's measurements of a real Triton (through
Prometheus) tune a deliberately wrong profile towards the server's real α and β."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from inferno.cli import main
from inferno.model.profiles import BatchProfile
from inferno.prom import PrometheusClient, PrometheusLoadSource
from inferno.tuning import TunerState, observations_from, update

from .conftest import ALPHA, BETA, MAX_BATCH, Stack
from .test_collector_live import _deployment

pytestmark = pytest.mark.slow

WINDOW_S = 5.0


def _at(t: float) -> Callable[[], float]:
    """A clock stopped at ``t``."""
    return lambda: t


def _phase(stack: Stack, rps: float, tmp: Path) -> list[dict[str, object]]:
    """Load at ``rps`` for 16 s; three 5 s measurements inside the phase."""
    out = tmp / f"load-{rps:g}.json"
    code = main(
        ["load", stack.triton_http, "-m", f"sleep={rps}", "-d", "16", "-q", "--json", str(out)]
    )
    end = time.time()
    assert code == 0
    time.sleep(2.5)
    found = []
    for back in (0.5, 5.5, 10.5):
        with PrometheusClient(stack.prometheus, timeout=5.0, clock=_at(end - back)) as c:
            found.append(
                PrometheusLoadSource(c, window=WINDOW_S).measure([_deployment()]).to_json()
            )
    return found


def test_a_wrong_profile_is_tuned_towards_the_server(stack: Stack, tmp_path: Path) -> None:
    measurements = _phase(stack, 20.0, tmp_path) + _phase(stack, 70.0, tmp_path)
    row = {
        "name": "sleep-premium",
        "model": "sleep",
        "currentAlloc": {"accelerator": "CPU", "numReplicas": 1},
    }
    wrong = BatchProfile(ALPHA / 2, BETA * 2, MAX_BATCH)  # α half, β double the sleep's
    base = {("sleep", "CPU"): wrong}
    state = TunerState()
    # cycles alternate between the low and the high load, as traffic would
    order = [measurements[i] for i in (0, 3, 1, 4, 2, 5)]
    for m in order:
        observations, notes = observations_from(m, [row])
        assert observations and not notes
        state, report = update(state, observations, base)
        print(json.dumps([e.to_json() for e in report.entries])[:300])
    [pair] = report.pairs
    alpha, beta = pair.tuned
    print(
        f"\ntuned α {alpha:.2f} (base {wrong.alpha}, sleep {ALPHA}), "
        f"β {beta:.3f} (base {wrong.beta}, sleep {BETA})"
    )
    assert pair.updates >= 3
    # closer to the server than the wrong base, and near it (pytriton adds ~4 ms per execution;
    # the request-weighted compute time biases β up when batch sizes vary: docs/tuning.md)
    assert abs(alpha - ALPHA) < abs(wrong.alpha - ALPHA)
    assert abs(beta - BETA) < abs(wrong.beta - BETA)
    assert alpha == pytest.approx(ALPHA, rel=0.3)
    assert beta == pytest.approx(BETA, rel=0.4)
