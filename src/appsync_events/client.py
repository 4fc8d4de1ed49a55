"""The public asyncio client: :func:`connect` and :class:`Client`.

::

    async with appsync_events.connect(REALTIME_ENDPOINT, authorizer=authz) as client:
        async with client.subscribe("default/notifications") as sub:
            await client.publish("default/notifications", {"message": "hi"})
            message = await sub.next()

The reconnection machinery lives in :mod:`appsync_events._reconnector`, opening a
connection in :mod:`appsync_events._dial`; the client keeps the operations and closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl as ssl_module
import types
import uuid
from collections.abc import Generator, Sequence
from typing import Any, Final, Self

from ._dial import Dialer
from ._reconnector import Dial, Reconnector
from ._types import Backpressure, Overflow, PublishResult, check_size
from .authorizer import IAM, ApiKey, Authorizer, AuthorizeRequest, Operation
from .authorizer.base import endpoint_host, publish_request
from .connection import EXPIRED, Connection, OperationDeadlines
from .endpoints import realtime_endpoint_from_http
from .errors import (
    AppSyncEventsError,
    ConfigurationError,
    ConnectionClosedError,
    OperationTimeoutError,
)
from .protocol._make import maker
from .protocol.channels import parse_subscribe_channel
from .protocol.client import (
    PublishAccepted,
    PublishRejected,
    SubscribeAccepted,
    SubscribeRejected,
    UnsubscribeRejected,
)
from .protocol.publish import prepare_publish
from .protocol.subprotocol import HEADER_PREFIX, PROTOCOL_EVENTS
from .reconnect import ConnectionState, Reconnect, StateCallback
from .subscription import (
    BroadcastErrorCallback,
    Subscription,
    SubscriptionRequest,
    SubscriptionSettings,
    SubscriptionState,
)

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_OPERATION_TIMEOUT",
    "Client",
    "connect",
]

_PUBLISH: Final = Operation.PUBLISH
_publish_result: Final = maker(PublishResult, "successful", "failed")
_CONNECTED: Final = ConnectionState.CONNECTED
_CLOSED: Final = ConnectionState.CLOSED


def _publish_outcome(answer: object) -> PublishResult:
    """What :meth:`Client.publish` returns for the service's ``answer``, or raises."""
    if type(answer) is PublishAccepted:
        return _publish_result(answer.successful, answer.failed)
    assert isinstance(answer, PublishRejected)
    raise answer.error


DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds for the authorizer, the WebSocket upgrade and the ``connection_ack``."""
DEFAULT_OPERATION_TIMEOUT: Final = 10.0
"""Seconds for one subscribe, publish or unsubscribe, authorizer included."""
DEFAULT_CLOSE_TIMEOUT: Final = 5.0
"""Seconds for the unsubscribes of :meth:`Client.close`, and again for the closing handshake."""
DEFAULT_MAX_SIZE: Final = 2 * 1024 * 1024
"""Largest frame accepted from the service, in bytes.  A ``data`` frame carries one event
of at most 240 KB as an escaped JSON string, so this leaves room for heavy escaping."""


def new_operation_id() -> str:
    """A random version 4 UUID as text, the form of ``str(uuid.uuid4())``.

    Made straight from random bytes (122 of every 128 bits, as ``uuid4`` uses), drawn from
    the system 64 ids at a time: an id is drawn for every publish, and ``uuid.UUID`` costs
    several times more.
    """
    try:
        return _operation_ids.pop()
    except IndexError:
        pass
    hex_ = os.urandom(16 * _IDS_AT_ONCE).hex()
    _operation_ids.extend(
        [
            f"{hex_[i : i + 8]}-{hex_[i + 8 : i + 12]}-4{hex_[i + 13 : i + 16]}-"
            f"{_VARIANT[hex_[i + 16]]}{hex_[i + 17 : i + 20]}-{hex_[i + 20 : i + 32]}"
            for i in range(0, 32 * _IDS_AT_ONCE, 32)
        ]
    )
    return _operation_ids.pop()


_IDS_AT_ONCE: Final = 64
_VARIANT: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
"""The variant digit (``10xx`` in binary) made from a random hex digit's last two bits."""
_operation_ids: list[str] = []
"""Ids made in advance by :func:`new_operation_id` (a forked child makes its own)."""
if hasattr(os, "register_at_fork"):  # no fork on Windows
    os.register_at_fork(after_in_child=_operation_ids.clear)


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds or None")
    return float(value)


