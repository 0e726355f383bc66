"""Read Inferno's system data (a directory of JSON files) into :class:`inferno.system.System`.

The six files and every historical shape of their rows are those of the Go original (G0 samples,
prefill/decode, perfParms and chunked-prefill versions) plus this project's additions (the
``batch`` profile kind, latency and quantile SLO keys, ``nodeSelector``, solver options). Keys
match case-insensitively and unknown keys are ignored, as with Go's ``encoding/json``. Any bad
value raises :class:`~inferno.errors.InputError` naming the file and the JSON path; a broken
cross-reference (an unknown accelerator or service class, a duplicate name) raises
:class:`~inferno.errors.DataError`. Every number is finite and within the bounds of
:mod:`inferno.data.limits`; an error in a server row has a path below ``$.servers[i]`` (the
optimizer service leaves just that server out).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from ..errors import DataError, InputError
from ..model.profiles import (
    BATCHING,
    DEFAULT_MAX_NUM_TOKENS,
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Kind,
    Profile,
)
from ..system import (
    Accelerator,
    BatchPolicy,
    CurrentAllocation,
    Load,
    ModelProfile,
    OptimizerSpec,
    PerformanceModel,
    SaturationPolicy,
    Server,
    ServiceClass,
    System,
    Target,
)
from ._json import Node, read_json
from .limits import (
    MAX_ARRIVAL_RATE,
    MAX_BATCH_SIZE,
    MAX_COST,
    MAX_COUNT,
    MAX_MILP_TIME_LIMIT,
    MAX_PROFILE_PARAMETER,
    MAX_QUANTITY,
    MAX_QUEUE_FACTOR,
    MAX_QUEUE_SIZE,
    MAX_TIME_MS,
    MAX_TOKENS,
    MAX_TPS,
    MAX_TRITON_BATCH_SIZE,
    MIN_TIME_MS,
    MIN_TOKENS,
)
from .partition_rows import derive_profiles, partition_accelerators, utilization
from .plain_rows import DEFAULT_CLASS, plain_server
from .serving_rows import contention

__all__ = ["SYSTEM_FILES", "load_system", "parse_kind", "system_from_documents"]

logger = logging.getLogger(__name__)

_V = TypeVar("_V")
_E = TypeVar("_E", SaturationPolicy, BatchPolicy, PerformanceModel)

ACCELERATOR_FILE = "accelerator-data.json"
CAPACITY_FILE = "capacity-data.json"
MODEL_FILE = "model-data.json"
SERVICE_CLASS_FILE = "serviceclass-data.json"
SERVER_FILE = "server-data.json"
OPTIMIZER_FILE = "optimizer-data.json"

SYSTEM_FILES = (
    ACCELERATOR_FILE,
    CAPACITY_FILE,
    MODEL_FILE,
    SERVICE_CLASS_FILE,
    SERVER_FILE,
    OPTIMIZER_FILE,
)

DEFAULT_PRIORITY = 100


def load_system(directory: str | Path) -> System:
    """Read the six system files of ``directory`` (see :data:`SYSTEM_FILES`).

    ``optimizer-data.json`` is optional (defaults of :class:`OptimizerSpec`). Without an explicit
    ``unlimited``, capacity limits apply when ``capacity-data.json`` exists and not otherwise;
    ``capacity-data.json`` is required when the optimizer is limited.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputError("not a directory (expected the system data files in it)", source=str(root))
    nodes: dict[str, Node] = {}
    for name in SYSTEM_FILES:
        path = root / name
        if path.is_file():
            logger.debug("reading %s", path)
            nodes[name] = read_json(path, str(path))
    return _system(nodes, lambda name: str(root / name))


def system_from_documents(
    documents: Mapping[str, object],
    origin: str = "",
    sources: Mapping[str, str] | None = None,
    *,
    model: PerformanceModel = PerformanceModel.INFERNO,
) -> System:
    """The same from already-parsed JSON documents keyed by file name (e.g. a ConfigMap's data
    merged with what the collector found in the cluster); errors name ``origin/<file name>``, or
    ``sources[file name]`` for the documents it names. ``model``: the performance model when the
    optimizer data names none (the services' ``INFERNO_MODEL``)."""

    def source(name: str) -> str:
        if sources and name in sources:
            return sources[name]
        return f"{origin}/{name}" if origin else name

    unknown = sorted(set(documents) - set(SYSTEM_FILES))
    if unknown:
        raise InputError(
            f"unknown documents {unknown}; expected some of {list(SYSTEM_FILES)}",
            source=origin or None,
        )
    nodes = {name: Node(doc, source(name), "$") for name, doc in documents.items()}
    return _system(nodes, source, model)


