"""Unit conversions, in one place.

Inferno's model works in milliseconds (service times, waits) and requests per millisecond; its
files and reports speak requests per minute (Inferno's ``arrivalRate``) and seconds; Triton counts
nanoseconds and microseconds. A conversion multiplies by one of these: ``rate_per_min =
rate_per_ms * MS_PER_MIN``, ``t_ms = t_s * MS_PER_S``, ``t_ms = t_ns / NS_PER_MS``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MS_PER_MIN", "MS_PER_S", "NS_PER_MS", "S_PER_HOUR", "S_PER_MIN", "US_PER_MS"]

MS_PER_S: Final = 1_000.0
"""Milliseconds per second."""

S_PER_MIN: Final = 60.0
"""Seconds per minute."""

MS_PER_MIN: Final = S_PER_MIN * MS_PER_S
"""Milliseconds per minute (60 000): requests per ms × this = requests per minute."""

S_PER_HOUR: Final = 3_600.0
"""Seconds per hour."""

US_PER_MS: Final = 1_000.0
"""Microseconds per millisecond."""

NS_PER_MS: Final = 1_000_000.0
"""Nanoseconds per millisecond."""
