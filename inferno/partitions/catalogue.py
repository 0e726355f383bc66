"""The partition catalogue: the MIG profiles and MPS pools of each GPU product (pure data).

A MIG-capable GPU has 7 compute slices and 8 memory slices. A MIG *kind* (NVIDIA's GPU-instance
profile ID) takes ``compute`` compute slices and ``memory`` memory slices, and may start only at
certain memory slices (``starts``); an instance occupies memory slices [start, start + memory).
The kinds and placements are the same on A100, H100 and H200 (``nvidia-smi mig -lgipp``); only the
profile *names* differ per product, because a memory slice holds 1/8 of the device memory
(``1g.10gb`` is the one-slice 1g on an A100-80GB but the two-slice 1g on an A100-40GB).

An MPS pool with the stock NVIDIA device plugin splits a whole (non-MIG) GPU into N replicas, each
with an equal 1/N of the compute and memory; asymmetric shares (GPU-let's 20/80, 40/60) need a
custom device plugin or DRA driver and are refused here (:func:`mps_pool_for_shares`).

Every partition is usable as an accelerator: :class:`Partition` gives its name
(``A100-80GB:3g.40gb``, ``H100-80GB:mps-4``), type, multiplicity and the fraction of the GPU's
cost it is charged (g/7 for MIG, 1/N for MPS). The fraction is a lower bound of the real cost,
which is whole GPUs used after packing (:mod:`inferno.solver.packing`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Literal

from ..errors import InputError

__all__ = [
    "COMPUTE_SLICES",
    "KINDS",
    "MAX_MPS_REPLICAS",
    "MEMORY_SLICES",
    "PRODUCTS",
    "GpuProduct",
    "MigKind",
    "MigProfile",
    "MpsPool",
    "Partition",
    "mps_pool",
    "mps_pool_for_shares",
    "parse_partition",
    "product",
]

logger = logging.getLogger(__name__)

#: compute and memory slices of a MIG-capable GPU (A100, H100, H200)
COMPUTE_SLICES = 7
MEMORY_SLICES = 8
#: MPS accepts at most 48 client contexts per device (Volta and later, NVIDIA's MPS guide)
MAX_MPS_REPLICAS = 48


@dataclass(frozen=True, slots=True)
class MigKind:
    """A GPU-instance profile, independent of the product: its slices and allowed start slots."""

    key: str  # "1g", "1g+me", "1g.2m" (the 1g with two memory slices), "2g", "3g", "4g", "7g"
    profile_id: int  # NVIDIA's GPU-instance profile ID
    compute: int  # compute slices, of 7
    memory: int  # memory slices, of 8
    max_instances: int
    starts: tuple[int, ...]  # memory slices where an instance may start
    media: bool = False  # the +me variant (media extensions): excluded from geometry counts


KINDS: Mapping[str, MigKind] = MappingProxyType(
    {
        k.key: k
        for k in (
            MigKind("1g", 19, 1, 1, 7, (0, 1, 2, 3, 4, 5, 6)),
            MigKind("1g+me", 20, 1, 1, 1, (0, 1, 2, 3, 4, 5, 6), media=True),
            MigKind("1g.2m", 15, 1, 2, 4, (0, 2, 4, 6)),
            MigKind("2g", 14, 2, 2, 3, (0, 2, 4)),
            MigKind("3g", 9, 3, 4, 2, (0, 4)),
            MigKind("4g", 5, 4, 4, 1, (0,)),
            MigKind("7g", 0, 7, 8, 1, (0,)),
        )
    }
)


@dataclass(frozen=True, slots=True)
class MigProfile:
    """A MIG kind on one product: its profile name (``3g.40gb``) and memory."""

    product: str
    kind: MigKind
    name: str
    memory_gb: float

    @property
    def fraction(self) -> Fraction:
        """The share of the GPU's cost a slice is charged: its compute slices of 7."""
        return Fraction(self.kind.compute, COMPUTE_SLICES)

    @property
    def resource(self) -> str:
        """The device plugin's resource under the *mixed* strategy."""
        return f"nvidia.com/mig-{self.name}"


@dataclass(frozen=True, slots=True)
class GpuProduct:
    """A GPU product: its device memory, MIG profiles (by kind key) and the driver MIG needs."""

    name: str
    memory_gb: float
    profile_names: Mapping[str, str]  # kind key -> profile name on this product
    min_driver: str
    placements_verified: bool = True  # H200: placements assumed equal to H100's

    def profiles(self) -> tuple[MigProfile, ...]:
        return tuple(self._profile(k) for k in self.profile_names)

    def _profile(self, key: str) -> MigProfile:
        name = self.profile_names[key]
        kind = KINDS[key]
        return MigProfile(self.name, kind, name, self.memory_gb * kind.memory / MEMORY_SLICES)

    def profile(self, name: str) -> MigProfile:
        """The profile called ``name`` (``3g.40gb``; a leading ``mig-`` is accepted)."""
        wanted = name.removeprefix("mig-")
        for key, pname in self.profile_names.items():
            if pname == wanted:
                return self._profile(key)
        known = ", ".join(self.profile_names.values())
        raise InputError(f"unknown MIG profile {name!r} for {self.name}; its profiles are {known}")

    def profile_of_kind(self, key: str) -> MigProfile:
        if key not in self.profile_names:
            raise InputError(f"{self.name} has no MIG kind {key!r}")
        return self._profile(key)


