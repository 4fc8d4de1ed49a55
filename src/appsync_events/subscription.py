"""One subscription: a bounded inbox fed by the connection's reader, read with ``next()``.

Overflow policy: the inbox holds at most ``Backpressure.subscription_events`` entries.
The reader never waits for a consumer (it must keep reading ``ka`` frames), so when an
event arrives at a full inbox, *this* subscription fails: the events already buffered
are still delivered, then reads raise
:class:`~appsync_events.errors.SubscriptionInboxFullError`, and the client unsubscribes
it from the service.  The connection and every other subscription keep working.  (The
Go client tears the whole connection down here; we do not.)

``broadcast_error`` is delivered in-band: it takes its place in the inbox, the read
that reaches it raises :class:`~appsync_events.errors.BroadcastError`, and the reads
after it go on with the next events (the service still considers the subscription
active).
"""

from __future__ import annotations

import asyncio
import types
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Self, TypeVar, overload

from ._decode import decode_event
from ._types import JSONValue, Message
from .errors import (
    AppSyncEventsError,
    SubscriptionClosedError,
    SubscriptionInboxFullError,
)

if TYPE_CHECKING:
    from .authorizer import Authorizer

__all__ = ["Subscription", "decode_event"]

T = TypeVar("T")


class _Failure:
    """An error entry of the inbox (``broadcast_error``)."""

    __slots__ = ("error",)

    def __init__(self, error: AppSyncEventsError) -> None:
        self.error = error


class Subscription:
    """A subscription to a channel (pattern) on a :class:`~appsync_events.Client`.

    Create it with :meth:`Client.subscribe <appsync_events.Client.subscribe>`.  Read with
    :meth:`next`, :meth:`decode_next` or ``async for``; end it with :meth:`close` or
    ``async with``.  Iteration ends quietly when the subscription or its client is closed
    by the caller, and raises for every other ending (inbox overflow, connection failure).
    """

    def __init__(
        self,
        *,
        id: str,
        channel: str,
        capacity: int,
        authorizer: Authorizer,
        unsubscribe: Callable[[Subscription], Awaitable[None]],
        on_overflow: Callable[[Subscription], None],
    ) -> None:
        self.id = id
        """The subscription id (unique on its connection)."""
        self.channel = channel
        """The channel (pattern) as subscribed."""
        self.capacity = capacity
        """Inbox size (``Backpressure.subscription_events``)."""
        self.authorizer = authorizer
        """The authorizer used for this subscription (and its unsubscribe)."""
        self._unsubscribe = unsubscribe
        self._on_overflow = on_overflow
        self._inbox: deque[Message | _Failure] = deque()
        self._waiters: list[asyncio.Future[None]] = []
        self._terminal: AppSyncEventsError | None = None
        self._clean = False  # ended by the caller: iteration stops quietly
        self._closing = False
        self._resumable = False  # handed to the caller: resumed after a reconnection
        self.active = False
        """Whether the service acknowledged it and it was not unsubscribed since."""

    def __repr__(self) -> str:
        return f"<Subscription {self.id} {self.channel!r}{' closed' if self.closed else ''}>"

    @property
    def closed(self) -> bool:
        """Whether reads can no longer return new events (buffered ones may remain)."""
        return self._terminal is not None

    @property
    def pending(self) -> int:
        """Entries waiting in the inbox."""
        return len(self._inbox)

    # --- fed by the connection's reader (sync, never blocks) ---------------------------------

    def _push(self, item: Message | _Failure) -> None:
        if self._terminal is not None:
            return
        if len(self._inbox) >= self.capacity:
            self._end(SubscriptionInboxFullError(self.id, self.channel, self.capacity))
            self._on_overflow(self)
            return
        self._inbox.append(item)
        if self._waiters:
            self._wake()

    def _push_error(self, error: AppSyncEventsError) -> None:
        self._push(_Failure(error))

    def _end(self, error: AppSyncEventsError, *, clean: bool = False, drop: bool = False) -> None:
        """End the subscription: reads raise ``error`` once the inbox is empty."""
        if drop:
            self._inbox.clear()
        if self._terminal is None or clean:
            self._terminal = error
            self._clean = clean
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- reading -------------------------------------------------------------------------------

    async def next(self) -> Message:
        """Return the next event.

        Waits as long as it takes; wrap it in ``asyncio.timeout()`` to bound the wait.
        Cancellation is safe: an event is only removed from the inbox when it is
        returned, so a cancelled ``next()`` loses nothing.  Several tasks may wait at once;
        each event goes to exactly one of them.

        Raises:
            SubscriptionClosedError: the subscription (or its client) was closed.
            SubscriptionInboxFullError: the inbox overflowed; raised after the buffered
                events were returned.
            BroadcastError: the service reported a ``broadcast_error`` at this point of the
                stream; the next call goes on with the following events.
            HeartbeatTimeoutError, ConnectionClosedError, RemoteProtocolError: the
                connection failed (after the buffered events were returned).  With
                reconnection enabled a lost connection does not end the subscription:
                reads wait while the client reconnects and re-subscribes it, and raise
                only the error that stopped reconnection (or refused the re-subscribe).
        """
        while True:
            if self._inbox:
                item = self._inbox.popleft()
                if type(item) is Message:
                    return item
                assert isinstance(item, _Failure)
                raise item.error
            if self._terminal is not None:
                raise self._terminal.with_traceback(None)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:  # cancelled before being woken
                    self._waiters.remove(waiter)

    @overload
    async def decode_next(self, type: None = None) -> JSONValue: ...
    @overload
    async def decode_next(self, type: type[T]) -> T: ...
    async def decode_next(self, type: type[T] | None = None) -> T | JSONValue:
        """Return the next event decoded into ``type``.

        ``type`` may be a dataclass, a ``TypedDict``, a pydantic model (anything with
        ``model_validate_json``), a plain JSON type (``dict``, ``list``, ``str``, ``int``,
        ``float``, ``bool``), or ``None`` for the decoded JSON value.  Unknown keys are
        ignored for dataclasses (like Go's ``encoding/json``).  Same waiting and
        cancellation behaviour as :meth:`next`.

        Raises:
            DecodeError: the event does not fit ``type``; the event is consumed and its
                text is in the exception's ``data``.
            (and everything :meth:`next` raises)
        """
        message = await self.next()
        decoded: T | JSONValue = decode_event(message.data, type)
        return decoded

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.next()
        except SubscriptionClosedError:
            if self._clean:
                raise StopAsyncIteration from None
            raise

    # --- closing -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the subscription and unsubscribe it from the service.

        Idempotent.  Pending and later reads raise
        :class:`~appsync_events.errors.SubscriptionClosedError` (iteration ends quietly);
        events still buffered are dropped.  The unsubscribe waits at most the client's
        ``operation_timeout``; it is skipped when the connection is gone.  If ``close()``
        is cancelled, the subscription is closed locally all the same.

        Raises:
            UnsubscribeError: the service refused the unsubscribe.
            OperationTimeoutError: it did not answer within ``operation_timeout``.
        """
        self._end(SubscriptionClosedError(self.id, self.channel, "closed"), clean=True, drop=True)
        if self._closing:
            return
        self._closing = True
        if self.active:
            await self._unsubscribe(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
            return
        try:
            await self.close()
        except AppSyncEventsError:
            pass  # the body's exception matters more than a failed unsubscribe
