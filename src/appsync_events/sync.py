"""A synchronous API over the asyncio client, for code that is not asyncio.

::

    from appsync_events import authorizer, sync

    with sync.connect(REALTIME_ENDPOINT, authorizer=authorizer.ApiKey("da2-...")) as client:
        with client.subscribe("default/notifications") as sub:
            client.publish("default/notifications", {"message": "hi"})
            message = sub.next(timeout=5)

In the manner of ``websockets.sync``, but without a second implementation of the protocol:
each :class:`Client` (and each :class:`HttpPublisher`) owns one daemon thread running a
private event loop, and every call is the asyncio API's coroutine marshalled onto that loop
with :func:`asyncio.run_coroutine_threadsafe`.  The errors, authorizers, arguments and
results are the asyncio API's own.

Threads: a client may be used from several threads at once (publishes run concurrently;
several threads may read one subscription, each event going to exactly one of them).
:meth:`Client.close` and leaving a ``with`` block close the connection and end the thread.

Waiting: every call is bounded by the client's timeouts (``handshake_timeout``,
``operation_timeout``, ``close_timeout``), plus :data:`GRACE` seconds; :meth:`Subscription.next`
takes a ``timeout``.  A :class:`KeyboardInterrupt` (or any other ``BaseException``) raised in
the calling thread while it waits cancels the operation and closes the client (or the
publisher), so no background thread is left running; the interrupt is then re-raised.

Clocks: the loop reads a real monotonic clock captured at import, so a test that freezes
time with freezegun (for SigV4 known-answer checks, say) neither stalls nor races the
client's timers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
import types
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, overload

from . import client as aio
from ._types import Backpressure, JSONValue, Message, Overflow, PublishResult
from .clock import RealClockLoop
from .errors import AppSyncEventsError, BroadcastError, SubscriptionClosedError
from .http import DEFAULT_HTTP_TIMEOUT, HttpPublisher as AsyncHttpPublisher
from .reconnect import ConnectionState, Reconnect, StateCallback

if TYPE_CHECKING:
    import ssl as ssl_module

    from .authorizer import Authorizer
    from .subscription import Subscription as AsyncSubscription, SubscriptionState

__all__ = ["GRACE", "Client", "HttpPublisher", "Subscription", "connect", "publish_http"]

T = TypeVar("T")

GRACE: Final = 5.0
"""Seconds a call waits beyond the asyncio operation's own timeout before giving up on the
background thread (which only happens if that thread is stuck)."""

_STOP_TIMEOUT: Final = 5.0
"""Seconds to wait for the background thread to end once its loop is stopped."""


def _bound(*timeouts: float | None) -> float | None:
    """The outer wait for an operation bounded by ``timeouts`` (``None`` if any is)."""
    if any(t is None for t in timeouts):
        return None
    return sum(t for t in timeouts if t is not None) + GRACE


class _Portal:
    """One daemon thread running a private event loop, and the calls marshalled onto it."""

    def __init__(self, name: str) -> None:
        self.loop = RealClockLoop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = threading.Event()
        self.closing: asyncio.Task[None] | None = None
        """The finalizer's closing task, if it ran."""
        self.stopped = False
        """Set by :meth:`stop` before it stops the loop: calls made from then on (or
        waiting then) fail because the owner was closed."""
        self.thread.start()
        if not self._started.wait(_STOP_TIMEOUT):  # pragma: no cover - a starved machine
            raise RuntimeError("the background event loop did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        try:
            self.loop.run_forever()
        finally:
            self._drain()

    def _drain(self) -> None:
        """Cancel what is left on the loop, then close it (runs in the loop's thread)."""
        loop = self.loop
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def call(
        self,
        coro: Coroutine[Any, Any, T],
        timeout: float | None,
        on_interrupt: Callable[[], None],
    ) -> T:
        """Run ``coro`` on the loop and wait at most ``timeout`` seconds for its result.

        Raises:
            RuntimeError: the thread is gone (the owner was closed), or this is that thread.
            TimeoutError: the outer bound expired (the operation is cancelled).
        """
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("the sync API cannot be called from its own callbacks")
        if not self.alive or self.loop.is_closed():
            coro.close()
            raise RuntimeError("the client is closed")
        future: concurrent.futures.Future[T] | None = None
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
            return future.result(timeout)
        except TimeoutError:  # concurrent.futures.TimeoutError is the builtin
            assert future is not None
            if future.done():
                raise  # the operation's own timeout
            future.cancel()
            raise TimeoutError(f"no answer from the client's thread within {timeout:g}s") from None
        except concurrent.futures.CancelledError:
            raise RuntimeError("the client was closed while this call was waiting") from None
        except Exception:
            raise
        except BaseException:  # KeyboardInterrupt, SystemExit: leave no thread behind
            if future is not None:
                future.cancel()
            on_interrupt()
            raise

    def stop(self) -> None:
        """Stop the loop and wait (bounded) for the thread to end."""
        if self.thread is threading.current_thread():
            raise RuntimeError("a sync client cannot be closed from its own callbacks")
        self.stopped = True
        with contextlib.suppress(RuntimeError):  # already closed
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(_STOP_TIMEOUT)


def _stop_portal(
    portal: _Portal, close: Callable[[], Coroutine[Any, Any, None]], timeout: float | None
) -> None:
    """Finalizer of an owner garbage-collected unclosed: close (bounded), then stop the loop.

    It runs in whichever thread collected the owner and never waits.
    """

    async def close_and_stop() -> None:
        try:
            async with asyncio.timeout(timeout if timeout is not None else _STOP_TIMEOUT):
                await close()
        except Exception:  # nobody is left to tell
            pass
        finally:
            portal.loop.stop()

    def start() -> None:
        portal.closing = portal.loop.create_task(close_and_stop())  # kept: tasks are weak

    with contextlib.suppress(RuntimeError):  # the loop is already closed
        portal.loop.call_soon_threadsafe(start)


def connect(
    endpoint: str,
    *,
    authorizer: Authorizer,
    subprotocols: Sequence[str] | None = None,
    backpressure: Backpressure | None = None,
    handshake_timeout: float | None = aio.DEFAULT_HANDSHAKE_TIMEOUT,
    operation_timeout: float | None = aio.DEFAULT_OPERATION_TIMEOUT,
    heartbeat_timeout: float | None = None,
    close_timeout: float | None = aio.DEFAULT_CLOSE_TIMEOUT,
    ssl: ssl_module.SSLContext | None = None,
    html_escape: bool | None = None,
    max_size: int | None = aio.DEFAULT_MAX_SIZE,
    reconnect: bool | Reconnect = False,
    on_state_change: StateCallback | None = None,
) -> Client:
    """Connect to an AppSync Events real-time endpoint and return a :class:`Client`.

    Use it as ``client = connect(...)`` (then ``client.close()``) or as
    ``with connect(...) as client:``.  The arguments are those of
    :class:`appsync_events.connect`.  ``on_state_change`` is called in the client's
    background thread and must not block.

    The wait is bounded by ``handshake_timeout``.  If the connection fails, is interrupted
    or times out, the background thread is ended before the exception propagates.

    Raises:
        ConfigurationError: a bad argument (before any thread is started).
        HandshakeTimeoutError, UnauthorizedError, HandshakeError, CredentialsError: as
            :class:`appsync_events.connect`.
    """
    # The asyncio connect() checks every argument in its constructor, without a loop.
    options = aio.connect(
        endpoint,
        authorizer=authorizer,
        subprotocols=subprotocols,
        backpressure=backpressure,
        handshake_timeout=handshake_timeout,
        operation_timeout=operation_timeout,
        heartbeat_timeout=heartbeat_timeout,
        close_timeout=close_timeout,
        ssl=ssl,
        html_escape=html_escape,
        max_size=max_size,
        reconnect=reconnect,
        on_state_change=on_state_change,
    )

    async def open_client() -> aio.Client:
        return await options

    portal = _Portal("appsync-events sync client")
    try:
        client = portal.call(open_client(), _bound(options.handshake_timeout), _noop)
    except BaseException:
        portal.stop()
        raise
    return Client(client, portal)


def _noop() -> None:
    pass


class Client:
    """A connected client: the synchronous face of :class:`appsync_events.Client`.

    Made by :func:`connect`.  A context manager: leaving the block closes it.
    """

    def __init__(self, client: aio.Client, portal: _Portal) -> None:
        self._client = client
        self._portal = portal
        self._close_lock = threading.Lock()
        self._finalizer = weakref.finalize(
            self, _stop_portal, portal, client.close, client.close_timeout
        )

    def __repr__(self) -> str:
        return f"<sync {self._client!r}>"

    @property
    def endpoint(self) -> str:
        """The real-time URL."""
        return self._client.endpoint

    @property
    def state(self) -> ConnectionState:
        """The connection's state (see :class:`appsync_events.Client`)."""
        return self._client.state

    @property
    def closed(self) -> bool:
        """Whether the client is closed (by :meth:`close` or a failure)."""
        return self._client.closed

    @property
    def local_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of this end of the WebSocket (see
        :attr:`appsync_events.Client.local_address`)."""
        return self._client.local_address

    @property
    def thread(self) -> threading.Thread:
        """The background thread running the client's event loop."""
        return self._portal.thread

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        return self._portal.call(coro, timeout, self._abort)

    def subscribe(
        self,
        channel: str,
        *,
        authorizer: Authorizer | None = None,
        on_broadcast_error: Callable[[AsyncSubscription, BroadcastError], object] | None = None,
        overflow: Overflow | str | None = None,
        capacity: int | None = None,
    ) -> Subscription:
        """Subscribe to ``channel`` and return the active :class:`Subscription`.

        Use the result as a context manager to unsubscribe when the block ends.  The
        arguments are those of :meth:`appsync_events.Client.subscribe`;
        ``on_broadcast_error`` is called in the background thread with the asyncio
        subscription and must not block.  Bounded by ``operation_timeout``.

        Raises:
            InvalidChannelError, SubscribeError, UnauthorizedError, OperationTimeoutError,
            ConnectionClosedError, ...: as the asyncio ``subscribe()``.
            RuntimeError: the client is closed.
        """

        async def open_subscription() -> AsyncSubscription:
            return await self._client.subscribe(
                channel,
                authorizer=authorizer,
                on_broadcast_error=on_broadcast_error,
                overflow=overflow,
                capacity=capacity,
            )

        sub = self._call(open_subscription(), _bound(self._client.operation_timeout))
        return Subscription(sub, self)

    def publish(
        self, channel: str, *events: object, authorizer: Authorizer | None = None
    ) -> PublishResult:
        """Publish 1 to 5 events to ``channel`` over the WebSocket.

        The arguments, result and errors are those of :meth:`appsync_events.Client.publish`.
        Bounded by ``operation_timeout``.
        """
        return self._call(
            self._client.publish(channel, *events, authorizer=authorizer),
            _bound(self._client.operation_timeout),
        )

    def close(self) -> None:
        """Close the connection (unsubscribing live subscriptions) and end the thread.

        Idempotent and safe to call from several threads.  Bounded by twice
        ``close_timeout``; the thread is ended even if closing fails.
        """
        with self._close_lock:
            if not self._portal.alive:
                return
            try:
                timeout = self._client.close_timeout
                self._portal.call(self._client.close(), _bound(timeout, timeout), self._portal.stop)
            finally:
                self._portal.stop()
                self._finalizer.detach()

    def _abort(self) -> None:
        """After an interrupt: close, but never wait beyond ``close_timeout``, then stop."""
        try:
            future = asyncio.run_coroutine_threadsafe(self._client.close(), self._portal.loop)
            with contextlib.suppress(BaseException):
                future.result(self._client.close_timeout or _STOP_TIMEOUT)
        except RuntimeError:  # the loop is already closed
            pass
        finally:
            self._portal.stop()
            self._finalizer.detach()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


_END: Final = object()


class Subscription:
    """One subscription: the synchronous face of :class:`appsync_events.Subscription`.

    Read with :meth:`next` (``timeout=``) or ``for message in sub:`` (which skips
    ``broadcast_error`` s and ends quietly when the subscription or client is closed).
    A context manager: leaving the block unsubscribes.
    """

    __slots__ = ("_client", "_sub")

    def __init__(self, subscription: AsyncSubscription, client: Client) -> None:
        self._sub = subscription
        self._client = client

    def __repr__(self) -> str:
        return f"<sync {self._sub!r}>"

    @property
    def id(self) -> str:
        """The subscription id."""
        return self._sub.id

    @property
    def channel(self) -> str:
        """The channel (or pattern) as subscribed."""
        return self._sub.channel

    @property
    def state(self) -> SubscriptionState:
        """The subscription's :class:`~appsync_events.subscription.SubscriptionState`."""
        return self._sub.state

    @property
    def active(self) -> bool:
        """Whether events flow into the inbox."""
        return self._sub.active

    @property
    def closed(self) -> bool:
        """Whether the subscription has ended."""
        return self._sub.closed

    @property
    def broadcast_errors(self) -> tuple[BroadcastError, ...]:
        """The most recent ``broadcast_error`` s read or skipped."""
        return self._sub.broadcast_errors

    @property
    def dropped(self) -> int:
        """How many inbox entries :attr:`Overflow.DROP_OLDEST
        <appsync_events.Overflow.DROP_OLDEST>` dropped."""
        return self._sub.dropped

    def next(self, timeout: float | None = None) -> Message:
        """Return the next event, waiting at most ``timeout`` seconds (``None``: no limit).

        A timeout loses no event: it stays in the inbox for the next call.

        Raises:
            TimeoutError: no event within ``timeout``.
            SubscriptionClosedError, SubscriptionInboxFullError, BroadcastError,
            ConnectionClosedError, HeartbeatTimeoutError, ...: as the asyncio ``next()``.
        """
        seconds = _check_timeout(timeout)
        return self._read(_within(self._sub.next, seconds), _outer(seconds))

    @overload
    def decode_next(self, target: None = None, *, timeout: float | None = None) -> JSONValue: ...
    @overload
    def decode_next(self, target: type[T], *, timeout: float | None = None) -> T: ...
    def decode_next(
        self, target: type[T] | None = None, *, timeout: float | None = None
    ) -> T | JSONValue:
        """Return the next event decoded into ``target`` (see the asyncio ``decode_next``).

        Raises:
            TimeoutError: no event within ``timeout``.
            DecodeError, ConfigurationError: as the asyncio ``decode_next()``; also the
                errors of :meth:`next`.
        """
        seconds = _check_timeout(timeout)
        decoded: T | JSONValue = self._read(
            _within(functools.partial(self._sub.decode_next, target), seconds), _outer(seconds)
        )
        return decoded

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        """Return the next event, skipping ``broadcast_error`` s; no timeout.

        Raises:
            StopIteration: the subscription or its client was closed by the caller.
        """

        async def step() -> Message | object:
            try:
                return await self._sub.__anext__()
            except StopAsyncIteration:
                return _END

        try:
            item = self._read(step(), None)
        except AppSyncEventsError:
            if self._client._portal.stopped:  # the client was closed: the iteration ends
                raise StopIteration from None
            raise
        if item is _END:
            raise StopIteration
        assert isinstance(item, Message)
        return item

    def _read(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run a read on the client's loop; once the client was closed (its thread stopped,
        here or by another thread, before or while the read waits), raise what the
        asyncio read raises after the close instead of the portal's ``RuntimeError``."""
        portal = self._client._portal
        if portal.stopped:
            coro.close()
            raise self._ended()
        try:
            return self._client._call(coro, timeout)
        except RuntimeError:
            if portal.stopped:
                raise self._ended() from None
            raise

    def _ended(self) -> AppSyncEventsError:
        """The asyncio subscription's own error for reads once it ended (its thread is
        stopped: nothing else touches it now), or the one its client's close gives."""
        error = self._sub._settings.error
        if error is None:  # the close did not get to it (it timed out, say)
            error = SubscriptionClosedError(
                self._sub.id, self._sub.channel, "closed (the client was closed)"
            )
        return error.with_traceback(None)

    def close(self) -> None:
        """Unsubscribe and close the subscription.  Idempotent; bounded by ``operation_timeout``.

        Raises:
            UnsubscribeError, OperationTimeoutError: as the asyncio ``close()``.
        """
        if self._sub.closed or not self._client._portal.alive:
            return
        self._client._call(self._sub.close(), _bound(self._client._client.operation_timeout))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        with contextlib.suppress(Exception):
            self.close()  # the body's exception matters more than a failed unsubscribe


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
        raise ValueError(
            f"timeout must be a non-negative number of seconds or None, not {timeout!r}"
        )
    return float(timeout)


async def _within(read: Callable[[], Awaitable[T]], seconds: float | None) -> T:
    """Await ``read()`` for at most ``seconds`` (in the loop's thread).  The read is made
    here: a call that never runs (the client was closed) leaves no coroutine unawaited."""
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await read()
    except TimeoutError:
        if deadline.expired():
            raise TimeoutError(f"no event within {seconds:g}s") from None
        raise  # the operation's own timeout error


def _outer(timeout: float | None) -> float | None:
    return None if timeout is None else timeout + GRACE


class HttpPublisher:
    """Publish with HTTP ``POST /event`` from synchronous code, reusing one HTTP session.

    The arguments are those of :class:`appsync_events.HttpPublisher`; it owns a background
    thread like a :class:`Client`.  A context manager: leaving the block closes it.

    Raises:
        ConfigurationError: a bad argument (before any thread is started).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        authorizer: Authorizer,
        ssl: ssl_module.SSLContext | None = None,
        operation_timeout: float | None = DEFAULT_HTTP_TIMEOUT,
        html_escape: bool = False,
    ) -> None:
        self._publisher = AsyncHttpPublisher(
            endpoint,
            authorizer=authorizer,
            ssl=ssl,
            operation_timeout=operation_timeout,
            html_escape=html_escape,
        )
        self.endpoint = self._publisher.endpoint
        """The HTTP URL posted to."""
        self._portal = _Portal("appsync-events sync HTTP publisher")
        self._close_lock = threading.Lock()
        self._finalizer = weakref.finalize(
            self, _stop_portal, self._portal, self._publisher.close, _STOP_TIMEOUT
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._publisher.closed

    @property
    def thread(self) -> threading.Thread:
        """The background thread running the publisher's event loop."""
        return self._portal.thread

    def publish(
        self, channel: str, *events: object, authorizer: Authorizer | None = None
    ) -> PublishResult:
        """Publish 1 to 5 events to ``channel``; see :meth:`appsync_events.HttpPublisher.publish`.

        Bounded by ``operation_timeout``.

        Raises:
            RuntimeError: the publisher is closed.
        """
        if self._publisher.closed:
            raise RuntimeError("this HttpPublisher is closed")
        return self._portal.call(
            self._publisher.publish(channel, *events, authorizer=authorizer),
            _bound(self._publisher.operation_timeout),
            self._abort,
        )

    def close(self) -> None:
        """Close the HTTP session and end the thread.  Idempotent, thread-safe."""
        with self._close_lock:
            if not self._portal.alive:
                return
            try:
                self._portal.call(self._publisher.close(), _STOP_TIMEOUT, self._portal.stop)
            finally:
                self._portal.stop()
                self._finalizer.detach()

    def _abort(self) -> None:
        with contextlib.suppress(BaseException):
            future = asyncio.run_coroutine_threadsafe(self._publisher.close(), self._portal.loop)
            future.result(_STOP_TIMEOUT)
        self._portal.stop()
        self._finalizer.detach()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


def publish_http(
    endpoint: str,
    channel: str,
    *events: object,
    authorizer: Authorizer,
    ssl: ssl_module.SSLContext | None = None,
    operation_timeout: float | None = DEFAULT_HTTP_TIMEOUT,
    html_escape: bool = False,
) -> PublishResult:
    """Publish 1 to 5 events with one HTTP ``POST /event`` (a one-shot :class:`HttpPublisher`).

    The arguments, result and errors are those of :func:`appsync_events.publish_http`;
    bounded by ``operation_timeout``.
    """
    with HttpPublisher(
        endpoint,
        authorizer=authorizer,
        ssl=ssl,
        operation_timeout=operation_timeout,
        html_escape=html_escape,
    ) as publisher:
        return publisher.publish(channel, *events)
