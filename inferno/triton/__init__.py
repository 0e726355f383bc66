"""Triton Inference Server: the client adapter (:mod:`._client`, the only code that talks to
Triton), request tensors from a model's metadata, and its statistics."""

from __future__ import annotations

from ._client import (
    ModelInfo,
    Protocol,
    TensorSpec,
    TritonClient,
    TritonError,
    TritonModelError,
    TritonRequestError,
    TritonUnavailable,
    model_info_from_json,
    parse_url,
)
from .inputs import make_inputs
from .stats import BatchStat, ModelStatistics, StatisticsError, parse_statistics

__all__ = [
    "BatchStat",
    "ModelInfo",
    "ModelStatistics",
    "Protocol",
    "StatisticsError",
    "TensorSpec",
    "TritonClient",
    "TritonError",
    "TritonModelError",
    "TritonRequestError",
    "TritonUnavailable",
    "make_inputs",
    "model_info_from_json",
    "parse_statistics",
    "parse_url",
]
