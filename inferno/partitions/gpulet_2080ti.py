"""GPU-let's 2080 Ti utilisation table (``resource/2080ti/UTIL.CSV``), at the batches its
interference model interpolates between: per model, L2 % then DRAM % at b = 1, 2, 4, 8, 16, 32,
measured with Nsight Compute at the whole GPU (docs/gpu-partitions.md reproduces it). Shipped
data, like the constants it goes with (:data:`.interference.GPULET_2080TI`): the reference
vectors' tests and the MPS sample's stand-in utilisation (bench/make_gpulets.py) read it."""

from __future__ import annotations

from .interference import UtilisationTable

__all__ = ["BATCHES", "L2_DRAM", "table"]

BATCHES = (1, 2, 4, 8, 16, 32)

L2_DRAM: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "bert": (
        (9.24, 10.66, 14.01, 16.25, 18.01, 18.30),
        (29.03, 29.28, 30.32, 30.20, 34.41, 34.72),
    ),
    "densenet161": (
        (8.99, 12.86, 19.29, 22.20, 23.36, 25.51),
        (18.31, 25.24, 36.60, 44.98, 53.89, 60.01),
    ),
    "googlenet": (
        (7.41, 12.27, 16.85, 22.33, 23.57, 24.92),
        (15.89, 23.91, 32.60, 43.39, 52.39, 56.28),
    ),
    "lenet": (
        (2.41, 2.52, 4.45, 4.35, 5.37, 6.97),
        (11.28, 11.22, 17.75, 14.98, 18.10, 25.40),
    ),
    "mnasnet1_0": (
        (8.01, 11.17, 14.98, 18.56, 21.50, 21.57),
        (20.02, 28.56, 37.84, 46.57, 54.27, 57.64),
    ),
    "mobilenet_v2": (
        (8.58, 12.24, 15.92, 20.71, 23.22, 23.87),
        (21.78, 30.30, 39.87, 51.09, 57.87, 62.28),
    ),
    "resnet50": (
        (15.40, 18.81, 23.02, 25.80, 26.78, 28.19),
        (27.94, 35.03, 43.91, 51.32, 58.42, 62.27),
    ),
    "ssd-mobilenetv1": (
        (10.58, 11.60, 15.76, 20.09, 23.35, 27.57),
        (20.50, 26.15, 34.27, 46.43, 54.05, 61.23),
    ),
    "vgg16": (
        (31.01, 33.76, 34.99, 32.06, 30.52, 30.22),
        (55.95, 55.93, 54.19, 56.68, 60.84, 61.15),
    ),
}


def table() -> UtilisationTable:
    return UtilisationTable(
        {
            m: dict(zip(BATCHES, zip(l2, dram, strict=True), strict=True))
            for m, (l2, dram) in L2_DRAM.items()
        }
    )
