"""Handles on injected faults: remove one, count its actions, wait until it has acted.

``server.inject(fault)`` returns a :class:`FaultHandle`.  It is the fault's
:class:`~appsync_emulator.faults.FaultListener`: the server tells it each time the fault
acts (on its loop thread), and tests read :attr:`FaultHandle.acted` or wait with
``await handle.wait_done()`` (on any event loop) or ``handle.wait_done_sync()`` (from a sync
test), whichever thread the server runs on.

What "done" means depends on the fault:

* a **one-shot** fault is done once it has acted on every connection it matched when it was
  injected: the frames it sends (``SendBroadcastError``, ``SendError``, ``SendRawText``,
  every frame of a ``FloodSubscription``) are in the connection's send queue, after what
  was queued before them and before anything queued later, so the client reads them
  before the answer to any request it sends afterwards; a ``CloseConnection`` or
  ``DropConnection`` has closed the connection (``server.connections`` shows it closed).
  A flood also ends when its subscriptions end or its connection closes.  :attr:`acted`
  counts the connections it has finished with.
* ``CorruptFrame(times=n)`` is done after its ``n``-th replaced frame.
* every other fault is **standing**: it is done the first time it acts (a ``ka`` dropped,
  a reply delayed or withheld, an operation or connection refused, a connection stalled),
  and :attr:`acted` counts every action (each connection counts once for ``Stall`` and
  ``StallSubscriber``).

A fault that can no longer act (a one-shot fault that matched nothing, a standing fault
removed before it acted) fails the wait at once instead of letting it time out.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from ._clock import real_monotonic
from .faults import CorruptFrame, Fault, FaultListener

__all__ = ["FaultHandle", "FaultNotDoneError"]

DEFAULT_TIMEOUT = 5.0
"""Seconds :meth:`FaultHandle.wait_done` waits by default."""


class FaultNotDoneError(AssertionError, TimeoutError):
    """A fault did not act in time (or can no longer act), so a wait for it failed.

    An ``AssertionError``, so that pytest reports it as a failed check, and a
    ``TimeoutError``, as the recorder's timed-out waits are.
    """

    def __init__(self, fault: str, acted: int, reason: str) -> None:
        super().__init__(fault, acted, reason)
        self.fault = fault
        """The fault, as its ``repr``."""
        self.acted = acted
        """How many times it had acted."""
        self.reason = reason
        """Why the wait failed."""

    def __str__(self) -> str:
        times = "once" if self.acted == 1 else f"{self.acted} times"
        return f"{self.fault} {self.reason} (it acted {times})"


class _Progress:
    """How far one fault got: the :class:`~appsync_emulator.faults.FaultListener` the
    server tells (on its loop thread), read and waited on from any thread or loop."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.cond = threading.Condition()
        self.acted = 0
        self.goal = fault.times if isinstance(fault, CorruptFrame) and fault.times else 1
        self.targets = 0
        self.known = not fault.one_shot  # one-shot: every target started
        self.uninstalled = False
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # --- FaultListener ------------------------------------------------------------------

    def fault_acted(self) -> None:
        with self.cond:
            self.acted += 1
            self._changed()

    def fault_removed(self) -> None:
        with self.cond:
            self.uninstalled = True
            self._changed()

    def target_started(self) -> None:
        with self.cond:
            self.targets += 1

    def target_finished(self) -> None:
        with self.cond:
            self.acted += 1
            self._changed()

    def targets_known(self) -> None:
        with self.cond:
            self.known = True
            self._changed()

    def _changed(self) -> None:
        # Called with the condition held.
        self.cond.notify_all()
        if self.state() is None:
            return
        waiters, self.waiters = self.waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    # --- reading (call with the condition held) ---------------------------------------------

    def state(self) -> str | None:
        """``"done"``, why the fault can no longer act, or ``None`` while it may still."""
        if self.fault.one_shot:
            if not self.known:
                return None
            if self.targets == 0:
                return "matched no open connection or subscription when it was injected"
            return "done" if self.acted >= self.targets else None
        if self.acted >= self.goal:
            return "done"
        if self.uninstalled:
            return "was removed before it was done"
        return None

    def check(self) -> bool:
        """``True`` when done; raise when it can no longer be."""
        state = self.state()
        if state is None:
            return False
        if state == "done":
            return True
        raise FaultNotDoneError(repr(self.fault), self.acted, state)

    def timed_out(self, timeout: float) -> FaultNotDoneError:
        return FaultNotDoneError(repr(self.fault), self.acted, f"was not done within {timeout} s")


