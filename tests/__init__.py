"""Tests of appsync_events and appsync_emulator (a package, so modules import ``tests.helpers``)."""

from __future__ import annotations
