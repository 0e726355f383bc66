"""Tests of the discrete-event emulator (shared helpers: ``helpers.py``)."""
