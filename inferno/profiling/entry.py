"""Profile entries in the model-data format (``model-data.json`` rows), and merging them into
an existing file's document (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .fit import ProfileFit

__all__ = ["batch_entry", "g2_entry", "merge_entry"]


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def batch_entry(
    model: str,
    accelerator: str,
    fit: ProfileFit,
    *,
    max_batch_size: int,
    queue_delay_ms: float = 0.0,
    acc_count: int = 1,
    gpu_share: float | None = None,
) -> dict[str, Any]:
    """A ``kind: "batch"`` row; ``gpu_share`` (measured, in (0, 1]) as its ``gpuShare``."""
    row: dict[str, Any] = {
        "name": model,
        "acc": accelerator,
        "accCount": acc_count,
        "kind": "batch",
        "alpha": _round(fit.fit.value("alpha")),
        "beta": _round(fit.fit.value("beta")),
        "maxBatchSize": max_batch_size,
    }
    if queue_delay_ms > 0:
        row["queueDelayMs"] = _round(queue_delay_ms)
    if gpu_share is not None:
        if not 0 < gpu_share <= 1:
            raise ValueError(f"gpuShare must be in (0, 1], got {gpu_share!r}")
        row["gpuShare"] = min(_round(gpu_share), 1.0)
    return row


def g2_entry(
    model: str,
    accelerator: str,
    fit: ProfileFit,
    *,
    max_batch_size: int,
    at_tokens: float | None = None,
    acc_count: int = 1,
) -> dict[str, Any]:
    """A G2 row (``perfParms``)."""
    row: dict[str, Any] = {
        "name": model,
        "acc": accelerator,
        "accCount": acc_count,
        "kind": "G2",
        "maxBatchSize": max_batch_size,
        "perfParms": {k: _round(fit.fit.value(k)) for k in ("alpha", "beta", "gamma")},
    }
    if at_tokens:
        row["atTokens"] = at_tokens
    return row


def merge_entry(document: Mapping[str, Any], row: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``document`` (a model-data.json) with ``row`` in place of the row of the same model and
    accelerator, or appended. Returns the new document and whether a row was replaced."""
    models = list(document.get("models") or [])
    replaced = False
    for i, old in enumerate(models):
        if (
            isinstance(old, Mapping)
            and old.get("name") == row["name"]
            and old.get("acc") == row["acc"]
        ):
            models[i] = dict(row)
            replaced = True
    if not replaced:
        models.append(dict(row))
    return {**document, "models": models}, replaced