class FaultHandle:
    """An installed fault: a context manager that removes it on exit, and a way to wait.

    Without ``with`` the fault stays until :meth:`remove`, ``clear_faults()`` or
    ``reset()``.  :meth:`wait_done` (awaitable on any event loop) and
    :meth:`wait_done_sync` (blocking, for sync tests) wait until the fault has acted; the
    documentation of :mod:`appsync_emulator.fault_handles` says what that means for each
    kind of fault.
    """

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        """The fault value."""
        self._progress = _Progress(fault)
        self._remove: Callable[[], None] | None = None
        self._removed = False

    @property
    def _listener(self) -> FaultListener:
        """What the server tells (the fault's progress)."""
        return self._progress

    def _bind(self, remove: Callable[[], None]) -> None:
        """Set how to remove the fault (known once the server installed it)."""
        self._remove = remove

    @property
    def acted(self) -> int:
        """How many times the fault acted (one-shot: the connections it finished with)."""
        with self._progress.cond:
            return self._progress.acted

    @property
    def done(self) -> bool:
        """Whether the fault is done; never blocks."""
        with self._progress.cond:
            return self._progress.state() == "done"

    async def wait_done(self, timeout: float = DEFAULT_TIMEOUT) -> Self:  # noqa: ASYNC109
        """Wait until the fault is done; return the handle.

        Works on any event loop, whichever thread the server runs on.  Cancel-safe:
        cancelling the wait changes nothing on the server.

        Args:
            timeout: seconds to wait.

        Raises:
            FaultNotDoneError: not done within ``timeout`` seconds, or at once when the
                fault can no longer act (a one-shot fault that matched nothing, a fault
                removed before it was done).
        """
        progress = self._progress
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with progress.cond:
            if progress.check():
                return self
            progress.waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            pass
        finally:
            with progress.cond:
                if entry in progress.waiters:
                    progress.waiters.remove(entry)
        with progress.cond:
            if progress.check():
                return self
            raise progress.timed_out(timeout)

    def wait_done_sync(self, timeout: float = DEFAULT_TIMEOUT) -> Self:
        """Blocking :meth:`wait_done`, for sync tests (a real-clock deadline).

        Raises:
            FaultNotDoneError: as :meth:`wait_done`.
            RuntimeError: called on a thread that runs an event loop (it would block it,
                and an in-loop server with it); await :meth:`wait_done` there instead.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "wait_done_sync() blocks, and this thread is running an event loop; "
                "use the awaitable twin instead: await handle.wait_done()"
            )
        progress = self._progress
        deadline = real_monotonic() + timeout
        with progress.cond:
            while not progress.check():
                remaining = deadline - real_monotonic()
                if remaining <= 0:
                    raise progress.timed_out(timeout)
                progress.cond.wait(remaining)
        return self

    # --- removal ------------------------------------------------------------------------

    def remove(self) -> None:
        """Uninstall the fault (idempotent).  A one-shot fault's actions under way go on."""
        if not self._removed:
            self._removed = True
            if self._remove is not None:
                self._remove()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        state = "removed" if self._removed else "installed"
        return f"<FaultHandle {self.fault!r} {state}, acted {self.acted}>"


def _wake(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)
