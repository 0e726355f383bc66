"""The server process's CPU and memory from /proc (inferno.profiling.resources), sampled from
real child processes started by the test: one that burns a core in a grandchild and holds
memory, one that sleeps."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inferno.errors import InputError
from inferno.profiling import ProcessSampler, check_pid

# a grandchild (under sh) that allocates ~200 MiB, touches it, then spins, writing its own clock
# (monotonic, process CPU time) to a file every 50 ms: what the sampler should find
BURN = """
import sys, time
b = bytearray(200 * 2**20)
b[::4096] = b"x" * len(b[::4096])
out = open(sys.argv[1], "w", buffering=1)
end = time.monotonic() + 30
mark = 0.0
while time.monotonic() < end:
    if time.monotonic() >= mark:
        out.write(f"{time.monotonic()} {time.process_time()}\\n")
        mark = time.monotonic() + 0.05
"""


@pytest.fixture
def burner(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    script, clock = tmp_path / "burn.py", tmp_path / "clock.txt"
    script.write_text(BURN)
    proc = subprocess.Popen(
        ["sh", "-c", f"{sys.executable} {script} {clock}; :"], start_new_session=True
    )
    try:
        time.sleep(0.8)  # the allocation made
        yield proc, clock
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # sh and the grandchild
        proc.wait(5)


def _own_cpu(clock: Path, t0: float, t1: float) -> float:
    """The grandchild's cores between t0 and t1, from its own clock."""
    rows = [tuple(map(float, line.split())) for line in clock.read_text().splitlines()[:-1]]
    inside = [r for r in rows if t0 <= r[0] <= t1]
    (a, ca), (b, cb) = inside[0], inside[-1]
    return (cb - ca) / (b - a)


def test_a_busy_descendant_is_counted(burner: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, clock = burner
    sampler = ProcessSampler(proc.pid, interval=0.1)
    t0 = time.monotonic()
    sampler.start()
    time.sleep(1.5)
    use = sampler.stop()
    t1 = time.monotonic()
    # what the spinning grandchild says it used (a shared machine gives it up to one core)
    own = _own_cpu(clock, t0, t1)
    assert 0.1 < own <= 1.05
    assert use.cpu_mean == pytest.approx(own, abs=0.1)
    assert use.cpu_p95 >= use.cpu_mean * 0.9
    assert use.samples >= 8 and use.seconds == pytest.approx(1.5, abs=0.5)
    assert 200 < use.memory_peak_mib < 400
    assert use.memory in ("pss", "rss")


@contextlib.contextmanager
def _sleeping() -> Iterator[subprocess.Popen[bytes]]:
    """An idle process, killed after the test."""
    proc = subprocess.Popen(["sleep", "30"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(5)


def test_an_idle_process_uses_no_cpu() -> None:
    with _sleeping() as proc:
        sampler = ProcessSampler(proc.pid, interval=0.1)
        sampler.start()
        time.sleep(0.6)
        use = sampler.stop()
        assert use.cpu_mean < 0.05 and use.memory_peak_mib < 50
        with pytest.raises(RuntimeError):
            sampler.stop()


def test_bad_pids_are_named() -> None:
    with pytest.raises(InputError, match="--pid must be"):
        check_pid(0)
    proc = subprocess.Popen(["true"])
    proc.wait(5)
    with pytest.raises(InputError, match=f"--pid {proc.pid}: no such process"):
        ProcessSampler(proc.pid)
    with pytest.raises(InputError, match="sample interval"):
        ProcessSampler(1, interval=0.0)


def test_the_share_of_intervals_above_a_level() -> None:
    from inferno.profiling import ResourceUse

    use = ResourceUse(0.2, 0.3, 10.0, 3, 1.5, "pss", cores=(0.1, 0.2, 0.3))
    assert use.share_above(0.15) == pytest.approx(2 / 3)
    assert use.share_above(0.3) == 0.0 and use.share_above(0.0) == 1.0
    assert ResourceUse(0.0, 0.0, 1.0, 0, 0.0, "rss").share_above(0.1) == 0.0


def test_slow_samples_keep_the_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sample that takes a third of the interval (a busy machine reading /proc) does not push
    the next one later: a level of n intervals still yields n samples (the profile's p95 is the
    k-th largest of them)."""
    from inferno.profiling import resources

    real = resources._tree

    def slow_tree(pid: int) -> dict[int, int]:
        time.sleep(0.04)
        return real(pid)

    monkeypatch.setattr(resources, "_tree", slow_tree)
    with _sleeping() as proc:
        sampler = ProcessSampler(proc.pid, interval=0.12)
        sampler.start()
        time.sleep(2.4)
        use = sampler.stop()
    # 20 intervals; waiting an interval after each sample would give 2.4 / 0.16 = 15
    assert use.samples >= 19
    assert use.seconds == pytest.approx(2.4, abs=0.3)
