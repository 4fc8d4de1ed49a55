"""The public asyncio client: :func:`connect` and :class:`Client`.

::

    async with appsync_events.connect(REALTIME_ENDPOINT, authorizer=authz) as client:
        sub = await client.subscribe("default/notifications")
        await client.publish("default/notifications", {"message": "hi"})
        message = await sub.next()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import secrets
import ssl as ssl_module
import types
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any, Final, Self
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from ._endpoints import realtime_endpoint_from_http
from ._types import Backpressure, PublishResult
from .authorizer import IAM, Authorizer, AuthorizeRequest, Operation
from .authorizer.base import endpoint_host
from .connection import Connection, ConnectionLogger, logger, websockets_logger
from .errors import (
    AppSyncEventsError,
    ConfigurationError,
    ConnectionClosedError,
    ErrorDetail,
    HandshakeError,
    HandshakeTimeoutError,
    OperationTimeoutError,
    RemoteProtocolError,
    SubscriptionClosedError,
    UnauthorizedError,
)
from .protocol.channels import parse_subscribe_channel
from .protocol.client import (
    ClientProtocol,
    PublishAccepted,
    PublishRejected,
    SubscribeAccepted,
    SubscribeRejected,
    UnsubscribeRejected,
)
from .protocol.codec import decode_error_body
from .protocol.subprotocol import HEADER_PREFIX, PROTOCOL_EVENTS, encode_auth_subprotocol
from .reconnect import ConnectionState, Reconnect, StateCallback, is_retryable
from .subscription import Subscription

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_OPERATION_TIMEOUT",
    "Client",
    "connect",
]

DEFAULT_HANDSHAKE_TIMEOUT: Final = 10.0
"""Seconds for the authorizer, the WebSocket upgrade and the ``connection_ack``."""
DEFAULT_OPERATION_TIMEOUT: Final = 10.0
"""Seconds for one subscribe, publish or unsubscribe, authorizer included."""
DEFAULT_CLOSE_TIMEOUT: Final = 5.0
"""Seconds for the unsubscribes of :meth:`Client.close`, and again for the closing handshake."""
DEFAULT_MAX_SIZE: Final = 2 * 1024 * 1024
"""Largest frame accepted from the service, in bytes.  A ``data`` frame carries one event
of at most 240 KB as an escaped JSON string, so this leaves room for heavy escaping."""
_USER_AGENT: Final = "appsync-events-python"

_publish_host: Final = functools.lru_cache(maxsize=32)(endpoint_host)
"""The API host for publish authorizations, parsed once per endpoint (parsing costs ~60 µs)."""
_Dialer = Callable[[], Awaitable[tuple[Connection, int | None]]]
"""Opens and handshakes a new connection; returns it with ``connectionTimeoutMs``."""


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds or None")
    return float(value)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        backpressure: buffer sizes (:class:`~appsync_events.Backpressure`).
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
            sending a WebSocket publish (PROTOCOL.md §5.4 point 3: AWS re-serialises with
            those escapes before checking IAM signatures).  ``None`` (default): only when
            the publish's authorizer is :class:`~appsync_events.authorizer.IAM`.  The events
            stay valid JSON with the same value.
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
        connection, accepted = await self._dial()
        return Client(
            connection,
            endpoint=self.endpoint,
            authorizer=self.authorizer,
            operation_timeout=self.operation_timeout,
            close_timeout=self.close_timeout,
            html_escape=self.html_escape,
            capacity=self.backpressure.subscription_events,
            connection_timeout_ms=accepted,
            reconnect=self.reconnect,
            dial=self._dial,
            on_state_change=self.on_state_change,
        )

    async def _dial(self) -> tuple[Connection, int | None]:
        """Authorize, open and handshake one connection (bounded by ``handshake_timeout``)."""
        log = ConnectionLogger(logger, {"connection_id": secrets.token_hex(4)})
        state: dict[str, Connection] = {}
        deadline = asyncio.timeout(self.handshake_timeout)
        try:
            try:
                async with deadline:
                    accepted = await self._handshake(log, state)
            except TimeoutError:
                if deadline.expired():
                    raise HandshakeTimeoutError(self.handshake_timeout or 0.0) from None
                raise
        except BaseException:
            connection = state.get("connection")
            if connection is not None:
                await self._abort(connection)
            raise
        connection = state["connection"]
        log.info(
            "= connected to %s (keep-alive timeout %gs)",
            self.endpoint,
            connection.keepalive_timeout,
        )
        return connection, accepted

    async def _handshake(self, log: ConnectionLogger, state: dict[str, Connection]) -> int | None:
        auth = await self.authorizer.authorize(AuthorizeRequest(operation=Operation.CONNECT))
        offered = [*self.subprotocols, encode_auth_subprotocol(auth.signature)]
        log.debug(
            "= connecting to %s, subprotocols %s + header-<redacted>", self.endpoint, offered[:-1]
        )
        ws = await self._open_socket(offered)
        connection = Connection(
            ws,
            protocol=ClientProtocol(),
            outbound=self.backpressure.connection_outbound,
            heartbeat_timeout=self.heartbeat_timeout,
            close_timeout=self.close_timeout,
            log=log,
        )
        state["connection"] = connection
        if ws.subprotocol not in self.subprotocols:
            selected = "no subprotocol" if ws.subprotocol is None else repr(ws.subprotocol)
            raise HandshakeError(
                f"the server selected {selected}; expected one of {self.subprotocols}"
            )
        connection.start()
        try:
            accepted = await connection.handshake()
        except ConnectionClosedError as exc:
            raise HandshakeError(f"the connection closed during the handshake: {exc}") from exc
        except RemoteProtocolError as exc:
            raise HandshakeError(
                f"the server broke the protocol during the handshake: {exc}"
            ) from exc
        return accepted.connection_timeout_ms

    async def _open_socket(self, offered: list[str]) -> ClientConnection:
        kwargs: dict[str, Any] = {}
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
        try:
            return await ws_connect(
                self.endpoint,
                subprotocols=[Subprotocol(p) for p in offered],
                open_timeout=None,  # the handshake timeout covers it
                ping_interval=None,  # AppSync keeps alive with "ka" frames
                ping_timeout=None,
                close_timeout=self.close_timeout,
                max_size=self.max_size,
                max_queue=self.backpressure.connection_inbound,
                proxy=None if _is_loopback(self.endpoint) else True,
                user_agent_header=_USER_AGENT,
                logger=websockets_logger,
                **kwargs,
            )
        except InvalidStatus as exc:
            raise _status_error(exc) from exc
        except InvalidHandshake as exc:
            raise HandshakeError(
                f"the WebSocket handshake with {self.endpoint} failed: {exc}"
            ) from exc
        except OSError as exc:
            raise HandshakeError(f"cannot connect to {self.endpoint}: {exc}") from exc

    async def _abort(self, connection: Connection) -> None:
        connection.fail(ConnectionClosedError(message="the handshake failed"), clean=True)
        try:
            await connection.wait_closed()
        except asyncio.CancelledError:  # pragma: no cover - cancelled twice while cleaning up
            connection.ws.transport.abort()
            raise


def _status_error(exc: InvalidStatus) -> AppSyncEventsError:
    status = exc.response.status_code
    errors: tuple[ErrorDetail, ...] = ()
    with contextlib.suppress(RemoteProtocolError):
        errors = decode_error_body(bytes(exc.response.body or b"{}"))
    if status in (401, 403):
        return UnauthorizedError(errors, status=status, operation="connect")
    return HandshakeError(f"the server refused the WebSocket upgrade with HTTP {status}", errors)


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
    * every live :class:`~appsync_events.Subscription` stays open, its buffered events
      included; reads simply wait;
    * the client waits (jittered exponential backoff), calls the authorizer and opens a
      new connection, then calls the authorizer again and re-sends ``subscribe`` for each
      live subscription, with the **same** id and channel; events flow into the same
      inboxes again.  The state becomes ``CONNECTED`` once every re-subscribe was
      answered (or failed).  Events published while the client was disconnected are not
      delivered (AppSync keeps no history);
    * new operations started while disconnected wait for the reconnection within their
      ``operation_timeout`` (then raise
      :class:`~appsync_events.errors.OperationTimeoutError`).

    A subscription whose re-subscribe is refused (or times out) ends with that error; the
    others go on.  Reconnection stops when the service refuses the new connection for
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
        reconnect: Reconnect | None = None,
        dial: _Dialer | None = None,
        on_state_change: StateCallback | None = None,
    ) -> None:
        if reconnect is not None and dial is None:
            raise ConfigurationError("reconnect needs a way to dial a new connection")
        self._connection = connection
        self.endpoint = endpoint
        """The real-time URL connected to."""
        self.authorizer = authorizer
        """The default authorizer of every operation."""
        self.operation_timeout = operation_timeout
        self.close_timeout = close_timeout
        self.html_escape = html_escape
        self._capacity = capacity
        self.connection_timeout_ms = connection_timeout_ms
        """``connectionTimeoutMs`` from the ack (``None`` when absent)."""
        self.reconnect = reconnect
        """The reconnection policy, ``None`` when disabled."""
        self.reconnects = 0
        """How many times the client reconnected successfully."""
        self.last_error: AppSyncEventsError | None = None
        """The error that broke the most recent connection (``None`` before any loss)."""
        self._dial = dial
        self._on_state_change = on_state_change
        self._state = ConnectionState.CONNECTED
        self._state_changed = asyncio.Event()
        self._failure: AppSyncEventsError | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._retired: list[Connection] = []
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
    def subscriptions(self) -> tuple[Subscription, ...]:
        """The subscriptions of this client that are still active, being set up, or
        waiting for a reconnection."""
        connection = self._connection
        return (*connection.subscriptions.values(), *self._carried(connection.retained))

    # --- state and reconnection ------------------------------------------------------------

    def _attach(self, connection: Connection) -> None:
        connection.on_lost = functools.partial(self._connection_lost, connection)

    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        self._state = state
        changed, self._state_changed = self._state_changed, asyncio.Event()
        changed.set()
        if self._on_state_change is not None:
            try:
                self._on_state_change(state)
            except Exception:
                self._connection.log.exception("on_state_change(%s) failed", state.value)

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
            await self._state_changed.wait()
        return self._connection

    @staticmethod
    def _carried(subs: Sequence[Subscription]) -> list[Subscription]:
        return [s for s in subs if not s._closing and s._terminal is None]

    def _connection_lost(
        self, connection: Connection, error: AppSyncEventsError, clean: bool
    ) -> bool:
        """``Connection.on_lost``: decide whether to reconnect; keep the subscriptions if so."""
        if connection is not self._connection:  # pragma: no cover - replaced connections
            return False  # are detached when they fail, before a new one is installed
        if not clean:
            self.last_error = error
        if clean or self._closing is not None or self.reconnect is None or not is_retryable(error):
            if self._failure is None:
                self._failure = error
            self._set_state(ConnectionState.CLOSED)
            return False
        self._retired = [c for c in self._retired if not c.finished]
        self._retired.append(connection)
        self._set_state(ConnectionState.DISCONNECTED)
        self._spawn(self._reconnect_loop(connection, error), name="reconnect")
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"appsync-events {name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # pragma: no cover - a bug
            error = ConnectionClosedError(message=f"internal error while reconnecting: {task!r}")
            error.__cause__ = task.exception()
            self._connection.log.error("reconnection failed", exc_info=task.exception())
            self._give_up(error)

    async def _reconnect_loop(self, lost: Connection, error: AppSyncEventsError) -> None:
        """Reconnect after ``lost`` failed with ``error``, then resume its subscriptions."""
        policy, dial, log = self.reconnect, self._dial, lost.log
        assert policy is not None
        assert dial is not None
        last, attempt = error, 0
        while True:
            if policy.max_attempts is not None and attempt >= policy.max_attempts:
                log.warning("= giving up after %d reconnection attempt(s): %s", attempt, last)
                self._give_up(last)
                return
            delay = policy.delay(attempt)
            log.info("= reconnecting in %.3gs (attempt %d) after: %s", delay, attempt + 1, last)
            self._set_state(ConnectionState.DISCONNECTED)
            await asyncio.sleep(delay)
            attempt += 1
            self._set_state(ConnectionState.RECONNECTING)
            try:
                connection, accepted = await dial()
            except AppSyncEventsError as exc:
                last = exc
                if is_retryable(exc):
                    continue
                log.warning("= reconnection refused, giving up: %s", exc)
                self._give_up(exc)
                return
            except Exception as exc:  # the authorizer broke: retrying would not help
                failed = HandshakeError(f"reconnecting failed: {exc!r}")
                failed.__cause__ = exc
                log.warning("= %s", failed)
                self._give_up(failed)
                return
            break
        subs = self._carried(lost.retained)
        lost.retained = []
        self._connection = connection
        self.connection_timeout_ms = accepted
        for sub in subs:  # registered now, so that a new failure keeps them too
            connection.subscriptions[sub.id] = sub
        self._attach(connection)
        self.reconnects += 1
        log.info("= reconnected; resubscribing %d subscription(s)", len(subs))
        await asyncio.gather(*(self._resubscribe(connection, sub) for sub in subs))
        if self._connection is connection and not connection.closed:
            self._set_state(ConnectionState.CONNECTED)  # with every subscription resumed

    async def _resubscribe(self, connection: Connection, sub: Subscription) -> None:
        """Re-send ``subscribe`` for ``sub`` (same id and channel) on ``connection``."""

        def send() -> None:
            connection.protocol.send_subscribe(sub.channel, auth.signature, sub.id)

        error: AppSyncEventsError
        try:
            async with self._deadline("subscribe", sub.id):
                auth = await sub.authorizer.authorize(
                    AuthorizeRequest(operation=Operation.SUBSCRIBE, channel=sub.channel)
                )
                answer = await connection.request(sub.id, send)
        except AppSyncEventsError as exc:
            if exc is connection.failure:
                return  # the connection broke again: the next reconnection resumes it
            error = exc
        except Exception as exc:  # the authorizer broke: this subscription cannot resume
            error = AppSyncEventsError(f"resubscribing {sub.id} failed: {exc!r}")
            error.__cause__ = exc
        else:
            if isinstance(answer, SubscribeAccepted):
                if sub._closing:  # closed by the caller while it was being resumed
                    await self._unsubscribe_quietly(sub)
                return
            assert isinstance(answer, SubscribeRejected)
            error = answer.error
        connection.log.warning("= could not resume subscription %s: %s", sub.id, error)
        if connection.subscriptions.get(sub.id) is sub:
            del connection.subscriptions[sub.id]
        sub._end(error)

    def _give_up(self, error: AppSyncEventsError) -> None:
        """Stop reconnecting: end every carried subscription with ``error``; close."""
        connection = self._connection
        for sub in (*connection.subscriptions.values(), *connection.retained):
            sub.active = False
            sub._end(error)
        connection.retained = []
        if self._failure is None:
            self._failure = error
        self._set_state(ConnectionState.CLOSED)

    # --- operations -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _deadline(self, operation: str, id: str) -> AsyncIterator[None]:
        timeout = self.operation_timeout
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                yield
        except TimeoutError as exc:
            if deadline.expired():
                raise OperationTimeoutError(operation, id, timeout or 0.0) from exc
            raise

    async def subscribe(
        self, channel: str, *, authorizer: Authorizer | None = None
    ) -> Subscription:
        """Subscribe to ``channel`` (a channel, or a pattern ending in ``/*``).

        Args:
            channel: sent exactly as given (IAM signs it as given).
            authorizer: overrides the client's authorizer for this subscription (and its
                unsubscribe).

        Returns:
            The active :class:`~appsync_events.Subscription`.

        The wait is bounded by ``operation_timeout``.  If the call is cancelled or times
        out and the service still accepts the subscription later, it is unsubscribed
        at once.

        Raises:
            InvalidChannelError: ``channel`` breaks the channel rules (nothing is sent).
            SubscribeError, UnauthorizedError: the service refused it.
            OperationTimeoutError: no answer within ``operation_timeout`` (a reconnection
                in progress included).
            ConnectionClosedError, HeartbeatTimeoutError, ...: the connection failed.
        """
        self._check()
        parse_subscribe_channel(channel)
        authz = self.authorizer if authorizer is None else authorizer
        id = str(uuid.uuid4())
        sub = Subscription(
            id=id,
            channel=channel,
            capacity=self._capacity,
            authorizer=authz,
            unsubscribe=self._unsubscribe,
            on_overflow=self._overflowed,
        )

        connection = self._connection

        def send() -> None:
            connection.protocol.send_subscribe(channel, auth.signature, id)
            connection.subscriptions[id] = sub

        try:
            async with self._deadline("subscribe", id):
                connection = await self._ready()
                auth = await authz.authorize(
                    AuthorizeRequest(operation=Operation.SUBSCRIBE, channel=channel)
                )
                answer = await connection.request(id, send)
        except BaseException:
            sub._closing = True  # never handed to the caller: not to be resumed either
            if connection.subscriptions.get(id) is sub:
                del connection.subscriptions[id]
                if sub.active:  # accepted, but the caller is gone: end it at once
                    connection.spawn(self._unsubscribe_quietly(sub), name=f"unsubscribe {id}")
            raise
        if isinstance(answer, SubscribeAccepted):
            return sub
        connection.subscriptions.pop(id, None)
        assert isinstance(answer, SubscribeRejected)
        raise answer.error

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
        self._check()
        authz = self.authorizer if authorizer is None else authorizer
        escape = self.html_escape if self.html_escape is not None else isinstance(authz, IAM)
        # Checked and encoded once, before anything is signed or sent.
        prepared = self._connection.protocol.prepare_publish(channel, events, html_escape=escape)
        request = AuthorizeRequest(
            operation=Operation.PUBLISH,
            channel=prepared.channel,
            events=prepared.events,
            host=_publish_host(self.endpoint),
        )
        operation_id = str(uuid.uuid4())
        async with self._deadline("publish", operation_id):
            connection = await self._ready()
            auth = await authz.authorize(request)
            answer = await connection.request(
                operation_id,
                lambda: connection.protocol.send_publish(prepared, auth.signature, operation_id),
            )
        if isinstance(answer, PublishAccepted):
            return PublishResult(successful=answer.successful, failed=answer.failed)
        assert isinstance(answer, PublishRejected)
        raise answer.error

    async def _unsubscribe(self, sub: Subscription) -> None:
        """Unsubscribe ``sub`` from the service (used by :meth:`Subscription.close`)."""
        connection = self._connection
        if connection.closed or sub.id not in connection.protocol.subscriptions:
            return  # the connection is gone, and the subscription with it
        try:
            async with self._deadline("unsubscribe", sub.id):
                try:
                    # AppSync's unsubscribe carries no authorization (§3.2.3): the
                    # authorizer is told about it (as every operation) but its map is unused.
                    await sub.authorizer.authorize(
                        AuthorizeRequest(operation=Operation.UNSUBSCRIBE, channel=sub.channel)
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
        sub._closing = True
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
        handshake or resubscribing) is cancelled first; subscriptions waiting for it end
        quietly too.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        tasks = list(self._tasks)  # stop reconnecting (no new one starts: _closing is set)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        connection = self._connection
        waiting = [
            s
            for s in (*connection.subscriptions.values(), *connection.retained)
            if s._resumable and not s.active and not s._closing
        ]
        for sub in waiting:  # kept for a reconnection that will not happen
            sub._closing = True
            sub._end(
                SubscriptionClosedError(sub.id, sub.channel, "closed (the client was closed)"),
                clean=True,
                drop=True,
            )
        connection.retained = []
        live = [s for s in connection.subscriptions.values() if s.active and not s._closing]
        for sub in live:
            sub._closing = True
            sub._end(
                SubscriptionClosedError(sub.id, sub.channel, "closed (the client was closed)"),
                clean=True,
                drop=True,
            )
        if live and not connection.closed:
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
        await connection.close()
        if self._failure is None:  # closed while reconnecting
            self._failure = ConnectionClosedError(1000, "", message="the client was closed")
        self._set_state(ConnectionState.CLOSED)
        retired, self._retired = self._retired, []
        await asyncio.gather(*(c.wait_closed() for c in retired))

    async def wait_closed(self) -> None:
        """Wait until the client is closed (by :meth:`close`, the service or a failure),
        not merely disconnected while reconnecting."""
        while self._state is not ConnectionState.CLOSED:
            await self._state_changed.wait()
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