class connect:
    """Connect to an AppSync Events real-time endpoint.

    Use it as ``client = await connect(...)`` (then ``await client.close()``) or as
    ``async with connect(...) as client:``.

    The handshake offers the subprotocols ``subprotocols`` (default
    ``[PROTOCOL_EVENTS]``) plus ``header-<base64url(auth)>`` made from
    ``authorizer``'s CONNECT authorization, requires the server to select one of
    ``subprotocols``, sends ``connection_init`` and waits for ``connection_ack``.

    Args:
        endpoint: the real-time URL ``wss://…/event/realtime``; the HTTP URL
            ``https://…/event`` is accepted and converted (``ws``/``http`` for local
            servers).
        authorizer: authorizes the connection and, unless overridden per call, every
            operation.
        subprotocols: subprotocols to offer besides the ``header-`` one.
        backpressure: buffer sizes and the subscriptions' default overflow policy
            (:class:`~appsync_events.Backpressure`).
        handshake_timeout: seconds for authorizing, opening and the ack.
        operation_timeout: seconds for each subscribe, publish and unsubscribe (the
            authorizer call included).
        heartbeat_timeout: seconds without any frame after which the connection is
            considered dead; default: ``connectionTimeoutMs`` from the ack (5 minutes).
        close_timeout: seconds for the unsubscribes when closing, and for the closing
            handshake.
        ssl: an :class:`ssl.SSLContext` for ``wss://`` (e.g. one trusting the emulator's
            local CA); ``None`` uses the default.
        html_escape: escape ``< > & = '`` inside events as ``\\uXXXX`` before signing and
            sending a WebSocket publish (AWS re-serialises with those escapes before
            checking IAM signatures).  ``None`` (default): only when the publish's
            authorizer is :class:`~appsync_events.authorizer.IAM`.  The events stay valid
            JSON with the same value.
        max_size: largest frame accepted from the service, in bytes.
        reconnect: ``False`` (default): a lost connection fails the client for good.
            ``True`` or a :class:`~appsync_events.reconnect.Reconnect` policy: after a
            retryable loss (socket dropped or closed by the service, heartbeat timeout),
            the client reconnects with jittered exponential backoff and resumes every
            live subscription with the same id and channel; see :class:`Client`.  Only
            the first connection is made by ``connect()``: its errors are raised, not
            retried.
        on_state_change: called synchronously with each new
            :class:`~appsync_events.reconnect.ConnectionState` (``DISCONNECTED``,
            ``RECONNECTING``, ``CONNECTED``, ``CLOSED``); must not block.

    Awaiting (or entering) it is bounded by ``handshake_timeout``.  If it is cancelled or
    times out, the half-open connection is closed before the exception propagates.

    Raises:
        ConfigurationError: a bad argument (raised by the constructor, before any I/O).
        HandshakeTimeoutError: no ``connection_ack`` within ``handshake_timeout``.
        UnauthorizedError: the service refused the credentials (``connection_error``
            ``UnauthorizedException``, or HTTP 401/403 on the upgrade).
        HandshakeError: any other refusal: ``connection_error``, an HTTP error status, no
            or a wrong subprotocol selected, the socket closed or could not be opened.
        CredentialsError: the authorizer had nothing to sign with.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        authorizer: Authorizer,
        subprotocols: Sequence[str] | None = None,
        backpressure: Backpressure | None = None,
        handshake_timeout: float | None = DEFAULT_HANDSHAKE_TIMEOUT,
        operation_timeout: float | None = DEFAULT_OPERATION_TIMEOUT,
        heartbeat_timeout: float | None = None,
        close_timeout: float | None = DEFAULT_CLOSE_TIMEOUT,
        ssl: ssl_module.SSLContext | None = None,
        html_escape: bool | None = None,
        max_size: int | None = DEFAULT_MAX_SIZE,
        reconnect: bool | Reconnect = False,
        on_state_change: StateCallback | None = None,
    ) -> None:
        self.endpoint = realtime_endpoint_from_http(endpoint)
        if not callable(getattr(authorizer, "authorize", None)):
            raise ConfigurationError(
                f"authorizer must have an async authorize(request) method, got {authorizer!r}"
            )
        self.authorizer = authorizer
        offered = [PROTOCOL_EVENTS] if subprotocols is None else list(subprotocols)
        if isinstance(subprotocols, str) or not offered:
            raise ConfigurationError("subprotocols must be a non-empty list of strings")
        for item in offered:
            if not isinstance(item, str) or not item or item.startswith(HEADER_PREFIX):
                raise ConfigurationError(
                    f"bad subprotocol {item!r} (the header- subprotocol is added by the client)"
                )
        self.subprotocols = offered
        self.backpressure = backpressure if backpressure is not None else Backpressure()
        if not isinstance(self.backpressure, Backpressure):
            raise ConfigurationError("backpressure must be an appsync_events.Backpressure")
        self.handshake_timeout = _positive("handshake_timeout", handshake_timeout)
        self.operation_timeout = _positive("operation_timeout", operation_timeout)
        self.heartbeat_timeout = _positive("heartbeat_timeout", heartbeat_timeout)
        self.close_timeout = _positive("close_timeout", close_timeout)
        if ssl is not None and not self.endpoint.startswith("wss:"):
            raise ConfigurationError("ssl= only applies to wss:// endpoints")
        if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
            raise ConfigurationError("ssl must be an ssl.SSLContext or None")
        self.ssl = ssl
        self.html_escape = html_escape
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1024):
            raise ConfigurationError("max_size must be at least 1024 bytes, or None")
        self.max_size = max_size
        if isinstance(reconnect, Reconnect):
            self.reconnect: Reconnect | None = reconnect
        elif isinstance(reconnect, bool):
            self.reconnect = Reconnect() if reconnect else None
        else:
            raise ConfigurationError("reconnect must be a bool or an appsync_events Reconnect")
        if on_state_change is not None and not callable(on_state_change):
            raise ConfigurationError("on_state_change must be callable or None")
        self.on_state_change = on_state_change
        self._client: Client | None = None

    def __await__(self) -> Generator[Any, None, Client]:
        return self._open().__await__()

    async def __aenter__(self) -> Client:
        self._client = await self._open()
        return self._client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        assert self._client is not None
        await self._client.close()

    async def _open(self) -> Client:
        host = endpoint_host(self.endpoint)
        dial = Dialer(
            endpoint=self.endpoint,
            host=host,
            authorizer=self.authorizer,
            subprotocols=self.subprotocols,
            backpressure=self.backpressure,
            handshake_timeout=self.handshake_timeout,
            heartbeat_timeout=self.heartbeat_timeout,
            close_timeout=self.close_timeout,
            ssl=self.ssl,
            max_size=self.max_size,
        )
        connection, accepted = await dial()
        return Client(
            connection,
            endpoint=self.endpoint,
            host=host,
            authorizer=self.authorizer,
            operation_timeout=self.operation_timeout,
            close_timeout=self.close_timeout,
            html_escape=self.html_escape,
            capacity=self.backpressure.subscription_events,
            overflow=self.backpressure.overflow,
            connection_timeout_ms=accepted,
            reconnect=self.reconnect,
            dial=dial,
            on_state_change=self.on_state_change,
        )


class Client:
    """A connected AppSync Events client (one WebSocket).  Create with :func:`connect`.

    Many subscriptions and publishes share the connection and may run concurrently.

    Reconnection (``connect(..., reconnect=True)`` or a
    :class:`~appsync_events.reconnect.Reconnect`): when the connection is lost for a
    retryable reason (:func:`~appsync_events.reconnect.is_retryable`: the socket dropped
    or the service closed it, or the heartbeat timed out):

    * operations waiting for an answer (publish, subscribe, unsubscribe) raise the error
      that broke the connection.  **Publishes are never retried**: the service may or may
      not have received one that was in flight;
    * every active :class:`~appsync_events.Subscription` becomes ``SUSPENDED``: it stays
      open, its buffered events included; reads simply wait;
    * the client waits (jittered exponential backoff), calls the authorizer and opens a
      new connection, then calls the authorizer again and re-sends ``subscribe`` for each
      suspended subscription, with the **same** id and channel; each becomes ``ACTIVE``
      again and events flow into the same inboxes.  The state becomes ``CONNECTED`` once
      every re-subscribe was answered (or failed).  Events published while the client was
      disconnected are not delivered (AppSync keeps no history);
    * new operations started while disconnected wait for the reconnection within their
      ``operation_timeout`` (then raise
      :class:`~appsync_events.errors.OperationTimeoutError`).

    A subscription whose re-subscribe is refused (or times out) fails with that error;
    the others go on.  Reconnection stops when the service refuses the new connection for
    good (``UnauthorizedException``/``BadRequestException``, ``errorCode`` 400/401/403,
    HTTP 401/403), when the policy's ``max_attempts`` are used up (the last attempt's
    error), or on :meth:`close` (which interrupts the backoff at once): then every
    subscription and later operation raises that error and the client is closed.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        endpoint: str,
        authorizer: Authorizer,
        operation_timeout: float | None,
        close_timeout: float | None,
        html_escape: bool | None,
        capacity: int,
        connection_timeout_ms: int | None,
        overflow: Overflow = Overflow.FAIL,
        host: str | None = None,
        reconnect: Reconnect | None = None,
        dial: Dial | None = None,
        on_state_change: StateCallback | None = None,
    ) -> None:
        if reconnect is not None and dial is None:
            raise ConfigurationError("reconnect needs a way to dial a new connection")
        self._connection = connection
        self.endpoint = endpoint
        """The real-time URL connected to."""
        self._host = endpoint_host(endpoint) if host is None else host
        self.authorizer = authorizer
        """The default authorizer of every operation."""
        self.operation_timeout = operation_timeout
        self._deadlines = OperationDeadlines()
        self.close_timeout = close_timeout
        self.html_escape = html_escape
        self._capacity = capacity
        self._overflow = overflow
        self._default_settings: SubscriptionSettings | None = None  # shared by subscriptions
        self.connection_timeout_ms = connection_timeout_ms
        """``connectionTimeoutMs`` from the ack (``None`` when absent)."""
        self.reconnect = reconnect
        """The reconnection policy, ``None`` when disabled."""
        self.reconnects = 0
        """How many times the client reconnected successfully."""
        self.last_error: AppSyncEventsError | None = None
        """The error that broke the most recent connection (``None`` before any loss)."""
        self._reconnector: Reconnector | None = None
        if reconnect is not None:
            assert dial is not None
            self._reconnector = Reconnector(
                reconnect,
                dial,
                self,
                host=self._host,
                operation_timeout=operation_timeout,
                deadlines=self._deadlines,
            )
        self._on_state_change = on_state_change
        self._state = ConnectionState.CONNECTED
        self._state_changed: asyncio.Event | None = None  # made by the first wait for it
        self._failure: AppSyncEventsError | None = None
        self._closing: asyncio.Task[None] | None = None
        self._attach(connection)

    def __repr__(self) -> str:
        state = "" if self._state is ConnectionState.CONNECTED else f" {self._state.value}"
        return f"<Client {self.endpoint}{state}>"

    # --- properties ---------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The connection's state (always ``CONNECTED`` or ``CLOSED`` without reconnection)."""
        return self._state

    @property
    def closed(self) -> bool:
        """Whether the client was closed or failed for good (not while reconnecting)."""
        return self._state is ConnectionState.CLOSED

    @property
    def failure(self) -> AppSyncEventsError | None:
        """Why the client cannot be used any more, else ``None`` (also while reconnecting)."""
        return self._failure

    @property
    def keepalive_timeout(self) -> float:
        """The heartbeat timeout in force, in seconds."""
        timeout = self._connection.keepalive_timeout
        assert timeout is not None
        return timeout

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server selected."""
        return self._connection.ws.subprotocol

    @property
    def local_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of this end of the current WebSocket connection: the peer
        address the server sees (the emulator's ``server.connection_of(client)`` finds the
        connection by it).  A reconnection changes it; ``None`` when unknown."""
        address = self._connection.ws.local_address
        if not address:
            return None
        return str(address[0]), int(address[1])

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The subscriptions of this client that are active, being set up, or suspended
        (waiting for a reconnection)."""
        connection = self._connection
        suspended = [s for s in connection.suspended if s.state is SubscriptionState.SUSPENDED]
        return (*connection.subscriptions.values(), *suspended)

    # --- state, and what the reconnector needs (its Session interface) ----------------------

    def _attach(self, connection: Connection) -> None:
        connection.on_lost = functools.partial(self._connection_lost, connection)

    def _current(self) -> Connection:
        return self._connection

    def _replace(self, connection: Connection, connection_timeout_ms: int | None) -> None:
        self._connection = connection
        self.connection_timeout_ms = connection_timeout_ms
        self._attach(connection)
        self.reconnects += 1

    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        self._state = state
        changed, self._state_changed = self._state_changed, None
        if changed is not None:
            changed.set()
        if self._on_state_change is not None:
            try:
                self._on_state_change(state)
            except Exception:
                self._connection.log.exception("on_state_change(%s) failed", state.value)

    def _state_change(self) -> asyncio.Event:
        """The event the next state change sets (made on demand: most clients never wait)."""
        event = self._state_changed
        if event is None:
            event = self._state_changed = asyncio.Event()
        return event

    def _end(self, error: AppSyncEventsError) -> None:
        if self._failure is None:
            self._failure = error
        self._set_state(ConnectionState.CLOSED)

    def _check(self) -> None:
        """Raise the client's failure if it is closed for good."""
        if self._state is ConnectionState.CLOSED:
            assert self._failure is not None
            raise self._failure.with_traceback(None)

    async def _ready(self) -> Connection:
        """Return the open connection, waiting for a reconnection if one is under way.

        No timeout of its own: callers are bounded by ``operation_timeout``.
        """
        while self._state is not ConnectionState.CONNECTED:
            self._check()
            await self._state_change().wait()
        return self._connection

    def _connection_lost(
        self, connection: Connection, error: AppSyncEventsError, clean: bool
    ) -> bool:
        """``Connection.on_lost``: hand over to the reconnector, or close for good."""
        if connection is not self._connection:  # pragma: no cover - replaced connections
            return False  # are detached when they fail, before a new one is installed
        if not clean:
            self.last_error = error
            if (
                self._closing is None
                and self._reconnector is not None
                and self._reconnector.take_over(connection, error)
            ):
                return True
        self._end(error)
        return False

    # --- operations -----------------------------------------------------------------------------

    def _deadline(
        self, operation: str, operation_id: str
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return self._deadlines.enter(operation, operation_id, self.operation_timeout)

    def subscribe(
        self,
        channel: str,
        *,
        authorizer: Authorizer | None = None,
        on_broadcast_error: BroadcastErrorCallback | None = None,
        overflow: Overflow | str | None = None,
        capacity: int | None = None,
    ) -> SubscriptionRequest:
        """Subscribe to ``channel`` (a channel, or a pattern ending in ``/*``).

        Use it as ``sub = await client.subscribe(channel)`` (then ``await sub.close()``)
        or as ``async with client.subscribe(channel) as sub:``, which unsubscribes when the
        block exits, also on an exception or cancellation.

        Args:
            channel: sent exactly as given (IAM signs it as given).
            authorizer: overrides the client's authorizer for this subscription (and its
                unsubscribe and re-subscribes).
            on_broadcast_error: called with the subscription and each
                :class:`~appsync_events.errors.BroadcastError` that ``async for`` skips
                (see :meth:`Subscription.__anext__ <appsync_events.Subscription.__anext__>`).
            overflow: what an event arriving at a full inbox does
                (:class:`~appsync_events.Overflow` or its string value); default: the
                connection's ``Backpressure.overflow``.
            capacity: the inbox size; default: the connection's
                ``Backpressure.subscription_events``.

        Returns:
            An awaitable async context manager giving the active
            :class:`~appsync_events.Subscription`.

        Awaiting it is bounded by ``operation_timeout`` (the authorizer and a reconnection
        in progress included).  If it is cancelled or times out and the service still
        accepts the subscription later, it is unsubscribed at once.

        Raises:
            InvalidChannelError: ``channel`` breaks the channel rules (nothing is sent).
            ConfigurationError: a bad ``overflow``, ``capacity`` or ``on_broadcast_error``
                (nothing is sent).
            SubscribeError, UnauthorizedError: the service refused it.
            OperationTimeoutError: no answer within ``operation_timeout``.
            ConnectionClosedError, HeartbeatTimeoutError, ...: the connection failed.
        """
        return SubscriptionRequest(
            functools.partial(
                self._subscribe,
                channel,
                authorizer=authorizer,
                on_broadcast_error=on_broadcast_error,
                overflow=overflow,
                capacity=capacity,
            )
        )

    async def _subscribe(
        self,
        channel: str,
        *,
        authorizer: Authorizer | None,
        on_broadcast_error: BroadcastErrorCallback | None,
        overflow: Overflow | str | None = None,
        capacity: int | None = None,
    ) -> Subscription:
        self._check()
        parse_subscribe_channel(channel)
        if on_broadcast_error is not None and not callable(on_broadcast_error):
            raise ConfigurationError("on_broadcast_error must be callable or None")
        settings = self._subscription_settings(authorizer, on_broadcast_error, overflow, capacity)
        authz = settings.authorizer
        subscription_id = str(uuid.uuid4())
        sub = Subscription(subscription_id, channel, settings)

        connection = self._connection

        def send() -> None:
            connection.protocol.send_subscribe(channel, auth.authorization, subscription_id)
            connection.subscriptions[subscription_id] = sub

        try:
            async with self._deadline("subscribe", subscription_id):
                connection = await self._ready()
                request = AuthorizeRequest(
                    operation=Operation.SUBSCRIBE, channel=channel, host=self._host
                )
                auth = await authz.authorize(request)
                answer = await connection.request(subscription_id, send)
        except BaseException:
            accepted = sub.active
            sub._close_now("closed")  # never handed to the caller: not to be resumed either
            if connection.subscriptions.get(subscription_id) is sub:
                del connection.subscriptions[subscription_id]
                if accepted:  # accepted, but the caller is gone: end it at once
                    connection.spawn(
                        self._unsubscribe_quietly(sub), name=f"unsubscribe {subscription_id}"
                    )
            raise
        if isinstance(answer, SubscribeAccepted):
            return sub
        connection.subscriptions.pop(subscription_id, None)
        assert isinstance(answer, SubscribeRejected)
        sub._fail(answer.error)
        raise answer.error

    def _subscription_settings(
        self,
        authorizer: Authorizer | None,
        on_broadcast_error: BroadcastErrorCallback | None,
        overflow: Overflow | str | None,
        capacity: int | None,
    ) -> SubscriptionSettings:
        """The settings of a new subscription: one object shared by every subscription
        that overrides nothing (made again if :attr:`authorizer` was replaced), else its own."""
        if (
            authorizer is None
            and on_broadcast_error is None
            and overflow is None
            and capacity is None
        ):
            defaults = self._default_settings
            if defaults is None or defaults.authorizer is not self.authorizer:
                defaults = self._default_settings = self._new_settings(
                    self.authorizer, None, self._overflow, self._capacity
                )
            return defaults
        return self._new_settings(
            self.authorizer if authorizer is None else authorizer,
            on_broadcast_error,
            self._overflow if overflow is None else Overflow.parse(overflow),
            self._capacity if capacity is None else check_size("capacity", capacity),
        )

    def _new_settings(
        self,
        authorizer: Authorizer,
        on_broadcast_error: BroadcastErrorCallback | None,
        overflow: Overflow,
        capacity: int,
    ) -> SubscriptionSettings:
        return SubscriptionSettings(
            capacity=capacity,
            authorizer=authorizer,
            unsubscribe=self._unsubscribe,
            on_overflow=self._overflowed,
            on_broadcast_error=on_broadcast_error,
            overflow=overflow,
        )

    async def publish(
        self, channel: str, *events: object, authorizer: Authorizer | None = None
    ) -> PublishResult:
        """Publish 1 to 5 events to ``channel`` in one ``publish`` frame.

        Args:
            channel: a concrete channel (no wildcard), sent exactly as given.
            events: each value is JSON-encoded, a ``str`` included (it becomes a JSON
                string); ``bytes``/``bytearray`` (UTF-8) and
                :class:`~appsync_events.RawJSON` (a ``str``) are JSON texts you already
                encoded, checked once and sent as they are.
            authorizer: overrides the client's authorizer for this publish.

        Returns:
            The per-event results (:class:`~appsync_events.PublishResult`).

        Bounded by ``operation_timeout``; a late answer after a timeout or cancellation
        is ignored (the events may still have been published).

        Raises:
            ConfigurationError: no events, more than 5, one over 240 KB, invalid raw JSON,
                an unserialisable value (nothing is sent).
            InvalidChannelError: ``channel`` breaks the channel rules (nothing is sent).
            PublishError, UnauthorizedError: the service refused the whole publish.
            OperationTimeoutError: no answer within ``operation_timeout`` (a reconnection
                in progress included).
            ConnectionClosedError, HeartbeatTimeoutError, ...: the connection failed.  With
                reconnection enabled, a publish in flight when the connection is lost
                raises that error and is **not** retried (the service may have received it).
        """
        if self._state is _CLOSED:
            self._check()
        authz = self.authorizer if authorizer is None else authorizer
        escape = self.html_escape if self.html_escape is not None else isinstance(authz, IAM)
        # Checked and encoded once, before anything is signed or sent.
        connection = self._connection
        protocol = connection.protocol
        prepared = prepare_publish(  # protocol.prepare_publish, without its call
            channel,
            events,
            html_escape=escape,
            max_events=protocol.max_events_per_publish,
            max_event_bytes=protocol.max_event_bytes,
        )
        operation_id = new_operation_id()
        if self._state is _CONNECTED and type(authz) is ApiKey:
            # The common case, where nothing before the frame waits: the frame is written
            # first, then the deadline starts (it bounds the wait for the answer, the only
            # wait), so that the frame leaves as early as it can.
            now = authz._cached(self._host)  # the second's headers, without a request
            if now is None:
                request = publish_request(prepared.channel, prepared.events, self._host)
                now = authz._authorize_now(request)
            authorization = now.authorization
            waiter = connection.publish_now(operation_id, prepared, authorization)
            if waiter is not None:
                limit = self.operation_timeout
                if self._deadlines.watch(waiter, limit):  # the wait is the only one to bound
                    try:
                        answer = await waiter  # awaited here: one coroutine less per publish
                    finally:
                        connection.publish_done(operation_id, waiter)
                    if answer is EXPIRED:
                        connection.abandon(operation_id)  # a late answer is ignored
                        timeout = TimeoutError()
                        raise OperationTimeoutError(
                            "publish", operation_id, limit or 0.0
                        ) from timeout
                    if type(answer) is PublishAccepted:  # _publish_outcome's common case
                        return _publish_result(answer.successful, answer.failed)
                    return _publish_outcome(answer)
                with self._deadlines.enter("publish", operation_id, limit):
                    try:
                        answer = await waiter
                    finally:
                        connection.publish_done(operation_id, waiter)
                return _publish_outcome(answer)
        request = publish_request(prepared.channel, prepared.events, self._host)
        with self._deadlines.enter("publish", operation_id, self.operation_timeout):
            connection = self._connection
            if self._state is not _CONNECTED:
                connection = await self._ready()
            if type(authz) is ApiKey:  # never waits: no coroutine needed
                auth = authz._authorize_now(request)
            else:
                auth = await authz.authorize(request)
            waiter = connection.publish_now(operation_id, prepared, auth.authorization)
            if waiter is None:  # the outbox is full: wait for room
                answer = await connection.publish(operation_id, prepared, auth.authorization)
            else:
                try:
                    answer = await waiter
                finally:
                    connection.publish_done(operation_id, waiter)
        return _publish_outcome(answer)

    async def _unsubscribe(self, sub: Subscription) -> None:
        """Unsubscribe ``sub`` from the service (used by :meth:`Subscription.close`)."""
        connection = self._connection
        if connection.closed or sub.id not in connection.protocol.subscriptions:
            return  # the connection is gone, and the subscription with it
        try:
            async with self._deadline("unsubscribe", sub.id):
                try:
                    # AppSync's unsubscribe carries no authorization: the authorizer is
                    # told about it (as every operation) but its map is unused.
                    await sub.authorizer.authorize(
                        AuthorizeRequest(
                            operation=Operation.UNSUBSCRIBE, channel=sub.channel, host=self._host
                        )
                    )
                except Exception as exc:  # not needed on the wire: never fatal here
                    connection.log.warning("unsubscribe %s: authorizer failed: %r", sub.id, exc)
                answer = await connection.request(
                    sub.id, lambda: connection.protocol.send_unsubscribe(sub.id)
                )
        except AppSyncEventsError as exc:
            if exc is connection.failure:
                return  # the connection is gone, and the subscription with it
            raise
        if isinstance(answer, UnsubscribeRejected):
            raise answer.error

    async def _unsubscribe_quietly(self, sub: Subscription) -> None:
        try:
            await self._unsubscribe(sub)
        except AppSyncEventsError as exc:
            self._connection.log.warning("could not unsubscribe %s: %s", sub.id, exc)

    def _overflowed(self, sub: Subscription) -> None:
        self._connection.log.warning(
            "= subscription %s on %r: inbox full (%d events); unsubscribing it",
            sub.id,
            sub.channel,
            sub.capacity,
        )
        self._connection.spawn(self._unsubscribe_quietly(sub), name=f"unsubscribe {sub.id}")

    # --- closing -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Unsubscribe every live subscription, then close the WebSocket with 1000.

        Idempotent, and safe to call concurrently.  The unsubscribes take at most
        ``close_timeout`` together, the closing handshake at most ``close_timeout`` more.
        Subscriptions end quietly (their iteration stops, reads raise
        :class:`~appsync_events.errors.SubscriptionClosedError`); pending operations raise
        :class:`~appsync_events.errors.ConnectionClosedError`.  If ``close()`` is
        cancelled, closing goes on in the background.  A reconnection in progress (backoff,
        handshake or resubscribing) is cancelled first; suspended subscriptions end
        quietly too.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self._reconnector is not None:  # no new reconnection starts: _closing is set
            await self._reconnector.stop()
        connection = self._connection
        reason = "closed (the client was closed)"
        for sub in connection.suspended:  # kept for a reconnection that will not happen
            sub._close_now(reason)
        connection.suspended = []
        live = [
            s
            for s in list(connection.subscriptions.values())
            if s.state is not SubscriptionState.PENDING and s._begin_close(reason)
        ]
        try:
            await self._unsubscribe_all(connection, live)
        finally:
            for sub in live:
                sub._finish_close()
        await connection.close()
        if self._failure is None:  # closed while reconnecting
            self._failure = ConnectionClosedError(1000, "", message="the client was closed")
        self._set_state(ConnectionState.CLOSED)
        if self._reconnector is not None:
            await self._reconnector.wait_retired()

    async def _unsubscribe_all(self, connection: Connection, live: list[Subscription]) -> None:
        if not live or connection.closed:
            return
        try:
            async with asyncio.timeout(self.close_timeout):
                results = await asyncio.gather(
                    *(self._unsubscribe(s) for s in live), return_exceptions=True
                )
            for sub, result in zip(live, results, strict=True):
                if isinstance(result, Exception):
                    connection.log.warning("could not unsubscribe %s: %s", sub.id, result)
        except TimeoutError:
            connection.log.warning("unsubscribing took over %ss; closing", self.close_timeout)

    async def wait_closed(self) -> None:
        """Wait until the client is closed (by :meth:`close`, the service or a failure),
        not merely disconnected while reconnecting.  No timeout: bound it with
        ``asyncio.timeout()``; cancelling the wait changes nothing."""
        while self._state is not ConnectionState.CLOSED:
            await self._state_change().wait()
        await self._connection.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.close()
