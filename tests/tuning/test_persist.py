"""The tuner's filters as JSON: a round trip, and every malformed document refused by name."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from inferno.model.profiles import Kind
from inferno.tuning import FilterState, TunerState, state_from_json, state_to_json


def sample() -> TunerState:
    f = FilterState(
        kind=Kind.G0,
        base=(0.5, 0.02),
        theta=(0.61, 0.025),
        cov=((0.01, 0.001), (0.001, 0.0004)),
        updates=7,
        rejections=2,
        resets=1,
        streak=1,
        streak_sign=-1,
        streak_scales=(0.9,),
    )
    return TunerState(
        {
            ("llama_7b", "G2"): f,
            ("bert", "A100"): FilterState(
                kind=Kind.BATCH, base=(3.0, 1.0), theta=(3.0, 1.0), cov=((1.0, 0.0), (0.0, 1.0))
            ),
        }
    )


def test_round_trip_through_json_text() -> None:
    state = sample()
    back = state_from_json(json.loads(json.dumps(state_to_json(state))))
    assert dict(back.filters) == dict(state.filters)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(version=2), "version-1"),
        (lambda d: d.update(filters={}), "list"),
        (lambda d: d["filters"][0].update(kind="G9"), "filters[0]: unknown profile kind"),
        (lambda d: d["filters"][0].update(theta=[1.0, float("nan")]), "filters[0]: theta"),
        (lambda d: d["filters"][0].update(theta=[-1.0, 1.0]), "≥ 0"),
        (lambda d: d["filters"][0].update(cov=[[1, 2], [3, 4]]), "symmetric"),
        (lambda d: d["filters"][0].update(cov=[[-1, 0], [0, 1]]), "non-negative"),
        (lambda d: d["filters"][1].update(updates=-1), "filters[1]: updates"),
        (lambda d: d["filters"][1].update(updates=True), "updates"),
        (lambda d: d["filters"][0].update(streakSign=2), "streakSign"),
        (lambda d: d["filters"][0].update(model=None), "names"),
        (lambda d: d["filters"].append(7), "filters[2]: not an object"),
    ],
)
def test_a_bad_document_is_refused_naming_the_filter(change: Any, words: str) -> None:
    doc = copy.deepcopy(state_to_json(sample()))
    change(doc)
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        state_from_json(doc)


def test_a_theta_beyond_the_tuners_bounds_is_refused() -> None:
    """The tuner keeps θ within a factor ``bounds`` of the base; a document with one beyond
    (1e308: every replica's rate sized to nothing, and the optimizer answered 500 until it
    restarted, the controller handing it back each cycle) is refused, naming the filter."""
    doc = state_to_json(sample())
    assert state_from_json(doc, bounds=2.0).filters  # 0.61 and 0.025: within 2× of the base
    for theta in ([1e308, 1e308], [0.61, 0.0], [0.2, 0.025]):
        bad = copy.deepcopy(doc)
        bad["filters"][1]["theta"] = theta  # the llama_7b filter (sorted: bert first)
        with pytest.raises(ValueError, match=r"filters\[1\]: theta must be within a factor 2"):
            state_from_json(bad, bounds=2.0)
        state_from_json(bad)  # without bounds: only finite and ≥ 0
