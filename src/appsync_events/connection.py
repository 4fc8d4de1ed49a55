"""The asyncio shell around :class:`~appsync_events.protocol.client.ClientProtocol`.

A :class:`Connection` owns one WebSocket (:mod:`appsync_events._transport`) and three
things that run in the background, all owned by it and cancelled when it closes:

* the **reader** task, which owns reading the socket.  Every frame goes to the protocol
  and what comes out is dispatched: answers resolve the futures of waiting operations,
  events go into subscription inboxes.  Text frames are handled right where aiohttp
  parses them, in the socket's callback (:meth:`_on_frames`), while the reader task
  waits; an event for an active subscription is even taken as aiohttp's parser makes it,
  before it is queued (:meth:`_direct`).  The reader task wakes only for the rest (pings,
  closes, a pause, the end), which it reads with ``receive()``, in order.  An aiohttp
  without the internals this needs gets the plain loop: the reader task reads every
  frame.  Nothing here waits for user code, so ``ka`` frames are read even when every
  consumer is slow;
* the **writer** task, which sends the frames of the bounded outbox in order.  A frame
  is queued there only when it cannot be written at once: when the outbox already holds
  frames, the writer is busy with one, or the socket's write buffer is full.  Otherwise
  (the common case) the caller writes it to the socket itself, synchronously and whole
  (:meth:`~appsync_events._transport.WebSocket.send_now`), which saves the writer's
  wake-up on every operation and keeps the order of frames.  The frames of publishes
  whose callers were woken together by their answers are gathered in the outbox and
  written together, in one socket write, without the writer
  (:meth:`Connection._answer_publish`);
* the **heartbeat** timer (``loop.call_at``, the loop's clock), armed at the ack and
  re-armed lazily: it fires ``keepalive_timeout`` after the last received frame of any
  kind and then fails the connection with
  :class:`~appsync_events.errors.HeartbeatTimeoutError`.

The one exception to "never waits for user code": a subscription with
:attr:`Overflow.PAUSE <appsync_events.Overflow.PAUSE>` whose inbox is full holds the
reader (``_hold``) before its next ``recv()`` until reads make room.  Frames then wait in
the WebSocket receive queue, then in the kernel, and TCP slows the service down.  The
heartbeat does not count that time: frames are not missing, we are not reading them; its
deadline restarts when reading resumes.  The socket closing ends the wait too, so that a
close by the service is noticed during a pause.

A failure (heartbeat, ``connection_error``, protocol violation, socket closed) is
recorded once — the first one wins — and raised by every pending and later call; the
socket is then closed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import types
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, MutableMapping
from typing import Any, Final

from ._transport import Direct, TransportClosed, WebSocket
from ._types import Message
from .errors import (
    AppSyncEventsError,
    ConnectionClosedError,
    HeartbeatTimeoutError,
    OperationTimeoutError,
    RemoteProtocolError,
)
from .protocol import codec
from .protocol.client import (
    BroadcastFailed,
    ClientEvent,
    ClientProtocol,
    ClientState,
    ConnectionAccepted,
    ConnectionFailed,
    FrameIgnored,
    KeepAliveReceived,
    PublishAccepted,
    SubscribeAccepted,
    UnsubscribeAccepted,
    UnsubscribeRejected,
)
from .protocol.limits import DEFAULT_CONNECTION_TIMEOUT_MS
from .protocol.messages import Outgoing
from .protocol.publish import PreparedPublish
from .subscription import Subscription, SubscriptionState

__all__ = [
    "EXPIRED",
    "Connection",
    "ConnectionLogger",
    "OperationDeadlines",
    "redact",
]

logger = logging.getLogger("appsync_events.client")

_ACTIVE: Final = SubscriptionState.ACTIVE
_OPEN: Final = ClientState.OPEN


def _no_parser(text: str) -> Any:  # pragma: no cover - replaced before any frame
    raise ValueError


_MAX_DEFERRED: Final = 4096
"""Frames up to this length that answer a publish may wait behind a woken read (one
answers at most five events, so it is far shorter)."""

_Frame = str | Outgoing
"""What the core's ``data_to_send()`` returns: written as it is, never parsed here."""

DEFAULT_KEEPALIVE_TIMEOUT: Final = DEFAULT_CONNECTION_TIMEOUT_MS / 1000.0
"""Used when the ack carries no ``connectionTimeoutMs``."""

_SECRET_FIELD: Final = re.compile(
    r'"(authorization|x-api-key|x-amz-security-token)"(\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE
)


def redact(text: str) -> str:
    """Hide the values of ``Authorization``, ``x-api-key`` and ``X-Amz-Security-Token``."""
    return _SECRET_FIELD.sub(r'"\1"\2"<redacted>"', text)


class _Expired:
    __slots__ = ()

    def __repr__(self) -> str:
        return "EXPIRED"


EXPIRED: Final[Any] = _Expired()
"""The result :meth:`OperationDeadlines.watch` gives a wait that reached its deadline."""

_RUNNING: Final = 0
_DONE: Final = 1
_EXPIRED: Final = 2


