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

The model rows are read by :mod:`.model_rows`, the service classes by :mod:`.class_rows`, the
partitions of an accelerator row by :mod:`.partition_rows`; this module reads the accelerators,
capacity, servers and optimizer options and assembles the system.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from ..errors import DataError, InputError
from ..model.accurate import LENGTH_FAMILIES
from ..model.profiles import (
    BatchProfile,
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
    cv_beyond_cap,
)
from ._json import Node, read_json
from ._rows import frozen, known, rows, tokens
from .class_rows import service_classes
from .limits import (
    MAX_ARRIVAL_RATE,
    MAX_BATCH_SIZE,
    MAX_COST,
    MAX_COUNT,
    MAX_MILP_TIME_LIMIT,
    MAX_QUANTITY,
    MAX_QUEUE_FACTOR,
    MAX_QUEUE_SIZE,
    MAX_TOKENS,
    MAX_TRITON_BATCH_SIZE,
    MIN_TOKENS,
)
from .model_rows import model_profiles, parse_kind
from .partition_rows import derive_profiles, partition_accelerators
from .plain_rows import DEFAULT_CLASS, plain_server

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
    capacity = frozen({} if capacity_node is None else _capacity(capacity_node))
    profiles = model_profiles(required(MODEL_FILE), accelerators)
    derived, notes = derive_profiles(profiles, accelerators)
    profiles += derived
    classes = service_classes(required(SERVICE_CLASS_FILE))
    servers = _servers(required(SERVER_FILE), classes, accelerators, _triton_models(profiles))
    return System(
        accelerators=frozen(accelerators),
        profiles=profiles,
        classes=frozen(classes),
        servers=servers,
        capacity=capacity,
        optimizer=optimizer,
        notes=notes,
    )


# -- accelerators and capacity ------------------------------------------------------------------


def _accelerators(file: Node) -> dict[str, Accelerator]:
    accelerators: dict[str, Accelerator] = {}
    for row in rows(file, "accelerators"):
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
    for row in rows(file, "count"):
        kind = row.string("type", nonempty=True)
        if kind in capacity:
            raise row.member("type").data_error(f"duplicate capacity for accelerator type {kind!r}")
        capacity[kind] = row.integer("count", minimum=0, maximum=MAX_COUNT)
    return capacity


# -- servers ------------------------------------------------------------------------------------


def _length_family(node: Node, key: str = "outTokensDist") -> str | None:
    family = node.string(key, None)
    if family is not None and family not in LENGTH_FAMILIES:
        which = "output" if key.startswith("out") else "input"
        known = ", ".join(LENGTH_FAMILIES)
        raise node.member(key).error(
            f"unknown {which}-length family {family!r}; expected one of {known}"
        )
    return family


def _load(node: Node | None) -> Load:
    if node is None:
        return Load(arrival_rate=0.0)
    rate = node.number("arrivalRate", minimum=0, maximum=MAX_ARRIVAL_RATE)
    cov = {
        "arrival_cov": node.number("arrivalCOV", None, minimum=0, maximum=MAX_QUANTITY),
        "service_cov": node.number("serviceCOV", None, minimum=0, maximum=MAX_QUANTITY),
        "out_tokens_cov": node.number("outTokensCOV", None, minimum=0, maximum=MAX_QUANTITY),
        "in_tokens_cov": node.number("inTokensCOV", None, minimum=0, maximum=MAX_QUANTITY),
    }
    family = _length_family(node)
    in_family = _length_family(node, "inTokensDist")
    most = node.number("outTokensMax", None, minimum=1, maximum=MAX_TOKENS)
    if node.has("avgLength"):
        if node.has("avgInTokens") or node.has("avgOutTokens"):
            raise node.error("give either avgLength or avgInTokens and avgOutTokens, not both")
        length = node.number("avgLength", minimum=0, maximum=MAX_TOKENS, least_positive=MIN_TOKENS)
        _within_cap(node, "avgLength", length, most, cov["out_tokens_cov"])
        return Load(
            arrival_rate=rate,
            in_tokens=0.0,
            out_tokens=length,
            out_tokens_dist=family,
            in_tokens_dist=in_family,
            out_tokens_max=most,
            **cov,
        )
    out = tokens(node, "avgOutTokens", 0.0)
    _within_cap(node, "avgOutTokens", out, most, cov["out_tokens_cov"])
    return Load(
        arrival_rate=rate,
        in_tokens=tokens(node, "avgInTokens", 0.0),
        out_tokens=out,
        out_tokens_dist=family,
        in_tokens_dist=in_family,
        out_tokens_max=most,
        **cov,
    )


def _within_cap(node: Node, key: str, mean: float, most: float | None, cv: float | None) -> None:
    """Lengths served at most ``most`` tokens have a mean of at most that, and an SCV of at
    most most/mean − 1 (half of them at 0, half at the cap)."""
    if most is None:
        return
    if mean > most:
        raise node.member("outTokensMax").error(
            f"outTokensMax ({most:g}) is below {key} ({mean:g}): served lengths never exceed it"
        )
    if cv is not None and cv_beyond_cap(cv, mean, most):
        largest = (most / mean - 1.0) ** 0.5
        raise node.member("outTokensCOV").error(
            f"outTokensCOV ({cv:g}) is more than lengths of mean {mean:g} served at most "
            f"outTokensMax ({most:g}) tokens can have ({largest:.4g})"
        )


def _current(node: Node | None, accelerators: Mapping[str, Accelerator]) -> CurrentAllocation:
    if node is None:
        return CurrentAllocation()
    acc = node.string("accelerator", "")
    if acc and acc not in accelerators:
        raise node.member("accelerator").data_error(
            f"unknown accelerator {acc!r}; known accelerators: {known(accelerators)}"
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
            f"unknown service class {service_class!r}; known classes: {known(classes)}",
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
        batch_tolerance=row.number("batchTolerance", None, minimum=0, maximum=0.99),
    )


def _servers(
    file: Node,
    classes: Mapping[str, ServiceClass],
    accelerators: Mapping[str, Accelerator],
    triton_models: Mapping[str, str],
) -> tuple[Server, ...]:
    servers: dict[str, Server] = {}
    for row in rows(file, "servers"):
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
        offer_no_delay=node.boolean("offerNoDelay", defaults.offer_no_delay),
    )
