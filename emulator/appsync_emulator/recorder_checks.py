"""The recorder's assertions and waits, and the near-miss reports of their failures.

:class:`RecorderChecks` is the part of :class:`~appsync_emulator.recorder.Recorder` that
tests call: the ``assert_*`` methods, each ``wait_*`` with its blocking ``wait_*_sync`` twin,
the predicates they test the records with, and the reports a failure lists.  The storage,
the lock and the waits' engine (``_wait`` and ``_wait_sync``) are the recorder's own.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from appsync_events.errors import InvalidChannelError
from appsync_events.protocol.channels import parse_channel, parse_subscribe_channel

from .records import ConnectionInfo, ErrorRecord, PublishRecord, SubscriptionRecord

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = [
    "RecorderAssertionError",
    "RecorderChecks",
]

T = TypeVar("T")


class RecorderAssertionError(AssertionError, TimeoutError):
    """An ``assert_*`` failed or a ``wait_*`` timed out; the message lists near misses.

    It is an :class:`AssertionError` (pytest shows it as a failed assertion) and, for
    waits, also a :class:`TimeoutError`.
    """

    # Defined here, documented and imported as ``appsync_emulator.recorder``'s: keep that name.
    __module__ = "appsync_emulator.recorder"


def _canonical(channel: str, *, pattern: bool) -> str:
    try:
        parsed = parse_subscribe_channel(channel) if pattern else parse_channel(channel)
    except InvalidChannelError:
        return channel if channel.startswith("/") else "/" + channel
    return parsed.path


def _event_equal(actual: str, expected: object) -> bool:
    try:
        value = json.loads(actual)
    except ValueError:
        return isinstance(expected, str) and actual == expected
    if isinstance(expected, str):
        try:
            return bool(value == json.loads(expected))
        except ValueError:
            # Not JSON text: compare it as a string value ("hi" matches the event '"hi"').
            return actual == expected or value == expected
    return bool(value == expected)


class RecorderChecks:
    """Assertions and waits over the records (a base class of the recorder).

    The public methods take the recorder's lock; the predicates and reports expect it held.
    """

    _lock: threading.RLock
    _connections: OrderedDict[str, ConnectionInfo]
    _subscriptions: OrderedDict[int, SubscriptionRecord]
    _active: dict[tuple[str, str], int]
    _errors: deque[ErrorRecord]
    _opened_total: int

    if TYPE_CHECKING:

        def _publish_records(self) -> deque[PublishRecord]: ...

        async def _wait(
            self,
            predicate: Callable[[Recorder], T | None],
            timeout: float,  # noqa: ASYNC109 - the public waits' timeout, passed on
            call: str,
            describe: Callable[[], str] | None,
        ) -> T: ...

        def _wait_sync(
            self,
            predicate: Callable[[Recorder], T | None],
            timeout: float,
            call: str,
            describe: Callable[[], str] | None,
        ) -> T: ...

    # --- predicates (call with the lock held) -------------------------------------------

    def _publishes_to(self, channel: str) -> list[PublishRecord]:
        path = _canonical(channel, pattern=False)
        return [p for p in self._publish_records() if p.channel == path]

    def _published_check(
        self, channel: str, count: int | None, events: Sequence[object] | None
    ) -> list[PublishRecord] | None:
        records = self._publishes_to(channel)
        accepted = [e for r in records for e in r.accepted_events]
        if count is not None and len(accepted) != count:
            return None
        if count is None and events is None and not records:
            return None
        if events is not None and (
            len(accepted) != len(events)
            or not all(_event_equal(a, e) for a, e in zip(accepted, events, strict=True))
        ):
            return None
        return records

    def _at_least_published(self, channel: str, count: int) -> list[PublishRecord] | None:
        records = self._publishes_to(channel)
        total = sum(len(r.accepted_events) for r in records)
        return records if total >= count else None

    def _subscribed(self, channel: str) -> SubscriptionRecord | None:
        pattern = _canonical(channel, pattern=True)
        for seq in self._active.values():
            record = self._subscriptions.get(seq)
            if record is not None and record.pattern == pattern:
                return record
        return None

    def _connected(self, count: int) -> list[ConnectionInfo] | None:
        return list(self._connections.values()) if self._opened_total >= count else None

    # --- near-miss reports ----------------------------------------------------------------

    def _errors_summary(self, kinds: Iterable[str]) -> str:
        wanted = set(kinds)
        errs = [str(e) for e in self._errors if e.frame_type in wanted]
        if not errs:
            return ""
        shown = errs[-5:]
        more = f" (and {len(errs) - 5} earlier)" if len(errs) > 5 else ""
        return "\n  error answers" + more + ":\n    " + "\n    ".join(shown)

    def _publish_report(self, channel: str) -> str:
        path = _canonical(channel, pattern=False)
        totals: dict[str, int] = {}
        for p in self._publish_records():
            totals[p.channel] = totals.get(p.channel, 0) + len(p.accepted_events)
        mine = self._publishes_to(channel)
        lines = []
        if mine:
            shown = [e for r in mine for e in r.accepted_events][:10]
            lines.append(f"  events published to {path}: {shown}")
        others = [f"{ch} ({n} event{'s' if n != 1 else ''})" for ch, n in totals.items()]
        others = [o for o in others if not o.startswith(path + " ")]
        lines.append("  publishes to other channels: " + (", ".join(others) if others else "none"))
        report = "\n".join(lines)
        return report + self._errors_summary(("publish_error", "http", "error"))

    def _subscription_report(self) -> str:
        active = [
            f"{s.pattern} ({s.connection_id}/{s.id})"
            for s in self._subscriptions.values()
            if s.active
        ]
        ended = [
            f"{s.pattern} ({s.connection_id}/{s.id})"
            for s in self._subscriptions.values()
            if not s.active
        ]
        report = "  active subscriptions: " + (", ".join(active) if active else "none")
        if ended:
            report += "\n  ended subscriptions: " + ", ".join(ended[-10:])
        return report + self._errors_summary(("subscribe_error", "error", "connection_error"))

    # --- assertions ---------------------------------------------------------------------

    def assert_published(
        self, channel: str, count: int | None = None, events: Sequence[object] | None = None
    ) -> list[PublishRecord]:
        """Assert that ``channel`` received publishes and return their records.

        Args:
            channel: the concrete channel (leading ``/`` optional).
            count: the exact number of accepted events (failed ones do not count).
            events: the exact accepted events in order: JSON texts (compared as JSON) or
                Python values (compared with the decoded event).

        Raises:
            RecorderAssertionError: listing what was published instead.
        """
        with self._lock:
            result = self._published_check(channel, count, events)
            if result is not None:
                return result
            want = []
            if count is not None:
                want.append(f"{count} event(s)")
            if events is not None:
                want.append(f"events {list(events)!r}")
            path = _canonical(channel, pattern=False)
            got = sum(len(r.accepted_events) for r in self._publishes_to(channel))
            raise RecorderAssertionError(
                f"expected {' and '.join(want) or 'a publish'} on {path}, got {got} event(s)\n"
                + self._publish_report(channel)
            )

    def assert_subscribed(self, channel: str) -> SubscriptionRecord:
        """Assert an active subscription to exactly this pattern (``/*`` included).

        Raises:
            RecorderAssertionError: listing the subscriptions that do exist.
        """
        with self._lock:
            found = self._subscribed(channel)
            if found is not None:
                return found
            raise RecorderAssertionError(
                f"no active subscription to {_canonical(channel, pattern=True)}\n"
                + self._subscription_report()
            )

    def assert_no_errors(self) -> None:
        """Assert that the server answered nothing with an error.

        Raises:
            RecorderAssertionError: listing every error answer.
        """
        with self._lock:
            if not self._errors:
                return
            listed = "\n  ".join(str(e) for e in self._errors)
            raise RecorderAssertionError(
                f"the server sent {len(self._errors)} error answer(s):\n  {listed}"
            )

    # --- waits --------------------------------------------------------------------------
    #
    # Each wait has two spellings with the same arguments: ``await recorder.wait_x(...)``,
    # which works on any event loop, and ``recorder.wait_x_sync(...)``, which blocks the
    # calling thread for sync tests.  Both raise RecorderAssertionError on timeout, naming the
    # call that timed out and listing the near misses.

    async def wait_for(
        self,
        predicate: Callable[[Recorder], T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - the same signature as wait_for_sync
        describe: Callable[[], str] | None = None,
    ) -> T:
        """Wait until ``predicate(recorder)`` returns non-``None``; return that value.

        The predicate runs under the recorder's lock after every change (for an awaited
        wait, on the thread that recorded the change), so it must be quick and must not wait
        itself.  Works on any event loop: the recorder completes the wait on the waiter's
        own loop.

        Args:
            predicate: called with the recorder; ``None`` means "not yet".
            timeout: seconds to wait (real time, unaffected by a frozen clock).
            describe: builds the failure message on timeout (what was expected, what was
                seen); the default names the predicate.

        Returns:
            The predicate's first non-``None`` result.

        Raises:
            RecorderAssertionError: on timeout, naming the wait and ``describe()``.
            Exception: whatever the predicate raised.

        Cancelling the wait removes it; nothing is left registered.
        """
        return await self._wait(predicate, timeout, _call_text("wait_for", predicate), describe)

    def wait_for_sync(
        self,
        predicate: Callable[[Recorder], T | None],
        timeout: float = 5.0,
        describe: Callable[[], str] | None = None,
    ) -> T:
        """Blocking :meth:`wait_for`, for sync tests (from any thread without a running loop).

        Raises:
            RecorderAssertionError: on timeout, naming the wait and ``describe()``.
            RuntimeError: called from a thread that is running an event loop (that would
                stall the loop); ``await`` :meth:`wait_for` there.
        """
        return self._wait_sync(predicate, timeout, _call_text("wait_for", predicate), describe)

    @staticmethod
    def _timed_out(
        call: str, timeout: float, describe: Callable[[], str] | None
    ) -> RecorderAssertionError:
        # Call with the lock held: ``describe`` reads the records.
        detail = describe() if describe is not None else "the predicate returned None every time"
        return RecorderAssertionError(f"{call} timed out after {timeout} s: {detail}")

    def _describe_connected(self, count: int) -> Callable[[], str]:
        def describe() -> str:
            seen = [f"{c.id}{'' if c.open else ' (closed)'}" for c in self._connections.values()]
            return f"expected {count} connection(s), saw {self._opened_total}: " + (
                ", ".join(seen) or "none"
            )

        return describe

    def _describe_subscribed(self, channel: str) -> Callable[[], str]:
        def describe() -> str:
            return (
                f"no active subscription to {_canonical(channel, pattern=True)}\n"
                + self._subscription_report()
            )

        return describe

    def _describe_published(self, channel: str, count: int) -> Callable[[], str]:
        def describe() -> str:
            path = _canonical(channel, pattern=False)
            got = sum(len(r.accepted_events) for r in self._publishes_to(channel))
            return f"expected {count} event(s) published to {path}, got {got}\n" + (
                self._publish_report(channel)
            )

        return describe

    async def wait_connected(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the same signature as wait_connected_sync
    ) -> list[ConnectionInfo]:
        """Wait until ``count`` connections have opened (since the last reset).

        Returns:
            Every recorded connection, oldest first.

        Raises:
            RecorderAssertionError: after ``timeout`` seconds, listing the connections seen.

        Cancel-safe; works on any event loop.
        """
        return await self._wait(
            lambda r: r._connected(count),
            timeout,
            f"wait_connected({count})",
            self._describe_connected(count),
        )

    def wait_connected_sync(self, count: int = 1, timeout: float = 5.0) -> list[ConnectionInfo]:
        """Blocking :meth:`wait_connected`, for sync tests."""
        return self._wait_sync(
            lambda r: r._connected(count),
            timeout,
            f"wait_connected({count})",
            self._describe_connected(count),
        )

    async def wait_subscribed(
        self,
        channel: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - the same signature as wait_subscribed_sync
    ) -> SubscriptionRecord:
        """Wait until an active subscription to exactly ``channel`` (a pattern) exists.

        Returns:
            That subscription's record.

        Raises:
            RecorderAssertionError: after ``timeout`` seconds, listing the subscriptions.

        Cancel-safe; works on any event loop.
        """
        return await self._wait(
            lambda r: r._subscribed(channel),
            timeout,
            f"wait_subscribed({channel!r})",
            self._describe_subscribed(channel),
        )

    def wait_subscribed_sync(self, channel: str, timeout: float = 5.0) -> SubscriptionRecord:
        """Blocking :meth:`wait_subscribed`, for sync tests."""
        return self._wait_sync(
            lambda r: r._subscribed(channel),
            timeout,
            f"wait_subscribed({channel!r})",
            self._describe_subscribed(channel),
        )

    async def wait_published(
        self,
        channel: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the same signature as wait_published_sync
    ) -> list[PublishRecord]:
        """Wait until at least ``count`` events were accepted on ``channel``.

        Returns:
            The publish records of that channel.

        Raises:
            RecorderAssertionError: after ``timeout`` seconds, listing what was published.

        Cancel-safe; works on any event loop.
        """
        return await self._wait(
            lambda r: r._at_least_published(channel, count),
            timeout,
            f"wait_published({channel!r}, count={count})",
            self._describe_published(channel, count),
        )

    def wait_published_sync(
        self, channel: str, count: int = 1, timeout: float = 5.0
    ) -> list[PublishRecord]:
        """Blocking :meth:`wait_published`, for sync tests."""
        return self._wait_sync(
            lambda r: r._at_least_published(channel, count),
            timeout,
            f"wait_published({channel!r}, count={count})",
            self._describe_published(channel, count),
        )


def _call_text(name: str, predicate: Callable[..., object]) -> str:
    """``wait_for(test_x.<locals>.seen)``: the wait and its predicate, for messages."""
    label = getattr(predicate, "__qualname__", None) or repr(predicate)
    return f"{name}({label})"