class OperationDeadlines:
    """The deadlines of one client's operations, on as few loop timers as possible.

    ``with deadlines.enter("publish", operation_id, limit): ...`` (``async with`` works
    too) bounds the body like ``asyncio.timeout(limit)`` (on expiry the task is cancelled,
    and the cancellation becomes :class:`OperationTimeoutError` on the way out unless the
    task was also cancelled from elsewhere; a ``TimeoutError`` from an inner deadline
    propagates as it is).  Operations share one timeout, so their deadlines come in the
    order they start: they wait in a queue under one loop timer, armed for the oldest one,
    instead of scheduling and cancelling a timer each.  An operation whose deadline would come
    before the newest queued one (the timeout was lowered), or whose limit is spent
    already, gets a timer of its own.
    """

    __slots__ = (
        "_clock",
        "_loop",
        "_queue",
        "_timer",
        "_timer_at",
        "_wait_at",
        "_wait_timer",
        "_waits",
    )

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[_Deadline] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._clock: Callable[[], float] = time.monotonic  # loop_clock(_loop), once known
        self._waits: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._wait_timer: asyncio.TimerHandle | None = None
        self._wait_at = 0.0

    def enter(self, operation: str, operation_id: str, limit: float | None) -> _Deadline:
        """The deadline of one operation, to enter around it (``None``: unbounded)."""
        return _Deadline(self, operation, operation_id, limit)

    def watch(self, waiter: asyncio.Future[Any], limit: float | None) -> bool:
        """Bound the wait for ``waiter``, an operation's answer, by ``limit`` seconds from
        now: then, unless it is done, its result is set to :data:`EXPIRED` (the awaiting
        code raises :class:`OperationTimeoutError`).  For an operation whose only wait is
        ``await waiter``: no task is cancelled, and a deadline is one entry in a queue
        under one loop timer (armed for the oldest wait not done), nothing to leave.

        ``False``: not watched, because the deadline would not come in order (the
        timeout was lowered) or the limit is spent already; bound the wait with
        :meth:`enter` instead.  ``None``: unbounded (``True``, nothing to do).
        """
        if limit is None:
            return True
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._clock = loop_clock(loop)
        at = self._clock() + limit
        waits = self._waits
        while waits and waits[0][1].done():  # the waits that ended first
            waits.popleft()
        if limit <= 0 or (waits and at < waits[-1][0]):
            return False
        waits.append((at, waiter))
        if self._wait_timer is None:
            self._wait_at = at
            self._wait_timer = loop.call_at(at, self._expire_waits)
        return True

    def _expire_waits(self) -> None:
        assert self._loop is not None
        self._wait_timer = None
        # The loop runs a timer up to its clock resolution early: the time it was armed
        # for counts as reached.
        now = max(self._loop.time(), self._wait_at)
        waits = self._waits
        while waits:
            at, waiter = waits[0]
            if not waiter.done():
                if at > now:
                    self._wait_at = at
                    self._wait_timer = self._loop.call_at(at, self._expire_waits)
                    return
                waiter.set_result(EXPIRED)
            waits.popleft()

    def _arm(self, at: float) -> None:
        assert self._loop is not None
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        assert self._loop is not None
        self._timer = None
        # The loop runs a timer up to its clock resolution early: the time it was armed
        # for counts as reached.
        now = max(self._loop.time(), self._timer_at)
        queue = self._queue
        while queue:
            head = queue[0]
            if head._state == _RUNNING:
                if head._at > now:
                    self._arm(head._at)
                    return
                head._expire()
            queue.popleft()


