"""Tests of the Prometheus client and load source. The fake Prometheus is in ``fakes.py``;
it is re-exported here for the tests that import it as ``prom`` (tests/ is on sys.path)."""

from .fakes import FakePrometheus

__all__ = ["FakePrometheus"]
