"""Local emulator of AWS AppSync Events."""

from __future__ import annotations

__all__: list[str] = []
