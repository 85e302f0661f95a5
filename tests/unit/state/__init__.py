"""Tests of tdi.state."""
