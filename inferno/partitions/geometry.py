"""MIG geometries: which sets of GPU instances one GPU can hold at once (pure).

A *placement* is a kind at a start memory slice; it occupies memory slices [start, start + memory)
and ``compute`` compute slices. A set of placements is valid when every start is one its kind
allows, no two instances share a memory slice (creation fails on overlap), the compute slices sum
to at most 7 and no kind exceeds its instance limit. A *configuration* is the multiset of kinds of
a valid set (what ``nvidia.com/mig.config`` names by counts), with one valid placement of it.

Over the six kinds without media extensions there are 77 feasible non-empty configurations per
GPU, 28 of them maximal (no instance can be added); without the two-memory-slice 1g, 37 and 12
(``tests/partitions/test_geometry.py`` checks these counts).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from ..errors import InputError
from .catalogue import COMPUTE_SLICES, KINDS, MEMORY_SLICES

__all__ = [
    "STANDARD_KINDS",
    "Configuration",
    "Placement",
    "check_placements",
    "feasible_configurations",
    "maximal_configurations",
    "place",
]

logger = logging.getLogger(__name__)

#: the kinds geometry counts and packing consider by default: all but the +me (media) variant
STANDARD_KINDS: tuple[str, ...] = tuple(k for k, v in KINDS.items() if not v.media)


@dataclass(frozen=True, slots=True, order=True)
class Placement:
    """One GPU instance: its kind (key of :data:`~.catalogue.KINDS`) at a start memory slice."""

    start: int
    kind: str

    @property
    def slices(self) -> range:
        return range(self.start, self.start + KINDS[self.kind].memory)


@dataclass(frozen=True, slots=True)
class Configuration:
    """A feasible multiset of kinds on one GPU, with one valid placement of it."""

    counts: tuple[tuple[str, int], ...]  # (kind key, count), in KINDS order, counts > 0
    placements: tuple[Placement, ...]  # sorted by start

    def count(self, kind: str) -> int:
        return dict(self.counts).get(kind, 0)

    @property
    def compute(self) -> int:
        return sum(KINDS[k].compute * n for k, n in self.counts)

    @property
    def memory(self) -> int:
        return sum(KINDS[k].memory * n for k, n in self.counts)

    @property
    def size(self) -> int:
        return sum(n for _, n in self.counts)


def _key(kinds: Iterable[str]) -> tuple[tuple[str, int], ...]:
    c = Counter(kinds)
    return tuple((k, c[k]) for k in KINDS if c[k])


def _checked_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(kinds))
    for k in out:
        if k not in KINDS:
            raise InputError(f"unknown MIG kind {k!r}; known: {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in out)  # canonical order, so the cache hits


@lru_cache(maxsize=64)
def _enumerate(kinds: tuple[str, ...]) -> dict[tuple[tuple[str, int], ...], tuple[Placement, ...]]:
    found: dict[tuple[tuple[str, int], ...], tuple[Placement, ...]] = {}

    def extend(placed: list[Placement], compute: int, free_from: int) -> None:
        # instances are added in increasing start order, so each set of placements is seen once
        if placed:
            found.setdefault(_key(p.kind for p in placed), tuple(placed))
        for k in kinds:
            kind = KINDS[k]
            if compute + kind.compute > COMPUTE_SLICES:
                continue
            if sum(p.kind == k for p in placed) >= kind.max_instances:
                continue
            for s in kind.starts:
                if s >= free_from and s + kind.memory <= MEMORY_SLICES:
                    placed.append(Placement(s, k))
                    extend(placed, compute + kind.compute, s + kind.memory)
                    placed.pop()

    extend([], 0, 0)
    logger.debug("%d feasible MIG configurations over %s", len(found), kinds)
    return found


def feasible_configurations(kinds: Iterable[str] = STANDARD_KINDS) -> tuple[Configuration, ...]:
    """Every feasible non-empty configuration over ``kinds``, fewest instances first."""
    table = _enumerate(_checked_kinds(kinds))
    configs = [Configuration(counts, placed) for counts, placed in table.items()]
    return tuple(sorted(configs, key=lambda c: (c.size, c.counts)))


def maximal_configurations(kinds: Iterable[str] = STANDARD_KINDS) -> tuple[Configuration, ...]:
    """The feasible configurations to which no instance of ``kinds`` can be added."""
    ks = _checked_kinds(kinds)
    table = _enumerate(ks)

    def grown(counts: tuple[tuple[str, int], ...], k: str) -> tuple[tuple[str, int], ...]:
        return _key([*(kk for kk, n in counts for _ in range(n)), k])

    return tuple(
        c for c in feasible_configurations(ks) if not any(grown(c.counts, k) in table for k in ks)
    )


def place(counts: Mapping[str, int]) -> tuple[Placement, ...] | None:
    """A valid placement of the multiset ``counts`` (kind → instances), or None if none exists."""
    wanted = {k: n for k, n in counts.items() if n}
    if not wanted:
        return ()
    for k, n in wanted.items():
        if n < 0:
            raise InputError(f"a negative count of MIG kind {k!r}: {n}")
    table = _enumerate(_checked_kinds(wanted))
    return table.get(tuple((k, wanted[k]) for k in KINDS if k in wanted))


def check_placements(placements: Iterable[Placement]) -> None:
    """Raise :class:`InputError` saying why ``placements`` cannot coexist on one GPU."""
    placed = sorted(placements)
    used: dict[int, Placement] = {}
    compute = 0
    for p in placed:
        kind = KINDS.get(p.kind)
        if kind is None:
            raise InputError(f"unknown MIG kind {p.kind!r}; known: {', '.join(KINDS)}")
        if p.start not in kind.starts:
            raise InputError(
                f"a {p.kind} instance cannot start at memory slice {p.start}; "
                f"allowed starts: {', '.join(map(str, kind.starts))}"
            )
        for s in p.slices:
            if s in used:
                other = used[s]
                raise InputError(
                    f"{p.kind}@{p.start} overlaps {other.kind}@{other.start} on memory slice {s}"
                )
            used[s] = p
        compute += kind.compute
    if compute > COMPUTE_SLICES:
        raise InputError(f"the instances take {compute} compute slices, more than {COMPUTE_SLICES}")
    for k, n in Counter(p.kind for p in placed).items():
        if n > KINDS[k].max_instances:
            raise InputError(f"{n} {k} instances, more than its limit {KINDS[k].max_instances}")
