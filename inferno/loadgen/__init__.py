"""Open-loop load generation (``inferno load``): a schedule of requests from the emulator's
traces, a driver that sends them on time whatever the server does, and a summary."""

from __future__ import annotations

from .driver import DROPPED, TIMEOUT, Infer, LoadRun, Progress, drive
from .schedule import ModelLoad, Schedule, schedule
from .summary import PERCENTILES, ModelSummary, summarize

__all__ = [
    "DROPPED",
    "PERCENTILES",
    "TIMEOUT",
    "Infer",
    "LoadRun",
    "ModelLoad",
    "ModelSummary",
    "Progress",
    "Schedule",
    "drive",
    "schedule",
    "summarize",
]
