"""Packing MIG slices onto physical GPUs (pure).

The solver chooses slices per server (``A100-80GB:3g.40gb`` × 2, ...); the slices of one product
must then be laid out on whole GPUs under the MIG placement rules
(:mod:`inferno.partitions.geometry`). Two methods:

- ``ilp``: an exact cutting-stock model over the per-GPU configurations (at most 77 over the
  standard kinds): integer x_j = GPUs laid out as configuration j, Σ_j a_kj x_j = d_k for every
  kind k (each chosen slice exactly once), minimise Σ_j x_j. When the GPUs' current
  configurations are given, a GPU kept in its configuration saves a re-geometry (which drains the
  GPU): minimise Σ x_j + w·Σ_j (x_j − y_j), y_j ≤ min(x_j, current_j), with w below 1/(GPUs) so the
  GPU count always comes first. Solved by HiGHS (:func:`scipy.optimize.milp`), imported lazily.
- ``ffd``: first-fit decreasing: slices by memory then compute slices, largest first, each onto the
  first open GPU whose configuration stays feasible (an exact lookup in the configuration table,
  so no start-slot heuristic can miss a fit), else onto a new GPU.

``auto`` runs FFD, keeps it when it reaches the lower bound max(⌈Σg/7⌉, ⌈Σm/8⌉) (then it is
optimal), else solves the ILP within a time limit and falls back to FFD if HiGHS finds nothing.
Every GPU's layout comes with explicit start slots and its stranded (unused) slices.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import InputError
from ..partitions.catalogue import COMPUTE_SLICES, KINDS, MEMORY_SLICES, product
from ..partitions.geometry import Configuration, feasible_configurations

__all__ = ["GpuLayout", "MigPacking", "PlacedSlice", "SliceRequest", "pack_mig"]

logger = logging.getLogger(__name__)

Method = Literal["auto", "ilp", "ffd"]
_Key = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SliceRequest:
    """One slice to place: its MIG profile name on the product and who uses it."""

    profile: str
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class PlacedSlice:
    profile: str
    start: int  # first memory slice
    owner: str | None


@dataclass(frozen=True, slots=True)
class GpuLayout:
    """One physical GPU: its instances with start slots and what is left unused."""

    slices: tuple[PlacedSlice, ...]
    free_compute: int  # compute slices no instance uses
    free_memory: tuple[int, ...]  # memory slices no instance covers
    kept: bool = False  # laid out as one of the GPUs' current configurations

    def counts(self) -> dict[str, int]:
        """Profile name → instances: the per-GPU part of a mig-parted configuration."""
        return dict(Counter(s.profile for s in self.slices))


@dataclass(frozen=True, slots=True)
class MigPacking:
    product: str
    gpus: tuple[GpuLayout, ...]
    method: Literal["ilp", "ffd"]
    optimal: bool  # proven minimal GPU count
    lower_bound: int
    message: str = ""

    @property
    def gpus_used(self) -> int:
        return len(self.gpus)

    @property
    def stranded_compute(self) -> int:
        return sum(g.free_compute for g in self.gpus)

    @property
    def stranded_memory(self) -> int:
        return sum(len(g.free_memory) for g in self.gpus)

    @property
    def kept(self) -> int:
        return sum(g.kept for g in self.gpus)


def _kind_demand(
    prod_name: str, requests: Mapping[str, int] | Iterable[SliceRequest]
) -> tuple[dict[str, list[str | None]], dict[str, str]]:
    """kind → owners (one per slice), and kind → profile name."""
    prod = product(prod_name)
    owners: dict[str, list[str | None]] = {}
    names: dict[str, str] = {}
    if isinstance(requests, Mapping):
        items: list[SliceRequest] = []
        for name, n in requests.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise InputError(
                    f"the count of {prod_name}:{name} must be an integer ≥ 0, not {n!r}"
                )
            items.extend([SliceRequest(name)] * n)
    else:
        items = list(requests)
    for r in items:
        prof = prod.profile(r.profile)
        owners.setdefault(prof.kind.key, []).append(r.owner)
        names[prof.kind.key] = prof.name
    return owners, names


def _profile_counts(prod_name: str, current: Iterable[Mapping[str, int]]) -> Counter[_Key]:
    prod = product(prod_name)
    out: Counter[_Key] = Counter()
    for gpu in current:
        kinds: Counter[str] = Counter()
        for name, n in gpu.items():
            kinds[prod.profile(name).kind.key] += n
        out[tuple((k, kinds[k]) for k in KINDS if kinds[k])] += 1
    return out


def lower_bound(demand: Mapping[str, int]) -> int:
    compute = sum(KINDS[k].compute * n for k, n in demand.items())
    memory = sum(KINDS[k].memory * n for k, n in demand.items())
    return max(math.ceil(compute / COMPUTE_SLICES), math.ceil(memory / MEMORY_SLICES))


def pack_mig(
    product_name: str,
    requests: Mapping[str, int] | Iterable[SliceRequest],
    *,
    method: Method = "auto",
    current: Sequence[Mapping[str, int]] = (),
    time_limit: float = 5.0,
) -> MigPacking:
    """Lay out the requested slices of one product on as few GPUs as possible.

    ``requests``: profile name → count, or :class:`SliceRequest` items (with owners).
    ``current``: the profile counts of each existing GPU (kept when possible; ILP).
    Unknown profile names are an :class:`InputError` naming the product's profiles.
    """
    owners, names = _kind_demand(product_name, requests)
    demand = {k: len(v) for k, v in owners.items()}
    lb = lower_bound(demand)
    if not demand:
        return MigPacking(product_name, (), "ffd", True, 0, "nothing to place")
    configs = feasible_configurations(demand)
    kept_budget = _profile_counts(product_name, current) if current else Counter()
    chosen: list[tuple[Configuration, bool]] | None = None
    used_method: Literal["ilp", "ffd"] = "ffd"
    optimal = False
    message = ""
    if method in ("auto", "ffd") and not (method == "auto" and kept_budget):
        chosen = [(c, False) for c in _ffd(demand, configs)]
        optimal = len(chosen) == lb
        message = "first-fit decreasing" + (" reached the lower bound" if optimal else "")
    if method == "ilp" or (method == "auto" and not optimal):
        solved = _ilp(demand, configs, kept_budget, time_limit)
        if solved is not None and (chosen is None or len(solved[0]) <= len(chosen)):
            chosen, optimal, message = solved
            used_method = "ilp"
        elif chosen is None:
            logger.info("MIG packing ILP found no solution; falling back to first-fit decreasing")
            chosen = [(c, False) for c in _ffd(demand, configs)]
            optimal = len(chosen) == lb
            message = "the ILP found no solution in time; first-fit decreasing"
    assert chosen is not None
    gpus = _layouts(chosen, owners, names)
    logger.debug(
        "%s: %d slices on %d GPUs (%s)", product_name, sum(demand.values()), len(gpus), used_method
    )
    return MigPacking(product_name, gpus, used_method, optimal, lb, message)


def _ffd(demand: Mapping[str, int], configs: Sequence[Configuration]) -> list[Configuration]:
    table = {c.counts: c for c in configs}
    order = sorted(demand, key=lambda k: (-KINDS[k].memory, -KINDS[k].compute))
    open_gpus: list[Counter[str]] = []
    done: list[Counter[str]] = []
    for k in order:
        for _ in range(demand[k]):
            for i, gpu in enumerate(open_gpus):
                gpu[k] += 1
                if _key(gpu) in table:
                    if _full(gpu, demand, table):
                        done.append(open_gpus.pop(i))
                    break
                gpu[k] -= 1
            else:
                fresh = Counter({k: 1})
                (done if _full(fresh, demand, table) else open_gpus).append(fresh)
    return [table[_key(g)] for g in (*done, *open_gpus)]


def _key(gpu: Counter[str]) -> _Key:
    return tuple((k, gpu[k]) for k in KINDS if gpu[k])


def _full(gpu: Counter[str], demand: Mapping[str, int], table: Mapping[_Key, object]) -> bool:
    for k in demand:
        gpu[k] += 1
        fits = _key(gpu) in table
        gpu[k] -= 1
        if fits:
            return False
    return True


def _ilp(
    demand: Mapping[str, int],
    configs: Sequence[Configuration],
    kept_budget: Mapping[_Key, int],
    time_limit: float,
) -> tuple[list[tuple[Configuration, bool]], bool, str] | None:
    import numpy as np  # the solver's machinery, loaded only when the ILP runs
    from scipy.optimize import Bounds, LinearConstraint, milp

    kinds = list(demand)
    nc = len(configs)
    keepable = [j for j, c in enumerate(configs) if kept_budget.get(c.counts, 0)]
    nk = len(keepable)
    total = sum(demand.values())
    a = np.zeros((len(kinds) + nk, nc + nk))
    for j, c in enumerate(configs):
        for i, k in enumerate(kinds):
            a[i, j] = c.count(k)
    rhs = np.array([demand[k] for k in kinds], dtype=np.float64)
    lo = np.concatenate([rhs, np.full(nk, -np.inf)])
    hi = np.concatenate([rhs, np.zeros(nk)])
    for r, j in enumerate(keepable):  # y_j − x_j ≤ 0
        a[len(kinds) + r, nc + r] = 1
        a[len(kinds) + r, j] = -1
    w = 1 / (total + 1)  # < 1/GPUs: a GPU more always costs more than every re-geometry saved
    cost = np.concatenate([np.full(nc, 1 + w), np.full(nk, -w)])
    ub = np.concatenate(
        [np.full(nc, float(total)), [float(kept_budget[configs[j].counts]) for j in keepable]]
    )
    res = milp(
        cost,
        integrality=np.ones(nc + nk),
        bounds=Bounds(np.zeros(nc + nk), ub),
        constraints=LinearConstraint(a, lo, hi),
        options={"time_limit": time_limit},
    )
    if res.x is None:
        logger.info("MIG packing ILP: %s", res.message)
        return None
    x = np.rint(res.x).astype(int)
    chosen: list[tuple[Configuration, bool]] = []
    for r, j in enumerate(keepable):
        chosen.extend([(configs[j], True)] * int(x[nc + r]))
        x[j] -= x[nc + r]
    for j, c in enumerate(configs):
        chosen.extend([(c, False)] * int(x[j]))
    return chosen, res.status == 0, f"ILP (HiGHS): {res.message}"


def _layouts(
    chosen: Sequence[tuple[Configuration, bool]],
    owners: Mapping[str, list[str | None]],
    names: Mapping[str, str],
) -> tuple[GpuLayout, ...]:
    queues = {k: iter(v) for k, v in owners.items()}
    gpus: list[GpuLayout] = []
    for config, kept in chosen:
        placed = tuple(
            PlacedSlice(names[p.kind], p.start, next(queues[p.kind])) for p in config.placements
        )
        covered = {s for p in config.placements for s in p.slices}
        free_memory = tuple(s for s in range(MEMORY_SLICES) if s not in covered)
        gpus.append(GpuLayout(placed, COMPUTE_SLICES - config.compute, free_memory, kept))
    return tuple(gpus)
