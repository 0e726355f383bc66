"""Which MIG geometry each node's GPUs should have, as NVIDIA's MIG manager applies it (pure).

The optimizer packs the MIG slices it chose onto GPUs and gives each GPU's geometry as mig-parted
counts (``layout.<type>.migConfig`` in its JSON, docs/gpu-partitions.md). The GPU operator's MIG
manager re-partitions a node when the node's ``nvidia.com/mig.config`` label names a
configuration of its mig-parted ConfigMap, and reports progress in ``nvidia.com/mig.config.state``.
Re-partitioning needs the node's GPUs free: the MIG manager evicts the GPU pods first. So this is
**opt-in twice** (docs/gpu-partitions.md, "Applying the geometry"): the controller applies a plan
only with ``INFERNO_MIG_APPLY`` on, and only to nodes an administrator labelled
``inferno.ai/mig-managed=true``. This module decides; :mod:`inferno.control.mig` applies.

The plan, per accelerator type with MIG slices:

- mixed strategy only (the single strategy gives a node one geometry for all its GPUs);
- its nodes: those labelled ``inferno.ai/mig-managed=true`` that carry every label of the type's
  ``nodeSelector``, each with ``nvidia.com/gpu.count`` GPUs (the GPU feature discovery's label);
- the devices wanted: each packed GPU's geometry, then one MIG-disabled device per whole GPU the
  type's servers hold, in a canonical order, cut into one configuration per node;
- a configuration is named ``inferno-`` + a hash of its devices, so a node already at the
  geometry it needs is recognised by its label and kept: nodes whose label already names a
  wanted configuration keep it first, the others are assigned in name order;
- nodes not needed keep whatever they have (no re-partition for nothing);
- at most ``max_changes`` nodes are relabelled per cycle, and none while any managed node's
  state is ``pending`` or ``rebooting`` (a re-partition in progress): the rest wait, listed.

The mig-parted document keeps ``all-disabled``, every configuration a managed node's label names
now, and the wanted ones; older ``inferno-*`` configurations no node uses are dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GPU_COUNT",
    "MIG_CONFIG",
    "MIG_CONFIG_STATE",
    "MIG_MANAGED",
    "MIG_MANAGED_SELECTOR",
    "MigNode",
    "MigPlan",
    "NodeChange",
    "config_document",
    "plan_mig_nodes",
]

MIG_CONFIG = "nvidia.com/mig.config"
MIG_CONFIG_STATE = "nvidia.com/mig.config.state"
GPU_COUNT = "nvidia.com/gpu.count"
#: the administrator's opt-in, per node
MIG_MANAGED = "inferno.ai/mig-managed"
MIG_MANAGED_SELECTOR = f"{MIG_MANAGED}=true"
#: a configuration every mig-parted file has: MIG off on every device
ALL_DISABLED = "all-disabled"
PREFIX = "inferno-"
#: states of the MIG manager during a re-partition
IN_PROGRESS = frozenset({"pending", "rebooting"})

Device = tuple[tuple[str, int], ...]  # a GPU's MIG instances (profile, count); () = MIG off


@dataclass(frozen=True)
class MigNode:
    """A node as the plan needs it (from the API's JSON: :meth:`of`)."""

    name: str
    labels: Mapping[str, str]
    gpus: int | None  # nvidia.com/gpu.count; None when absent or unreadable

    @property
    def config(self) -> str | None:
        return self.labels.get(MIG_CONFIG)

    @property
    def state(self) -> str | None:
        return self.labels.get(MIG_CONFIG_STATE)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> MigNode:
        meta = obj.get("metadata") or {}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        try:
            gpus: int | None = int(labels[GPU_COUNT])
        except (KeyError, ValueError):
            gpus = None
        return cls(str(meta.get("name", "")), labels, gpus if gpus and gpus > 0 else None)


@dataclass(frozen=True)
class NodeChange:
    """Relabel ``node`` from ``old`` to the configuration ``new`` (for ``accelerator``)."""

    node: str
    accelerator: str
    old: str | None
    new: str

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "accelerator": self.accelerator,
            "from": self.old,
            "to": self.new,
        }