def _system(
    nodes: Mapping[str, Node],
    source: Callable[[str], str],
    model: PerformanceModel = PerformanceModel.INFERNO,
) -> System:
    def required(name: str) -> Node:
        node = nodes.get(name)
        if node is None:
            raise InputError("required file is missing", source=source(name))
        return node

    capacity_node = nodes.get(CAPACITY_FILE)
    optimizer_node = nodes.get(OPTIMIZER_FILE)
    unlimited = capacity_node is None
    if optimizer_node is None:
        optimizer = OptimizerSpec(unlimited=unlimited, model=model)
    else:
        optimizer = _optimizer(optimizer_node, OptimizerSpec(unlimited=unlimited, model=model))
    if not optimizer.unlimited and capacity_node is None:
        raise InputError(
            "required file is missing (the optimizer data asks for capacity limits)",
            source=source(CAPACITY_FILE),
        )
    accelerators = _accelerators(required(ACCELERATOR_FILE))
    capacity = _frozen({} if capacity_node is None else _capacity(capacity_node))
    profiles = _profiles(required(MODEL_FILE), accelerators)
    derived, notes = derive_profiles(profiles, accelerators)
    profiles += derived
    classes = _classes(required(SERVICE_CLASS_FILE))
    servers = _servers(required(SERVER_FILE), classes, accelerators, _triton_models(profiles))
    return System(
        accelerators=_frozen(accelerators),
        profiles=profiles,
        classes=_frozen(classes),
        servers=servers,
        capacity=capacity,
        optimizer=optimizer,
        notes=notes,
    )


def _frozen(mapping: Mapping[str, _V]) -> Mapping[str, _V]:
    return MappingProxyType(dict(mapping))


