"""Request tensors for a model, made from its metadata (pure): what ``inferno load`` and
``inferno profile`` send.

Variable dimensions (``-1``) take the size given in ``shapes`` (``{"INPUT0": (16,)}``), or 1.
Numbers are random (seeded); ``BYTES`` inputs are short byte strings. When the model batches
(``max_batch_size > 0``) a batch dimension of ``batch`` is put in front.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._client import ModelInfo, TritonModelError, numpy_type

__all__ = ["make_inputs"]


def make_inputs(
    info: ModelInfo,
    *,
    batch: int = 1,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    seed: int = 0,
) -> dict[str, NDArray[Any]]:
    """One request's inputs: arrays named as the model's inputs."""
    shapes = dict(shapes or {})
    unknown = sorted(set(shapes) - {t.name for t in info.inputs})
    if unknown:
        names = ", ".join(t.name for t in info.inputs)
        raise TritonModelError(
            f"model {info.name!r} has no input {', '.join(map(repr, unknown))} (inputs: {names})",
            model=info.name,
        )
    if batch < 1:
        raise TritonModelError(f"batch must be ≥ 1, got {batch}", model=info.name)
    if info.max_batch_size == 0 and batch != 1:
        raise TritonModelError(
            f"model {info.name!r} does not batch (max_batch_size 0): requests carry one item",
            model=info.name,
        )
    if info.max_batch_size and batch > info.max_batch_size:
        raise TritonModelError(
            f"model {info.name!r}: batch {batch} exceeds its max_batch_size {info.max_batch_size}",
            model=info.name,
        )
    rng = np.random.default_rng(seed)
    out: dict[str, NDArray[Any]] = {}
    for spec in info.inputs:
        given = shapes.get(spec.name)
        if given is not None:
            if len(given) != len(spec.shape) or any(
                d != g and d != -1 for d, g in zip(spec.shape, given, strict=True)
            ):
                raise TritonModelError(
                    f"input {spec.name!r} of model {info.name!r} has shape {list(spec.shape)}; "
                    f"{list(given)} does not fit it",
                    model=info.name,
                )
            dims = tuple(given)
        else:
            dims = tuple(1 if d < 0 else d for d in spec.shape)
        full = ((batch,) if info.max_batch_size > 0 else ()) + dims
        dtype = numpy_type(spec.datatype)
        if dtype is np.object_:
            data = np.array([b"inferno"] * int(np.prod(full)), dtype=np.object_).reshape(full)
        elif dtype is np.bool_:
            data = rng.integers(0, 2, size=full).astype(np.bool_)
        elif np.issubdtype(dtype, np.integer):
            data = rng.integers(0, 100, size=full).astype(dtype)
        else:
            data = rng.random(size=full).astype(dtype)
        out[spec.name] = data
    return out
