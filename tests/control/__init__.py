"""Tests of inferno.control."""