def _names(*names: str) -> Mapping[str, str]:
    return MappingProxyType(dict(zip(KINDS, names, strict=True)))


PRODUCTS: Mapping[str, GpuProduct] = MappingProxyType(
    {
        p.name: p
        for p in (
            GpuProduct(
                "A100-40GB",
                40,
                _names(
                    "1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"
                ),
                "450.80.02",
            ),
            GpuProduct(
                "A100-80GB",
                80,
                _names(
                    "1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"
                ),
                "450.80.02",
            ),
            GpuProduct(
                "H100-80GB",
                80,
                _names(
                    "1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"
                ),
                "525.85.12",
            ),
            GpuProduct(
                "H200-141GB",
                141,
                _names(
                    "1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"
                ),
                "550.90.07",
                placements_verified=False,
            ),
        )
    }
)


def product(name: str) -> GpuProduct:
    """The product called ``name``; an unknown name is an :class:`InputError` listing the known."""
    found = PRODUCTS.get(name)
    if found is None:
        raise InputError(
            f"unknown GPU product {name!r} for partitions; known: {', '.join(PRODUCTS)}"
        )
    return found


@dataclass(frozen=True, slots=True)
class MpsPool:
    """A whole GPU shared by MPS into ``replicas`` equal shares (the stock device plugin)."""

    product: str
    replicas: int
    gpu_memory_gb: float

    @property
    def fraction(self) -> Fraction:
        return Fraction(1, self.replicas)

    @property
    def memory_gb(self) -> float:
        """The memory each replica may use (the MPS daemon enforces 1/N of the device)."""
        return self.gpu_memory_gb / self.replicas


def mps_pool(product_name: str, replicas: int) -> MpsPool:
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise InputError(f"MPS replicas must be an integer, not {replicas!r}")
    if not 2 <= replicas <= MAX_MPS_REPLICAS:
        raise InputError(f"MPS replicas must be 2..{MAX_MPS_REPLICAS}, not {replicas}")
    return MpsPool(product_name, replicas, product(product_name).memory_gb)


def mps_pool_for_shares(product_name: str, shares: Sequence[float]) -> MpsPool:
    """The stock-plugin pool that gives ``shares`` (fractions of one GPU, co-located), or an error.

    The NVIDIA device plugin gives each of N MPS replicas an equal 1/N, so only equal shares whose
    count N divides the GPU exactly are expressible: 0.5+0.5 → N=2, 0.2 → N=5; 0.2+0.8 is not.
    """
    if not shares:
        raise InputError("no MPS shares given")
    for s in shares:
        if not 0 < s <= 1:
            raise InputError(f"an MPS share must be in (0, 1], not {s!r}")
    if any(abs(s - shares[0]) > 1e-9 for s in shares):
        shown = "/".join(f"{100 * s:g}%" for s in shares)
        raise InputError(
            f"asymmetric MPS shares {shown} cannot be expressed with the stock NVIDIA device "
            "plugin, which gives each of N replicas an equal 1/N of compute and memory; use "
            "equal shares or a custom device plugin (DRA driver)"
        )
    n = round(1 / shares[0])
    if abs(n * shares[0] - 1) > 1e-9:
        raise InputError(
            f"an MPS share of {100 * shares[0]:g}% is not 1/N of a GPU for an integer N"
        )
    return mps_pool(product_name, n)


PartitionMode = Literal["mig", "mps"]


@dataclass(frozen=True, slots=True)
class Partition:
    """A partition as an accelerator: a MIG slice or an MPS share of one GPU product."""

    product: str
    mode: PartitionMode
    profile: str  # "3g.40gb" (MIG) or "mps-4" (MPS)
    fraction: Fraction  # of the GPU's compute, and of its cost
    memory_gb: float
    multiplicity: int  # MIG: compute slices (unit = 1 slice); MPS: 1

    @property
    def name(self) -> str:
        return f"{self.product}:{self.profile}"

    @property
    def type(self) -> str:
        """The accelerator type whose capacity it draws on."""
        if self.mode == "mig":
            return f"{self.product}/slice"
        return f"{self.product}/{self.profile}"

    def cost(self, gpu_cost: float) -> float:
        return float(self.fraction) * gpu_cost

    @classmethod
    def of_mig(cls, profile: MigProfile) -> Partition:
        k = profile.kind
        return cls(
            profile.product, "mig", profile.name, profile.fraction, profile.memory_gb, k.compute
        )

    @classmethod
    def of_mps(cls, pool: MpsPool) -> Partition:
        return cls(pool.product, "mps", f"mps-{pool.replicas}", pool.fraction, pool.memory_gb, 1)


def parse_partition(name: str) -> Partition:
    """``A100-80GB:3g.40gb`` or ``H100-80GB:mps-4`` → its :class:`Partition`."""
    prod, sep, rest = name.partition(":")
    if not sep or not rest:
        raise InputError(
            f"a partition name is <product>:<MIG profile> or <product>:mps-<N>, not {name!r}"
        )
    if rest.startswith("mps-"):
        digits = rest.removeprefix("mps-")
        if not digits.isdigit():
            raise InputError(f"MPS partition {name!r}: mps-<N> needs an integer N")
        return Partition.of_mps(mps_pool(prod, int(digits)))
    return Partition.of_mig(product(prod).profile(rest))
