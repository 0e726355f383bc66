"""GPU-let's interference model against the reference vectors of docs/gpu-partitions.md."""

from __future__ import annotations

import statistics

import pytest

from inferno.errors import InputError
from inferno.partitions.gpulet_2080ti import BATCHES, L2_DRAM, table
from inferno.partitions.interference import (
    GPULET_2080TI,
    CoRunner,
    UtilisationTable,
    alpha,
    batch_factor,
    inflate,
    interference_factor,
)

# (me: model, batch, share %), (you: ...), raw α with the 2080 Ti constants
REFERENCE = [
    (("resnet50", 32, 50), ("vgg16", 32, 50), 1.1569),
    (("vgg16", 32, 50), ("resnet50", 32, 50), 1.1493),
    (("googlenet", 16, 60), ("bert", 8, 40), 1.0801),
    (("ssd-mobilenetv1", 8, 50), ("resnet50", 8, 50), 1.1041),
    (("lenet", 1, 20), ("vgg16", 32, 80), 1.1202),
    (("lenet", 2, 50), ("lenet", 1, 50), 0.9303),
]


def runner(spec: tuple[str, int, int]) -> CoRunner:
    model, batch, pct = spec
    return CoRunner(model, batch, pct / 100)


@pytest.mark.parametrize(("me", "you", "expected"), REFERENCE)
def test_reference_vectors(
    me: tuple[str, int, int], you: tuple[str, int, int], expected: float
) -> None:
    raw = alpha(GPULET_2080TI, table(), runner(me), runner(you))
    assert raw == pytest.approx(expected, abs=1e-4)
    factor = interference_factor(GPULET_2080TI, table(), runner(me), [runner(you)])
    assert factor == pytest.approx(max(1.0, expected), abs=1e-4)


def test_a_speedup_is_clamped_to_one() -> None:
    me, you = runner(("lenet", 2, 50)), runner(("lenet", 1, 50))
    assert alpha(GPULET_2080TI, table(), me, you) == pytest.approx(0.9303, abs=1e-4)
    assert interference_factor(GPULET_2080TI, table(), me, [you]) == 1.0


def test_several_co_runners_take_the_worst_and_alone_is_one() -> None:
    me = runner(("resnet50", 32, 50))
    partners = [runner(("lenet", 1, 50)), runner(("vgg16", 32, 50))]
    worst = max(alpha(GPULET_2080TI, table(), me, p) or 0 for p in partners)
    assert interference_factor(GPULET_2080TI, table(), me, partners) == worst
    assert interference_factor(GPULET_2080TI, table(), me, []) == 1.0


def test_the_effect_size_over_all_pairs_at_half_shares() -> None:
    """9 models × 6 batches at 50/50: 2,916 ordered pairs, raw α 0.930–1.171, median 1.057."""
    t = table()
    loads = [CoRunner(m, b, 0.5) for m in L2_DRAM for b in BATCHES]
    values = [alpha(GPULET_2080TI, t, a, b) for a in loads for b in loads]
    raw = [v for v in values if v is not None]
    assert len(raw) == 2916
    assert min(raw) == pytest.approx(0.930, abs=5e-4)
    assert max(raw) == pytest.approx(1.171, abs=5e-4)
    assert statistics.median(raw) == pytest.approx(1.057, abs=5e-4)


def test_utilisation_is_interpolated_between_powers_of_two() -> None:
    t = table()
    l2_8, l2_16 = L2_DRAM["resnet50"][0][3], L2_DRAM["resnet50"][0][4]
    dram_8, dram_16 = L2_DRAM["resnet50"][1][3], L2_DRAM["resnet50"][1][4]
    at12 = t.at("resnet50", 12)
    assert at12 is not None
    assert at12[0] == pytest.approx((l2_8 + (l2_16 - l2_8) * 4 / 8) / 100)
    assert at12[1] == pytest.approx((dram_8 + (dram_16 - dram_8) * 4 / 8) / 100)
    # rows at other batches are ignored; beyond the largest row, the largest row's value
    odd = UtilisationTable({"m": {1: (10.0, 20.0), 2: (20.0, 40.0), 3: (99.0, 99.0)}})
    assert odd.at("m", 3) == pytest.approx((0.2, 0.4))
    assert t.at("resnet50", 64) == t.at("resnet50", 32)


def test_missing_data_gives_no_prediction() -> None:
    me = runner(("resnet50", 8, 50))
    assert alpha(GPULET_2080TI, table(), me, runner(("yolo", 8, 50))) is None
    assert interference_factor(GPULET_2080TI, table(), me, [runner(("yolo", 8, 50))]) is None
    sparse = UtilisationTable({"m": {1: (10.0, 20.0), 4: (20.0, 40.0)}})
    assert sparse.at("m", 3) is None  # the 2 row is missing


def test_only_the_gpu_part_is_inflated() -> None:
    assert inflate(10.0, 3.0, 1.2) == pytest.approx(15.0)
    with pytest.raises(InputError, match="at least 1"):
        inflate(10.0, 3.0, 0.9)
    # the whole batch's factor: the GPU share slowed, the host part not
    me, you = runner(("resnet50", 32, 50)), runner(("vgg16", 32, 50))
    rows = {m: dict(zip(BATCHES, zip(*L2_DRAM[m], strict=True), strict=True)) for m in L2_DRAM}
    gpu = interference_factor(GPULET_2080TI, table(), me, [you])
    assert gpu is not None and gpu > 1.1
    assert batch_factor(GPULET_2080TI, table(), me, [you]) == pytest.approx(gpu)
    partly = UtilisationTable(rows, {"resnet50": 0.25})
    assert batch_factor(GPULET_2080TI, partly, me, [you]) == pytest.approx(1 + 0.25 * (gpu - 1))
    with pytest.raises(InputError, match="GPU share of 'm'"):
        UtilisationTable({}, {"m": 0.0})


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ({"m": {1: (120.0, 10.0)}}, "L2 120"),
        ({"m": {1: (10.0, float("nan"))}}, "DRAM nan"),
        ({"m": {0: (10.0, 10.0)}}, "batch 0"),
    ],
)
def test_bad_utilisation_is_refused(
    rows: dict[str, dict[int, tuple[float, float]]], match: str
) -> None:
    with pytest.raises(InputError, match=match):
        UtilisationTable(rows)


def test_bad_co_runner_is_refused() -> None:
    with pytest.raises(InputError, match="share"):
        CoRunner("m", 1, 1.5)
    with pytest.raises(InputError, match="batch"):
        CoRunner("m", 0, 0.5)
