"""GPU partitions in the system files: accelerators from an accelerator row's ``partitions``, and
profiles on them measured or derived by the scaling law (inferno/data/partition_rows.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from inferno.data import load_system
from inferno.errors import InputError
from inferno.model.profiles import BatchProfile
from inferno.system import System

ROOT = Path(__file__).resolve().parents[2]


def files(partitions: Any = None, **model_keys: Any) -> dict[str, Any]:
    acc: dict[str, Any] = {"name": "A100-80GB", "cost": 42.0, "memSize": 80}
    if partitions is not None:
        acc["partitions"] = partitions
    model = {"name": "m", "acc": "A100-80GB", "kind": "batch", "alpha": 4.0, "beta": 0.5}
    model |= {"maxBatchSize": 16, **model_keys}
    return {
        "accelerator-data.json": {"accelerators": [acc]},
        "model-data.json": {"models": [model]},
        "serviceclass-data.json": {
            "serviceClasses": [{"name": "P", "model": "m", "slo-latency": 40}]
        },
        "server-data.json": {
            "servers": [{"name": "s", "class": "P", "model": "m", "load": {"arrivalRate": 600}}]
        },
    }


def load(tmp_path: Path, docs: dict[str, Any]) -> System:
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    return load_system(tmp_path)


def test_partitions_become_accelerators_at_their_share(tmp_path: Path) -> None:
    system = load(tmp_path, files({"mig": ["1g.10gb", "3g.40gb"], "mps": [4]}))
    accs = system.accelerators
    assert set(accs) == {"A100-80GB", "A100-80GB:1g.10gb", "A100-80GB:3g.40gb", "A100-80GB:mps-4"}
    three = accs["A100-80GB:3g.40gb"]
    assert (three.type, three.product, three.partition) == ("A100-80GB", "A100-80GB", "3g.40gb")
    assert three.fraction == pytest.approx(3 / 7)
    assert three.cost == pytest.approx(42.0 * 3 / 7)
    assert three.mem_size == 40
    assert accs["A100-80GB:mps-4"].fraction == 0.25
    assert accs["A100-80GB"].partition == "" and accs["A100-80GB"].fraction == 1.0


def test_all_mig_profiles_of_the_product(tmp_path: Path) -> None:
    system = load(tmp_path, files({"mig": "all"}))
    names = {a.partition for a in system.accelerators.values() if a.partition}
    assert {"1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"} <= names


def test_files_without_partitions_mean_whole_gpus(tmp_path: Path) -> None:
    system = load(tmp_path, files())
    assert [a.partition for a in system.accelerators.values()] == [""]
    assert not any(p.derived for p in system.profiles) and system.notes == ()
    large = load_system(ROOT / "samples" / "large")
    assert not any(a.partition for a in large.accelerators.values())


@pytest.mark.parametrize(
    ("partitions", "words"),
    [
        ({"mig": ["1g.10gb", "5g.50gb"]}, ["$.accelerators[0].partitions.mig[1]", "5g.50gb"]),
        ({"product": "Z80", "mig": "all"}, ["$.accelerators[0].partitions.product", "Z80"]),
        ({"mig": "some"}, ["partitions.mig", '"all"']),
        ({"mps": [1]}, ["partitions.mps[0]", ">= 2"]),
        ({"mig": ["1g.10gb", "1g.10gb"]}, ["mig[1]", "listed twice"]),
    ],
)
def test_bad_partitions_name_the_field(tmp_path: Path, partitions: Any, words: list[str]) -> None:
    with pytest.raises(InputError) as err:
        load(tmp_path, files(partitions))
    text = str(err.value)
    for w in words:
        assert w in text, text


def test_profiles_derived_by_the_scaling_law(tmp_path: Path) -> None:
    system = load(tmp_path, files({"mig": ["1g.10gb", "3g.40gb"]}, serialFraction=0.4))
    derived = {p.accelerator: p for p in system.profiles if p.derived}
    assert set(derived) == {"A100-80GB:1g.10gb", "A100-80GB:3g.40gb"}
    one = derived["A100-80GB:1g.10gb"].profile
    assert isinstance(one, BatchProfile)
    k = 0.4 + 0.6 * 7  # s + (1 − s)/f at f = 1/7
    assert (one.alpha, one.beta) == pytest.approx((4.0 * k, 0.5 * k))
    assert one.max_batch_size == 16


def test_without_a_serial_fraction_or_measurement_nothing_is_derived(tmp_path: Path) -> None:
    system = load(tmp_path, files({"mig": ["1g.10gb"]}))
    assert not any(p.derived for p in system.profiles)
    assert len(system.notes) == 1
    assert "A100-80GB:1g.10gb" in system.notes[0] and "serialFraction" in system.notes[0]


def measured_row(acc: str, k: float) -> dict[str, Any]:
    row = {"name": "m", "acc": acc, "kind": "batch", "alpha": 4.0 * k, "beta": 0.5 * k}
    return row | {"maxBatchSize": 16}


def test_the_serial_fraction_is_fitted_from_measured_partitions(tmp_path: Path) -> None:
    docs = files({"mig": ["1g.10gb", "2g.20gb", "3g.40gb"]})
    s = 0.3
    docs["model-data.json"]["models"] += [
        measured_row("A100-80GB:1g.10gb", s + (1 - s) * 7),
        measured_row("A100-80GB:2g.20gb", s + (1 - s) * 3.5),
    ]
    system = load(tmp_path, docs)
    derived = [p for p in system.profiles if p.derived]
    assert [p.accelerator for p in derived] == ["A100-80GB:3g.40gb"]
    assert derived[0].serial_fraction == pytest.approx(s)
    measured = [p for p in system.profiles if p.accelerator.endswith("1g.10gb")]
    assert len(measured) == 1 and not measured[0].derived


def test_a_fit_the_measurements_contradict_is_not_used(tmp_path: Path) -> None:
    docs = files({"mig": ["1g.10gb", "2g.20gb", "3g.40gb"]}, serialFraction=0.5)
    docs["model-data.json"]["models"] += [
        measured_row("A100-80GB:1g.10gb", 0.9 + 0.1 * 7),  # s = 0.9
        measured_row("A100-80GB:2g.20gb", 0.1 + 0.9 * 3.5),  # s = 0.1
    ]
    system = load(tmp_path, docs)
    assert not any(p.derived for p in system.profiles)
    assert any("more than 10% off" in n for n in system.notes), system.notes


def test_memory_keeps_a_model_off_small_partitions(tmp_path: Path) -> None:
    system = load(tmp_path, files({"mig": ["1g.10gb", "3g.40gb"]}, serialFraction=0.5, memSize=12))
    derived = {p.accelerator for p in system.profiles if p.derived}
    assert derived == {"A100-80GB:3g.40gb"}
    assert any("needs 12 GB" in n and "1g.10gb" in n for n in system.notes)


def test_the_gpu_share_of_a_row_is_read_and_bounded(tmp_path: Path) -> None:
    system = load(tmp_path, files({"mps": [2]}, gpuShare=0.4))
    assert {p.gpu_share for p in system.profiles} == {0.4}
    assert {p.gpu_share for p in load(tmp_path, files({"mps": [2]})).profiles} == {1.0}
    for bad in (0, 1.5, "half"):
        with pytest.raises(InputError, match="gpuShare"):
            load(tmp_path, files({"mps": [2]}, gpuShare=bad))


def test_a_partition_name_clash_is_an_error(tmp_path: Path) -> None:
    docs = files({"mig": ["1g.10gb"]})
    docs["accelerator-data.json"]["accelerators"].append(
        copy.deepcopy({"name": "A100-80GB:1g.10gb", "cost": 1})
    )
    with pytest.raises(InputError, match=r"duplicate accelerator|another accelerator"):
        load(tmp_path, docs)
