"""What a server process uses while a load level runs: CPU (cores) and memory (MiB), sampled
from Linux's ``/proc`` (psutil is not a dependency; ``/proc`` is what it reads too).

A :class:`ProcessSampler` follows a process **and its descendants** — a container's processes
are all charged to it: Triton's ``tritonserver``, its Python backend stubs, PyTriton's
callable process — and samples them every ``interval`` seconds on a thread between
:meth:`~ProcessSampler.start` and :meth:`~ProcessSampler.stop`:

- CPU: the tree's ``utime + stime`` (``/proc/<pid>/stat``, in clock ticks) between two samples,
  over the time between them: the cores used in that interval. The mean over the level is the
  ticks between its first and last samples over its length; the p95 is over the intervals.
  Ticks are 1/``SC_CLK_TCK`` s (10 ms): an interval of 0.2 s resolves 0.05 cores per process.
  A process that exits between samples takes its last ticks with it.
- memory: the tree's proportional set size (``Pss`` of ``/proc/<pid>/smaps_rollup``: a page
  shared by k processes counts 1/k to each, so the sum counts it once, as the container's
  cgroup charges it), or its ``VmRSS`` when ``smaps_rollup`` cannot be read (an older kernel,
  another user's process): then shared pages count once per process, an overstatement. The
  peak is the largest sum sampled.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["ProcessSampler", "ResourceUse", "check_pid"]

logger = logging.getLogger(__name__)

PROC = Path("/proc")
KIB_PER_MIB = 1024.0


def _ticks_per_second() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError):  # pragma: no cover - every Linux has it
        return 100.0


TICKS = _ticks_per_second()


@dataclass(frozen=True, slots=True)
class ResourceUse:
    """One level's use: CPU in cores (mean, p95 of the intervals), memory in MiB (peak)."""

    cpu_mean: float
    cpu_p95: float
    memory_peak_mib: float
    samples: int  # CPU intervals
    seconds: float
    memory: str  # "pss" or "rss"
    #: the cores of each interval (not written to the row: what a caller compares a request with)
    cores: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def share_above(self, cores: float) -> float:
        """The share of the intervals that used more than ``cores``."""
        return sum(c > cores for c in self.cores) / len(self.cores) if self.cores else 0.0

    def to_json(self) -> dict[str, float | int | str]:
        return {
            "cpuMean": round(self.cpu_mean, 4),
            "cpuP95": round(self.cpu_p95, 4),
            "memoryPeakMiB": round(self.memory_peak_mib, 1),
            "samples": self.samples,
            "seconds": round(self.seconds, 3),
        }


def check_pid(pid: int) -> None:
    """An :class:`InputError` unless ``pid`` is a process this machine runs and we can read."""
    if pid < 1:
        raise InputError(f"--pid must be a process id ≥ 1, got {pid}")
    if _stat(pid) is None:
        raise InputError(f"--pid {pid}: no such process on this machine (is the server local?)")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, utime + stime ticks) of ``pid``, None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or parentheses
    fields = text[text.rindex(")") + 2 :].split()
    # after the name: state ppid ... utime (14th field overall) stime (15th)
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _memory_kib(pid: int) -> tuple[float, str] | None:
    """(memory in KiB, "pss" or "rss") of ``pid``."""
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return float(line.split()[1]), "pss"
    except (OSError, ValueError, IndexError):
        pass
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]), "rss"
    except (OSError, ValueError, IndexError):
        return None
    return 0.0, "rss"  # a kernel thread or a zombie: no memory of its own


def _tree(root: int) -> dict[int, int]:
    """Ticks of ``root`` and each of its descendants (pid → utime + stime)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is not None:
            parents[pid], ticks[pid] = stat
    if root not in ticks:
        return {}
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out[pid] = ticks[pid]
        todo.extend(children.get(pid, ()))
    return out


class ProcessSampler:
    """Samples ``pid``'s process tree every ``interval`` seconds between :meth:`start` and
    :meth:`stop`."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        if not (math.isfinite(interval) and 0.01 <= interval <= 60):
            raise InputError(f"sample interval must be between 0.01 and 60 s, got {interval!r}")
        check_pid(pid)
        self.pid = pid
        self.interval = interval
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._samples: list[tuple[float, dict[int, int], float]] = []  # (t, ticks, KiB)
        self._kind = "pss"

    def _sample(self) -> None:
        t = time.monotonic()
        ticks = _tree(self.pid)
        kib = 0.0
        for pid in ticks:
            mem = _memory_kib(pid)
            if mem is not None:
                kib += mem[0]
                if mem[1] == "rss":
                    self._kind = "rss"
        if ticks:
            self._samples.append((t, ticks, kib))

    def _run(self) -> None:
        # on a fixed schedule: a sample's own time (reading /proc on a busy machine) does not
        # push the next one later, so a level of n intervals yields n samples; a sampler that
        # fell more than an interval behind starts a new schedule rather than catch up in a burst
        due = time.monotonic()
        self._sample()
        while True:
            due += self.interval
            now = time.monotonic()
            if now > due + self.interval:
                due = now
            if self._stop.wait(max(0.0, due - now)):
                return
            self._sample()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the sampler is running")
        self._samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> ResourceUse:
        """Stop sampling (after one last sample) and summarise the level."""
        if self._thread is None:
            raise RuntimeError("the sampler is not running")
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._sample()
        samples = self._samples
        if len(samples) < 2:
            raise InputError(f"--pid {self.pid}: the process ended while it was measured")
        cores = []
        for (t0, a, _), (t1, b, _) in itertools.pairwise(samples):
            if t1 > t0:
                # a process present in both samples; one that started meanwhile counts from 0
                used = sum(b[p] - a.get(p, 0) for p in b if b[p] >= a.get(p, 0))
                cores.append(used / TICKS / (t1 - t0))
        span = samples[-1][0] - samples[0][0]
        first, last = samples[0][1], samples[-1][1]
        total = sum(last[p] - first.get(p, 0) for p in last if last[p] >= first.get(p, 0))
        mean = total / TICKS / span if span > 0 else 0.0
        arr = np.array(cores) if cores else np.zeros(1)
        peak = max(s[2] for s in samples) / KIB_PER_MIB
        use = ResourceUse(
            cpu_mean=mean,
            cpu_p95=float(np.percentile(arr, 95)),
            memory_peak_mib=peak,
            samples=len(cores),
            seconds=span,
            memory=self._kind,
            cores=tuple(cores),
        )
        logger.info(
            "pid %d: %.3f cores mean, %.3f p95, %.1f MiB peak (%d samples)",
            self.pid,
            use.cpu_mean,
            use.cpu_p95,
            use.memory_peak_mib,
            use.samples,
        )
        return use
