"""The service's own options: what it manages (:class:`ServiceOptions`), where the four
containers listen (:class:`Endpoints`), who may call what (:class:`SecurityOptions`) and leader
election (:class:`LeaderOptions`)."""

from __future__ import annotations

from dataclasses import dataclass

from ._group import DNS_LABEL, Group, SettingsError, finite, option

__all__ = ["Endpoints", "LeaderOptions", "SecurityOptions", "ServiceOptions"]


@dataclass(frozen=True, slots=True)
class ServiceOptions(Group):
    """What Inferno manages and how often."""

    namespace: str = option("inferno", "INFERNO_NAMESPACE", "Inferno's own namespace")
    watch_namespaces: tuple[str, ...] = option(
        (), "WATCH_NAMESPACE", "namespaces to manage, comma-separated (none: all)"
    )
    control_period: float = option(
        60.0, "INFERNO_CONTROL_PERIOD", "seconds between cycles; 0: only on POST /invoke"
    )
    cycle_deadline: float = option(
        30.0,
        "INFERNO_CYCLE_DEADLINE",
        "seconds from a cycle's start after which the actuator applies nothing more",
    )
    data_path: str = option("/etc/inferno/data", "INFERNO_DATA_PATH", "the static data directory")
    default_mode: str = option(
        "auto", "INFERNO_DEFAULT_MODE", "auto or recommend, for servers without the annotation"
    )
    gpu_node_label: str = option(
        "nvidia.com/gpu.product", "INFERNO_GPU_NODE_LABEL", "the node label of the GPU type"
    )
    max_replicas: int = option(
        1000, "INFERNO_MAX_REPLICAS", "the most replicas one server may be given"
    )
    http_timeout: float = option(
        30.0, "INFERNO_HTTP_TIMEOUT", "seconds, for the calls between the services"
    )
    sizing_memo_entries: int = option(
        250_000,
        "INFERNO_SIZING_MEMO_ENTRIES",
        "the optimizer's memo of sized (server, accelerator) candidates across requests "
        "(330-600 bytes each, the reused candidate tables included; 0: none)",
    )

    def check(self) -> None:
        self._require(
            "control_period",
            self.control_period == 0 or 0.01 <= self.control_period <= 86400,
            "0 (only on POST /invoke) or 0.01 to 86400 seconds (>= 0)",
        )
        self._require(
            "cycle_deadline",
            finite(self.cycle_deadline) and 0 < self.cycle_deadline <= 3600,
            "seconds in (0, 3600]",
        )
        self._require(
            "default_mode", self.default_mode in ("auto", "recommend"), "'auto' or 'recommend'"
        )
        self._require(
            "max_replicas", 1 <= self.max_replicas <= 1_000_000, "an integer in 1..1000000"
        )
        self._require(
            "http_timeout",
            finite(self.http_timeout) and self.http_timeout > 0,
            "> 0 seconds",
        )
        self._require(
            "sizing_memo_entries",
            # 500,000 entries hold about 165 MB, up to 300 MB with the reused candidate tables
            # and twice the keys while the memo grows: within the optimizer's 1 GiB (manifests/)
            0 <= self.sizing_memo_entries <= 500_000,
            "an integer in 0..500000 (0: no memo; 330-600 bytes each)",
        )


_SERVICES = ("controller", "collector", "optimizer", "actuator")


@dataclass(frozen=True, slots=True)
class Endpoints(Group):
    """Where each service listens and where its siblings are."""

    # the collector, optimizer and actuator listen on the pod's loopback only: their callers are
    # their sibling containers; the controller listens on every interface (the Service's port)
    bind_host: str = option(
        "127.0.0.1",
        "INFERNO_BIND_HOST",
        "the address the collector, optimizer and actuator (and the all-in-one controller) bind",
    )
    controller_bind_host: str = option(
        "0.0.0.0", "CONTROLLER_BIND_HOST", "the address the controller binds"
    )
    metrics_port: int = option(
        0, "INFERNO_METRICS_PORT", "a sibling's metrics-only port on every interface (0: none)"
    )
    controller_host: str = option("127.0.0.1", "CONTROLLER_HOST", "where the controller is")
    controller_port: int = option(3300, "CONTROLLER_PORT", "the controller's port")
    collector_host: str = option("127.0.0.1", "COLLECTOR_HOST", "where the collector is")
    collector_port: int = option(3301, "COLLECTOR_PORT", "the collector's port")
    optimizer_host: str = option("127.0.0.1", "INFERNO_HOST", "where the optimizer is")
    optimizer_port: int = option(3302, "INFERNO_PORT", "the optimizer's port")
    actuator_host: str = option("127.0.0.1", "ACTUATOR_HOST", "where the actuator is")
    actuator_port: int = option(3303, "ACTUATOR_PORT", "the actuator's port")

    def check(self) -> None:
        for name in (*(f"{s}_port" for s in _SERVICES), "metrics_port"):
            self._require(name, 0 <= getattr(self, name) <= 65535, "a port number 0-65535")

    def url(self, service: str) -> str:
        """Base URL of a sibling service: controller, collector, optimizer or actuator."""
        if service not in _SERVICES:
            raise ValueError(f"unknown service {service!r}")
        return f"http://{getattr(self, f'{service}_host')}:{getattr(self, f'{service}_port')}"


@dataclass(frozen=True, slots=True)
class SecurityOptions(Group):
    """Who may call what (docs/security.md)."""

    invoke_token: str = option(
        "",
        "INFERNO_INVOKE_TOKEN",
        "the token /invoke and /report require (at least 16 characters)",
        secret=True,
    )
    invoke_token_file: str = option(
        "", "INFERNO_INVOKE_TOKEN_FILE", "a file holding the invoke token, re-read when it changes"
    )
    internal_token_file: str = option(
        "",
        "INFERNO_INTERNAL_TOKEN_FILE",
        "the pod's internal token, created by the first container to start",
    )
    insecure: bool = option(False, "INFERNO_INSECURE", "no tokens at all: development only")
    max_body_bytes: int = option(
        4 * 1024 * 1024, "INFERNO_MAX_BODY_BYTES", "the largest request body a service reads"
    )

    def check(self) -> None:
        self._require(
            "max_body_bytes",
            1024 <= self.max_body_bytes <= 1 << 30,
            "a size in bytes between 1024 and 1073741824",
        )
        if self.invoke_token and self.invoke_token_file:
            raise SettingsError(
                "INFERNO_INVOKE_TOKEN and INFERNO_INVOKE_TOKEN_FILE are both set: expected one"
            )


@dataclass(frozen=True, slots=True)
class LeaderOptions(Group):
    """Leader election: only the holder of a Lease in ``INFERNO_NAMESPACE`` runs cycles."""

    leader_election: bool = option(
        True, "INFERNO_LEADER_ELECTION", "only the holder of the Lease runs cycles"
    )
    lease_name: str = option("inferno-leader", "INFERNO_LEASE_NAME", "the Lease")
    lease_duration: float = option(
        15.0, "INFERNO_LEASE_DURATION", "seconds a silent holder keeps the Lease"
    )
    identity: str = option(
        "", "INFERNO_IDENTITY", "this instance in the Lease (default: host, pid)"
    )

    def check(self) -> None:
        self._require(
            "lease_duration",
            finite(self.lease_duration) and 1 <= self.lease_duration <= 600,
            "seconds in [1, 600]",
        )
        self._require("lease_name", DNS_LABEL.fullmatch(self.lease_name) is not None, "a DNS label")
