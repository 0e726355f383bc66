"""Tests of inferno.model."""
