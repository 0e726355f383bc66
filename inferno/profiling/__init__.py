"""Profiles from measurements (``inferno profile``): measure a Triton model, fit the profile's
parameters by least squares, write a model-data row."""

from __future__ import annotations

from .entry import batch_entry, g2_entry, merge_entry
from .fit import (
    BatchPoint,
    FitError,
    LinearFit,
    LlmPoint,
    ProfileFit,
    fit_batch,
    fit_g2,
    fit_linear,
)
from .measure import Level, Measurement, MeasureOptions, measure_batch

__all__ = [
    "BatchPoint",
    "FitError",
    "Level",
    "LinearFit",
    "LlmPoint",
    "MeasureOptions",
    "Measurement",
    "ProfileFit",
    "batch_entry",
    "fit_batch",
    "fit_g2",
    "fit_linear",
    "g2_entry",
    "measure_batch",
    "merge_entry",
]
