"""Real clocks that freezegun cannot reach, and an event loop that runs on them.

freezegun rewrites module attributes (``time.monotonic``, ``time.time``) while it runs, but
not references held in closures or class attributes.  Capturing the real functions here,
once, keeps timers on real time even while a test freezes the clock: the synchronous API's
background loop (:mod:`appsync_events.sync`), and the emulator's timers and recorder
timestamps while a test freezes time for SigV4 or JWT checks
(docs: design.rst, "The emulator's clock and freezegun").
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

__all__ = ["RealClockLoop", "real_monotonic", "real_time"]


def _capture(name: str) -> Callable[[], float]:
    """Return a function reading the real ``time.<name>``, kept in a closure.

    freezegun swaps every *module attribute* that is the real function for its fake, so the
    real function must never be a module attribute here: only the closure holds it.
    """
    # If freezegun is already active, its module keeps the real function as real_<name>.
    api = sys.modules.get("freezegun.api")
    real = getattr(api, f"real_{name}", None) if api is not None else None
    func: Callable[[], float] = real if callable(real) else getattr(time, name)

    def clock() -> float:
        return func()

    clock.__name__ = f"real_{name}"
    clock.__doc__ = f"``time.{name}`` as it was at import, immune to freezegun."
    return clock


real_monotonic = _capture("monotonic")
real_time = _capture("time")


class RealClockLoop(asyncio.SelectorEventLoop):
    """A selector loop whose ``time()`` is the captured real monotonic clock.

    Background threads (the synchronous client's, the threaded emulator's) run on it so
    that a test freezing time in its own thread can neither stall nor race their
    keep-alive, heartbeat and lifetime timers.
    """

    def time(self) -> float:
        return real_monotonic()
