"""Tests of the pytest plugin and appsync_emulator.testing."""

from __future__ import annotations
