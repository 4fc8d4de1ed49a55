"""HTTP publish (POST /event): HttpPublisher and publish_http, over real loopback sockets
against a scripted aiohttp server and against the emulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from multidict import CIMultiDict

import appsync_events
from appsync_emulator import EmulatorServer
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

from .helpers import API_KEY, CREDENTIALS, MS, REGION, WAIT, verify_sigv4
from .test_connect import Recording
from .test_emulator import config as emulator_config, key as emulator_key

pytestmark = pytest.mark.asyncio

OK_BODY = {"failed": [], "successful": [{"identifier": "i0", "index": 0}]}


@dataclass
class HttpServer:
    url: str
    requests: list[tuple[CIMultiDict[str], bytes, str]] = field(default_factory=list)
    """Each request's headers (names in any case: aiohttp's compiled parser gives known
    names in their usual case, its pure-Python one as sent), body and path."""
    peers: list[tuple[str, int]] = field(default_factory=list)
    """The client address of each request: one per TCP connection."""
    reply: Callable[[], web.StreamResponse] = lambda: web.json_response(OK_BODY)
    gate: asyncio.Event | None = None


@pytest_asyncio.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    state = HttpServer(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        state.requests.append((CIMultiDict(request.headers), await request.read(), request.path))
        assert request.transport is not None
        state.peers.append(request.transport.get_extra_info("peername")[:2])
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
    assert isinstance(info.value, expected)
    assert isinstance(info.value, UnauthorizedError) == (expected is UnauthorizedError)
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


# --- HttpPublisher ---------------------------------------------------------------------------


async def test_http_publisher_reuses_one_connection(http_server: HttpServer) -> None:
    """N publishes through one HttpPublisher travel over one kept-alive connection."""
    async with appsync_events.HttpPublisher(http_server.url, authorizer=key(http_server)) as pub:
        for n in range(5):
            result = await pub.publish("default/a", {"n": n})
            assert result.ok
    assert len(http_server.requests) == 5
    assert len(set(http_server.peers)) == 1


async def test_publish_http_opens_a_session_per_call(http_server: HttpServer) -> None:
    """publish_http is one-shot: each call opens (and closes) its own connection."""
    for n in range(2):
        await appsync_events.publish_http(
            http_server.url, "default/a", n, authorizer=key(http_server)
        )
    assert len(set(http_server.peers)) == 2


async def test_http_publisher_body_headers_and_authorize_request(http_server: HttpServer) -> None:
    """The body is the signed body of the prepared events; the authorizer gets the host."""
    authz = Recording(key(http_server))
    async with appsync_events.HttpPublisher(http_server.url, authorizer=authz) as pub:
        await pub.publish("default/a", "text", appsync_events.RawJSON('{"a": 1}'), b"[1]")
    [(headers, body, _)] = http_server.requests
    events = ('"text"', '{"a": 1}', "[1]")
    assert body.decode() == signing_body("default/a", events)
    assert headers["x-authorizer"] == "rec"
    [request] = authz.requests
    assert request.operation is authorizer.Operation.PUBLISH
    assert (request.channel, request.events) == ("default/a", events)
    assert request.host == http_server.url.split("/")[2]  # 127.0.0.1:<port>


async def test_http_publisher_per_publish_authorizer(http_server: HttpServer) -> None:
    """A publish may name its own authorizer."""
    async with appsync_events.HttpPublisher(http_server.url, authorizer=key(http_server)) as pub:
        await pub.publish("default/a", 1, authorizer=Recording(key(http_server), "other"))
        await pub.publish("default/a", 2)
    assert [h.get("x-authorizer") for h, _, _ in http_server.requests] == ["other", None]


async def test_http_publisher_close(http_server: HttpServer) -> None:
    """close() is idempotent; publishing afterwards (or re-entering) raises RuntimeError."""
    pub = appsync_events.HttpPublisher(http_server.url, authorizer=key(http_server))
    await pub.close()  # before any publish: nothing was opened
    assert pub.closed
    with pytest.raises(RuntimeError, match="closed"):
        await pub.publish("default/a", 1)
    with pytest.raises(RuntimeError, match="closed"):
        async with pub:
            pass  # pragma: no cover - not reached
    async with appsync_events.HttpPublisher(http_server.url, authorizer=key(http_server)) as pub:
        await pub.publish("default/a", 1)
        session = pub._session
        assert session is not None
    assert session.closed
    await pub.close()
    assert http_server.requests != []


async def test_http_publisher_leaves_a_given_session_open(http_server: HttpServer) -> None:
    """A caller's session is used and not closed."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with appsync_events.HttpPublisher(
            http_server.url, authorizer=key(http_server), session=session
        ) as pub:
            await pub.publish("default/a", 1)
        assert not session.closed
    assert len(http_server.requests) == 1


