"""One subscription: a bounded inbox fed by the connection's reader, read with ``next()``.

Overflow policy: the inbox holds at most ``capacity`` entries
(``Backpressure.subscription_events`` unless ``subscribe()`` overrides it), and its
:class:`~appsync_events.Overflow` policy decides what an event arriving at a full inbox
does.  The reader never waits for a consumer in the first two policies (it must keep
reading ``ka`` frames):

* ``FAIL`` (the default): *this* subscription fails: the events already buffered are
  still delivered, then reads raise
  :class:`~appsync_events.errors.SubscriptionInboxFullError`, and the client unsubscribes
  it from the service.  The connection and every other subscription keep working.  (The
  Go client tears the whole connection down here; we do not.)
* ``DROP_OLDEST``: the oldest entry is dropped, :attr:`Subscription.dropped` counts it,
  and a WARNING is logged on the first drop and then at most every
  :data:`DROP_LOG_INTERVAL` seconds (with the count since the last line).
* ``PAUSE``: the event that fills the inbox is kept and the reader stops reading the
  socket (:meth:`Subscription._wait_room`) until a read brings the inbox down to half its
  capacity or the subscription ends.  Nothing is lost; every subscription of the
  connection waits meanwhile.  An event that arrives at a full inbox anyway (a resumed
  subscription on a new connection) is kept too, beyond ``capacity``, and pauses again.

The inbox itself (a ``deque``) is only created with the first event and dropped when the
subscription closes: until then ``_inbox`` is the shared, always-empty :data:`_NO_INBOX`
and ``_limit`` is 0, which sends the first event down :meth:`Subscription._deliver`.
Reads waiting for an event are listed in the ``waiting`` map of the subscription's
settings (shared by the subscriptions made with the same options), and ``_limit`` is 0
meanwhile too, so that the event goes down :meth:`Subscription._deliver`, which wakes
them.  A subscription that nobody reads thus holds no inbox and no list of waiters.

The reader puts an event in the inbox as a plain ``(data, subscription_id, channel)``
tuple (an ``_Entry``), and the read that returns it makes the :class:`Message` of it.
A plain tuple of strings is one the garbage collector stops tracking the first time it
looks at it; a ``Message`` (a tuple subclass) it tracks as long as it lives, and a flood
of events waiting in an inbox would go through every generation with it.

``broadcast_error`` is delivered in-band: it takes its place in the inbox.  An explicit
read (:meth:`Subscription.next`) that reaches it raises
:class:`~appsync_events.errors.BroadcastError`; ``async for`` skips it (logged at
WARNING, recorded in :attr:`Subscription.broadcast_errors`, passed to the
``on_broadcast_error`` callback).  Either way the reads after it go on with the next
events: the service still considers the subscription active.

Theory of operation: a subscription is in exactly one :class:`SubscriptionState`, and
only the subscription changes it, through the named methods the client and the
connection call (``_accepted``, ``_suspend``, ``_fail``, ``_close_now``,
``_begin_close``/``_finish_close``); :data:`_TRANSITIONS` lists every allowed move.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import types
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, overload

from ._decode import decode_event
from ._types import JSONValue, Message, Overflow
from .errors import (
    AppSyncEventsError,
    BroadcastError,
    SubscriptionClosedError,
    SubscriptionInboxFullError,
)

if TYPE_CHECKING:
    from .authorizer import Authorizer

__all__ = [
    "DROP_LOG_INTERVAL",
    "MAX_BROADCAST_ERRORS",
    "BroadcastErrorCallback",
    "Subscription",
    "SubscriptionRequest",
    "SubscriptionState",
]

T = TypeVar("T")

logger = logging.getLogger("appsync_events.client")

MAX_BROADCAST_ERRORS: Final = 100
"""How many of the most recent ``broadcast_error`` s a subscription keeps in
:attr:`Subscription.broadcast_errors` (:attr:`Subscription.broadcast_error_count` counts
them all)."""

DROP_LOG_INTERVAL: Final = 10.0
"""Seconds between two WARNING lines about the events a subscription with
:attr:`Overflow.DROP_OLDEST <appsync_events.Overflow.DROP_OLDEST>` dropped (the first drop
is logged at once; :attr:`Subscription.dropped` counts every one)."""

BroadcastErrorCallback = Callable[["Subscription", BroadcastError], object]
"""``on_broadcast_error``: called synchronously with the subscription and the error each
time ``async for`` skips a ``broadcast_error``.  It must not block; an exception it
raises is logged and otherwise ignored."""


class SubscriptionState(enum.Enum):
    """The life cycle of a :class:`Subscription`.

    ``PENDING -> ACTIVE -> (SUSPENDED -> ACTIVE)* -> CLOSING -> CLOSED``, or ``FAILED``
    from any state before ``CLOSING``.
    """

    PENDING = "pending"
    """``subscribe`` was sent; the service has not answered yet."""
    ACTIVE = "active"
    """The service acknowledged it: events flow into the inbox."""
    SUSPENDED = "suspended"
    """The connection was lost and the client is reconnecting: buffered events stay
    readable, reads then wait; it becomes ``ACTIVE`` again (same id) once re-subscribed."""
    CLOSING = "closing"
    """Closed by the caller; the unsubscribe is under way.  Reads end quietly."""
    CLOSED = "closed"
    """Closed by the caller or with its client.  Reads end quietly."""
    FAILED = "failed"
    """Ended by an error (inbox overflow, connection failure, re-subscribe refused):
    reads raise it once the buffered events are read."""


_S = SubscriptionState
_TRANSITIONS: Final[dict[SubscriptionState, frozenset[SubscriptionState]]] = {
    _S.PENDING: frozenset({_S.ACTIVE, _S.CLOSED, _S.FAILED}),
    _S.ACTIVE: frozenset({_S.SUSPENDED, _S.CLOSING, _S.CLOSED, _S.FAILED}),
    _S.SUSPENDED: frozenset({_S.ACTIVE, _S.CLOSED, _S.FAILED}),
    _S.CLOSING: frozenset({_S.CLOSED}),
    _S.CLOSED: frozenset(),
    _S.FAILED: frozenset({_S.CLOSED}),  # closed by the caller after the failure: quiet
}
_ENDED: Final = frozenset({_S.CLOSING, _S.CLOSED, _S.FAILED})
_QUIET: Final = frozenset({_S.CLOSING, _S.CLOSED})
_ACTIVE: Final = _S.ACTIVE


class _Failure:
    """An error entry of the inbox (``broadcast_error``)."""

    __slots__ = ("error",)

    def __init__(self, error: AppSyncEventsError) -> None:
        self.error = error


_Future: Final = asyncio.Future
_BASE_CREATE_FUTURE: Final = asyncio.BaseEventLoop.create_future
"""A loop whose ``create_future`` is this makes an ``asyncio.Future(loop=loop)``."""

_new_tuple: Final = tuple.__new__

_Entry = tuple[str, str, str]
"""An event in an inbox: a plain tuple of the fields of its :class:`Message`."""

_NO_INBOX: Final[deque[_Entry | Message | _Failure]] = deque(maxlen=0)
"""The inbox of every subscription that has received nothing yet (or was closed): empty
for ever, shared, never appended to (``_limit`` is 0 while it is in place)."""


class SubscriptionSettings:
    """What a subscription is told by ``subscribe()``: its inbox size, overflow policy,
    authorizer and callbacks.

    One object is shared by every subscription made with the same options (a client
    keeps one for its defaults), so that a subscription costs little more than its id
    and channel.  It also holds the state a subscription only rarely needs (an ending, a
    paused reader, dropped events, ``broadcast_error`` s), at its initial values while
    shared: a subscription that needs its own gets a private copy of its settings
    (:meth:`Subscription._own`).
    """

    __slots__ = (
        "authorizer",
        "broadcast_error_count",
        "broadcast_errors",
        "capacity",
        "drop_logged_at",
        "dropped",
        "drops_logged",
        "error",
        "limit",
        "on_broadcast_error",
        "on_overflow",
        "overflow",
        "private",
        "room",
        "unsubscribe",
        "waiting",
    )

    def __init__(
        self,
        *,
        capacity: int,
        authorizer: Authorizer,
        unsubscribe: Callable[[Subscription], Awaitable[None]],
        on_overflow: Callable[[Subscription], None],
        on_broadcast_error: BroadcastErrorCallback | None = None,
        overflow: Overflow = Overflow.FAIL,
    ) -> None:
        self.capacity = capacity
        self.overflow = overflow
        self.authorizer = authorizer
        self.unsubscribe = unsubscribe
        self.on_overflow = on_overflow
        self.on_broadcast_error = on_broadcast_error
        # How full the reader may fill an inbox by itself: PAUSE leaves the last slot to
        # Subscription._deliver, which pauses the reader.
        self.limit = capacity - 1 if overflow is Overflow.PAUSE else capacity
        # The reads waiting for an event, per subscription (only while some wait); a
        # private copy shares this map with the settings it was copied from.
        self.waiting: dict[Subscription, list[asyncio.Future[None]]] = {}
        self.private = False  # True in the copy a subscription owns
        # The rare per-subscription state (changed in private copies only).
        self.error: AppSyncEventsError | None = None  # raised by reads once ended
        self.room: asyncio.Future[None] | None = None  # the reader waits on it (PAUSE)
        self.dropped = 0  # Subscription.dropped
        self.drop_logged_at: float | None = None  # loop time of the last "dropped" line
        self.drops_logged = 0  # ``dropped`` when that line was logged
        self.broadcast_errors: deque[BroadcastError] | None = None  # made by the first one
        self.broadcast_error_count = 0  # Subscription.broadcast_error_count

    def _private_copy(self) -> SubscriptionSettings:
        copy = object.__new__(SubscriptionSettings)
        for name in SubscriptionSettings.__slots__:
            setattr(copy, name, getattr(self, name))
        copy.private = True
        return copy


class Subscription:
    """A subscription to a channel (pattern) on a :class:`~appsync_events.Client`.

    Create it with :meth:`Client.subscribe <appsync_events.Client.subscribe>`.  Read with
    :meth:`next`, :meth:`decode_next` or ``async for``; end it with :meth:`close` or
    ``async with``.  Iteration ends quietly when the subscription or its client is closed
    by the caller, skips ``broadcast_error`` s, and raises for every other ending (inbox
    overflow, connection failure).
    """

    # A subscription holds its id, channel and state, and shares everything else until
    # it needs it: its settings (shared by the subscriptions made with the same options;
    # the rare state lives in a private copy, see SubscriptionSettings), its inbox
    # (created by the first event), the reads waiting on it (in its settings' ``waiting``
    # map while they wait).
    __slots__ = ("_inbox", "_limit", "_settings", "_state", "channel", "id")

    def __init__(self, subscription_id: str, channel: str, settings: SubscriptionSettings) -> None:
        self.id = subscription_id
        """The subscription id (unique on its connection, kept across reconnections)."""
        self.channel = channel
        """The channel (pattern) as subscribed."""
        self._settings = settings
        self._state = SubscriptionState.PENDING
        self._inbox = _NO_INBOX  # created by the first event (see the module docstring)
        # The reader appends directly while len(_inbox) < _limit: 0 without an inbox or
        # while reads wait (the event must then go through _deliver, which wakes them).
        self._limit = 0

    def _own(self) -> SubscriptionSettings:
        """This subscription's own settings, where its rare state lives (made on first use)."""
        settings = self._settings
        if settings.private:
            return settings
        own = self._settings = settings._private_copy()
        return own

    @property
    def capacity(self) -> int:
        """Inbox size (``Backpressure.subscription_events`` unless ``subscribe()`` set it)."""
        return self._settings.capacity

    @property
    def overflow(self) -> Overflow:
        """What an event arriving at a full inbox does (``Backpressure.overflow`` unless
        ``subscribe()`` set it)."""
        return self._settings.overflow

    @property
    def authorizer(self) -> Authorizer:
        """The authorizer used for this subscription (and its unsubscribe)."""
        return self._settings.authorizer

    @property
    def dropped(self) -> int:
        """How many inbox entries :attr:`Overflow.DROP_OLDEST
        <appsync_events.Overflow.DROP_OLDEST>` dropped to make room for newer ones (events,
        and the ``broadcast_error`` reports that take their place in the inbox)."""
        return self._settings.dropped

    @property
    def broadcast_error_count(self) -> int:
        """How many ``broadcast_error`` s reads reached (skipped or raised)."""
        return self._settings.broadcast_error_count

    def __repr__(self) -> str:
        return f"<Subscription {self.id} {self.channel!r} {self._state.value}>"

    @property
    def state(self) -> SubscriptionState:
        """Where the subscription is in its life cycle."""
        return self._state

    @property
    def active(self) -> bool:
        """Whether the service acknowledged it and it was not closed, lost or failed since."""
        return self._state is _ACTIVE

    @property
    def closed(self) -> bool:
        """Whether reads can no longer return new events (buffered ones may remain)."""
        return self._state in _ENDED

    @property
    def pending(self) -> int:
        """Entries waiting in the inbox."""
        return len(self._inbox)

    @property
    def pausing(self) -> bool:
        """Whether this subscription's full inbox holds its connection's reading paused
        (:attr:`Overflow.PAUSE <appsync_events.Overflow.PAUSE>`) until reads bring it down
        to half its capacity."""
        return self._settings.room is not None

    @property
    def broadcast_errors(self) -> tuple[BroadcastError, ...]:
        """The last :data:`MAX_BROADCAST_ERRORS` ``broadcast_error`` s reads reached,
        oldest first (see :attr:`broadcast_error_count` for the total)."""
        errors = self._settings.broadcast_errors
        return () if errors is None else tuple(errors)

    # --- state changes, called by the client and the connection (sync, never block) ----------

    def _move(self, state: SubscriptionState) -> None:
        assert state in _TRANSITIONS[self._state], f"{self._state} -> {state}"
        self._state = state
        if self._settings.room is not None:  # no longer active: the reader must not wait for it
            self._release_room()

    def _accepted(self) -> bool:
        """``subscribe_success``: ``PENDING``/``SUSPENDED`` -> ``ACTIVE``.

        Returns ``False`` (and changes nothing) when it ended meanwhile.
        """
        if self._state not in (_S.PENDING, _S.SUSPENDED):
            return False
        self._move(_S.ACTIVE)
        return True

    def _suspend(self) -> bool:
        """The connection was lost and will be replaced: keep the inbox, wait to resume.

        Returns whether the subscription is to be resumed (it was ``ACTIVE``, or already
        ``SUSPENDED`` and lost again while being re-subscribed).
        """
        if self._state is _S.ACTIVE:
            self._move(_S.SUSPENDED)
        return self._state is _S.SUSPENDED

    def _fail(self, error: AppSyncEventsError) -> None:
        """End with ``error``: reads raise it once the inbox is empty.  The first ending wins."""
        if self._state in _ENDED:
            return
        self._move(_S.FAILED)
        self._own().error = error
        self._wake()

    def _close_now(self, reason: str) -> None:
        """End quietly now (buffered events are dropped), without unsubscribing."""
        if self._state in _QUIET:
            return
        self._move(_S.CLOSED)
        self._closed(reason)

    def _begin_close(self, reason: str) -> bool:
        """End quietly now; return whether the caller must unsubscribe (it was ``ACTIVE``),
        then call :meth:`_finish_close`."""
        if self._state is not _S.ACTIVE:
            self._close_now(reason)
            return False
        self._move(_S.CLOSING)
        self._closed(reason)
        return True

    def _finish_close(self) -> None:
        """The unsubscribe started by :meth:`_begin_close` is over: ``CLOSED``."""
        if self._state is _S.CLOSING:
            self._move(_S.CLOSED)

    def _closed(self, reason: str) -> None:
        self._inbox = _NO_INBOX  # the buffered events are dropped, and the deque freed
        self._limit = 0
        self._own().error = SubscriptionClosedError(self.id, self.channel, reason)
        self._wake()

    # --- fed by the connection's reader (sync, never blocks) ---------------------------------

    def _deliver(self, item: _Entry | Message | _Failure) -> bool:
        """Put ``item`` in the inbox, applying the overflow policy.

        Returns whether the reader must stop reading until :meth:`_wait_room` returns
        (:attr:`Overflow.PAUSE`, and the inbox is now full).
        """
        state = self._state
        if state is not _ACTIVE and state in _ENDED:
            return False
        inbox = self._inbox
        settings = self._settings
        if inbox is _NO_INBOX:
            inbox = self._inbox = deque()
            self._limit = settings.limit  # 0 again below while reads wait
        capacity = settings.capacity
        if len(inbox) >= capacity:
            if settings.overflow is Overflow.FAIL:
                self._fail(SubscriptionInboxFullError(self.id, self.channel, capacity))
                settings.on_overflow(self)
                return False
            if settings.overflow is Overflow.DROP_OLDEST:
                inbox.popleft()
                self._dropped_one()
            # PAUSE: kept all the same (never lost), beyond the capacity
        inbox.append(item)
        waiting = settings.waiting
        if waiting:
            # _wake inlined: the reads waiting on this subscription look at the inbox again.
            waiters = waiting.pop(self, None)
            if waiters is not None:
                self._limit = settings.limit  # no read waits: the reader may append again
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
        return settings.overflow is Overflow.PAUSE and len(inbox) >= capacity

    def _deliver_error(self, error: AppSyncEventsError) -> bool:
        return self._deliver(_Failure(error))

    def _dropped_one(self) -> None:
        """Count one entry dropped by DROP_OLDEST; log at most every DROP_LOG_INTERVAL."""
        own = self._own()
        own.dropped += 1
        now = asyncio.get_running_loop().time()
        if own.drop_logged_at is not None and now - own.drop_logged_at < DROP_LOG_INTERVAL:
            return
        logger.warning(
            "subscription %s on %r: inbox full (%d events), dropping the oldest:"
            " %d since the last report, %d in total",
            self.id,
            self.channel,
            own.capacity,
            own.dropped - own.drops_logged,
            own.dropped,
        )
        own.drop_logged_at = now
        own.drops_logged = own.dropped

    async def _wait_room(self) -> None:
        """Wait until reads brought the inbox down to half its capacity, the subscription
        is no longer active, or the connection gives up waiting (its socket closed) and
        calls :meth:`_release_room` (:attr:`Overflow.PAUSE`; called by the reader).

        No timeout: the reader waits as long as the consumer does not read.  Cancelling it
        (the connection closing) changes nothing in the subscription.
        """
        if self._state is not _ACTIVE or len(self._inbox) <= self._settings.capacity // 2:
            return
        room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        own = self._own()
        own.room = room
        try:
            await room
        finally:
            if own.room is room:
                own.room = None

    def _release_room(self) -> None:
        settings = self._settings
        room = settings.room
        if room is not None:
            settings.room = None
            if not room.done():
                room.set_result(None)

    def _wake(self) -> None:
        """Wake every read waiting on this subscription (they look at the inbox again)."""
        settings = self._settings
        waiters = settings.waiting.pop(self, None)
        if waiters is None:
            return
        if self._inbox is not _NO_INBOX:
            self._limit = settings.limit  # no read waits: the reader may append again
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- reading -------------------------------------------------------------------------------

    async def next(self) -> Message:
        """Return the next event.

        Waits as long as it takes: there is no timeout parameter; wrap the call in
        ``asyncio.timeout()`` to bound the wait.  Cancellation is safe: an event is only
        removed from the inbox when it is returned, so a cancelled ``next()`` loses
        nothing.  Several tasks may wait at once; each event goes to exactly one of them.

        Raises:
            SubscriptionClosedError: the subscription (or its client) was closed.
            SubscriptionInboxFullError: the inbox overflowed (:attr:`Overflow.FAIL
                <appsync_events.Overflow.FAIL>`); raised after the buffered events were
                returned.
            BroadcastError: the service reported a ``broadcast_error`` at this point of the
                stream (also recorded in :attr:`broadcast_errors`); the next call goes on
                with the following events.
            HeartbeatTimeoutError, ConnectionClosedError, RemoteProtocolError: the
                connection failed (after the buffered events were returned).  With
                reconnection enabled a lost connection does not end the subscription
                (it is ``SUSPENDED``): reads wait while the client reconnects and
                re-subscribes it, and raise only the error that stopped reconnection (or
                refused the re-subscribe).
        """
        while True:
            inbox = self._inbox
            if inbox:
                item = inbox.popleft()
                settings = self._settings
                if settings.room is not None and len(inbox) <= settings.capacity // 2:
                    self._release_room()  # Overflow.PAUSE: the reader may read again
                if type(item) is tuple:
                    message: Message = _new_tuple(Message, item)
                    return message
                if type(item) is Message:
                    return item
                assert isinstance(item, _Failure)
                if isinstance(item.error, BroadcastError):
                    own = self._own()
                    own.broadcast_error_count += 1
                    if own.broadcast_errors is None:
                        own.broadcast_errors = deque(maxlen=MAX_BROADCAST_ERRORS)
                    own.broadcast_errors.append(item.error)
                raise item.error
            error = self._settings.error
            if error is not None:
                raise error.with_traceback(None)
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = (
                _Future(loop=loop)  # what asyncio's own loop makes, without the call
                if type(loop).create_future is _BASE_CREATE_FUTURE
                else loop.create_future()
            )
            waiting = self._settings.waiting  # the same map in a private copy of the settings
            waiters = waiting.get(self)
            if waiters is None:  # the first read to wait: hand the next event to _deliver
                waiting[self] = [waiter]
                self._limit = 0
            else:
                waiters.append(waiter)
            try:
                await waiter
            except BaseException:  # cancelled (or woken, then cancelled before it ran)
                self._unwait(waiter)
                raise

    def _unwait(self, waiter: asyncio.Future[None]) -> None:
        """Forget the waiting read ``waiter`` (cancelled); the last one restores ``_limit``."""
        settings = self._settings
        waiters = settings.waiting.get(self)
        if waiters is None or waiter not in waiters:
            return
        waiters.remove(waiter)
        if not waiters:
            del settings.waiting[self]
            if self._inbox is not _NO_INBOX:
                self._limit = settings.limit

    @overload
    async def decode_next(self, target: None = None) -> JSONValue: ...
    @overload
    async def decode_next(self, target: type[T]) -> T: ...
    async def decode_next(self, target: type[T] | None = None) -> T | JSONValue:
        """Return the next event decoded into ``target``.

        ``None`` gives the decoded JSON value.  Any other ``target`` (a dataclass, a
        ``TypedDict``, a pydantic model, ``list[int]``, ...) is validated by pydantic's
        ``TypeAdapter``, which needs the ``pydantic`` extra (``pip install
        'appsync-events[pydantic]'``).  Plain types are validated strictly (``"1"`` is not
        an ``int``); a pydantic model keeps its own configuration.  Same waiting (no
        timeout: use ``asyncio.timeout()``) and cancellation behaviour as :meth:`next`.

        Raises:
            DecodeError: the event does not fit ``target``; the event is consumed and its
                text is in the exception's ``data``.
            ConfigurationError: a ``target`` other than ``None`` without pydantic installed.
            SubscriptionClosedError, SubscriptionInboxFullError, BroadcastError: as
                :meth:`next`.
        """
        message = await self.next()
        decoded: T | JSONValue = decode_event(message.data, target)
        return decoded

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        """Return the next event, skipping ``broadcast_error`` s.

        Same waiting and cancellation behaviour as :meth:`next` (cancelling loses no
        event; bound it with ``asyncio.timeout()``).  A ``broadcast_error`` does not end
        the iteration: it is logged at WARNING, recorded in :attr:`broadcast_errors` and
        passed to the ``on_broadcast_error`` callback given to ``subscribe()``, and the
        iteration goes on.  The iteration stops quietly when the subscription or its
        client was closed by the caller, and raises every other ending.
        """
        # next()'s commonest case first, without its coroutine: an event is buffered.
        inbox = self._inbox
        if inbox and self._settings.room is None:
            item = inbox.popleft()
            if type(item) is tuple:
                message: Message = _new_tuple(Message, item)
                return message
            if type(item) is Message:
                return item
            inbox.appendleft(item)  # a failure: next() reports it
        while True:
            try:
                return await self.next()
            except BroadcastError as exc:
                self._skipped(exc)
            except SubscriptionClosedError:
                if self._state in _QUIET:
                    raise StopAsyncIteration from None
                raise

    def _skipped(self, error: BroadcastError) -> None:
        logger.warning("subscription %s on %r: skipping %s", self.id, self.channel, error)
        callback = self._settings.on_broadcast_error
        if callback is None:
            return
        try:
            callback(self, error)
        except Exception:
            logger.exception("on_broadcast_error of subscription %s failed", self.id)

    # --- closing -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the subscription and unsubscribe it from the service.

        Idempotent.  Pending and later reads raise
        :class:`~appsync_events.errors.SubscriptionClosedError` (iteration ends quietly);
        events still buffered are dropped.  The unsubscribe waits at most the client's
        ``operation_timeout``; it is skipped when the connection is gone (or the client
        is reconnecting: the subscription is then simply not resumed).  If ``close()`` is
        cancelled, the subscription is closed locally all the same.

        Raises:
            UnsubscribeError: the service refused the unsubscribe.
            OperationTimeoutError: it did not answer within ``operation_timeout``.
        """
        if not self._begin_close("closed"):
            return
        try:
            await self._settings.unsubscribe(self)
        finally:
            self._finish_close()

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


class SubscriptionRequest:
    """What :meth:`Client.subscribe <appsync_events.Client.subscribe>` returns: await it,
    or use it with ``async with``.

    ``sub = await client.subscribe(channel)`` returns the active :class:`Subscription`
    (close it with ``await sub.close()``); ``async with client.subscribe(channel) as sub:``
    does the same and closes it (unsubscribing it) when the block exits, whether
    normally, by an exception or by cancellation; an unsubscribe that fails while an
    exception leaves the block is dropped in favour of that exception.  Nothing is sent
    before it is awaited or entered, and it can be awaited or entered once.
    """

    def __init__(self, open_subscription: Callable[[], Coroutine[Any, Any, Subscription]]) -> None:
        self._open = open_subscription
        self._subscription: Subscription | None = None
        self._used = False

    def __await__(self) -> Generator[Any, None, Subscription]:
        return self._start().__await__()

    async def __aenter__(self) -> Subscription:
        self._subscription = await self._start()
        return self._subscription

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        assert self._subscription is not None
        await self._subscription.__aexit__(exc_type, exc, tb)

    def _start(self) -> Coroutine[Any, Any, Subscription]:
        if self._used:
            raise RuntimeError("this subscribe() was already used; call client.subscribe() again")
        self._used = True
        return self._open()
