"""GPU partitions as accelerators (pure: no cluster, HTTP or Prometheus code).

- :mod:`.catalogue`: per GPU product (A100-40GB, A100-80GB, H100-80GB, H200-141GB) its MIG
  profiles (compute and memory slices, allowed start slots) and MPS pools of N equal shares, each
  a :class:`~.catalogue.Partition` usable as an accelerator at a fraction of the GPU's cost;
- :mod:`.geometry`: which sets of MIG instances one GPU can hold (feasible and maximal
  configurations, placement checks);
- :mod:`.interference`: GPU-let's linear model of the slowdown between MPS co-runners.

Placing chosen slices onto physical GPUs is the solver's: :mod:`inferno.solver.packing` (MIG) and
:mod:`inferno.solver.packing_mps` (MPS). ``docs/gpu-partitions.md`` describes the whole design.
"""

from __future__ import annotations

from .catalogue import (
    KINDS,
    PRODUCTS,
    GpuProduct,
    MigKind,
    MigProfile,
    MpsPool,
    Partition,
    mps_pool,
    mps_pool_for_shares,
    parse_partition,
    product,
)
from .geometry import (
    STANDARD_KINDS,
    Configuration,
    Placement,
    check_placements,
    feasible_configurations,
    maximal_configurations,
    place,
)

__all__ = [
    "KINDS",
    "PRODUCTS",
    "STANDARD_KINDS",
    "Configuration",
    "GpuProduct",
    "MigKind",
    "MigProfile",
    "MpsPool",
    "Partition",
    "Placement",
    "check_placements",
    "feasible_configurations",
    "maximal_configurations",
    "mps_pool",
    "mps_pool_for_shares",
    "parse_partition",
    "place",
    "product",
]