async def test_http_publisher_keeps_working_after_errors(http_server: HttpServer) -> None:
    """An error answer raises through the shared mapping; the next publish goes through."""
    unauthorized = {"errors": [{"errorType": "UnauthorizedException", "message": "no"}]}
    http_server.reply = lambda: web.json_response(unauthorized, status=403)
    async with appsync_events.HttpPublisher(http_server.url, authorizer=key(http_server)) as pub:
        with pytest.raises(UnauthorizedError) as info:
            await pub.publish("default/a", 1)
        assert (info.value.status, info.value.operation) == (403, "publish")
        with pytest.raises(ConfigurationError, match="6 events"):
            await pub.publish("default/a", *range(6))
        http_server.reply = lambda: web.json_response(OK_BODY)
        assert (await pub.publish("default/a", 1)).ok
    assert len(http_server.requests) == 2
    assert len(set(http_server.peers)) == 1


async def test_http_publisher_timeout(http_server: HttpServer) -> None:
    """No answer within operation_timeout raises OperationTimeoutError."""
    http_server.gate = asyncio.Event()
    async with appsync_events.HttpPublisher(
        http_server.url, authorizer=key(http_server), operation_timeout=100 * MS
    ) as pub:
        with pytest.raises(OperationTimeoutError):
            await pub.publish("default/a", 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"authorizer": object()}, "authorizer must have an async authorize"),
        ({"operation_timeout": 0}, "operation_timeout must be a positive number"),
        ({"operation_timeout": True}, "operation_timeout must be a positive number"),
        ({"ssl": "yes"}, "ssl= only applies to https://"),
        ({"endpoint": "ftp://example.com/event"}, "endpoint"),
    ],
)
async def test_http_publisher_bad_arguments(
    http_server: HttpServer, kwargs: dict[str, Any], match: str
) -> None:
    """Bad constructor arguments raise ConfigurationError before any I/O."""
    args: dict[str, Any] = {"endpoint": http_server.url, "authorizer": key(http_server)}
    args.update(kwargs)
    with pytest.raises(ConfigurationError, match=match):
        appsync_events.HttpPublisher(args.pop("endpoint"), **args)
    assert http_server.requests == []


async def test_http_publisher_ssl_must_be_a_context() -> None:
    """ssl= on an https:// endpoint must be an SSLContext."""
    authz = authorizer.ApiKey(api_key=API_KEY, endpoint="https://example.com/event")
    with pytest.raises(ConfigurationError, match=r"ssl must be an ssl\.SSLContext"):
        appsync_events.HttpPublisher(
            "https://example.com/event",
            authorizer=authz,
            ssl="yes",  # type: ignore[arg-type]
        )


async def test_http_publisher_against_the_emulator() -> None:
    """Events published by one HttpPublisher reach a WebSocket subscriber in order."""
    async with EmulatorServer(emulator_config()) as server:
        async with appsync_events.connect(
            server.realtime_endpoint, authorizer=emulator_key(server)
        ) as client:
            sub = await client.subscribe("default/*")
            async with appsync_events.HttpPublisher(
                server.http_endpoint, authorizer=emulator_key(server)
            ) as pub:
                first = await pub.publish("default/a", {"n": 0}, "text")
                second = await pub.publish("default/b", appsync_events.RawJSON('{"n": 2}'))
            assert first.ok
            assert second.ok
            got = [(await asyncio.wait_for(sub.next(), WAIT)).json() for _ in range(3)]
            assert got == [{"n": 0}, "text", {"n": 2}]
            with pytest.raises(UnauthorizedError) as info:
                await appsync_events.publish_http(
                    server.http_endpoint,
                    "default/a",
                    1,
                    authorizer=emulator_key(server, "da2-wrong"),
                )
            assert info.value.status == 401
        server.check()


async def test_http_publisher_checks_each_raw_event_once(
    http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTTP publish parses each pre-encoded event once, like a WebSocket publish."""
    from appsync_events.protocol import codec

    checks: list[str] = []
    check = codec.event_json_error
    monkeypatch.setattr(codec, "event_json_error", lambda t: checks.append(t) or check(t))
    async with appsync_events.HttpPublisher(http_server.url, authorizer=key(http_server)) as pub:
        await pub.publish("default/a", appsync_events.RawJSON("[1]"), b"2", {"n": 3})
    assert checks == ["[1]", "2"]


async def test_http_publisher_closed_during_a_publish(http_server: HttpServer) -> None:
    """Closing while a publish is being authorized fails it; no session is reopened."""
    entered, gate = asyncio.Event(), asyncio.Event()
    inner = key(http_server)

    class Slow:
        async def authorize(self, request: Any) -> Any:
            entered.set()
            await gate.wait()
            return await inner.authorize(request)

    pub = appsync_events.HttpPublisher(http_server.url, authorizer=Slow())
    publishing = asyncio.ensure_future(pub.publish("default/a", 1))
    async with asyncio.timeout(WAIT):
        await entered.wait()  # the publish is now waiting for the authorizer
    await pub.close()
    gate.set()
    with pytest.raises(ConnectionClosedError, match="HttpPublisher was closed"):
        await publishing
    assert pub._session is None
    assert http_server.requests == []
