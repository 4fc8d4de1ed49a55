"""Interoperability tests: third-party clients against the emulator."""

from __future__ import annotations
