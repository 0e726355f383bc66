"""Child processes of the live tests: ephemeral ports, start in a new session, stop the whole
process group (SIGTERM, then SIGKILL), wait for an HTTP endpoint."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

#: ports a test must never take (etcd, the API server, Triton's and Prometheus' defaults)
RESERVED = frozenset({2379, 2380, 6443, 8000, 8001, 8002, 9090})


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that is not a reserved one."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in RESERVED:
            return port


class Child:
    """A process started in its own session; :meth:`stop` signals its whole group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            list(argv),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
            # children left in the group (the backend stub) go too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        finally:
            self._out.close()


def wait_until(what: str, ok: object, timeout: float, child: Child | None = None) -> None:
    """Poll ``ok()`` every 0.1 s until it is true (AssertionError naming ``what`` otherwise)."""
    assert callable(ok)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise AssertionError(f"{child.name} exited before {what}:\n{child.tail()}")
        try:
            if ok():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = f":\n{child.tail()}" if child is not None else ""
    raise AssertionError(f"not {what} after {timeout:g} s{tail}")


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=1.0).status_code == 200
