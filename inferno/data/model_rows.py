"""The model-data file's rows (``model-data.json``) as :class:`~inferno.system.ModelProfile`:
every historical shape of the Go original's rows (G0 samples, prefill/decode, perfParms,
chunked prefill) and this project's ``batch`` kind, with contention and utilisation data. Part
of :mod:`.system_files`, which reads the whole system."""

from __future__ import annotations

from collections.abc import Mapping

from ..model.profiles import (
    BATCHING,
    DEFAULT_MAX_NUM_TOKENS,
    MAX_QUEUE_DELAY_MS,
    BatchProfile,
    G0Profile,
    G1Profile,
    G2Profile,
    G3Profile,
    Kind,
    Profile,
)
from ..system import Accelerator, ModelProfile
from ._json import Node
from ._rows import known, rows, tokens
from .limits import (
    MAX_BATCH_SIZE,
    MAX_COUNT,
    MAX_PROFILE_PARAMETER,
    MAX_QUANTITY,
    MAX_TIME_MS,
    MAX_TOKENS,
    MAX_TRITON_BATCH_SIZE,
    MIN_TOKENS,
)
from .partition_rows import utilization
from .serving_rows import contention

__all__ = ["model_profiles", "parse_kind"]


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
        if delay > MAX_QUEUE_DELAY_MS:
            raise row.member("queueDelayMs").error(
                f"expected a batching delay <= {MAX_QUEUE_DELAY_MS:g} ms (Triton's "
                f"max_queue_delay_microseconds; longer is a configuration mistake), got {delay:g}"
            )
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
    at_tokens = tokens(row, "atTokens", 0.0) or None  # 0 (or absent): not given
    if kind is Kind.G2:
        return G2Profile(alpha, beta, gamma, max_batch, at_tokens)
    max_tokens = row.integer(
        "maxNumTokens", DEFAULT_MAX_NUM_TOKENS, minimum=1, maximum=int(MAX_TOKENS)
    )
    return G3Profile(alpha, beta, gamma, max_batch, at_tokens, max_tokens)


def model_profiles(file: Node, accelerators: Mapping[str, Accelerator]) -> tuple[ModelProfile, ...]:
    profiles: list[ModelProfile] = []
    seen: set[tuple[str, str]] = set()
    for row in rows(file, "models"):
        model = row.string("name", nonempty=True)
        acc = row.string("acc", nonempty=True)
        if acc not in accelerators:
            raise row.member("acc").data_error(
                f"unknown accelerator {acc!r}; known accelerators: {known(accelerators)}"
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
                gpu_share=row.number("gpuShare", 1.0, above=0, maximum=1),
            )
        )
    return tuple(profiles)