def _known(names: Iterable[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed) if listed else "none"


def _rows(file: Node, key: str) -> list[Node]:
    """The array ``key`` of a file's top-level object, each item checked to be an object."""
    return [row.as_object() for row in file.as_object().array(key, required=True)]


# -- accelerators and capacity ------------------------------------------------------------------


def _accelerators(file: Node) -> dict[str, Accelerator]:
    accelerators: dict[str, Accelerator] = {}
    for row in _rows(file, "accelerators"):
        name = row.string("name", nonempty=True)
        if name in accelerators:
            raise row.member("name").data_error(f"duplicate accelerator {name!r}")
        accelerators[name] = Accelerator(
            name=name,
            type=row.string("type", "") or name,
            multiplicity=row.integer("multiplicity", 1, minimum=1, maximum=MAX_COUNT),
            cost=row.number("cost", 0.0, minimum=0, maximum=MAX_COST),
            mem_size=row.number("memSize", None, minimum=0, maximum=MAX_QUANTITY),
            mem_bw=row.number("memBW", None, minimum=0, maximum=MAX_QUANTITY),
            node_selector=_node_selector(row.obj("nodeSelector")),
        )
        for part in partition_accelerators(row, accelerators[name]):
            if part.name in accelerators:
                raise row.member("partitions").data_error(
                    f"partition {part.name!r} has the name of another accelerator"
                )
            accelerators[part.name] = part
    return accelerators


def _node_selector(node: Node | None) -> tuple[tuple[str, str], ...]:
    if node is None:
        return ()
    return tuple(sorted((key, value.as_string()) for key, value in node.as_items()))


def _capacity(file: Node) -> dict[str, int]:
    capacity: dict[str, int] = {}
    for row in _rows(file, "count"):
        kind = row.string("type", nonempty=True)
        if kind in capacity:
            raise row.member("type").data_error(f"duplicate capacity for accelerator type {kind!r}")
        capacity[kind] = row.integer("count", minimum=0, maximum=MAX_COUNT)
    return capacity


# -- model profiles -----------------------------------------------------------------------------

_KINDS = {kind.value.casefold(): kind for kind in Kind}


def parse_kind(node: Node) -> Kind:
    """A profile kind given by name ("G0", "G1", "G2", "G3" or "batch", any case)."""
    text = node.as_string()
    kind = _KINDS.get(text.strip().casefold())
    if kind is None:
        raise node.error(f"unknown profile kind {text!r}; expected one of G0, G1, G2, G3, batch")
    return kind


def _row_kind(row: Node) -> Kind:
    """The kind of a model row: its ``kind`` key, else guessed from the keys it has."""
    explicit = row.find("kind")
    if explicit is not None:
        return parse_kind(explicit)
    if row.has("decodeParms") or row.has("prefillParms"):
        return Kind.G1
    if row.has("perfParms"):
        return Kind.G3 if row.has("maxNumTokens") else Kind.G2
    if row.has("batchParms"):
        return Kind.BATCH
    if row.has("alpha") or row.has("beta"):
        return Kind.G0
    raise row.error(
        "no performance parameters: expected alpha and beta (G0), decodeParms and prefillParms"
        ' (G1), perfParms (G2, G3) or kind "batch"'
    )


def _parms(row: Node, key: str) -> Node:
    return row.member(key).as_object()


def _param(node: Node, key: str) -> float:
    return node.number(key, minimum=0, maximum=MAX_PROFILE_PARAMETER)


def _alpha_beta(node: Node) -> tuple[float, float]:
    alpha, beta = _param(node, "alpha"), _param(node, "beta")
    if alpha + beta <= 0:
        raise node.error("alpha + beta must be > 0 (a batch would take no time)")
    return alpha, beta


def _at_tokens(row: Node) -> float:
    return row.number("atTokens", above=0, maximum=MAX_TOKENS, least_positive=MIN_TOKENS)


def _profile(row: Node, kind: Kind) -> Profile:
    """The profile of a model row of the given kind."""
    max_batch = row.integer("maxBatchSize", minimum=1, maximum=MAX_BATCH_SIZE)
    if kind is Kind.G0:
        alpha, beta = _alpha_beta(row)
        return G0Profile(alpha, beta, max_batch, _at_tokens(row))
    if kind is Kind.G1:
        alpha, beta = _alpha_beta(_parms(row, "decodeParms"))
        prefill = _parms(row, "prefillParms")
        gamma, delta = _param(prefill, "gamma"), _param(prefill, "delta")
        return G1Profile(alpha, beta, gamma, delta, max_batch, _at_tokens(row))
    if kind is Kind.BATCH:
        parms = row.obj("batchParms") or row
        alpha, beta = _alpha_beta(parms)
        delay = row.number("queueDelayMs", 0.0, minimum=0, maximum=MAX_TIME_MS)
        batching = row.string("batching", "triton")
        if batching not in BATCHING:
            raise row.member("batching").error(
                f"unknown batching {batching!r}; expected one of {', '.join(BATCHING)}"
            )
        if batching == "triton" and max_batch > MAX_TRITON_BATCH_SIZE:
            raise row.member("maxBatchSize").error(
                f"expected an integer <= {MAX_TRITON_BATCH_SIZE} with Triton's batching (the "
                f'model\'s cost grows as N³; batching: "chain" allows {MAX_BATCH_SIZE}), '
                f"got {max_batch}"
            )
        return BatchProfile(
            alpha,
            beta,
            max_batch,
            queue_delay_ms=delay,
            batching=batching,
            contention=contention(row),
            decide_serving=batching == "triton" and row.has("contention"),
        )
    parms = _parms(row, "perfParms")
    alpha, beta = _alpha_beta(parms)
    gamma = _param(parms, "gamma")
    at_tokens = _tokens(row, "atTokens", 0.0) or None  # 0 (or absent): not given
    if kind is Kind.G2:
        return G2Profile(alpha, beta, gamma, max_batch, at_tokens)
    max_tokens = row.integer(
        "maxNumTokens", DEFAULT_MAX_NUM_TOKENS, minimum=1, maximum=int(MAX_TOKENS)
    )
    return G3Profile(alpha, beta, gamma, max_batch, at_tokens, max_tokens)


def _profiles(file: Node, accelerators: Mapping[str, Accelerator]) -> tuple[ModelProfile, ...]:
    profiles: list[ModelProfile] = []
    seen: set[tuple[str, str]] = set()
    for row in _rows(file, "models"):
        model = row.string("name", nonempty=True)
        acc = row.string("acc", nonempty=True)
        if acc not in accelerators:
            raise row.member("acc").data_error(
                f"unknown accelerator {acc!r}; known accelerators: {_known(accelerators)}"
            )
        if (model, acc) in seen:
            raise row.data_error(f"duplicate profile of model {model!r} on accelerator {acc!r}")
        seen.add((model, acc))
        acc_count = row.integer("accCount", 1, minimum=1, maximum=MAX_COUNT)
        profiles.append(
            ModelProfile(
                model,
                acc,
                acc_count,
                _profile(row, _row_kind(row)),
                serial_fraction=row.number("serialFraction", None, minimum=0, maximum=1),
                mem_gb=row.number("memSize", None, minimum=0, maximum=MAX_QUANTITY),
                utilization=utilization(row),
            )
        )
    return tuple(profiles)


# -- service classes ----------------------------------------------------------------------------

_PERCENTILE = re.compile(r"p(\d+(?:\.\d*)?)")


def _quantile(node: Node, *, allow_mean: bool = True) -> float | None:
    """A quantile given as 0.95, "p95" or "mean" (None)."""
    means = ', or "mean"' if allow_mean else ""
    expected = f'expected a quantile in (0, 1) such as 0.95, or "p95", "p99"{means}'
    if isinstance(node.value, str):
        text = node.value.strip().casefold()
        if text == "mean" and allow_mean:
            return None
        match = _PERCENTILE.fullmatch(text)
        if match is None or not 0 < float(match.group(1)) < 100:
            raise node.error(f"{expected}; got {node.value!r}")
        return float(match.group(1)) / 100
    value = node.as_number(maximum=1.0)
    if not 0 < value < 1:
        raise node.error(f"{expected}; got {value!r}")
    return value


def _slo(node: Node, key: str) -> float | None:
    """An SLO value; 0 (or absent) means no target, as in Go."""
    if key == "slo-tps":
        return node.number(key, None, minimum=0, maximum=MAX_TPS) or None
    return (
        node.number(key, None, minimum=0, maximum=MAX_TIME_MS, least_positive=MIN_TIME_MS) or None
    )


def _optional_quantile(node: Node, key: str) -> float | None:
    found = node.find(key)
    return None if found is None else _quantile(found)


def _target(model: str, node: Node) -> Target:
    ttw_node = node.find("slo-ttw-quantile")
    ttw_quantile = 0.95 if ttw_node is None else _quantile(ttw_node, allow_mean=False)
    assert ttw_quantile is not None
    target = Target(
        model=model,
        itl=_slo(node, "slo-itl"),
        ttft=_slo(node, "slo-ttft"),
        ttw=_slo(node, "slo-ttw"),
        tps=_slo(node, "slo-tps"),
        latency=_slo(node, "slo-latency"),
        ttft_quantile=_optional_quantile(node, "slo-ttft-quantile"),
        latency_quantile=_optional_quantile(node, "slo-latency-quantile"),
        ttw_quantile=ttw_quantile,
    )
    if all(v is None for v in (target.itl, target.ttft, target.ttw, target.tps, target.latency)):
        raise node.data_error(
            f"no SLO target for model {model!r}: give at least one of slo-itl, slo-ttft, slo-ttw,"
            " slo-latency, slo-tps (0 means no target)"
        )
    return target


@dataclass
class _ClassDraft:
    """A service class while its rows are merged."""

    priority: int | None = None
    targets: dict[str, Target] = field(default_factory=dict)


def _row_targets(row: Node) -> list[tuple[Node, str]]:
    """The (target node, model) pairs of a class row: flat (G0) and/or ``modelTargets``."""
    pairs: list[tuple[Node, str]] = []
    if row.has("model"):
        pairs.append((row, row.string("model", nonempty=True)))
    if row.has("modelTargets"):
        entries = [entry.as_object() for entry in row.array("modelTargets")]
        if not entries:
            raise row.member("modelTargets").data_error("a service class needs at least one target")
        pairs.extend((entry, entry.string("model", nonempty=True)) for entry in entries)
    if not pairs:
        raise row.error("a service class row needs 'model' (with its slo-* keys) or 'modelTargets'")
    return pairs


def _classes(file: Node) -> dict[str, ServiceClass]:
    drafts: dict[str, _ClassDraft] = {}
    for row in _rows(file, "serviceClasses"):
        name = row.string("name", nonempty=True)
        draft = drafts.setdefault(name, _ClassDraft())
        priority = row.integer("priority", None, minimum=1, maximum=MAX_COUNT)
        if priority is not None:
            if draft.priority is not None and draft.priority != priority:
                raise row.member("priority").data_error(
                    f"service class {name!r} is given priorities {draft.priority} and {priority}"
                )
            draft.priority = priority
        for node, model in _row_targets(row):
            if model in draft.targets:
                raise node.data_error(f"duplicate target of model {model!r} in class {name!r}")
            draft.targets[model] = _target(model, node)
    return {
        name: ServiceClass(
            name=name,
            priority=DEFAULT_PRIORITY if draft.priority is None else draft.priority,
            targets=_frozen(draft.targets),
        )
        for name, draft in drafts.items()
    }


# -- servers ------------------------------------------------------------------------------------


def _tokens(node: Node, key: str, default: float) -> float:
    """A token count: 0, or in [MIN_TOKENS, MAX_TOKENS]."""
    return node.number(key, default, minimum=0, maximum=MAX_TOKENS, least_positive=MIN_TOKENS)


def _load(node: Node | None) -> Load:
    if node is None:
        return Load(arrival_rate=0.0)
    rate = node.number("arrivalRate", minimum=0, maximum=MAX_ARRIVAL_RATE)
    cov = {
        "arrival_cov": node.number("arrivalCOV", None, minimum=0, maximum=MAX_QUANTITY),
        "service_cov": node.number("serviceCOV", None, minimum=0, maximum=MAX_QUANTITY),
        "out_tokens_cov": node.number("outTokensCOV", None, minimum=0, maximum=MAX_QUANTITY),
    }
    if node.has("avgLength"):
        if node.has("avgInTokens") or node.has("avgOutTokens"):
            raise node.error("give either avgLength or avgInTokens and avgOutTokens, not both")
        length = node.number("avgLength", minimum=0, maximum=MAX_TOKENS, least_positive=MIN_TOKENS)
        return Load(arrival_rate=rate, in_tokens=0.0, out_tokens=length, **cov)
    return Load(
        arrival_rate=rate,
        in_tokens=_tokens(node, "avgInTokens", 0.0),
        out_tokens=_tokens(node, "avgOutTokens", 0.0),
        **cov,
    )


def _current(node: Node | None, accelerators: Mapping[str, Accelerator]) -> CurrentAllocation:
    if node is None:
        return CurrentAllocation()
    acc = node.string("accelerator", "")
    if acc and acc not in accelerators:
        raise node.member("accelerator").data_error(
            f"unknown accelerator {acc!r}; known accelerators: {_known(accelerators)}"
        )
    return CurrentAllocation(
        accelerator=acc,
        replicas=node.integer("numReplicas", 0, minimum=0, maximum=MAX_COUNT),
        max_batch=node.integer("maxBatch", 0, minimum=0, maximum=MAX_BATCH_SIZE),
        cost=node.number("cost", None, minimum=0, maximum=MAX_COST),
    )


def _triton_models(profiles: Iterable[ModelProfile]) -> dict[str, str]:
    """The models with a batch-kind profile under Triton's batching (model -> an accelerator)."""
    out: dict[str, str] = {}
    for mp in profiles:
        if isinstance(mp.profile, BatchProfile) and mp.profile.batching == "triton":
            out.setdefault(mp.model, mp.accelerator)
    return out


def _server_batch(row: Node, model: str, triton_models: Mapping[str, str]) -> int | None:
    """A server's ``maxBatchSize`` (None: not set, or 0), bounded as its model's profiles are."""
    size = row.integer("maxBatchSize", 0, minimum=0, maximum=MAX_BATCH_SIZE)
    if size > MAX_TRITON_BATCH_SIZE and model in triton_models:
        raise row.member("maxBatchSize").error(
            f"expected an integer <= {MAX_TRITON_BATCH_SIZE} for model {model!r} (its profile on "
            f"{triton_models[model]} has Triton's batching), got {size}"
        )
    return size or None


def _server(
    row: Node,
    classes: Mapping[str, ServiceClass],
    accelerators: Mapping[str, Accelerator],
    triton_models: Mapping[str, str],
) -> Server:
    name = row.string("name", nonempty=True)
    class_node = row.find("class")
    service_class = (class_node.as_string() if class_node is not None else "") or DEFAULT_CLASS
    if service_class not in classes:
        raise DataError(
            f"unknown service class {service_class!r}; known classes: {_known(classes)}",
            source=row.source,
            path=class_node.path if class_node is not None else row.child_path("class"),
        )
    model = row.string("model", nonempty=True)
    current = row.obj("currentAlloc")
    load_node = row.obj("load") or (current.obj("load") if current is not None else None)
    min_replicas = row.integer("minNumReplicas", 1, minimum=0, maximum=MAX_COUNT)
    max_replicas = row.integer("maxNumReplicas", None, minimum=min_replicas, maximum=MAX_COUNT)
    return Server(
        name=name,
        service_class=service_class,
        model=model,
        load=_load(load_node),
        current=_current(current, accelerators),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        max_batch_size=_server_batch(row, model, triton_models),
        max_queue_size=row.integer("maxQueueSize", None, minimum=0, maximum=MAX_QUEUE_SIZE),
        keep_accelerator=row.boolean("keepAccelerator"),
    )


def _servers(
    file: Node,
    classes: Mapping[str, ServiceClass],
    accelerators: Mapping[str, Accelerator],
    triton_models: Mapping[str, str],
) -> tuple[Server, ...]:
    servers: dict[str, Server] = {}
    for row in _rows(file, "servers"):
        # most rows take the fast path; the others (and every bad one) the checked getters
        server = plain_server(row.value, classes, accelerators, triton_models) or _server(
            row, classes, accelerators, triton_models
        )
        if server.name in servers:
            raise row.member("name").data_error(f"duplicate server name {server.name!r}")
        servers[server.name] = server
    return tuple(servers.values())


# -- optimizer ----------------------------------------------------------------------------------


def _choice(node: Node, key: str, enum: type[_E], default: _E) -> _E:
    found = node.find(key)
    if found is None:
        return default
    text = found.as_string().strip()
    if not text:
        return default
    for member in enum:
        if member.value.casefold() == text.casefold():
            return member
    allowed = ", ".join(member.value for member in enum)
    raise found.error(f"unknown {key} {text!r}; expected one of {allowed}")


def _optimizer(file: Node, defaults: OptimizerSpec) -> OptimizerSpec:
    node = file.as_object().member("optimizer").as_object()
    node.boolean("useCplex")  # accepted (checked to be a boolean) and ignored
    return OptimizerSpec(
        unlimited=node.boolean("unlimited", defaults.unlimited),
        heterogeneous=node.boolean("heterogeneous", defaults.heterogeneous),
        milp=node.boolean("milpSolver", defaults.milp),
        saturation_policy=_choice(
            node, "saturationPolicy", SaturationPolicy, defaults.saturation_policy
        ),
        delayed_best_effort=node.boolean("delayedBestEffort", defaults.delayed_best_effort),
        batch_policy=_choice(node, "batchPolicy", BatchPolicy, defaults.batch_policy),
        exact_wait_quantile=node.boolean("exactWaitQuantile", defaults.exact_wait_quantile),
        queue_factor=node.number(
            "queueFactor", defaults.queue_factor, minimum=0, maximum=MAX_QUEUE_FACTOR
        ),
        milp_time_limit=node.number(
            "milpTimeLimit", defaults.milp_time_limit, above=0, maximum=MAX_MILP_TIME_LIMIT
        ),
        model=_choice(node, "model", PerformanceModel, defaults.model),
        decide_serving=node.boolean("decideServing", defaults.decide_serving),
    )
