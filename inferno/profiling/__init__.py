"""Profiles from measurements (``inferno profile``): measure a Triton model, fit the profile's
parameters by least squares, write a model-data row."""

from __future__ import annotations

from .entry import batch_entry, g2_entry, merge_entry
from .fit import (
    BatchPoint,
    FitError,
    LinearFit,
    LlmPoint,
    Overhead,
    ProfileFit,
    capacity,
    fit_batch,
    fit_g2,
    fit_linear,
    request_overhead,
)
from .gpu_share import ComputeSplit
from .measure import (
    Level,
    Measurement,
    MeasureOptions,
    Shape,
    auto_concurrency,
    measure,
    measure_batch,
    measure_single,
)
from .resources import ProcessSampler, ResourceUse, check_pid
from .serving import contention_factors, merge_row, resource_levels, saturated_throughput

__all__ = [
    "BatchPoint",
    "ComputeSplit",
    "FitError",
    "Level",
    "LinearFit",
    "LlmPoint",
    "MeasureOptions",
    "Measurement",
    "Overhead",
    "ProcessSampler",
    "ProfileFit",
    "ResourceUse",
    "Shape",
    "auto_concurrency",
    "batch_entry",
    "capacity",
    "check_pid",
    "contention_factors",
    "fit_batch",
    "fit_g2",
    "fit_linear",
    "g2_entry",
    "measure",
    "measure_batch",
    "measure_single",
    "merge_entry",
    "merge_row",
    "request_overhead",
    "resource_levels",
    "saturated_throughput",
]
