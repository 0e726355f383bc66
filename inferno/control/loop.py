"""The controller's state and its periodic task, without HTTP: :class:`ControlLoop`.

One cycle at a time (a lock); the last report and the reports of recent cycles by id; the
periodic task (every ``period`` seconds; a tick that finds a cycle running is skipped); leader
election, when an elector is given: only the leader runs cycles, and it asks again before the
update phase's deadline is set. The HTTP routes of :mod:`inferno.services.controller` are thin
calls into it; tests drive it directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace

from ..errors import InfernoError
from ..k8s import ClusterAPI
from .cycle import CyclePhases, CycleReport, new_stamp, run_cycle
from .leader import LeaderElector
from .mig import MigOptions
from .policy import Policy
from .state import StateStore

__all__ = ["Busy", "ControlLoop", "NotLeader"]

logger = logging.getLogger(__name__)

#: reports kept for ``report(cycle_id)``
KEPT = 32


class Busy(InfernoError):
    """A cycle is already running."""


class NotLeader(InfernoError):
    """Another instance holds the Lease: this one does not actuate."""


class ControlLoop:
    """Runs cycles over ``phases``; ``on_report`` sees every report (metrics)."""

    def __init__(
        self,
        phases: CyclePhases,
        *,
        api: ClusterAPI | None = None,
        period: float = 0.0,
        deadline: float = 30.0,
        elector: LeaderElector | None = None,
        on_report: Callable[[CycleReport], None] | None = None,
        policy: Policy | None = None,
        store: StateStore | None = None,
        mig: MigOptions | None = None,
    ) -> None:
        self.phases = phases
        self.api = api
        self.period = period
        self.deadline = deadline
        self.elector = elector
        self.on_report = on_report
        self.policy = policy
        self.store = store
        self.mig = mig  # apply MIG geometries to opted-in nodes (INFERNO_MIG_APPLY)
        self._lock = asyncio.Lock()
        self._last_sequence = 0  # the last cycle's sequence (:meth:`_locked`)
        self._reports: OrderedDict[str, CycleReport] = OrderedDict()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[CycleReport]] = set()
        self.last_ok_at: float | None = None  # Unix time of the last successful cycle

    # -- state

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def last(self) -> CycleReport | None:
        return next(reversed(self._reports.values()), None)

    def report(self, cycle: str) -> CycleReport | None:
        return self._reports.get(cycle)

    @property
    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader

    def problems(self) -> list[str]:
        """Why this loop cannot work (liveness): a task of its own that died."""
        out = []
        for task in self._tasks:
            if task.done() and not task.cancelled():
                out.append(f"the {task.get_name()} task has stopped")
        return out

    # -- cycles

    async def run_once(self, trigger: str) -> CycleReport:
        """Run one cycle now (Busy, NotLeader). The cycle is its own task: a caller that goes
        away (a client disconnecting) does not cut an actuation short."""
        if not self.is_leader:
            holder = self.elector.holder if self.elector is not None else ""
            raise NotLeader(f"this instance is not the leader (the Lease is held by {holder!r})")
        if self._lock.locked():
            raise Busy("a cycle is already running")
        await self._lock.acquire()  # free: returns at once, no other task can take it between
        task = asyncio.create_task(self._locked(trigger))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return await asyncio.shield(task)

    async def _locked(self, trigger: str) -> CycleReport:
        try:
            # sequences only grow, even when the wall clock steps back: the actuator refuses a
            # plan older than one it applied, and every Deployment one older than its
            # annotation's (a clock stepped back an hour would stop every update for an hour)
            stamp = new_stamp(self.deadline)
            if stamp.sequence <= self._last_sequence:
                stamp = replace(stamp, sequence=self._last_sequence + 1)
            self._last_sequence = stamp.sequence
            report = await run_cycle(
                self.phases,
                api=self.api,
                trigger=trigger,
                deadline=self.deadline,
                policy=self.policy,
                mig=self.mig,
                stamp=stamp,
            )
        finally:
            self._lock.release()
        if self.store is not None and self.policy is not None:
            await asyncio.to_thread(self.store.save, self.policy.state)
        self._reports[report.cycle] = report
        while len(self._reports) > KEPT:
            self._reports.popitem(last=False)
        if report.ok:
            self.last_ok_at = time.time()
        if self.on_report is not None:
            try:
                self.on_report(report)
            except Exception:  # metrics must never break the loop
                logger.exception("recording the cycle's report failed")
        return report

    # -- tasks

    async def start(self) -> None:
        self._stop.clear()
        if self.store is not None and self.policy is not None:
            self.policy.state = await asyncio.to_thread(self.store.load)
        if self.elector is not None:
            # one election round before serving: a single instance leads from the start
            await asyncio.to_thread(self.elector.tick)
            self._tasks.append(asyncio.create_task(self._elect(), name="leader-election"))
        if self.period > 0:
            self._tasks.append(asyncio.create_task(self._periodic(), name="control-loop"))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the tasks; a running cycle gets ``grace`` seconds to finish."""
        self._stop.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=grace)
            except TimeoutError:
                logger.warning(
                    "control loop: the %s task was cancelled at shutdown", task.get_name()
                )
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("control loop: the %s task had failed", task.get_name())
        self._tasks.clear()
        if self.elector is not None:
            await asyncio.to_thread(self.elector.release)

    async def _sleep(self, seconds: float) -> bool:
        """Wait; True when asked to stop."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        return self._stop.is_set()

    async def _elect(self) -> None:
        assert self.elector is not None
        while not await self._sleep(self.elector.period):
            await asyncio.to_thread(self.elector.tick)

    async def _periodic(self) -> None:
        logger.info("control loop: a cycle every %g s", self.period)
        while not await self._sleep(self.period):
            if self.busy:
                logger.info("control loop: a cycle is running; this tick is skipped")
                continue
            try:
                await self.run_once("periodic")
            except (Busy, NotLeader) as exc:
                logger.info("control loop: %s; this tick is skipped", exc)
            except Exception:  # run_cycle reports failures; this is a bug, keep looping
                logger.exception("control loop: the cycle raised")
