"""HTTP publish: ``POST /event`` (PROTOCOL.md §6), with aiohttp."""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from typing import TYPE_CHECKING, Final

from ._endpoints import http_endpoint_from_realtime
from ._types import PublishResult, encode_events
from .authorizer import Authorizer, AuthorizeRequest, Operation
from .connection import redact
from .errors import (
    AppSyncEventsError,
    ConfigurationError,
    ConnectionClosedError,
    ErrorDetail,
    OperationTimeoutError,
    RemoteProtocolError,
    UnauthorizedError,
)
from .protocol.channels import parse_channel
from .protocol.client import ClientProtocol, is_unauthorized, operation_error
from .protocol.codec import decode_error_body, decode_publish_result
from .protocol.signing import html_escape_json, signing_body
from .protocol.subprotocol import lookup

if TYPE_CHECKING:
    import aiohttp

__all__ = ["DEFAULT_HTTP_TIMEOUT", "publish_http"]

logger = logging.getLogger("appsync_events.http")

DEFAULT_HTTP_TIMEOUT: Final = 10.0
"""Seconds for one HTTP publish, authorizer included."""
_CHECKER: Final = ClientProtocol()  # only its event checks are used (stateless)
_MAX_ERROR_TEXT: Final = 500


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
    """Publish 1 to 5 events with one HTTP ``POST /event``.

    The body is exactly ``{"channel":…,"events":[…]}`` as built by
    :func:`~appsync_events.protocol.signing.signing_body`, and the authorizer's PUBLISH map
    is sent as the HTTP headers (plus ``content-type`` when the map has none), so an IAM
    signature over that body holds.

    Args:
        endpoint: the HTTP URL ``https://…/event``; a real-time URL is accepted and
            converted.
        channel: a concrete channel, sent exactly as given.
        events: as for :meth:`Client.publish <appsync_events.Client.publish>`: ``bytes`` are
            already-encoded JSON, every other value is JSON-encoded.
        authorizer: authorizes the publish.
        ssl: an :class:`ssl.SSLContext` for ``https://`` (e.g. the emulator's local CA).
        operation_timeout: seconds for the whole call, authorizer included; ``None`` for no
            limit.
        session: an :class:`aiohttp.ClientSession` to reuse; by default one is opened and
            closed per call (without proxies from the environment).
        html_escape: escape ``< > & = '`` inside events as ``\\uXXXX`` (not needed over
            HTTP, where the raw body is signed).

    Returns:
        The per-event results.

    Cancellation aborts the request; the service may or may not have published.

    Raises:
        ConfigurationError: bad endpoint, no events, more than 5, one over 240 KB, invalid
            raw JSON, an unserialisable value (nothing is sent).
        InvalidChannelError: ``channel`` breaks the channel rules (nothing is sent).
        UnauthorizedError: HTTP 401, or an ``UnauthorizedException`` error body
            (``.status`` is the HTTP status).
        PublishError: any other error status (``.status``, ``.errors``).
        OperationTimeoutError: no answer within ``operation_timeout``.
        ConnectionClosedError: the HTTP connection failed.
        RemoteProtocolError: a 200 answer that is not a publish result.
    """
    url = http_endpoint_from_realtime(endpoint)
    parse_channel(channel)
    texts = encode_events(events)
    if html_escape:
        texts = tuple(html_escape_json(text) for text in texts)
    _CHECKER.check_events(texts)
    if ssl is not None and not url.startswith("https:"):
        raise ConfigurationError("ssl= only applies to https:// endpoints")
    body = signing_body(channel, texts)
    # Imported here, not at module level: ``import appsync_events`` stays light for
    # WebSocket-only users, and coverage's ``--cov=<submodule>`` (which imports the package,
    # then purges sys.modules) cannot leave aiohttp's C reader with stale enum classes.
    import aiohttp

    deadline = asyncio.timeout(operation_timeout)
    try:
        async with deadline:
            auth = await authorizer.authorize(
                AuthorizeRequest(operation=Operation.PUBLISH, channel=channel, events=texts)
            )
            headers = dict(auth.signature)
            if lookup(headers, "content-type") is None:
                headers["content-type"] = "application/json"
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("> POST %s %s %s", url, redact(_dump(headers)), body)
            if session is not None:
                return await _post(session, url, body, headers, ssl)
            async with aiohttp.ClientSession(trust_env=False) as own:
                return await _post(own, url, body, headers, ssl)
    except TimeoutError as exc:
        if deadline.expired():
            raise OperationTimeoutError("publish", "http", operation_timeout or 0.0) from exc
        raise
    except aiohttp.ClientError as exc:
        raise ConnectionClosedError(message=f"HTTP publish to {url} failed: {exc}") from exc


def _dump(headers: dict[str, str]) -> str:
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in headers.items()) + "}"


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    body: str,
    headers: dict[str, str],
    ssl: ssl_module.SSLContext | None,
) -> PublishResult:
    async with session.post(
        url, data=body.encode("utf-8"), headers=headers, ssl=ssl if ssl is not None else True
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


def _error(status: int, text: str) -> AppSyncEventsError:
    """Map an error response: ``UnauthorizedError`` for 401 or an unauthorized errorType,
    else ``PublishError``; both carry ``.status`` and ``.errors``."""
    try:
        errors = decode_error_body(text)
    except RemoteProtocolError:
        snippet = text.strip()[:_MAX_ERROR_TEXT] or "(empty body)"
        errors = (ErrorDetail(error_type=f"HTTP {status}", message=snippet),)
    if status == 401 and not is_unauthorized(errors):
        return UnauthorizedError(errors, status=status, operation="publish")
    return operation_error("publish", errors, status=status)
