"""The queueing model of a batched inference server (pure: numpy and scipy only).

The names below are the model's public surface, what the other packages use: profiles
(:mod:`.profiles`), operating points and their metrics (:mod:`.points`), the largest rate meeting
the SLOs (:mod:`.sizing`), Inferno's single-server analyzer (:mod:`.analyzer`), the knee batch
(:mod:`.batching`), Triton's dynamic batching (:mod:`.bulk`) and the latency distributions
(:mod:`.percentiles`, :mod:`.quantiles`).

They are imported on first use (PEP 562), so ``import inferno.model.profiles`` — what
:mod:`inferno.system` needs — does not load the solvers' numpy/scipy machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._lengths_capped import largest_served_cv, served_cdf
    from .analyzer import Analysis, analyze_rate, analyze_targets
    from .batching import knee_batches
    from .bulk import BulkMetrics, BulkResponseTime, bulk_metrics
    from .percentiles import ResponseTime, quantile
    from .points import Metrics, OperatingPoints
    from .profile_arrays import ProfileArrays, batch_limit
    from .profiles import (
        BATCHING,
        DEFAULT_MAX_NUM_TOKENS,
        BatchProfile,
        G0Profile,
        G1Profile,
        G2Profile,
        G3Profile,
        Kind,
        Profile,
        Tokens,
    )
    from .quantiles import latency_quantiles, ttft_quantiles, wait_quantiles
    from .sizing import HIGH_FRACTION, LOW_FRACTION, Sizing, SloArrays, size

__all__ = [
    "BATCHING",
    "DEFAULT_MAX_NUM_TOKENS",
    "HIGH_FRACTION",
    "LOW_FRACTION",
    "Analysis",
    "BatchProfile",
    "BulkMetrics",
    "BulkResponseTime",
    "G0Profile",
    "G1Profile",
    "G2Profile",
    "G3Profile",
    "Kind",
    "Metrics",
    "OperatingPoints",
    "Profile",
    "ProfileArrays",
    "ResponseTime",
    "Sizing",
    "SloArrays",
    "Tokens",
    "analyze_rate",
    "analyze_targets",
    "batch_limit",
    "bulk_metrics",
    "knee_batches",
    "largest_served_cv",
    "latency_quantiles",
    "quantile",
    "served_cdf",
    "size",
    "ttft_quantiles",
    "wait_quantiles",
]

#: each public name → the submodule that defines it
_HOME = {
    **dict.fromkeys(("Analysis", "analyze_rate", "analyze_targets"), "analyzer"),
    "knee_batches": "batching",
    **dict.fromkeys(("largest_served_cv", "served_cdf"), "_lengths_capped"),
    **dict.fromkeys(("BulkMetrics", "BulkResponseTime", "bulk_metrics"), "bulk"),
    **dict.fromkeys(("ResponseTime", "quantile"), "percentiles"),
    **dict.fromkeys(("Metrics", "OperatingPoints"), "points"),
    **dict.fromkeys(("ProfileArrays", "batch_limit"), "profile_arrays"),
    **dict.fromkeys(
        (
            "BATCHING",
            "DEFAULT_MAX_NUM_TOKENS",
            "BatchProfile",
            "G0Profile",
            "G1Profile",
            "G2Profile",
            "G3Profile",
            "Kind",
            "Profile",
            "Tokens",
        ),
        "profiles",
    ),
    **dict.fromkeys(("latency_quantiles", "ttft_quantiles", "wait_quantiles"), "quantiles"),
    **dict.fromkeys(("HIGH_FRACTION", "LOW_FRACTION", "Sizing", "SloArrays", "size"), "sizing"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
