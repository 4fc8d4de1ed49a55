"""A handler file that is reloaded when it changes on disk (the standalone emulator's edit loop).

Every invocation stats the file (a few µs).  When its modification time or size changed,
the new code is compiled off the event loop and replaces the old one for the following
calls.  Code that fails to load is logged and the previous version keeps running, as
AWS keeps the previous ``codeHandlers`` when ``UpdateChannelNamespace`` is refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from ..handler_contract import PublishOutcome, SubscribeOutcome
from .engine import JsRuntime
from .runner import Context, JsHandlers
from .transform import JsCodeError

__all__ = ["ReloadingJsHandlers"]

log = logging.getLogger("appsync_emulator.handlers.js")


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class ReloadingJsHandlers:
    """The handlers of one file, reloaded before an invocation when the file changed.

    Args:
        path: the handler file.
        runtime: the shared engine pool (not closed by :meth:`close`).
        clock: passed to :meth:`JsHandlers.load`.

    Raises:
        JsCodeError: the file does not load at start-up (start-up must fail loudly).
        OSError: the file cannot be read at start-up.
    """

    def __init__(
        self, path: str | Path, *, runtime: JsRuntime, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.runtime = runtime
        self._clock = clock
        self._signature = _signature(self.path)
        self.current = JsHandlers.load_file(self.path, runtime=runtime, clock=clock)
        """The handlers in use."""
        self.reloads = 0
        """How many times new code replaced the old."""

    async def _refresh(self) -> None:
        signature = _signature(self.path)
        if signature is None or signature == self._signature:
            return
        self._signature = signature  # concurrent callers do not reload twice
        try:
            fresh = await asyncio.to_thread(
                JsHandlers.load_file, self.path, runtime=self.runtime, clock=self._clock
            )
        except (JsCodeError, OSError, UnicodeDecodeError) as exc:
            log.error(
                "%s changed but does not load; keeping the previous code:\n%s", self.path, exc
            )
            return
        old, self.current = self.current, fresh
        self.reloads += 1
        old.close()
        log.info("%s reloaded", self.path)

    async def on_publish(self, ctx: Context) -> PublishOutcome:
        """:meth:`JsHandlers.on_publish` with the latest code that loads.

        A reload compiles in a worker thread first (a few ms).  Timeouts and
        cancellation as :meth:`JsHandlers.on_publish`; cancelling during a reload
        leaves the previous code in place until the next call.
        """
        await self._refresh()
        return await self.current.on_publish(ctx)

    async def on_subscribe(self, ctx: Context) -> SubscribeOutcome:
        """:meth:`JsHandlers.on_subscribe` with the latest code that loads.

        Timeouts and cancellation as :meth:`on_publish`.
        """
        await self._refresh()
        return await self.current.on_subscribe(ctx)

    def close(self) -> None:
        """Unload the current code (the runtime stays open).  Idempotent."""
        self.current.close()
