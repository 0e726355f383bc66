"""The NVIDIA device plugin's resources and GPU feature discovery's node labels for partitions
(docs/gpu-partitions.md, "Actuation"). Plain names: the data layer puts them on accelerators,
the cluster layer on Deployments."""

from __future__ import annotations

GPU = "nvidia.com/gpu"  # whole GPUs; MIG single strategy; MPS shares (stock)
GPU_SHARED = "nvidia.com/gpu.shared"  # MPS shares when the plugin renames shared resources
MIG_PREFIX = "nvidia.com/mig-"  # + profile, e.g. nvidia.com/mig-3g.40gb (MIG mixed strategy)
PRODUCT = "nvidia.com/gpu.product"
MIG_STRATEGY = "nvidia.com/mig.strategy"  # mixed | single
SHARING = "nvidia.com/gpu.sharing-strategy"  # none | time-slicing | mps
MIG_CONFIG = "nvidia.com/mig.config"  # a node's mig-parted configuration (drains its GPUs)

#: node-selector keys that only partitions set: dropped when a server moves back to whole GPUs
PARTITION_SELECTOR_KEYS = (MIG_STRATEGY, SHARING)


def is_gpu_resource(name: str) -> bool:
    """A GPU resource a replica may ask for (one kind per container)."""
    return name in (GPU, GPU_SHARED) or name.startswith(MIG_PREFIX)
