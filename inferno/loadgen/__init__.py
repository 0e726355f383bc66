"""Load generation (``inferno load``): an open loop (a schedule of requests from the emulator's
traces, and a driver that sends them on time whatever the server does) and a closed loop (users
that send, wait for the answer and think), with per-model summaries and siege's statistics."""

from __future__ import annotations

from .driver import DROPPED, TIMEOUT, Infer, LoadRun, Progress, drive, error_kind
from .schedule import ModelLoad, Schedule, schedule
from .summary import (
    PERCENTILES,
    ModelSummary,
    UserSummary,
    open_transactions,
    summarize,
    summarize_users,
)
from .think import ThinkTime
from .transactions import MB, SIEGE_PERCENTILES, TransactionStats, transaction_stats
from .users import UserRun, run_users

__all__ = [
    "DROPPED",
    "MB",
    "PERCENTILES",
    "SIEGE_PERCENTILES",
    "TIMEOUT",
    "Infer",
    "LoadRun",
    "ModelLoad",
    "ModelSummary",
    "Progress",
    "Schedule",
    "ThinkTime",
    "TransactionStats",
    "UserRun",
    "UserSummary",
    "drive",
    "error_kind",
    "open_transactions",
    "run_users",
    "schedule",
    "summarize",
    "summarize_users",
    "transaction_stats",
]
