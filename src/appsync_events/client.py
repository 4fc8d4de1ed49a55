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
import ipaddress
import secrets
import ssl as ssl_module
import types
import uuid
from collections.abc import AsyncIterator, Generator, Sequence
from typing import Any, Final, Self
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from ._endpoints import realtime_endpoint_from_http
from ._types import Backpressure, PublishResult, encode_events
from .authorizer import IAM, Authorizer, AuthorizeRequest, Operation
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
from .protocol.channels import parse_channel, parse_subscribe_channel
from .protocol.client import (
    ClientProtocol,
    PublishAccepted,
    PublishRejected,
    SubscribeAccepted,
    SubscribeRejected,
    UnsubscribeRejected,
)
from .protocol.codec import decode_error_body
from .protocol.signing import html_escape_json
from .protocol.subprotocol import HEADER_PREFIX, PROTOCOL_EVENTS, encode_auth_subprotocol
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
        return Client(
            connection,
            endpoint=self.endpoint,
            authorizer=self.authorizer,
            operation_timeout=self.operation_timeout,
            close_timeout=self.close_timeout,
            html_escape=self.html_escape,
            capacity=self.backpressure.subscription_events,
            connection_timeout_ms=accepted,
        )

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
    ) -> None:
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
        self._closing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Client {self.endpoint}{' closed' if self.closed else ''}>"

    # --- properties ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the client was closed or its connection failed."""
        return self._connection.closed

    @property
    def failure(self) -> AppSyncEventsError | None:
        """Why the client cannot be used any more, else ``None``."""
        return self._connection.failure

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
        """The subscriptions of this client that are still active or being set up."""
        return tuple(self._connection.subscriptions.values())

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
            OperationTimeoutError: no answer within ``operation_timeout``.
            ConnectionClosedError, HeartbeatTimeoutError, ...: the connection failed.
        """
        connection = self._connection
        connection.check()
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

        def send() -> None:
            connection.protocol.send_subscribe(channel, auth.signature, id)
            connection.subscriptions[id] = sub

        try:
            async with self._deadline("subscribe", id):
                auth = await authz.authorize(
                    AuthorizeRequest(operation=Operation.SUBSCRIBE, channel=channel)
                )
                answer = await connection.request(id, send)
        except BaseException:
            if connection.subscriptions.get(id) is sub:
                del connection.subscriptions[id]
                if sub.active:  # accepted, but the caller is gone: end it at once
                    sub._closing = True
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
            events: ``bytes``/``bytearray`` are already-encoded JSON (validated, sent as
                they are); every other value is JSON-encoded.
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
            OperationTimeoutError: no answer within ``operation_timeout``.
            ConnectionClosedError, HeartbeatTimeoutError, ...: the connection failed.
        """
        connection = self._connection
        connection.check()
        parse_channel(channel)
        authz = self.authorizer if authorizer is None else authorizer
        texts = encode_events(events)
        escape = self.html_escape if self.html_escape is not None else isinstance(authz, IAM)
        if escape:
            texts = tuple(html_escape_json(text) for text in texts)
        connection.protocol.check_events(texts)  # refuse before anything is signed or sent
        id = str(uuid.uuid4())
        async with self._deadline("publish", id):
            auth = await authz.authorize(
                AuthorizeRequest(operation=Operation.PUBLISH, channel=channel, events=texts)
            )
            answer = await connection.request(
                id, lambda: connection.protocol.send_publish(channel, texts, auth.signature, id)
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
        cancelled, closing goes on in the background.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        connection = self._connection
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

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by :meth:`close`, the service or a failure)."""
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
