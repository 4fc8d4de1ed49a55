"""Tests of the sans-I/O core, ``appsync_events.protocol``."""

from __future__ import annotations
