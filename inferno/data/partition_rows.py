"""GPU partitions in the system files (*new*; docs/gpu-partitions.md).

An accelerator row may list the partitions of its GPU::

    {"name": "A100-80GB", "cost": 40, "partitions": {"mig": ["1g.10gb", "3g.40gb"], "mps": [2, 4]}}

(``"mig": "all"`` for every MIG profile of the product; ``"product"`` when the accelerator's name is
not the catalogue's). Each becomes an accelerator of its own, ``A100-80GB:3g.40gb`` or
``A100-80GB:mps-4``, drawing on the same GPUs (its ``type``) at the share of one GPU it takes: g/7
of the compute slices for a MIG slice, 1/N for an MPS share; its cost is that share of the GPU's.
Files without ``partitions`` mean whole GPUs only, as before.

A model runs on a partition with the profile measured there (a model row whose ``acc`` is the
partition) or, when none was measured, with a profile **derived** from its whole-GPU profile by an
Amdahl-type law: every time parameter (α, β, and γ, δ where the kind has them) × s + (1 − s)/f,
with f the share and s the model's serial fraction: fitted from the partitions it was measured on
(at batch 1 and at the largest common batch), else the row's ``serialFraction``. A model with
neither is not derived (a note says so). Derived profiles are flagged in every output. A row's
``memSize`` (GB, the model's weights and working memory) keeps it off partitions with less memory.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import InputError
from ..model.profiles import Profile
from ..partitions.catalogue import MAX_MPS_REPLICAS, Partition, mps_pool, product
from ..partitions.interference import GPULET_2080TI, GPULET_3080
from ..partitions.labels import GPU, GPU_SHARED, MIG_PREFIX, MIG_STRATEGY, PRODUCT, SHARING
from ..system import Accelerator, ModelProfile
from ._json import Node

__all__ = ["derive_profiles", "partition_accelerators", "scaled", "utilization"]

#: the time parameters of the profile kinds, scaled together by the law
_TIME_FIELDS = ("alpha", "beta", "gamma", "delta")
#: a fit from measured partitions must predict each of them within this (relative) to be used
FIT_TOLERANCE = 0.10


def partition_accelerators(row: Node, base: Accelerator) -> list[Accelerator]:
    """The partitions an accelerator row lists (none without ``partitions``)."""
    node = row.obj("partitions")
    if node is None:
        return []
    prod_name = node.string("product", base.name)
    try:
        prod = product(prod_name)
    except InputError as err:
        where = node.member("product") if node.has("product") else row.member("name")
        raise where.data_error(str(err)) from None
    if base.multiplicity != 1:
        raise row.member("multiplicity").data_error(
            "an accelerator with partitions is one GPU (multiplicity 1)"
        )
    parts: list[tuple[Node, Partition]] = []
    mig = node.find("mig")
    if mig is not None:
        if isinstance(mig.value, str):
            if mig.value.strip().casefold() != "all":
                raise mig.error('expected a list of MIG profile names or "all"')
            parts += [(mig, Partition.of_mig(p)) for p in prod.profiles()]
        else:
            for item in node.array("mig"):
                try:
                    parts.append((item, Partition.of_mig(prod.profile(item.as_string()))))
                except InputError as err:
                    raise item.data_error(str(err)) from None
    if node.has("mps"):
        for item in node.array("mps"):
            n = item.as_integer(minimum=2, maximum=MAX_MPS_REPLICAS)
            try:
                parts.append((item, Partition.of_mps(mps_pool(prod_name, n))))
            except InputError as err:
                raise item.data_error(str(err)) from None
    strategy = node.string("strategy", "mixed")
    if strategy not in ("mixed", "single"):
        raise node.member("strategy").error(
            f"unknown MIG strategy {strategy!r}; expected mixed or single (the device plugin's)"
        )
    mps_resource = node.string("mpsResource", GPU)
    if mps_resource not in (GPU, GPU_SHARED):
        raise node.member("mpsResource").error(f"expected {GPU} or {GPU_SHARED}")
    base_selector = dict(base.node_selector) or {PRODUCT: base.type}
    constants = _constants(node)
    out: list[Accelerator] = []
    seen: set[str] = set()
    for item, part in parts:
        if part.profile in seen:
            raise item.data_error(f"partition {part.profile!r} listed twice")
        seen.add(part.profile)
        share = float(part.fraction)
        out.append(
            dataclasses.replace(
                base,
                name=f"{base.name}:{part.profile}",
                cost=base.cost * share,
                mem_size=part.memory_gb,
                mem_bw=None if base.mem_bw is None else base.mem_bw * share,
                product=prod_name,
                partition=part.profile,
                fraction=share,
                **_placement(part, strategy, mps_resource, base_selector),
                interference=constants if part.mode == "mps" else (),
            )
        )
    return out


def _placement(
    part: Partition, strategy: str, mps_resource: str, selector: dict[str, str]
) -> dict[str, Any]:
    """The resource a replica asks for and the node labels it needs (the NVIDIA device plugin's
    and GPU feature discovery's): MIG mixed — ``nvidia.com/mig-<profile>`` on nodes labelled
    ``nvidia.com/mig.strategy=mixed``; MIG single — ``nvidia.com/gpu`` on nodes whose product
    label is ``<product>-MIG-<profile>``; MPS — the (shared) GPU resource on nodes with
    ``nvidia.com/gpu.sharing-strategy=mps``, whose product label gains ``-SHARED``."""
    product_label = selector.get(PRODUCT, "")
    if part.mode == "mps":
        labels = {**selector, SHARING: "mps"}
        if product_label:
            labels[PRODUCT] = f"{product_label}-SHARED"
        return {
            "resource": "" if mps_resource == GPU else mps_resource,
            "node_selector": _pairs(labels),
        }
    if strategy == "single":
        labels = {**selector, MIG_STRATEGY: "single"}
        if product_label:
            labels[PRODUCT] = f"{product_label}-MIG-{part.profile}"
        return {"resource": "", "node_selector": _pairs(labels)}
    return {
        "resource": f"{MIG_PREFIX}{part.profile}",
        "node_selector": _pairs({**selector, MIG_STRATEGY: "mixed"}),
    }


#: GPU-let's fitted constants, by name (the shipped examples; docs/gpu-partitions.md)
_NAMED_CONSTANTS = {"gpulet-2080ti": GPULET_2080TI, "gpulet-3080": GPULET_3080}


def _constants(node: Node) -> tuple[float, ...]:
    """``interference``: a named constant set or the five numbers c0..c4 (none: unknown)."""
    found = node.find("interference")
    if found is None:
        return ()
    if isinstance(found.value, str):
        named = _NAMED_CONSTANTS.get(found.value.strip().casefold())
        if named is None:
            raise found.error(
                f"unknown interference constants {found.value!r}; expected one of "
                f"{', '.join(_NAMED_CONSTANTS)} or five numbers"
            )
        return dataclasses.astuple(named)
    items = node.array("interference")
    if len(items) != 5:
        raise found.error("expected five interference constants (c0 … c4 of GPU-let's model)")
    return tuple(item.as_number(minimum=-100, maximum=100) for item in items)


def utilization(row: Node) -> tuple[tuple[int, float, float], ...]:
    """A model row's ``utilization``: ``{"1": [L2 %, DRAM %], "2": [...], ...}`` at the whole
    GPU (Nsight Compute's L2 and memory throughput), for the MPS interference model."""
    node = row.obj("utilization")
    if node is None:
        return ()
    out = []
    for key, value in node.as_items():
        if not key.isdigit() or int(key) < 1:
            raise value.error(f"a batch size (an integer ≥ 1) as the key, not {key!r}")
        pair = [item.as_number(minimum=0, maximum=100) for item in value.as_array()]
        if len(pair) != 2:
            raise value.error("expected [L2 %, DRAM %]")
        out.append((int(key), pair[0], pair[1]))
    return tuple(sorted(out))


def _pairs(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def scaled(profile: Profile, factor: float) -> Profile:
    """``profile`` with every time parameter × ``factor``."""
    changes = {f: getattr(profile, f) * factor for f in _TIME_FIELDS if hasattr(profile, f)}
    return dataclasses.replace(profile, **changes)


def _tau(profile: Profile, b: int) -> float:
    """The batch-size-dependent part of τ(b): α + β·b (the kinds' common core)."""
    return float(profile.alpha + profile.beta * b)


def _ratio(measured: Profile, whole: Profile) -> float:
    """τ on the partition / τ on the whole GPU, at batch 1 and the largest common batch."""
    top = max(1, min(measured.max_batch_size, whole.max_batch_size))
    return 0.5 * sum(_tau(measured, b) / _tau(whole, b) for b in (1, top))


def _serial_fraction(ratio: float, share: float) -> float:
    """s of τ_f / τ_1 = s + (1 − s)/f, clamped to [0, 1]."""
    return min(1.0, max(0.0, (1.0 / share - ratio) / (1.0 / share - 1.0)))


def _law(s: float, share: float) -> float:
    return s + (1.0 - s) / share


def derive_profiles(
    profiles: Iterable[ModelProfile], accelerators: Mapping[str, Accelerator]
) -> tuple[tuple[ModelProfile, ...], tuple[str, ...]]:
    """The derived partition profiles of the models measured on whole GPUs, and notes on those
    that could not be derived (no serial fraction, a fit that does not hold, too little memory)."""
    profiles = list(profiles)
    have = {(p.model, p.accelerator) for p in profiles}
    parts_of: dict[str, list[Accelerator]] = {}
    for acc in accelerators.values():
        if acc.partition:
            parts_of.setdefault(acc.name.rpartition(":")[0], []).append(acc)
    derived: list[ModelProfile] = []
    notes: list[str] = []
    for whole in profiles:
        parts = parts_of.get(whole.accelerator)
        if not parts or whole.acc_count != 1:
            continue
        measured = [
            (accelerators[p.accelerator].fraction, _ratio(p.profile, whole.profile))
            for p in profiles
            if p.model == whole.model and p.accelerator in {a.name for a in parts}
        ]
        s, why = _fit(whole, measured)
        for acc in sorted(parts, key=lambda a: a.name):
            if (whole.model, acc.name) in have:
                continue
            if (whole.mem_gb or 0.0) > (acc.mem_size if acc.mem_size is not None else math.inf):
                notes.append(
                    f"model {whole.model!r} needs {whole.mem_gb:g} GB: not on {acc.name} "
                    f"({acc.mem_size:g} GB)"
                )
                continue
            if s is None:
                notes.append(f"model {whole.model!r}: no profile on {acc.name} ({why})")
                continue
            derived.append(
                ModelProfile(
                    whole.model,
                    acc.name,
                    1,
                    scaled(whole.profile, _law(s, acc.fraction)),
                    derived=True,
                    serial_fraction=s,
                    mem_gb=whole.mem_gb,
                    utilization=whole.utilization,
                )
            )
    return tuple(derived), tuple(notes)


def _fit(whole: ModelProfile, measured: list[tuple[float, float]]) -> tuple[float | None, str]:
    """The serial fraction: fitted from measured (share, ratio) points, else the row's own."""
    if not measured:
        if whole.serial_fraction is None:
            return None, "not measured there, and no serialFraction to derive it"
        return whole.serial_fraction, ""
    fits = [_serial_fraction(r, f) for f, r in measured]
    s = sum(fits) / len(fits)
    if len(measured) >= 2:
        # each measured partition predicted from the others (leave one out)
        for i, (f, r) in enumerate(measured):
            rest = fits[:i] + fits[i + 1 :]
            predicted = _law(sum(rest) / len(rest), f)
            if not math.isclose(predicted, r, rel_tol=FIT_TOLERANCE):
                return None, (
                    f"the scaling law fitted on its other partitions predicts {predicted:.3g}× "
                    f"the whole-GPU time on share {f:.3g}, measured {r:.3g}× (more than "
                    f"{FIT_TOLERANCE:.0%} off)"
                )
    return s, ""