@dataclass(frozen=True)
class MigPlan:
    """``configs``: the mig-parted configurations wanted (name → devices, in node order);
    ``changes``: the relabels to make now; ``waiting``: those held back (budget, a re-partition
    in progress); ``kept``: nodes already at their configuration; ``notes``: what was not done
    and why."""

    configs: dict[str, tuple[Device, ...]] = field(default_factory=dict)
    changes: tuple[NodeChange, ...] = ()
    waiting: tuple[NodeChange, ...] = ()
    kept: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "configs": {n: [dict(d) for d in devs] for n, devs in self.configs.items()},
            "changes": [c.to_json() for c in self.changes],
            "waiting": [c.to_json() for c in self.waiting],
            "kept": list(self.kept),
            "notes": list(self.notes),
        }


def _device(counts: Mapping[str, Any]) -> Device:
    return tuple(sorted((str(p), int(n)) for p, n in counts.items() if int(n) > 0))


def config_name(devices: Sequence[Device]) -> str:
    """``inferno-`` + 10 hex digits of the devices' hash: the same geometry, the same name."""
    text = json.dumps([list(d) for d in devices], separators=(",", ":"))
    return PREFIX + hashlib.sha256(text.encode()).hexdigest()[:10]


def _matches(node: MigNode, selector: Mapping[str, Any]) -> bool:
    return all(node.labels.get(str(k)) == str(v) for k, v in selector.items())


def plan_mig_nodes(
    layout: Mapping[str, Any], nodes: Sequence[MigNode], *, max_changes: int = 1
) -> MigPlan:
    """The plan for the optimizer's ``layout`` (its JSON's ``layout`` section) on ``nodes`` (the
    managed ones: labelled ``inferno.ai/mig-managed=true``)."""
    configs: dict[str, tuple[Device, ...]] = {}
    wanted: list[NodeChange] = []
    kept: list[str] = []
    notes: list[str] = []
    taken: set[str] = set()
    for acc, entry in sorted(layout.items()):
        geometries = [g for g in entry.get("migConfig") or () if g]
        if not geometries:
            continue
        if entry.get("migStrategy", "mixed") != "mixed":
            notes.append(
                f"{acc}: the single MIG strategy gives every GPU of a node one geometry; "
                "Inferno applies mixed-strategy geometries only (a recommendation here)"
            )
            continue
        selector = entry.get("nodeSelector") or {}
        if not selector:
            notes.append(f"{acc}: no nodeSelector in the accelerator data: its nodes are unknown")
            continue
        mine = sorted(
            (n for n in nodes if n.name not in taken and _matches(n, selector)),
            key=lambda n: n.name,
        )
        unreadable = [n.name for n in mine if n.gpus is None]
        if unreadable:
            notes.append(
                f"{acc}: node(s) {', '.join(unreadable)} have no {GPU_COUNT} label: left alone"
            )
        mine = [n for n in mine if n.gpus is not None]
        if not mine:
            notes.append(
                f"{acc}: no node labelled {MIG_MANAGED_SELECTOR} matches {dict(selector)}: "
                f"its {len(geometries)} GPU geometries are a recommendation only"
            )
            continue
        devices = sorted(_device(g) for g in geometries)
        devices += [()] * int(entry.get("whole", 0))  # whole GPUs: MIG off
        sizes = {n.gpus for n in mine}
        if len(sizes) > 1:
            notes.append(
                f"{acc}: its managed nodes have different GPU counts "
                f"{sorted(s or 0 for s in sizes)}: geometries are assigned in node order, "
                "without keeping current ones"
            )
        assigned = _assign(mine, devices, uniform=len(sizes) == 1)
        used = sum(len(d) for _, d in assigned)
        if used < len(devices):
            notes.append(
                f"{acc}: {len(devices)} GPUs wanted, {used} on the managed nodes "
                f"({', '.join(n.name for n in mine)}): the rest stay a recommendation"
            )
        for node, devs in assigned:
            taken.add(node.name)
            name = config_name(devs)
            configs[name] = devs
            if node.config == name:
                kept.append(node.name)
            else:
                wanted.append(NodeChange(node.name, acc, node.config, name))
    busy = sorted(n.name for n in nodes if n.state in IN_PROGRESS)
    if busy and wanted:
        notes.append(
            f"a re-partition is in progress on {', '.join(busy)}: no node is relabelled until "
            "it ends"
        )
        return MigPlan(configs, (), tuple(wanted), tuple(kept), tuple(notes))
    now, later = wanted[: max(max_changes, 0)], wanted[max(max_changes, 0) :]
    if later:
        notes.append(
            f"{len(later)} node(s) wait for a later cycle (at most {max_changes} re-partitioned "
            "per cycle: each drains the node's GPU pods)"
        )
    return MigPlan(configs, tuple(now), tuple(later), tuple(kept), tuple(notes))


