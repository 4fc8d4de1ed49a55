"""HTTP publish: ``POST /event`` with aiohttp.

:class:`HttpPublisher` keeps one aiohttp session (and so its keep-alive connections) for
many publishes; :func:`publish_http` is the one-shot form.  Both publish exactly what a
WebSocket publish would: the publish is prepared (channel checked, events encoded and
checked) once by the protocol core, authorized with those texts, and posted as the body
the core builds from it.  Error answers map to exceptions through the same function as
WebSocket answers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import types
from typing import TYPE_CHECKING, Final, Self

from ._types import PublishResult
from .authorizer import Authorizer, AuthorizeRequest, Operation
from .authorizer.base import endpoint_host
from .connection import redact
from .endpoints import http_endpoint_from_realtime
from .errors import (
    AppSyncEventsError,
    ConfigurationError,
    ConnectionClosedError,
    ErrorDetail,
    OperationTimeoutError,
    RemoteProtocolError,
)
from .protocol.client_events import operation_error
from .protocol.codec import decode_error_body, decode_publish_result, dumps
from .protocol.publish import http_publish_body, prepare_publish
from .protocol.subprotocol import lookup

if TYPE_CHECKING:
    import aiohttp

__all__ = ["DEFAULT_HTTP_TIMEOUT", "HttpPublisher", "publish_http"]

logger = logging.getLogger("appsync_events.http")

DEFAULT_HTTP_TIMEOUT: Final = 10.0
"""Seconds for one HTTP publish, authorizer included."""
_MAX_ERROR_TEXT: Final = 500


class HttpPublisher:
    """Publish events with HTTP ``POST /event``, reusing one HTTP session.

    ::

        async with HttpPublisher(HTTP_ENDPOINT, authorizer=authz) as publisher:
            await publisher.publish("default/orders", {"id": 1})
            await publisher.publish("default/orders", {"id": 2}, {"id": 3})

    Every publish goes through the same aiohttp session, so its connections are kept
    alive and reused.  The session is opened at the first publish (without proxies from
    the environment) and closed by :meth:`close` or at the end of the ``async with``
    block.  A session you pass in is used as it is and left open.

    Args:
        endpoint: the HTTP URL ``https://…/event``; a real-time URL is accepted and
            converted.
        authorizer: authorizes each publish (unless a publish names its own); it is
            given the channel, the event texts exactly as posted and the endpoint's host.
        ssl: an :class:`ssl.SSLContext` for ``https://`` (e.g. the emulator's local CA).
        operation_timeout: seconds for one publish, authorizer included; ``None`` for no
            limit.
        session: an :class:`aiohttp.ClientSession` to use instead of opening one.
        html_escape: escape ``< > & = '`` inside events as ``\\uXXXX`` (not needed over
            HTTP, where the raw body is signed).

    Raises:
        ConfigurationError: a bad endpoint, authorizer, timeout, or ``ssl`` with an
            ``http://`` endpoint (raised by the constructor, before any I/O).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        authorizer: Authorizer,
        ssl: ssl_module.SSLContext | None = None,
        operation_timeout: float | None = DEFAULT_HTTP_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
        html_escape: bool = False,
    ) -> None:
        self.endpoint: str = http_endpoint_from_realtime(endpoint)
        """The HTTP URL posted to."""
        self.host: str = endpoint_host(self.endpoint)
        """The API's host, as given to the authorizer."""
        if not callable(getattr(authorizer, "authorize", None)):
            raise ConfigurationError(
                f"authorizer must have an async authorize(request) method, got {authorizer!r}"
            )
        self.authorizer = authorizer
        """The default authorizer of every publish."""
        if ssl is not None and not self.endpoint.startswith("https:"):
            raise ConfigurationError("ssl= only applies to https:// endpoints")
        if ssl is not None and not isinstance(ssl, ssl_module.SSLContext):
            raise ConfigurationError("ssl must be an ssl.SSLContext or None")
        self.ssl = ssl
        if operation_timeout is not None and (
            isinstance(operation_timeout, bool)
            or not isinstance(operation_timeout, int | float)
            or not operation_timeout > 0
        ):
            raise ConfigurationError(
                "operation_timeout must be a positive number of seconds or None"
            )
        self.operation_timeout = operation_timeout
        self.html_escape = html_escape
        self._session = session
        self._owns_session = session is None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    async def publish(
        self, channel: str, *events: object, authorizer: Authorizer | None = None
    ) -> PublishResult:
        """Publish 1 to 5 events to ``channel`` with one ``POST /event``.

        Args:
            channel: a concrete channel, sent exactly as given.
            events: as for :meth:`Client.publish <appsync_events.Client.publish>`: each
                value is JSON-encoded (a ``str`` becomes a JSON string); ``bytes`` and
                :class:`~appsync_events.RawJSON` are JSON texts sent as they are.
            authorizer: overrides the publisher's authorizer for this publish.

        Returns:
            The per-event results.

        Bounded by ``operation_timeout`` (the authorizer included).  Cancellation aborts
        the request; the service may or may not have published.

        Raises:
            ConfigurationError: no events, more than 5, one over 240 KB, invalid raw
                JSON, an unserialisable value, a body over 1.2 MB (nothing is sent).
            InvalidChannelError: ``channel`` breaks the channel rules (nothing is sent).
            UnauthorizedError: HTTP 401, or an unauthorized error body (``.status`` is
                the HTTP status).
            PublishError: any other error status (``.status``, ``.errors``).
            OperationTimeoutError: no answer within ``operation_timeout``.
            ConnectionClosedError: the HTTP connection failed.
            RemoteProtocolError: a 200 answer that is not a publish result.
            RuntimeError: the publisher is closed.
        """
        if self._closed:
            raise RuntimeError("this HttpPublisher is closed")
        prepared = prepare_publish(channel, events, html_escape=self.html_escape)
        body = http_publish_body(prepared)
        request = AuthorizeRequest(
            operation=Operation.PUBLISH,
            channel=prepared.channel,
            events=prepared.events,
            host=self.host,
        )
        authz = self.authorizer if authorizer is None else authorizer
        # Imported here, not at module level: ``import appsync_events`` stays light for
        # WebSocket-only users, and coverage's ``--cov=<submodule>`` (which imports the
        # package, then purges sys.modules) cannot leave aiohttp's C reader with stale
        # enum classes.
        import aiohttp

        deadline = asyncio.timeout(self.operation_timeout)
        try:
            async with deadline:
                auth = await authz.authorize(request)
                headers = dict(auth.authorization)
                if lookup(headers, "content-type") is None:
                    headers["content-type"] = "application/json"
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("> POST %s %s %s", self.endpoint, redact(dumps(headers)), body)
                return await self._post(self._open_session(), body, headers)
        except TimeoutError as exc:
            if deadline.expired():
                raise OperationTimeoutError(
                    "publish", "http", self.operation_timeout or 0.0
                ) from exc
            raise
        except aiohttp.ClientError as exc:
            raise ConnectionClosedError(
                message=f"HTTP publish to {self.endpoint} failed: {exc}"
            ) from exc

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:  # closed while this publish was being authorized
            raise ConnectionClosedError(message="the HttpPublisher was closed")
        if self._session is None:  # no await between the check and the assignment
            import aiohttp

            self._session = aiohttp.ClientSession(trust_env=False)
        return self._session

    async def _post(
        self, session: aiohttp.ClientSession, body: str, headers: dict[str, str]
    ) -> PublishResult:
        ssl = self.ssl if self.ssl is not None else True
        async with session.post(
            self.endpoint, data=body.encode("utf-8"), headers=headers, ssl=ssl
        ) as response:
            text = await response.text(encoding="utf-8", errors="replace")
            logger.debug("< HTTP %d %s", response.status, text[:_MAX_ERROR_TEXT])
            if response.status == 200:
                try:
                    successful, failed = decode_publish_result(text)
                except RemoteProtocolError as exc:
                    raise RemoteProtocolError(f"bad HTTP publish answer: {exc.reason}") from None
                return PublishResult(successful=successful, failed=failed)
            raise _error(response.status, text)

    async def close(self) -> None:
        """Close the session this publisher opened (a session passed in stays open).

        Idempotent.  Publishes after it raise :class:`RuntimeError`; publishes in flight
        fail with :class:`~appsync_events.errors.ConnectionClosedError`.  If ``close()``
        is cancelled, the publisher is closed all the same.
        """
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError("this HttpPublisher is closed")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.close()


