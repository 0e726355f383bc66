"""The closed-loop driver: N users per model, each sending a request, waiting for its answer,
then thinking before the next (Locust's users, siege's ``-c``), for a duration or a number of
repetitions per user.

Unlike the open loop, the offered rate here depends on the server: with N users, response time R
and mean think time Z, a user completes one request per R + Z, so the rate is N / (R + Z)
(Little's law on the whole loop). A slower server gets fewer requests — which is what a fixed
population of interactive clients does, and why an open loop is the right tool to find where a
server breaks.

Users start spread uniformly over the first mean think time (all at once when there is none), so
they do not arrive in lockstep. A think time that would cross the end of the run is cut there;
a request in flight at the end is waited for up to ``drain`` seconds, then counted as a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .driver import TIMEOUT, Infer, Progress, error_kind
from .think import ThinkTime

__all__ = ["UserRun", "run_users"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserRun:
    """Per request (in the order answered): which model and user sent it, when it was sent and
    answered (s from the start of the run) and its error (empty: ok)."""

    models: tuple[str, ...]
    users: int  # per model
    think: ThinkTime
    duration: float | None
    reps: int | None
    which: NDArray[np.intp]
    user: NDArray[np.intp]
    start: NDArray[np.float64]
    end: NDArray[np.float64]
    errors: tuple[str, ...]
    wall: float  # seconds from the start to the last user done
    thinks: int = 0  # think periods after an answer (not the start's spread)
    think_total_s: float = 0.0  # their measured length, in all

    @property
    def ok(self) -> NDArray[np.bool_]:
        return np.array([not e for e in self.errors], dtype=bool)

    @property
    def think_mean_s(self) -> float:
        """The mean think time the users really spent (cut at the end, as slept): with a random
        think time it differs from the asked mean by its sampling error."""
        return self.think_total_s / self.thinks if self.thinks else float("nan")


async def run_users(
    infer: Infer,
    models: Sequence[str],
    inputs: Sequence[Mapping[str, NDArray[Any]]],
    *,
    users: int,
    think: ThinkTime,
    duration: float | None = None,
    reps: int | None = None,
    seed: int = 0,
    drain: float = 30.0,
    progress: Callable[[Progress], None] | None = None,
    progress_every: float = 0.25,
) -> UserRun:
    """``users`` users per model of ``models`` (``inputs[i]`` is the body of model i's requests)
    until ``duration`` seconds pass or each has sent ``reps`` requests, whichever comes first."""
    if users < 1:
        raise ValueError(f"users must be ≥ 1, got {users}")
    if duration is None and reps is None:
        raise ValueError("give a duration, a number of repetitions or both")
    if duration is not None and not duration > 0:
        raise ValueError(f"the duration must be > 0 s, got {duration!r}")
    if reps is not None and reps < 1:
        raise ValueError(f"reps must be ≥ 1, got {reps}")
    clock = time.perf_counter
    total = len(models) * users * reps if reps is not None else 0
    state = Progress(scheduled=total)
    rows: list[tuple[int, int, float, float, str]] = []
    thought = [0, 0.0]  # think periods, seconds
    origin = clock()
    deadline = origin + duration if duration is not None else float("inf")

    async def user(i: int, u: int) -> None:
        rng = np.random.default_rng([seed, i, u])
        wait = float(rng.uniform(0.0, think.mean)) if think.mean > 0 else 0.0
        sent = 0
        while True:
            before = clock()
            wait = min(wait, deadline - before)
            # sleep(0) too: a request that fails at once must not starve the event loop
            await asyncio.sleep(max(wait, 0.0))
            if sent:  # a think after an answer (not the start's spread)
                thought[0] += 1
                thought[1] += clock() - before
            if clock() >= deadline:
                return
            t0 = clock()
            state.sent += 1
            state.inflight += 1
            try:
                await infer(models[i], inputs[i])
            except asyncio.CancelledError:
                rows.append((i, u, t0 - origin, clock() - origin, TIMEOUT))
                state.errors += 1
                raise
            except Exception as exc:
                rows.append((i, u, t0 - origin, clock() - origin, error_kind(exc)))
                state.errors += 1
            else:
                rows.append((i, u, t0 - origin, clock() - origin, ""))
                state.ok += 1
            finally:
                state.inflight -= 1
            sent += 1
            if reps is not None and sent >= reps:
                return
            wait = think.draw(rng)

    tasks = [asyncio.create_task(user(i, u)) for i in range(len(models)) for u in range(users)]
    limit = None if duration is None else duration + drain
    pending: set[asyncio.Task[None]] = set(tasks)
    while pending:
        step = progress_every
        if limit is not None:
            step = min(step, limit - (clock() - origin))
            if step <= 0:
                break
        _, pending = await asyncio.wait(pending, timeout=step)
        if progress is not None:
            progress(state)
    if pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
        logger.warning("%d user(s) still waiting %gs after the run: timeouts", len(pending), drain)
    for task in tasks:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure  # a bug in the loop, not a failed request (those are recorded)
    wall = clock() - origin
    if progress is not None:
        progress(state)
    rows.sort(key=lambda r: r[3])
    return UserRun(
        tuple(models),
        users,
        think,
        duration,
        reps,
        np.array([r[0] for r in rows], dtype=np.intp),
        np.array([r[1] for r in rows], dtype=np.intp),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.float64),
        tuple(r[4] for r in rows),
        wall,
        int(thought[0]),
        float(thought[1]),
    )
