"""Tests of inferno.solver."""
