"""The filter: convergence, the innovation gate, re-initialisation, the positivity and bounds
guards, skipped observations, every kind."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from inferno.model.profiles import (
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Profile,
    Tokens,
)
from inferno.tuning import (
    Observation,
    TunerState,
    TuningOptions,
    TuningReport,
    evaluate,
    tuned_parameters,
    update,
    with_theta,
)

KEY = ("m", "A")
TRUE = (10.0, 2.0)


def obs(
    z: float | None,
    batch: float | None = 8.0,
    *,
    requests: float | None = 500.0,
    occupancy: float | None = None,
    tokens: Tokens | None = None,
) -> Observation:
    return Observation(
        "s", "m", "A", z, batch, tokens or Tokens(), requests=requests, occupancy=occupancy
    )


def step(
    state: TunerState, base: Profile, o: Observation, options: TuningOptions | None = None
) -> tuple[TunerState, TuningReport]:
    return update(state, [o], {KEY: base}, options)


def feed(
    state: TunerState,
    base: Profile,
    truth: Callable[[float], float],
    n: int,
    rng: np.random.Generator,
    noise: float = 0.03,
    tokens: Tokens | None = None,
) -> tuple[TunerState, list[TuningReport]]:
    reports = []
    for _ in range(n):
        b = float(rng.integers(1, 33))
        z = truth(b) * (1.0 + noise * rng.standard_normal())
        state, report = step(state, base, obs(z, b, tokens=tokens or Tokens()))
        reports.append(report)
    return state, reports


def linear(theta: tuple[float, float]) -> Callable[[float], float]:
    return lambda b: theta[0] + theta[1] * b


def theta_of(state: TunerState) -> tuple[float, float]:
    return state.filters[KEY].theta


def converged(state: TunerState, base: Profile) -> TunerState:
    state, _ = feed(state, base, linear(TRUE), 40, np.random.default_rng(7))
    return state


def test_converges_from_twice_the_truth() -> None:
    base = BatchProfile(2 * TRUE[0], 2 * TRUE[1], 64)
    state, reports = feed(TunerState(), base, linear(TRUE), 60, np.random.default_rng(1))
    alpha, beta = theta_of(state)
    assert alpha == pytest.approx(TRUE[0], rel=0.1)
    assert beta == pytest.approx(TRUE[1], rel=0.05)
    assert all(r.entries[0].outcome == "accepted" for r in reports)
    pair = reports[-1].pairs[0]
    assert pair.updates == 60 and pair.base == (20.0, 4.0)
    assert pair.std[0] < 0.1 * 20.0 and pair.std[1] < 0.1 * 4.0  # it knows it learned
    assert tuned_parameters(state, {KEY: base}) == {KEY: (alpha, beta)}


def test_a_single_wild_outlier_is_rejected_and_does_not_move_theta() -> None:
    base = BatchProfile(*TRUE, 64)
    state = converged(TunerState(), base)
    before = theta_of(state)
    state, report = step(state, base, obs(10 * (TRUE[0] + 8 * TRUE[1]), 8.0))
    entry = report.entries[0]
    assert (entry.outcome, entry.reason_class) == ("rejected", "gate")
    assert entry.nis is not None and entry.nis > TuningOptions().gate_threshold
    assert "implausible" in entry.reason
    assert theta_of(state) == before
    # and the next good observations are accepted again
    state, reports = feed(state, base, linear(TRUE), 3, np.random.default_rng(2))
    assert [r.entries[0].outcome for r in reports] == ["accepted"] * 3
    assert state.filters[KEY].streak == 0


def test_a_persistent_step_change_is_learned_after_k_rejections() -> None:
    base = BatchProfile(*TRUE, 64)
    state = converged(TunerState(), base)
    new = (1.5 * TRUE[0], 1.5 * TRUE[1])  # e.g. a slower driver
    state, reports = feed(state, base, linear(new), 3, np.random.default_rng(3), noise=0.01)
    outcomes = [r.entries[0].outcome for r in reports]
    assert outcomes == ["rejected", "rejected", "reset"]
    assert "re-initialised" in reports[-1].entries[0].reason
    assert theta_of(state)[0] == pytest.approx(new[0], rel=0.05)
    assert state.filters[KEY].resets == 1
    state, reports = feed(state, base, linear(new), 30, np.random.default_rng(4))
    assert all(r.entries[0].outcome == "accepted" for r in reports)
    assert theta_of(state)[0] == pytest.approx(new[0], rel=0.1)
    assert theta_of(state)[1] == pytest.approx(new[1], rel=0.05)


def test_an_outlier_before_a_step_change_does_not_spoil_the_reset() -> None:
    base = BatchProfile(*TRUE, 64)
    state = converged(TunerState(), base)
    state, _ = step(state, base, obs(40 * (TRUE[0] + 8 * TRUE[1]), 8.0))  # same direction
    new = (1.5 * TRUE[0], 1.5 * TRUE[1])
    state, reports = feed(state, base, linear(new), 2, np.random.default_rng(5), noise=0.01)
    assert reports[-1].entries[0].outcome == "reset"
    assert theta_of(state)[0] == pytest.approx(new[0], rel=0.05)  # the median, not the mean


def test_rejections_in_alternating_directions_never_reset() -> None:
    base = BatchProfile(*TRUE, 64)
    state = converged(TunerState(), base)
    before = theta_of(state)
    for k in range(6):
        z = (TRUE[0] + 8 * TRUE[1]) * (5.0 if k % 2 else 0.2)
        state, report = step(state, base, obs(z, 8.0))
        assert report.entries[0].outcome == "rejected"
    assert theta_of(state) == before
    assert state.filters[KEY].streak == 1


def test_a_change_beyond_the_bounds_is_never_learned() -> None:
    base = BatchProfile(*TRUE, 64)
    state = converged(TunerState(), base)
    before = theta_of(state)
    state, reports = feed(
        state, base, linear((6 * TRUE[0], 6 * TRUE[1])), 5, np.random.default_rng(6)
    )
    last = reports[-1].entries[0]
    assert last.outcome == "rejected" and last.reason_class == "bounds"
    assert "outside" in last.reason
    assert theta_of(state) == before


def test_an_update_making_beta_negative_is_rejected() -> None:
    base = BatchProfile(*TRUE, 64)
    # far below the prediction at a large batch, yet inside the gate of a fresh filter
    state, report = step(TunerState(), base, obs(5.0, 32.0))
    entry = report.entries[0]
    assert entry.nis is not None and entry.nis < TuningOptions().gate_threshold
    assert (entry.outcome, entry.reason_class) == ("rejected", "non-positive")
    assert "beta would be -" in entry.reason
    assert theta_of(state) == TRUE
    assert tuned_parameters(state, {KEY: base}) == {}  # nothing accepted: nothing to apply


def test_an_update_leaving_the_bounds_is_rejected() -> None:
    base = BatchProfile(*TRUE, 64)
    tight = TuningOptions(bounds=1.2)
    state, report = step(TunerState(), base, obs(30.0, 32.0), tight)  # predicted 74
    entry = report.entries[0]
    assert (entry.outcome, entry.reason_class) == ("rejected", "bounds")
    assert theta_of(state) == TRUE


@pytest.mark.parametrize(
    ("observation", "reason_class"),
    [
        (obs(None), "no-data"),
        (obs(math.nan), "no-data"),
        (obs(0.0), "no-data"),
        (obs(-3.0), "no-data"),
        (obs(30.0, None), "no-data"),
        (obs(30.0, math.nan), "no-data"),
        (obs(30.0, requests=5.0), "few-requests"),
        (obs(30.0, requests=None), "few-requests"),
        (Observation("s", "m", "", 30.0, 8.0, requests=500.0), "no-accelerator"),
        (Observation("s", "m", "B", 30.0, 8.0, requests=500.0), "no-profile"),
    ],
)
def test_unusable_observations_are_skipped(observation: Observation, reason_class: str) -> None:
    base = BatchProfile(*TRUE, 64)
    state, report = step(TunerState(), base, observation)
    entry = report.entries[0]
    assert (entry.outcome, entry.reason_class) == ("skipped", reason_class)
    assert entry.reason
    assert KEY not in state.filters or state.filters[KEY].updates == 0


def test_the_filter_converges_for_g0_profiles() -> None:
    base = G0Profile(alpha=20.0, beta=1.0, max_batch_size=64, at_tokens=512)
    tokens = Tokens(0.0, 256.0)
    truth = (10.0, 0.5)
    state = TunerState()
    rng = np.random.default_rng(8)
    for _ in range(60):
        b = float(rng.integers(1, 33))
        z = 256.0 * (truth[0] + truth[1] * b) * (1 + 0.03 * rng.standard_normal())
        # the batch of a token kind is the occupancy (Little's law), not Triton's avg_batch
        state, report = step(state, base, obs(z, 1.0, occupancy=b, tokens=tokens))
        assert report.entries[0].batch_source == "occupancy"
        assert report.entries[0].outcome == "accepted"
    assert theta_of(state)[0] == pytest.approx(truth[0], rel=0.1)
    assert theta_of(state)[1] == pytest.approx(truth[1], rel=0.05)


@pytest.mark.parametrize(
    "base",
    [
        G1Profile(alpha=8.0, beta=0.4, gamma=30.0, delta=0.02, max_batch_size=64, at_tokens=512),
        G2Profile(alpha=8.0, beta=0.1, gamma=0.001, max_batch_size=64),
        G3Profile(alpha=8.0, beta=0.1, gamma=0.001, max_batch_size=64, max_num_tokens=2048),
    ],
)
def test_other_kinds_tune_alpha_and_beta_and_hold_the_rest(base: Profile) -> None:
    tokens = Tokens(200.0, 100.0)
    truth = with_theta(base, (1.5 * base.alpha, 0.8 * base.beta))
    state = TunerState()
    rng = np.random.default_rng(9)
    for _ in range(80):
        b = float(rng.integers(1, 33))
        z, _ = evaluate(truth, (truth.alpha, truth.beta), b, tokens)
        state, report = step(
            state, base, obs(z * (1 + 0.01 * rng.standard_normal()), occupancy=b, tokens=tokens)
        )
        assert report.entries[0].outcome in ("accepted", "rejected", "reset")
    assert theta_of(state)[0] == pytest.approx(truth.alpha, rel=0.1)
    assert theta_of(state)[1] == pytest.approx(truth.beta, rel=0.1)


def test_a_parameter_with_base_zero_stays_zero() -> None:
    base = BatchProfile(alpha=10.0, beta=0.0, max_batch_size=8)
    state, _ = feed(TunerState(), base, lambda b: 12.0, 20, np.random.default_rng(10))
    alpha, beta = theta_of(state)
    assert beta == 0.0
    assert alpha == pytest.approx(12.0, rel=0.05)


def test_several_servers_of_one_pair_update_one_filter_in_name_order() -> None:
    base = BatchProfile(*TRUE, 64)
    a = Observation("b-server", "m", "A", 26.0, 8.0, requests=500.0)
    b = Observation("a-server", "m", "A", 50.0, 20.0, requests=500.0)
    state, report = update(TunerState(), [a, b], {KEY: base})
    assert [e.server for e in report.entries] == ["a-server", "b-server"]
    assert state.filters[KEY].updates == 2
    assert report.pairs[0].observed


def test_a_changed_base_profile_restarts_its_filter_and_a_removed_one_is_dropped() -> None:
    base = BatchProfile(*TRUE, 64)
    state = converged(TunerState(), base)
    edited = BatchProfile(12.0, 2.5, 64)
    state2, report = update(state, [], {KEY: edited})
    assert state2.filters[KEY].theta == (12.0, 2.5) and state2.filters[KEY].updates == 0
    assert any("changed" in n for n in report.notes)
    assert not report.pairs[0].observed
    assert tuned_parameters(state, {KEY: edited}) == {}  # never apply a stale filter
    state3, report = update(state, [], {})
    assert KEY not in state3.filters
    assert any("dropped" in n for n in report.notes)


def test_the_report_is_json() -> None:
    base = BatchProfile(*TRUE, 64)
    _, report = step(TunerState(), base, obs(27.0, 8.0))
    body = report.to_json()
    assert body["observations"][0]["outcome"] == "accepted"
    assert body["observations"][0]["before"] == {"alpha": 10.0, "beta": 2.0}
    profile = body["profiles"][0]
    assert (profile["model"], profile["accelerator"], profile["kind"]) == ("m", "A", "batch")
    assert profile["tuned"]["alpha"] != 10.0
    assert set(profile["std"]) == {"alpha", "beta"}


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="bounds"):
        TuningOptions(bounds=1.0)
    with pytest.raises(ValueError, match="gate"):
        TuningOptions(gate=1.0)
    assert TuningOptions().gate_threshold == pytest.approx(10.828, abs=1e-3)
