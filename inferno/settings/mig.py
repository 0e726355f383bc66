"""Applying MIG geometries to GPU nodes (:class:`MigApplyOptions`): off unless asked, since a
re-partition drains the node's GPU pods (docs/gpu-partitions.md, "Applying the geometry")."""

from __future__ import annotations

from dataclasses import dataclass

from ._group import DNS_LABEL, Group, option

__all__ = ["MigApplyOptions"]


@dataclass(frozen=True, slots=True)
class MigApplyOptions(Group):
    """Whether the controller relabels opted-in nodes' ``nvidia.com/mig.config``, where the
    mig-parted configurations go and how many nodes may re-partition per cycle."""

    apply: bool = option(
        False,
        "INFERNO_MIG_APPLY",
        "relabel nodes labelled inferno.ai/mig-managed=true with the decided MIG geometry "
        "(needs manifests/optional/mig-apply.yaml)",
        flat="mig_apply",
    )
    namespace: str = option(
        "gpu-operator",
        "INFERNO_MIG_NAMESPACE",
        "the GPU operator's namespace, where the mig-parted ConfigMap is written",
        flat="mig_namespace",
    )
    config_map: str = option(
        "inferno-mig-parted-config",
        "INFERNO_MIG_CONFIGMAP",
        "the mig-parted ConfigMap the MIG manager reads",
        flat="mig_config_map",
    )
    max_nodes: int = option(
        1,
        "INFERNO_MIG_MAX_NODES",
        "nodes re-partitioned per cycle at most (each drains its GPU pods)",
        flat="mig_max_nodes",
    )

    def check(self) -> None:
        self._require("namespace", DNS_LABEL.fullmatch(self.namespace) is not None, "a DNS label")
        self._require(
            "config_map",
            DNS_LABEL.fullmatch(self.config_map) is not None,
            "a ConfigMap name (a DNS label)",
        )
        self._require("max_nodes", 1 <= self.max_nodes <= 1000, "an integer in 1..1000")
