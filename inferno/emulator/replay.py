"""Replayed load: the arrivals of a CSV log (``timestamp, server, input_tokens, output_tokens``,
timestamp in seconds from the start), read by :func:`read_replay`, one :class:`Replay` trace per
server, each request with its own token counts.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..units import MS_PER_MIN, MS_PER_S
from .traces import Arrivals, ArrivalStream, Trace

__all__ = ["REPLAY_COLUMNS", "Replay", "read_replay"]

logger = logging.getLogger(__name__)

F = NDArray[np.float64]
Ints = NDArray[np.int64]

#: The columns a replay CSV must have (a header row naming them, in any order).
REPLAY_COLUMNS = ("timestamp", "server", "input_tokens", "output_tokens")


@dataclass(frozen=True, slots=True, eq=False)
class Replay(Trace):
    """The recorded arrivals of one server: times (ms, sorted) and each request's tokens.

    :meth:`rate_at` is the count in the minute [⌊t/1 min⌋, +1 min) containing t, per ms;
    :meth:`mean_rate` the count in the window over its length. Build with :func:`read_replay`.
    """

    times_ms: F
    input_tokens: Ints
    output_tokens: Ints
    _end: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = np.asarray(self.times_ms, dtype=np.float64)
        n_in = np.asarray(self.input_tokens, dtype=np.int64)
        n_out = np.asarray(self.output_tokens, dtype=np.int64)
        if not t.ndim == n_in.ndim == n_out.ndim == 1 or not t.size == n_in.size == n_out.size:
            raise ValueError("Replay needs three 1-d arrays of the same length")
        if t.size and (not np.all(np.isfinite(t)) or (t < 0).any() or (np.diff(t) < 0).any()):
            raise ValueError("Replay times must be finite, non-negative and sorted")
        object.__setattr__(self, "times_ms", t)
        object.__setattr__(self, "input_tokens", n_in)
        object.__setattr__(self, "output_tokens", n_out)
        object.__setattr__(self, "_end", float(t[-1]) if t.size else 0.0)

    def __len__(self) -> int:
        return int(self.times_ms.size)

    @property
    def end_ms(self) -> float | None:
        return self._end

    def _range(self, t0: float, t1: float) -> tuple[int, int]:
        lo, hi = np.searchsorted(self.times_ms, [t0, t1], side="left")
        return int(lo), int(hi)

    def rate_at(self, t_ms: float) -> float:
        start = math.floor(t_ms / MS_PER_MIN) * MS_PER_MIN
        lo, hi = self._range(start, start + MS_PER_MIN)
        return (hi - lo) / MS_PER_MIN

    def mean_rate(self, t0_ms: float, t1_ms: float) -> float:
        if t1_ms <= t0_ms:
            return self.rate_at(t0_ms)
        lo, hi = self._range(t0_ms, t1_ms)
        return (hi - lo) / (t1_ms - t0_ms)

    def window(self, t0_ms: float, t1_ms: float) -> Arrivals:
        """The recorded arrivals in [t0, t1) with their tokens."""
        s = slice(*self._range(t0_ms, t1_ms))
        return Arrivals(self.times_ms[s], self.input_tokens[s], self.output_tokens[s])

    def generate(self, t0_ms: float, t1_ms: float, rng: np.random.Generator) -> F:
        return self.times_ms[slice(*self._range(t0_ms, t1_ms))]

    def stream(self, rng: np.random.Generator) -> ArrivalStream:
        return _ReplayStream(self)


class _ReplayStream(ArrivalStream):
    __slots__ = ("_trace",)

    def __init__(self, trace: Replay) -> None:
        self._trace = trace

    def next(self, t0: float, t1: float) -> Arrivals:
        return self._trace.window(t0, t1)


def _parse_number(text: str, *, integer: bool) -> float | int | None:
    try:
        if integer:
            return int(text)
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_replay(path: str | Path) -> dict[str, Replay]:
    """Read a replay CSV: a header naming ``timestamp, server, input_tokens, output_tokens`` (any
    order, other columns ignored), then one row per request. Timestamps are seconds from the
    start (non-negative; rows need not be sorted); input tokens ≥ 0 and output tokens ≥ 1 are
    integers.

    Returns one :class:`Replay` per server, in the order servers first appear. Raises
    :class:`~inferno.errors.InputError` naming the file, the line and the column of the first
    problem.
    """
    source = str(path)
    try:
        handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(
            f"cannot read the replay file: {exc.strerror or exc}", source=source
        ) from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"not a CSV file: {exc}", source=source, path="line 1") from exc
        if header is None:
            raise InputError(
                "empty file: expected a header row " + ", ".join(REPLAY_COLUMNS), source=source
            )
        names = [h.strip().lower() for h in header]
        missing = [c for c in REPLAY_COLUMNS if c not in names]
        if missing:
            raise InputError(
                f"the header lacks column(s) {', '.join(missing)} "
                f"(expected {', '.join(REPLAY_COLUMNS)}; got {', '.join(header)})",
                source=source,
                path="line 1",
            )
        col = {c: names.index(c) for c in REPLAY_COLUMNS}
        width = len(names)
        rows: dict[str, tuple[list[float], list[int], list[int]]] = {}
        try:
            for fields in reader:
                line = reader.line_num
                if not fields or all(not f.strip() for f in fields):
                    continue
                if len(fields) != width:
                    raise InputError(
                        f"expected {width} fields, got {len(fields)}",
                        source=source,
                        path=f"line {line}",
                    )
                _parse_row(fields, col, rows, source, line)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(
                f"not a CSV file: {exc}", source=source, path=f"line {reader.line_num}"
            ) from exc
    out = {}
    for name, (ts, n_in, n_out) in rows.items():
        t = np.asarray(ts) * MS_PER_S
        order = np.argsort(t, kind="stable")
        out[name] = Replay(
            t[order],
            np.asarray(n_in, dtype=np.int64)[order],
            np.asarray(n_out, dtype=np.int64)[order],
        )
    logger.debug("read %d replay servers from %s", len(out), source)
    return out


def _parse_row(
    fields: Sequence[str],
    col: dict[str, int],
    rows: dict[str, tuple[list[float], list[int], list[int]]],
    source: str,
    line: int,
) -> None:
    def bad(column: str, problem: str) -> InputError:
        return InputError(problem, source=source, path=f"line {line}, column {column}")

    raw_t = fields[col["timestamp"]].strip()
    t = _parse_number(raw_t, integer=False)
    if t is None or t < 0:
        raise bad("timestamp", f"expected a non-negative number of seconds, got {raw_t!r}")
    server = fields[col["server"]].strip()
    if not server:
        raise bad("server", "empty server name")
    counts = []
    for column, least in (("input_tokens", 0), ("output_tokens", 1)):
        raw = fields[col[column]].strip()
        v = _parse_number(raw, integer=True)
        if v is None or v < least:
            raise bad(column, f"expected an integer ≥ {least}, got {raw!r}")
        counts.append(int(v))
    entry = rows.setdefault(server, ([], [], []))
    entry[0].append(float(t))
    entry[1].append(counts[0])
    entry[2].append(counts[1])