def _assign(
    nodes: Sequence[MigNode], devices: Sequence[Device], *, uniform: bool
) -> list[tuple[MigNode, tuple[Device, ...]]]:
    """Cut ``devices`` into per-node configurations; with equal node sizes, nodes already at one
    of the configurations keep it."""
    if not uniform:
        out: list[tuple[MigNode, tuple[Device, ...]]] = []
        rest: tuple[Device, ...] = tuple(devices)
        for node in nodes:
            if not rest:
                break
            size = node.gpus or 0
            out.append((node, _pad(rest[:size], size)))
            rest = rest[size:]
        return out
    size = nodes[0].gpus or 0
    chunks = [_pad(devices[i : i + size], size) for i in range(0, len(devices), size)]
    chunks = chunks[: len(nodes)]
    names = [config_name(c) for c in chunks]
    out = []
    free = list(nodes)
    left: list[tuple[Device, ...]] = []
    for chunk, name in zip(chunks, names, strict=True):
        same = next((n for n in free if n.config == name), None)
        if same is None:
            left.append(chunk)
            continue
        free.remove(same)
        out.append((same, chunk))
    out += list(zip(free, left, strict=False))
    return sorted(out, key=lambda x: x[0].name)


def _pad(chunk: Sequence[Device], size: int) -> tuple[Device, ...]:
    return tuple(chunk) + ((),) * (size - len(chunk))


def config_document(
    plan: MigPlan, nodes: Sequence[MigNode], existing: str | None
) -> tuple[str, list[str]]:
    """The mig-parted file (JSON, which YAML readers take) for ``plan``, keeping the
    configurations of ``existing`` that a node's label still names; and notes on what of
    ``existing`` could not be read."""
    notes: list[str] = []
    old: dict[str, Any] = {}
    if existing:
        try:
            doc = json.loads(existing)
            old = dict(doc.get("mig-configs") or {})
        except (ValueError, AttributeError, TypeError):
            notes.append(
                "the mig-parted ConfigMap's config.yaml is not one Inferno wrote (not JSON): "
                "it is replaced; its configurations named by node labels are lost"
            )
    in_use = {n.config for n in nodes if n.config}
    out: dict[str, Any] = {ALL_DISABLED: [{"devices": "all", "mig-enabled": False}]}
    for name in sorted(old):
        if name in in_use and name not in plan.configs:
            out[name] = old[name]
    for name, devices in sorted(plan.configs.items()):
        out[name] = _entries(devices)
    text = json.dumps({"version": "v1", "mig-configs": out}, indent=2, sort_keys=False)
    return text + "\n", notes


def _entries(devices: Sequence[Device]) -> list[dict[str, Any]]:
    """mig-parted device entries: consecutive devices of one geometry share an entry."""
    out: list[dict[str, Any]] = []
    for i, dev in enumerate(devices):
        if out and out[-1]["_dev"] == dev:
            out[-1]["devices"].append(i)
            continue
        entry: dict[str, Any] = {"_dev": dev, "devices": [i], "mig-enabled": bool(dev)}
        if dev:
            entry["mig-devices"] = dict(dev)
        out.append(entry)
    for entry in out:
        del entry["_dev"]
    return out
