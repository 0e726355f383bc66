"""Tests of ``inferno simulate``: scenarios, the emulated cluster, the policies, the runs and the
report. The shared scenarios are in ``scenarios.py`` (re-exported here for ``from . import``)."""

from .scenarios import DEMO, ROOT, SAMPLE, SMALL_SERVERS, small_scenario, write_scenario

__all__ = ["DEMO", "ROOT", "SAMPLE", "SMALL_SERVERS", "small_scenario", "write_scenario"]
