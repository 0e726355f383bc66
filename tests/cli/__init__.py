"""Tests of inferno.cli."""
