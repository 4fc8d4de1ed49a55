"""The real clocks the emulator runs on: :mod:`appsync_events.clock`, shared with the client.

(docs: design.rst, "The emulator's clock and freezegun").
"""

from __future__ import annotations

from appsync_events.clock import RealClockLoop, real_monotonic, real_time

__all__ = ["RealClockLoop", "real_monotonic", "real_time"]
