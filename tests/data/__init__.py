"""Tests of inferno.data."""
