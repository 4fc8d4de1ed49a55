"""HTTP publish (POST /event) against a scripted aiohttp server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

import appsync_events
from appsync_events import authorizer
from appsync_events.errors import (
    ConfigurationError,
    ConnectionClosedError,
    InvalidChannelError,
    OperationTimeoutError,
    PublishError,
    RemoteProtocolError,
    UnauthorizedError,
)
from appsync_events.protocol.messages import FailedEvent, PublishedEvent
from appsync_events.protocol.signing import signing_body

from .helpers import API_KEY, CREDENTIALS, MS, REGION, verify_sigv4

pytestmark = pytest.mark.asyncio

OK_BODY = {"failed": [], "successful": [{"identifier": "i0", "index": 0}]}


@dataclass
class HttpServer:
    url: str
    requests: list[tuple[dict[str, str], bytes, str]] = field(default_factory=list)
    reply: Callable[[], web.StreamResponse] = lambda: web.json_response(OK_BODY)
    gate: asyncio.Event | None = None


@pytest_asyncio.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    state = HttpServer(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        state.requests.append((dict(request.headers), await request.read(), request.path))
        if state.gate is not None:
            await state.gate.wait()
        return state.reply()

    app = web.Application()
    app.router.add_post("/event", handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/event"
    try:
        yield state
    finally:
        if state.gate is not None:
            state.gate.set()
        await runner.cleanup()


def key(server: HttpServer) -> authorizer.ApiKey:
    return authorizer.ApiKey(api_key=API_KEY, endpoint=server.url)


async def test_publish_http_body_and_headers(http_server: HttpServer) -> None:
    """The body is exactly signing_body(channel, events); the map is sent as headers."""
    result = await appsync_events.publish_http(
        http_server.url, "default/a", {"m": 1}, b'{"raw": 2}', authorizer=key(http_server)
    )
    assert result == appsync_events.PublishResult(
        successful=(PublishedEvent(identifier="i0", index=0),), failed=()
    )
    [(headers, body, path)] = http_server.requests
    assert path == "/event"
    assert body.decode() == signing_body("default/a", ['{"m":1}', '{"raw": 2}'])
    assert headers["x-api-key"] == API_KEY
    assert headers["Content-Type"] == "application/json"


async def test_publish_http_iam_signature(http_server: HttpServer) -> None:
    """An IAM HTTP publish verifies with botocore over the raw body, tricky payload included."""
    authz = authorizer.IAM(region=REGION, endpoint=http_server.url, credentials=CREDENTIALS)
    event = {"html": "<b>Tom & Jerry</b>", "unicode": "Grüße 東京", "q": "it's a=b"}
    await appsync_events.publish_http(http_server.url, "default/a", event, authorizer=authz)
    [(headers, body, _)] = http_server.requests
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert headers["Host"] == http_server.url.split("/")[2]
    verify_sigv4(headers, body.decode("utf-8"))
    assert json.loads(json.loads(body)["events"][0]) == event
    assert "<b>" in body.decode()  # no escaping needed over HTTP: the raw body is signed


async def test_publish_http_accepts_realtime_endpoint(http_server: HttpServer) -> None:
    """A real-time URL is converted to the HTTP one."""
    realtime = http_server.url.replace("http://", "ws://") + "/realtime"
    await appsync_events.publish_http(realtime, "default/a", 1, authorizer=key(http_server))
    assert len(http_server.requests) == 1


async def test_publish_http_failed_events(http_server: HttpServer) -> None:
    """Per-event failures come back in result.failed."""
    body = {
        "failed": [
            {"code": "EventTooLargeException", "identifier": "f", "index": 0, "message": "big"}
        ],
        "successful": [],
    }
    http_server.reply = lambda: web.json_response(body)
    result = await appsync_events.publish_http(
        http_server.url, "default/a", 1, authorizer=key(http_server)
    )
    assert result.failed == (
        FailedEvent(identifier="f", index=0, code="EventTooLargeException", message="big"),
    )
    assert not result.ok


@pytest.mark.parametrize(
    ("status", "body", "expected", "error_type"),
    [
        (
            401,
            {"errors": [{"errorType": "UnauthorizedException", "message": "no"}]},
            UnauthorizedError,
            "UnauthorizedException",
        ),
        (
            403,
            {"errors": [{"errorType": "UnauthorizedException", "message": "no"}]},
            UnauthorizedError,
            "UnauthorizedException",
        ),
        (401, {"errors": [{"errorType": "Odd", "message": "no"}]}, UnauthorizedError, "Odd"),
        (
            403,
            {"errors": [{"errorType": "HandlerError", "message": "util.error"}]},
            PublishError,
            "HandlerError",
        ),
        (
            400,
            {"errors": [{"errorType": "BadRequestException", "message": "bad"}]},
            PublishError,
            "BadRequestException",
        ),
        (500, "<html>oops</html>", PublishError, "HTTP 500"),
        (429, "", PublishError, "HTTP 429"),
    ],
)
async def test_publish_http_errors(
    http_server: HttpServer, status: int, body: Any, expected: type[Exception], error_type: str
) -> None:
    """Error statuses map to UnauthorizedError / PublishError with .status and .errors."""
    text = body if isinstance(body, str) else json.dumps(body)
    http_server.reply = lambda: web.Response(
        status=status, text=text, content_type="application/json"
    )
    with pytest.raises(expected) as info:
        await appsync_events.publish_http(
            http_server.url, "default/a", 1, authorizer=key(http_server)
        )
    assert type(info.value) is expected
    assert info.value.status == status  # type: ignore[attr-defined]
    assert info.value.errors[0].error_type == error_type  # type: ignore[attr-defined]


async def test_publish_http_bad_success_body(http_server: HttpServer) -> None:
    """A 200 that is not a publish result raises RemoteProtocolError."""
    http_server.reply = lambda: web.Response(text="not json")
    with pytest.raises(RemoteProtocolError, match="bad HTTP publish answer"):
        await appsync_events.publish_http(
            http_server.url, "default/a", 1, authorizer=key(http_server)
        )


@pytest.mark.parametrize(
    ("channel", "events", "error"),
    [
        ("default/a", (1,) * 6, ConfigurationError),
        ("default/a", (), ConfigurationError),
        ("default/a", (b"{",), ConfigurationError),
        ("default/*", (1,), InvalidChannelError),
    ],
)
async def test_publish_http_refused_locally(
    http_server: HttpServer, channel: str, events: Any, error: type[Exception]
) -> None:
    """Bad input is refused before any request."""
    with pytest.raises(error):
        await appsync_events.publish_http(
            http_server.url, channel, *events, authorizer=key(http_server)
        )
    assert http_server.requests == []


async def test_publish_http_timeout(http_server: HttpServer) -> None:
    """No answer within operation_timeout gives OperationTimeoutError."""
    http_server.gate = asyncio.Event()
    with pytest.raises(OperationTimeoutError):
        await appsync_events.publish_http(
            http_server.url, "default/a", 1, authorizer=key(http_server), operation_timeout=100 * MS
        )


async def test_publish_http_connection_refused() -> None:
    """Nothing listening gives ConnectionClosedError."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/event"
    authz = authorizer.ApiKey(api_key=API_KEY, endpoint=url)
    with pytest.raises(ConnectionClosedError, match="HTTP publish"):
        await appsync_events.publish_http(url, "default/a", 1, authorizer=authz)


async def test_publish_http_with_session(http_server: HttpServer) -> None:
    """A caller's aiohttp session is used and left open."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for n in range(3):
            await appsync_events.publish_http(
                http_server.url, "default/a", n, authorizer=key(http_server), session=session
            )
        assert not session.closed
    assert len(http_server.requests) == 3


async def test_publish_http_ssl_on_http_refused(http_server: HttpServer) -> None:
    """ssl= with an http:// endpoint is a configuration error."""
    import ssl

    with pytest.raises(ConfigurationError, match="https://"):
        await appsync_events.publish_http(
            http_server.url,
            "default/a",
            1,
            authorizer=key(http_server),
            ssl=ssl.create_default_context(),
        )


async def test_publish_http_html_escape_option(http_server: HttpServer) -> None:
    """html_escape=True escapes the events."""
    await appsync_events.publish_http(
        http_server.url, "default/a", {"h": "<b>"}, authorizer=key(http_server), html_escape=True
    )
    [(_, body, _)] = http_server.requests
    assert json.loads(body)["events"] == ['{"h":"\\u003cb\\u003e"}']
