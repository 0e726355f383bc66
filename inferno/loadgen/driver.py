"""The open-loop driver: send every scheduled request at its time, whatever the answers.

Open loop means a slow server does not slow the generator down (a closed loop, like a fixed
number of virtual users, hides overload by sending less). Each request is its own task; the
driver only waits for the clock. Two things can still make it deviate, and both are recorded,
never hidden:

- **lag**: the event loop got to a send later than scheduled (a busy client machine). The
  summary reports the largest lag; a generator that lags by more than a fraction of the mean
  inter-arrival time is not offering the rate asked for.
- **in-flight cap**: with ``max_inflight`` requests unanswered, a new one is *not sent* and is
  counted as ``dropped`` (the open loop is kept; the server is overloaded or the cap too low).

At the end of the run the driver waits up to ``drain`` seconds for the answers still in flight;
those not back by then are counted as ``timeout`` errors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..units import MS_PER_S
from .schedule import ModelLoad, Schedule

__all__ = ["DROPPED", "TIMEOUT", "Infer", "LoadRun", "Progress", "drive", "error_kind"]

logger = logging.getLogger(__name__)

DROPPED = "dropped (in-flight cap reached)"
TIMEOUT = "timeout (no answer when the run ended)"


class Infer(Protocol):
    """One inference: what the driver calls for each request (the Triton client's ``infer``)."""

    def __call__(self, model: str, inputs: Mapping[str, NDArray[Any]]) -> Awaitable[None]: ...


@dataclass
class Progress:
    """Live counters, for a progress bar."""

    scheduled: int
    sent: int = 0
    ok: int = 0
    errors: int = 0
    inflight: int = 0


@dataclass(frozen=True)
class LoadRun:
    """Per request (in schedule order): which load, when scheduled and sent (s from the
    start), its latency in ms (NaN when it failed or was not sent), and its error (empty: ok)."""

    loads: tuple[ModelLoad, ...]
    duration: float
    which: NDArray[np.intp]
    scheduled: NDArray[np.float64]
    sent: NDArray[np.float64]
    latency_ms: NDArray[np.float64]
    errors: tuple[str, ...]
    wall: float  # seconds from the first send to the last answer (or drain end)


async def drive(
    infer: Infer,
    loads: Sequence[ModelLoad],
    plan: Schedule,
    inputs: Sequence[Mapping[str, NDArray[Any]]],
    *,
    duration: float,
    max_inflight: int = 4096,
    drain: float = 30.0,
    progress: Callable[[Progress], None] | None = None,
    progress_every: float = 0.25,
) -> LoadRun:
    """Run ``plan`` against ``infer``; ``inputs[i]`` is the request body of ``loads[i]``."""
    n = len(plan)
    sent = np.full(n, np.nan)
    latency = np.full(n, np.nan)
    errors = [""] * n
    state = Progress(scheduled=n)
    pending: set[asyncio.Task[None]] = set()
    clock = time.perf_counter

    async def one(k: int, model: str, body: Mapping[str, NDArray[Any]]) -> None:
        t0 = clock()
        try:
            await infer(model, body)
        except asyncio.CancelledError:
            errors[k] = TIMEOUT
            state.errors += 1
            raise
        except Exception as exc:
            errors[k] = error_kind(exc)
            state.errors += 1
        else:
            latency[k] = (clock() - t0) * MS_PER_S
            state.ok += 1
        finally:
            state.inflight -= 1

    loop_start = clock()
    next_report = 0.0
    for k in range(n):
        due = loop_start + float(plan.times[k])
        while True:
            now = clock()
            if progress is not None and now - loop_start >= next_report:
                progress(state)
                next_report = now - loop_start + progress_every
            if now >= due:
                break
            await asyncio.sleep(min(due - now, progress_every))
        i = int(plan.which[k])
        if state.inflight >= max_inflight:
            errors[k] = DROPPED
            state.errors += 1
            continue
        sent[k] = clock() - loop_start
        state.sent += 1
        state.inflight += 1
        task = asyncio.create_task(one(k, loads[i].model, inputs[i]))
        pending.add(task)
        task.add_done_callback(pending.discard)
    # the schedule ends before ``duration`` (its last gap): wait out the run, then drain
    while clock() - loop_start < duration:
        await asyncio.sleep(min(progress_every, duration - (clock() - loop_start)))
        if progress is not None:
            progress(state)
    if pending:
        _, late = await asyncio.wait(set(pending), timeout=drain)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            logger.warning("%d request(s) unanswered %gs after the run: timeouts", len(late), drain)
    wall = clock() - loop_start
    if progress is not None:
        progress(state)
    return LoadRun(
        tuple(loads),
        duration,
        plan.which.copy(),
        plan.times.copy(),
        sent,
        latency,
        tuple(errors),
        wall,
    )


def error_kind(exc: BaseException) -> str:
    """A short, groupable description of a failed request."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    name = type(exc).__name__
    return f"{name}: {text}"[:160] if text else name