async def publish_http(
    endpoint: str,
    channel: str,
    *events: object,
    authorizer: Authorizer,
    ssl: ssl_module.SSLContext | None = None,
    operation_timeout: float | None = DEFAULT_HTTP_TIMEOUT,
    session: aiohttp.ClientSession | None = None,
    html_escape: bool = False,
) -> PublishResult:
    """Publish 1 to 5 events with one HTTP ``POST /event`` (a one-shot :class:`HttpPublisher`).

    The body is exactly ``{"channel":…,"events":[…]}``, the body an IAM authorizer signs
    for those events, and the authorizer's PUBLISH map is sent as the HTTP headers (plus
    ``content-type`` when the map has none).  To publish many times, keep an
    :class:`HttpPublisher`: this function opens and closes an HTTP session per call
    unless given ``session``.

    Args:
        endpoint: the HTTP URL ``https://…/event``; a real-time URL is accepted and
            converted.
        channel: a concrete channel, sent exactly as given.
        events: as for :meth:`HttpPublisher.publish`.
        authorizer: authorizes the publish.
        ssl: an :class:`ssl.SSLContext` for ``https://`` (e.g. the emulator's local CA).
        operation_timeout: seconds for the whole call, authorizer included; ``None`` for no
            limit.
        session: an :class:`aiohttp.ClientSession` to reuse (left open).
        html_escape: escape ``< > & = '`` inside events as ``\\uXXXX`` (not needed over
            HTTP, where the raw body is signed).

    Returns:
        The per-event results.

    Cancellation aborts the request; the service may or may not have published.

    Raises:
        ConfigurationError: a bad argument or event (nothing is sent); see
            :class:`HttpPublisher` and :meth:`HttpPublisher.publish`.
        InvalidChannelError, UnauthorizedError, PublishError, OperationTimeoutError,
        ConnectionClosedError, RemoteProtocolError: as :meth:`HttpPublisher.publish`.
    """
    publisher = HttpPublisher(
        endpoint,
        authorizer=authorizer,
        ssl=ssl,
        operation_timeout=operation_timeout,
        session=session,
        html_escape=html_escape,
    )
    async with publisher:
        return await publisher.publish(channel, *events)


def _error(status: int, text: str) -> AppSyncEventsError:
    """Map an error response through the same function as WebSocket answers; the error
    carries ``.status`` and ``.errors`` (a body that is not an error body becomes one
    error named after the status)."""
    try:
        errors = decode_error_body(text)
    except RemoteProtocolError:
        snippet = text.strip()[:_MAX_ERROR_TEXT] or "(empty body)"
        errors = (ErrorDetail(error_type=f"HTTP {status}", message=snippet),)
    return operation_error("publish", errors, status=status)