class _Deadline:
    """One operation's deadline (see :class:`OperationDeadlines`): a context manager."""

    __slots__ = (
        "_at",
        "_cancelling",
        "_handle",
        "_owner",
        "_state",
        "_task",
        "limit",
        "operation",
        "operation_id",
    )

    def __init__(
        self, owner: OperationDeadlines, operation: str, operation_id: str, limit: float | None
    ) -> None:
        self._owner = owner
        self.operation = operation
        self.operation_id = operation_id
        self.limit = limit
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.Handle | None = None
        self._state = _RUNNING
        self._at = 0.0
        self._cancelling = 0

    def __enter__(self) -> None:
        limit = self.limit
        if limit is None:
            return
        owner = self._owner
        loop = owner._loop
        if loop is None:
            loop = owner._loop = asyncio.get_running_loop()
            owner._clock = loop_clock(loop)
        task = asyncio.current_task(loop)
        if task is None:  # pragma: no cover - operations run in tasks
            raise RuntimeError("an operation deadline must be entered inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        queue = owner._queue
        at = loop.time() + limit
        if limit <= 0:
            self._handle = loop.call_soon(self._expire)
        elif queue and at < queue[-1]._at:  # out of order: a timer of its own
            self._handle = loop.call_at(at, self._expire)
        else:
            self._at = at
            queue.append(self)
            if owner._timer is None:
                owner._arm(at)

    async def __aenter__(self) -> None:
        self.__enter__()

    def _expire(self) -> None:
        assert self._task is not None
        self._handle = None
        self._state = _EXPIRED
        self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._state != _EXPIRED:
            self._state = _DONE
            queue = self._owner._queue
            while queue and queue[0]._state != _RUNNING:  # the operations that ended first
                queue.popleft()
            return
        assert self._task is not None
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            timeout = TimeoutError()
            timeout.__cause__ = exc
            raise OperationTimeoutError(
                self.operation, self.operation_id, self.limit or 0.0
            ) from timeout

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """``loop.time``, or what asyncio's own ``loop.time`` returns, without its Python call."""
    if getattr(loop.time, "__func__", None) is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


def future_maker(loop: asyncio.AbstractEventLoop) -> Callable[[], asyncio.Future[Any]]:
    """``loop.create_future``, or the same without its Python call: asyncio's own loop
    makes an ``asyncio.Future(loop=loop)`` there, which a ``functools.partial`` makes
    directly.  Any other loop's ``create_future`` is used as it is."""
    create = loop.create_future
    if getattr(create, "__func__", None) is asyncio.BaseEventLoop.create_future:
        return functools.partial(asyncio.Future, loop=loop)
    return create


def soon_caller(
    loop: asyncio.AbstractEventLoop, callback: Callable[[], None]
) -> Callable[[], object]:
    """A function that schedules ``callback()`` as ``loop.call_soon(callback)`` does.

    On asyncio's own loop (not in debug mode), where ``call_soon`` makes a ``Handle`` in
    Python and appends it to the loop's deque of ready handles, one ``Handle`` is made
    here and appended each time: the same callback runs at the same point, without
    the calls.  Any other loop's ``call_soon`` is used as it is.
    """
    ready = getattr(loop, "_ready", None)
    if (
        getattr(loop.call_soon, "__func__", None) is asyncio.BaseEventLoop.call_soon
        and type(ready) is deque
        and not loop.get_debug()
    ):
        return functools.partial(ready.append, asyncio.Handle(callback, (), loop))
    return functools.partial(loop.call_soon, callback)


class ConnectionLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the connection id."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return f"[{self.extra['connection_id'] if self.extra else '?'}] {msg}", kwargs


class _Outbox:
    """Bounded FIFO of frames to send; producers wait for room, the writer for frames."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._frames: deque[_Frame] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._room: list[asyncio.Future[None]] = []
        self.error: AppSyncEventsError | None = None

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, frame: _Frame) -> None:
        """Append ``frame`` (never blocks; callers wait for room first)."""
        self._frames.append(frame)
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)

    def wake(self) -> None:
        """Wake the writer waiting for frames (frames were queued without :meth:`put`)."""
        if self._frames and self._getter is not None and not self._getter.done():
            self._getter.set_result(None)

    def take_all(self) -> list[_Frame]:
        """Remove and return every queued frame (never waits)."""
        frames = list(self._frames)
        self._frames.clear()
        if self._room:
            self._wake_room()
        return frames

    async def get(self) -> _Frame:
        while not self._frames:
            self._getter = asyncio.get_running_loop().create_future()
            await self._getter
        frame = self._frames.popleft()
        if self._room:
            self._wake_room()
        return frame

    async def wait_room(self) -> None:
        """Wait until a frame may be queued; raise the connection's failure if any."""
        while self.error is None and len(self._frames) >= self.capacity:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._room.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._room:
                    self._room.remove(waiter)
        if self.error is not None:
            raise self.error.with_traceback(None)

    def fail(self, error: AppSyncEventsError) -> None:
        self.error = error
        self._wake_room()

    def _wake_room(self) -> None:
        room, self._room = self._room, []
        for waiter in room:
            if not waiter.done():
                waiter.set_result(None)


class Connection:
    """One open WebSocket to AppSync Events and the tasks that serve it.

    Internal: users hold a :class:`~appsync_events.Client`.  Create with the opened
    :class:`~appsync_events._transport.WebSocket`, then :meth:`start` and :meth:`handshake`.
    """

    def __init__(
        self,
        ws: WebSocket,
        *,
        protocol: ClientProtocol,
        outbound: int,
        heartbeat_timeout: float | None,
        close_timeout: float | None,
        log: ConnectionLogger,
    ) -> None:
        self.ws = ws
        self.protocol = protocol
        self.log = log
        self.debug = log.isEnabledFor(logging.DEBUG)
        """Whether frames are logged (decided when the connection opens, like websockets)."""
        self.subscriptions: dict[str, Subscription] = {}
        """Subscriptions by id, from the subscribe request until they end."""
        self.failure: AppSyncEventsError | None = None
        """Why the connection cannot be used any more (first failure wins)."""
        self.on_lost: Callable[[AppSyncEventsError, bool], bool] | None = None
        """Called once by :meth:`fail` with the failure and ``clean``.  Returning ``True``
        suspends the active subscriptions instead of ending them (moved to
        :attr:`suspended`, inboxes kept) so that the client can resume them on a new
        connection."""
        self.suspended: list[Subscription] = []
        """The subscriptions :meth:`fail` suspended because :attr:`on_lost` asked for it."""
        self.keepalive_timeout: float | None = None
        """The heartbeat timeout in force (seconds), once the ack arrived."""
        self._loop = asyncio.get_running_loop()
        self._new_future = future_maker(self._loop)
        self._clock = loop_clock(self._loop)
        self._outbox = _Outbox(outbound)
        self._writing = False  # the writer task holds frames it is sending
        self._corked = False  # a frame was written directly in this loop iteration
        # Frames of publishes gathered to be written together (see _answer_publish):
        self._gathering = False  # publish frames wait in the outbox for _write_gathered
        self._woken: set[asyncio.Future[Any]] = set()  # answered; their callers not back yet
        self._gather_queued = False  # _write_gathered is scheduled
        self._gather_later = False  # _write_gathered waited one loop iteration already
        self._write_gathered_soon = soon_caller(self._loop, self._write_gathered)
        self._waiters: dict[str, asyncio.Future[ClientEvent]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ack: asyncio.Future[ConnectionAccepted] = self._loop.create_future()
        self._heartbeat_override = heartbeat_timeout
        self._close_timeout = close_timeout
        self._last_frame = self._loop.time()
        self._armed_at = self._last_frame
        self._watchdog: asyncio.TimerHandle | None = None
        self._closer: asyncio.Task[None] | None = None
        self._failed = asyncio.Event()
        self._hold: Subscription | None = None  # Overflow.PAUSE: wait for its room, then read
        self._fed_error: Exception | None = None  # raised by the reader: _on_frames failed
        self._direct_woke = False  # _direct's on_frame woke a read: _on_frames defers answers
        self._after_wake_soon = soon_caller(self._loop, self._after_wake)

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader and writer tasks."""
        self.spawn(self._read(), name="reader")
        self.spawn(self._write(), name="writer")

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task owned by this connection (cancelled when it closes)."""
        task = self._loop.create_task(coro, name=f"appsync-events {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.log.error("background task %s failed", task.get_name(), exc_info=exc)
            error = ConnectionClosedError(message=f"internal error in {task.get_name()}: {exc!r}")
            error.__cause__ = exc
            self.fail(error)

    async def handshake(self) -> ConnectionAccepted:
        """Send ``connection_init``, wait for ``connection_ack``, arm the heartbeat.

        No timeout of its own: the caller bounds it with the handshake timeout.

        Raises:
            UnauthorizedError, HandshakeError: ``connection_error`` from the service.
            ConnectionClosedError: the socket closed first.
        """
        self.protocol.send_connection_init()
        self.flush()
        accepted = await self._ack
        self._corked = False  # connection_init was answered
        timeout = self._heartbeat_override or accepted.keepalive_timeout
        self.keepalive_timeout = timeout or DEFAULT_KEEPALIVE_TIMEOUT
        self._last_frame = self._loop.time()
        self._arm()
        return accepted

    @property
    def finished(self) -> bool:
        """Whether the connection failed or closed and its cleanup is over."""
        return self._closer is not None and self._closer.done()

    @property
    def closed(self) -> bool:
        """Whether the connection failed or was closed (no new operation is possible)."""
        return self.failure is not None

    def check(self) -> None:
        """Raise the connection's failure, if any."""
        if self.failure is not None:
            raise self.failure.with_traceback(None)

    def fail(self, error: AppSyncEventsError, *, clean: bool = False) -> None:
        """Record ``error`` as the connection's failure and close the socket.

        Every pending operation raises ``error``; every subscription fails with it (reads
        raise it after the buffered events; ``clean``: they close quietly instead),
        unless :attr:`on_lost` asks to keep them for a reconnection: then the
        subscriptions that were active are suspended and moved to :attr:`suspended`.
        """
        if self.failure is not None:
            return
        self.failure = error
        if clean:
            self.log.debug("= closing")
        else:
            self.log.info("= connection failed: %s", error)
        if self._watchdog is not None:
            self._watchdog.cancel()
        if not self._ack.done():
            self._ack.set_exception(error)
            self._ack.exception()  # retrieved: whoever awaits it raises it anyway
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        keep = self.on_lost is not None and self.on_lost(error, clean)
        for sub in self.subscriptions.values():
            if keep and sub._suspend():
                self.suspended.append(sub)  # buffered events stay; the client resumes it
            elif clean:
                sub._close_now("closed (the client was closed)")
            else:
                sub._fail(error)
        self.subscriptions.clear()
        self._outbox.fail(error)
        code = 1002 if isinstance(error, RemoteProtocolError) else 1000
        self._closer = self._loop.create_task(self._shutdown(code), name="appsync-events closer")
        self._failed.set()

    async def close(self) -> None:
        """Close with 1000 and wait until the socket and every task are done.  Idempotent."""
        self.fail(ConnectionClosedError(1000, "", message="the client was closed"), clean=True)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection has failed or closed and everything is cleaned up."""
        await self._failed.wait()
        assert self._closer is not None
        await asyncio.shield(self._closer)

    async def _shutdown(self, code: int) -> None:
        try:
            await self.ws.close(code)  # waits for the closing handshake up to close_timeout
        except Exception as exc:  # pragma: no cover - the transport does not raise here
            self.log.debug("error while closing: %r", exc)
        finally:
            current = asyncio.current_task()
            tasks = [t for t in self._tasks if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self.log.debug("= closed (code %s)", self.ws.close_code)

    # --- operations -------------------------------------------------------------------------

    def flush(self) -> None:
        """Send the protocol's outgoing frames, in order: written at once when the socket
        takes them without waiting, else queued in the outbox for the writer task.

        After a frame written at once, the next frames are queued until an answer is
        read or the writer task has written: the frames of operations that run in the
        same loop iteration (many concurrent publishes answered together) are written
        together by the writer task, in one socket write.

        Never waits, so a cancellation cannot come between a frame and the socket: each
        frame is written whole or queued whole.
        """
        for frame in self.protocol.data_to_send():
            self._send_text(frame.text)

    def _send_text(self, text: str) -> None:
        """Write one frame at once, or queue it (see :meth:`flush`)."""
        if (
            not self._corked
            and not self._writing
            and not self._outbox._frames
            and self.ws.send_now(text)
        ):
            self._corked = True  # until an answer is read or the writer has written
            if self.debug:
                self.log.debug("> %s", redact(text))
        else:
            self._outbox.put(text)

    async def request(self, operation_id: str, send: Callable[[], object]) -> ClientEvent:
        """Wait for room in the outbox, call ``send`` (which queues operation
        ``operation_id`` on the protocol), and wait for the answer.

        Cancellation (the caller's timeout included) abandons the operation on the
        protocol, so a late answer is ignored.

        Raises:
            ConfigurationError, LocalProtocolError: from ``send``, nothing was queued.
            (the connection's failure) while waiting.
        """
        if self.failure is not None:
            raise self.failure.with_traceback(None)
        outbox = self._outbox
        if len(outbox._frames) >= outbox.capacity:  # else there is room: nothing to wait for
            await outbox.wait_room()
            self.check()
        send()
        self.flush()
        waiter: asyncio.Future[ClientEvent] = self._loop.create_future()
        self._waiters[operation_id] = waiter
        try:
            return await waiter
        finally:
            del self._waiters[operation_id]
            if waiter.cancelled() or not waiter.done():  # the caller gave up, no answer yet
                self.protocol.abandon(operation_id)
                self.flush()

    async def publish(
        self,
        operation_id: str,
        prepared: PreparedPublish,
        authorization: Mapping[str, str] | None,
    ) -> ClientEvent:
        """:meth:`request` of ``protocol.send_publish(prepared, authorization, operation_id)``,
        without the callable (the same steps, on every publish)."""
        if self.failure is not None:
            raise self.failure.with_traceback(None)
        outbox = self._outbox
        if len(outbox._frames) >= outbox.capacity:
            await outbox.wait_room()
            self.check()
        waiter = self._send_publish(operation_id, prepared, authorization)
        try:
            return await waiter
        finally:
            self.publish_done(operation_id, waiter)

    def publish_now(
        self,
        operation_id: str,
        prepared: PreparedPublish,
        authorization: Mapping[str, str] | None,
    ) -> asyncio.Future[ClientEvent] | None:
        """:meth:`publish` up to its wait, when the outbox has room: the publish is sent
        (or queued) and the future of its answer returned, to be awaited then handed to
        :meth:`publish_done` whatever happens.  ``None``: the outbox is full, nothing was
        sent (call :meth:`publish`).  Never waits."""
        if self.failure is not None:
            raise self.failure.with_traceback(None)
        outbox = self._outbox
        if len(outbox._frames) >= outbox.capacity:
            return None
        # _send_publish inlined (one call less on every publish), and the frame written
        # as _send_text writes it.
        protocol = self.protocol
        text = protocol._publish_text(prepared, authorization, operation_id)
        if protocol._out:  # frames queued before this one go first
            self.flush()
        if self._gathering:  # written with the others (see _answer_publish)
            outbox._frames.append(text)
            if not self._woken:  # the last caller woken: they have all published
                self._write_gathered_now()
        elif (
            not self._corked and not self._writing and not outbox._frames and self.ws.send_now(text)
        ):
            self._corked = True  # until an answer is read or the writer has written
            if self.debug:
                self.log.debug("> %s", redact(text))
        else:
            outbox.put(text)
        waiter: asyncio.Future[ClientEvent] = self._new_future()
        self._waiters[operation_id] = waiter
        return waiter

    def _send_publish(
        self,
        operation_id: str,
        prepared: PreparedPublish,
        authorization: Mapping[str, str] | None,
    ) -> asyncio.Future[ClientEvent]:
        text = self.protocol._publish_text(prepared, authorization, operation_id)
        self.flush()  # frames queued before this one go first
        self._send_text(text)
        waiter: asyncio.Future[ClientEvent] = self._new_future()
        self._waiters[operation_id] = waiter
        return waiter

    def publish_done(self, operation_id: str, waiter: asyncio.Future[ClientEvent]) -> None:
        """End a publish's wait: a publish not answered (its caller gave up) is abandoned,
        so a late answer is ignored."""
        del self._waiters[operation_id]
        if self._woken:
            self._woken.discard(waiter)
        if waiter.cancelled() or not waiter.done():  # the caller gave up, no answer yet
            self.protocol.abandon(operation_id)
            self.flush()

    def abandon(self, operation_id: str) -> None:
        """Give up on the operation ``operation_id`` (a late answer is then ignored)."""
        self.protocol.abandon(operation_id)
        self.flush()

    # --- background tasks -----------------------------------------------------------------------

    async def _read(self) -> None:
        ws = self.ws
        try:
            if ws.feed(self._on_frames, self._direct()):
                await self._read_fed()
            else:
                await self._read_plain()
        except TransportClosed:
            pass
        self.protocol.receive_eof()
        self.fail(ConnectionClosedError(ws.close_code, ws.close_reason or ""))

    async def _read_plain(self) -> None:
        """Read every frame with ``receive()`` (the transport cannot hand them over)."""
        loop, receive, text, on_text, non_text = (
            self._loop,
            self.ws.receive,
            self.ws.text,
            self._on_text,
            self._on_non_text,
        )
        while True:
            if self._hold is not None:
                await self._pause_reading()
            message = await receive()  # ws.recv() without its coroutine layer
            self._last_frame = loop.time()
            if message[0] is text:
                on_text(message[1])
            else:
                non_text(message)

    async def _read_fed(self) -> None:
        """Let :meth:`_on_frames` take the text frames as the socket delivers them, and
        read the rest (pings, closes, what a pause left queued) with ``receive()``."""
        ws, loop = self.ws, self._loop
        receive, text, pending, wait_frames = ws.receive, ws.text, ws.pending, ws.wait_frames
        on_text, non_text = self._on_text, self._on_non_text
        while True:
            if self._hold is not None:
                await self._pause_reading()
            if pending():
                message = await receive()  # returns at once
                self._last_frame = loop.time()
                if message[0] is text:
                    on_text(message[1])
                else:
                    non_text(message)
                continue
            await wait_frames()
            error, self._fed_error = self._fed_error, None
            if error is not None:
                raise error

    def _on_frames(self) -> None:
        """Take the text frames at the head of the receive queue, in the socket's callback
        (:meth:`WebSocket.feed <appsync_events._transport.WebSocket.feed>`).

        Stops at anything else, at a pause (:attr:`Overflow.PAUSE`) or at an error, and
        hands over to the reader task, which raises the error (failing the connection).
        Never raises: it runs inside aiohttp's protocol callback.

        Once an event went to a subscription whose reads wait (one of them is woken),
        the rest waits for a callback scheduled behind the woken read
        (:meth:`_after_wake`): reporting the frames taken (``taken()``), and a publish's
        answer after the event, left at the head of the queue.  The service sends the
        events of a publish right before its answer, so the read gets its event without
        waiting for the answer to be parsed.  Events are never held back.

        An event for an active subscription takes the shortest way: parsed here, and put
        in its inbox when there is room (what the core's
        :meth:`~appsync_events.protocol.client.ClientProtocol.receive_event` and
        :meth:`_on_text` do, inlined: it is the client's hottest path).  Every other
        frame goes to :meth:`_on_text`.
        """
        ws = self.ws
        frames = ws.frames
        woke, self._direct_woke = self._direct_woke, False
        if not frames:
            return
        self._last_frame = self._clock()
        take, put_back, text, taken = frames.popleft, frames.appendleft, ws.text, ws.taken
        protocol, subscriptions, on_text = self.protocol, self.subscriptions, self._on_text
        receive_event, plain = protocol.receive_event, not self.debug
        # The inlined event path needs the fast parser, an open core and no frame logging.
        parser = codec._FAST if plain else None
        fast = parser if protocol.state is _OPEN else None
        active = protocol.active
        message_type = Message
        stop = False
        # woke: an event went down Subscription._deliver (a waiting read wakes), here or
        # in _direct's on_frame for this chunk.
        try:
            while frames and not stop:
                try:
                    while frames:
                        entry = take()
                        message = entry[0]
                        if message[0] is not text:
                            put_back(entry)
                            stop = True
                            break
                        data = message[1]
                        if woke and len(data) <= _MAX_DEFERRED and '"publish_success"' in data:
                            put_back(entry)
                            break  # left for _after_wake
                        item: Any = None
                        if fast is not None:
                            try:
                                obj = fast(data)
                            except ValueError:
                                obj = None
                            # Three string members: certainly what json reads (see codec).
                            if (
                                type(obj) is dict
                                and len(obj) == 3
                                and obj.get("type") == "data"
                                and type(sid := obj.get("id")) is str
                                and type(event := obj.get("event")) is str
                                and (channel := active.get(sid)) is not None
                            ):
                                item = (event, sid, channel)  # an inbox entry
                            elif (
                                type(obj) is dict
                                and obj.get("type") == "publish_success"
                                and (answered := protocol.receive_publish_success(obj)) is not False
                            ):
                                # A publish's answer, from the value parsed above.
                                if answered is not None:
                                    self._answer_publish(answered)
                                continue
                        if item is None:  # any other frame: the core decides
                            if plain:  # _on_text inlined, minus the frame's log line
                                item = receive_event(data)
                                if item is None:
                                    self._on_events(protocol.events_received())
                                elif type(item) is not message_type:
                                    self._answer_publish(item)
                                    item = None
                            else:
                                on_text(data)
                            fast = parser if protocol.state is _OPEN else None
                            if item is None:
                                if self._hold is not None:
                                    stop = True
                                    break
                                continue
                        # _on_text's delivery, inlined.
                        sub = subscriptions.get(item[1])  # .subscription_id
                        if sub is None:
                            continue
                        inbox = sub._inbox
                        if sub._state is _ACTIVE and len(inbox) < sub._limit:
                            inbox.append(item)
                            continue
                        if sub._deliver(item):
                            self._hold = sub
                            stop = True
                            break
                        woke = True
                except BaseException:
                    taken()
                    raise
                if woke and not stop:
                    # Reported, and the rest taken, behind the woken read.
                    self._after_wake_soon()
                    return
                taken()  # may parse more of the chunk into frames
            if not stop:
                return
        except Exception as exc:
            self._fed_error = exc
        ws.wake()

    def _direct(self) -> Direct | None:
        """The hooks that take events as aiohttp parses them (:meth:`WebSocket.feed
        <appsync_events._transport.WebSocket.feed>`'s ``direct``), or ``None`` when frames
        are logged.

        ``on_frame`` takes what :meth:`_on_frames`' shortest way takes, for a chunk that
        starts with nothing queued while the core is open (and the fast parser is there):
        an event for an active subscription, put in its inbox (or handed to
        :meth:`Subscription._deliver <appsync_events.Subscription._deliver>`, which wakes
        the reads that wait).  Any other frame is declined, and queued with the rest of
        the chunk for :meth:`_on_frames`.  A pause (:attr:`Overflow.PAUSE`) or an error
        stops it, as it stops :meth:`_on_frames`: the frame is taken, the rest queued, and
        the reader woken.
        """
        if self.debug:
            return None
        ws, protocol, subscriptions = self.ws, self.protocol, self.subscriptions
        text, active, clock = ws.text, protocol.active, self._clock
        decline, stop = ws.decline, ws.stop_direct
        parse: Callable[[str], Any] = _no_parser
        seen = False

        def start() -> bool:
            nonlocal parse, seen
            fast = codec._FAST
            if (
                fast is None
                or protocol.state is not _OPEN
                or self._hold is not None
                or self._fed_error is not None
            ):
                return False
            parse, seen = fast, False
            return True

        def on_frame(message: Any, size: int) -> None:
            nonlocal seen
            seen = True
            if message[0] is not text:
                decline(message, size)
                return
            try:
                try:
                    obj = parse(message[1])
                except ValueError:
                    decline(message, size)
                    return
                # Three string members: certainly what json reads (see codec).  The fast
                # parser makes nothing but dicts, lists, strings, numbers, booleans and
                # None: what is not a dict fails the subscripts (TypeError), and an id
                # found in active is a string.
                try:
                    event = obj["event"]
                    channel = active.get(sid := obj["id"])
                    if (
                        channel is None
                        or type(event) is not str
                        or obj["type"] != "data"
                        or len(obj) != 3
                    ):
                        decline(message, size)
                        return
                except (KeyError, TypeError):
                    decline(message, size)
                    return
                sub = subscriptions.get(sid)
                if sub is None:
                    return
                item = (event, sid, channel)  # the inbox's entry (see subscription)
                inbox = sub._inbox
                if sub._state is _ACTIVE and len(inbox) < sub._limit:
                    inbox.append(item)
                elif sub._deliver(item):
                    self._hold = sub
                    stop()
                    ws.wake()
                else:
                    self._direct_woke = True
            except Exception as exc:
                self._fed_error = exc
                stop()
                ws.wake()

        def end() -> None:
            if seen:
                self._last_frame = clock()

        return start, on_frame, end

    def _after_wake(self) -> None:
        """What :meth:`_on_frames` leaves for after the read it woke: report the frames it
        took (which may parse more of the chunk), then take the frames left if the reader
        still waits for them in the socket's callback (else the reader reads them)."""
        ws = self.ws
        try:
            ws.taken()
        except Exception as exc:  # pragma: no cover - taken() does not raise
            self._fed_error = exc
            ws.wake()
            return
        ws.refeed()

    def _on_text(self, frame: str) -> None:
        """Handle one text frame (the reader's hottest path)."""
        if self.debug:
            self.log.debug("< %s", redact(frame))
        event = self.protocol.receive_event(frame)
        if event is None:  # anything but an event or a publish's answer
            self._on_events(self.protocol.events_received())
            return
        if isinstance(event, PublishAccepted):
            self._answer_publish(event)
            return
        sub = self.subscriptions.get(event[1])  # .subscription_id
        if sub is None:
            return
        inbox = sub._inbox
        # _limit is 0 while reads wait (and before the first event): _deliver then makes
        # the inbox or wakes them.
        if sub._state is _ACTIVE and len(inbox) < sub._limit:
            inbox.append(event)  # Subscription._deliver's common case, inlined
        elif sub._deliver(event):
            self._hold = sub  # Overflow.PAUSE and its inbox is full

    def _on_non_text(self, message: tuple[Any, ...]) -> None:
        """Handle one message of ``receive()`` other than a text frame."""
        self.protocol.receive_binary(self.ws.non_text(message))
        self._on_events(self.protocol.events_received())

    def _on_events(self, events: list[ClientEvent]) -> None:
        subscriptions = self.subscriptions
        for event in events:
            if type(event) is Message:
                sub = subscriptions.get(event.subscription_id)
                if sub is not None and sub._deliver(event):
                    self._hold = sub
            else:
                self._dispatch(event)
        for out in self.protocol.data_to_send():
            self._outbox.put(out.text)

    async def _write(self) -> None:
        outbox = self._outbox
        while True:
            first = await outbox.get()
            frames = [first, *outbox.take_all()] if outbox else [first]
            texts = [f if isinstance(f, str) else f.text for f in frames]  # the only access
            if self.debug:
                for text in texts:
                    self.log.debug("> %s", redact(text))
            self._writing = True  # flush() queues behind these frames, never writes past them
            try:
                await self.ws.send_batch(texts)
            except TransportClosed:
                return  # the reader reports the close
            finally:
                self._writing = False
            self._corked = False

    def _dispatch(self, event: ClientEvent) -> None:
        """Act on one protocol event other than a received ``Message``."""
        if type(event) is KeepAliveReceived:
            pass  # _last_frame was updated by the reader
        elif isinstance(event, FrameIgnored):
            self.log.debug(
                "= ignored %s frame (id %s): %s", event.frame_type, event.id, event.reason
            )
        elif isinstance(event, BroadcastFailed):
            sub = self.subscriptions.get(event.id)
            if sub is not None and sub._deliver_error(event.error):
                self._hold = sub
        elif isinstance(event, ConnectionAccepted):
            if not self._ack.done():  # a late ack after a handshake timeout is dropped
                self._ack.set_result(event)
        elif isinstance(event, ConnectionFailed):
            self.fail(event.error)
        else:
            self._answer(event)

    def _answer_publish(self, event: PublishAccepted) -> None:
        """:meth:`_answer` for a publish's answer (which sends nothing and changes no
        subscription).

        While other publishes are in flight, the callers woken by answers read together
        usually publish again in the next loop iteration: their frames are gathered in the
        outbox and written together, in one socket write, by the last of those callers to
        come back (:meth:`publish_now`), or else by :meth:`_write_gathered` (scheduled
        behind the wake-ups) one loop iteration later at the latest.  A lone publish's
        answer lets the next frame be written at once."""
        waiter = self._waiters.get(event.id)
        if waiter is not None and not waiter.done():
            waiter.set_result(event)
            if len(self._waiters) > 1:
                self._woken.add(waiter)
                if not self._gathering:
                    self._gathering = True
                    self._gather_later = False
                    if not self._gather_queued:
                        self._gather_queued = True
                        self._write_gathered_soon()
                return
        else:
            self.log.debug("= PublishAccepted for %s: nobody waits for it", event.id)
        if not self._gathering:
            self._corked = False  # the next frame may be written at once again

    def _write_gathered(self) -> None:
        """Write the gathered frames once the woken callers are back, waiting one loop
        iteration for them at most."""
        self._gather_queued = False
        if not self._gathering:  # written already
            return
        if self._woken and not self._gather_later:  # callers still to come back
            self._gather_later = True
            self._gather_queued = True
            self._write_gathered_soon()
            return
        self._write_gathered_now()

    def _write_gathered_now(self) -> None:
        """Write the frames of the outbox (the gathered ones and those queued before), in
        one socket write when the socket takes them without waiting; else the writer task
        sends them.  Ends the gathering."""
        self._gathering = False
        self._woken.clear()
        self._corked = False
        outbox = self._outbox
        frames = outbox._frames
        if not frames or self._writing:  # the writer task takes them once it has written
            return
        texts = [f if isinstance(f, str) else f.text for f in frames]
        if self.ws.send_batch_now(texts):
            frames.clear()
            if outbox._room:
                outbox._wake_room()
            if self.debug:
                for text in texts:
                    self.log.debug("> %s", redact(text))
        else:
            outbox.wake()

    def _answer(self, event: ClientEvent) -> None:
        self._corked = False  # an answer: the next frame may be written at once again
        operation_id: str = getattr(event, "id")  # noqa: B009 - every remaining event has an id
        if isinstance(event, SubscribeAccepted) and operation_id in self.subscriptions:
            self.subscriptions[operation_id]._accepted()
        elif isinstance(event, UnsubscribeAccepted | UnsubscribeRejected):
            self.subscriptions.pop(operation_id, None)
        waiter = self._waiters.get(operation_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(event)
        else:
            self.log.debug("= %s for %s: nobody waits for it", type(event).__name__, operation_id)

    async def _pause_reading(self) -> None:
        """Read nothing until ``_hold`` has room again or ends (:attr:`Overflow.PAUSE`), or
        the socket closes (the frames still buffered are then read, kept beyond the
        inbox's capacity, before the close is reported).

        The heartbeat deadline restarts when reading resumes.
        """
        sub = self._hold
        assert sub is not None
        if self.debug:
            self.log.debug("= paused reading: the inbox of subscription %s is full", sub.id)
        closed = self.ws.lost()

        def on_closed(future: asyncio.Future[None]) -> None:
            if not future.cancelled():
                future.exception()  # retrieved: the reader reports how it closed
            sub._release_room()

        try:
            if closed is None:  # gone already: read on, to the close
                return
            closed.add_done_callback(on_closed)
            try:
                await sub._wait_room()
            finally:
                closed.remove_done_callback(on_closed)
        finally:
            self._hold = None
            self._last_frame = self._loop.time()
        if self.debug:
            self.log.debug("= resumed reading")

    # --- heartbeat ------------------------------------------------------------------------------

    def _arm(self) -> None:
        assert self.keepalive_timeout is not None
        self._armed_at = self._last_frame
        self._watchdog = self._loop.call_at(
            self._last_frame + self.keepalive_timeout, self._check_heartbeat
        )

    def _check_heartbeat(self) -> None:
        if self.failure is not None:  # pragma: no cover - fail() cancels the timer
            return
        if self._hold is not None:  # we stopped reading: nothing is known to be missing
            self._last_frame = self._loop.time()
        elif self._last_frame == self._armed_at:  # nothing arrived since the timer was armed
            assert self.keepalive_timeout is not None
            self.fail(HeartbeatTimeoutError(self.keepalive_timeout))
            return
        self._arm()
