"""Runnable documentation: short tests showing the pytest plugin."""

from __future__ import annotations
