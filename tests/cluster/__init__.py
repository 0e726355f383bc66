"""Tests of inferno.cluster."""
