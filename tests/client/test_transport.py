"""The aiohttp WebSocket transport over real loopback sockets: frames, closes, errors, TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import trustme
from aiohttp import WSMsgType, web

import appsync_events
from appsync_events import _transport as transport_module, authorizer
from appsync_events._transport import (
    USER_AGENT,
    TransportClosed,
    WebSocket,
    env_proxy,
    is_loopback,
    open_websocket,
)
from appsync_events.errors import ConnectionClosedError, HandshakeError, UnauthorizedError

from .helpers import API_KEY, WAIT, serve_realtime

pytestmark = pytest.mark.asyncio

PROTOCOLS = ["aws-appsync-event-ws", "header-e30"]

Handler = Callable[[web.WebSocketResponse, web.Request], Awaitable[None]]


class Server:
    """An aiohttp server on 127.0.0.1 running ``handler`` for each WebSocket."""

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.requests: list[web.Request] = []
        self.closed: asyncio.Queue[tuple[int | None, str]] = asyncio.Queue()
        self.done = asyncio.Event()
        self.port = 0
        self.status: int | None = None
        self.body = b""

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/event/realtime"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.status is not None:
            return web.Response(status=self.status, body=self.body, content_type="application/json")
        ws = web.WebSocketResponse(protocols=("aws-appsync-event-ws",), autoclose=True)
        await ws.prepare(request)
        try:
            await self.handler(ws, request)
        finally:
            self.done.set()
        return ws

    async def __aenter__(self) -> Server:
        self.runner, self.port = await serve_realtime(self._handle, self.ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


async def _drain(ws: web.WebSocketResponse, server: Server) -> None:
    """Read until the client closes; record the close code and reason."""
    async for _ in ws:
        pass
    await server.closed.put((ws.close_code, ""))


async def _open(server: Server, **kwargs: Any) -> WebSocket:
    options: dict[str, Any] = {"ssl": None, "max_size": None, "close_timeout": WAIT}
    options.update(kwargs)
    return await asyncio.wait_for(
        open_websocket(server.url, subprotocols=PROTOCOLS, **options), WAIT
    )


@pytest_asyncio.fixture
async def echo() -> AsyncIterator[Server]:
    """Echoes every text frame; ``"close <code> <reason>"`` closes with them."""

    async def handler(ws: web.WebSocketResponse, request: web.Request) -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data.startswith("close "):
                _, code, reason = msg.data.split(" ", 2)
                await ws.close(code=int(code), message=reason.encode())
            elif msg.type == WSMsgType.TEXT and msg.data == "binary":
                await ws.send_bytes(b"\x00\x01")
            elif msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.ping(b"p")
                await ws.send_str("pinged")
            elif msg.type == WSMsgType.TEXT and msg.data == "drop":
                assert request.transport is not None
                request.transport.abort()
            elif msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        await server.closed.put((ws.close_code, ""))

    async with Server(handler) as server:
        yield server


async def test_upgrade_offers_subprotocols_and_user_agent(echo: Server) -> None:
    """The upgrade offers every subprotocol, names the client, and the selection is kept."""
    ws = await _open(echo)
    assert ws.subprotocol == "aws-appsync-event-ws"
    request = echo.requests[0]
    offered = [p.strip() for p in request.headers["Sec-WebSocket-Protocol"].split(",")]
    assert offered == PROTOCOLS
    assert request.headers["User-Agent"] == USER_AGENT
    await ws.close(1000)


async def test_text_round_trip_and_binary(echo: Server) -> None:
    """Text frames come back as str, binary ones as bytes."""
    ws = await _open(echo)
    await ws.send('{"type":"ka"}')
    assert await ws.recv() == '{"type":"ka"}'
    await ws.send("binary")
    assert await ws.recv() == b"\x00\x01"
    await ws.close(1000)
    assert await asyncio.wait_for(echo.closed.get(), WAIT) == (1000, "")


async def test_ping_is_answered(echo: Server) -> None:
    """A server ping is answered by the transport, never surfaced."""
    ws = await _open(echo)
    await ws.send("ping")
    assert await ws.recv() == "pinged"
    await ws.close(1000)


async def test_server_close_code_and_reason(echo: Server) -> None:
    """A close from the server raises TransportClosed with its code and reason."""
    ws = await _open(echo)
    await ws.send("close 4001 bye now")
    with pytest.raises(TransportClosed):
        await asyncio.wait_for(ws.recv(), WAIT)
    assert (ws.close_code, ws.close_reason) == (4001, "bye now")
    with pytest.raises(TransportClosed):
        await ws.recv()  # and stays closed
    await ws.close(1000)
    assert ws.close_code == 4001


async def test_dropped_connection_is_1006(echo: Server) -> None:
    """A connection lost without a close frame reports 1006 (abnormal closure)."""
    ws = await _open(echo)
    await ws.send("drop")
    with pytest.raises(TransportClosed):
        await asyncio.wait_for(ws.recv(), WAIT)
    assert ws.close_code == 1006
    with pytest.raises(TransportClosed):
        await ws.send("x")
    await ws.close(1000)


async def test_local_close_sends_the_code(echo: Server) -> None:
    """close(code) sends that code, waits for the answer, and is idempotent."""
    ws = await _open(echo)
    await ws.close(1002)
    assert await asyncio.wait_for(echo.closed.get(), WAIT) == (1002, "")
    await ws.close(1000)
    with pytest.raises(TransportClosed):
        await ws.send("late")


async def test_frame_over_max_size_closes_1009(echo: Server) -> None:
    """A frame larger than max_size closes the connection with 1009 (message too big)."""
    ws = await _open(echo, max_size=1024)
    await ws.send("y" * 2000)
    with pytest.raises(TransportClosed):
        await asyncio.wait_for(ws.recv(), WAIT)
    assert ws.close_code == 1009
    assert await asyncio.wait_for(echo.closed.get(), WAIT) == (1009, "")
    await ws.close(1000)


async def test_cancelled_recv_loses_no_frame(echo: Server) -> None:
    """Cancelling a waiting recv() loses nothing: the next recv() gets the next frame."""
    ws = await _open(echo)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), 0.05)  # cancelled while waiting: nothing came yet
    await ws.send("first")
    await ws.send("second")
    assert await asyncio.wait_for(ws.recv(), WAIT) == "first"
    assert await asyncio.wait_for(ws.recv(), WAIT) == "second"
    await ws.close(1000)


async def test_receive_queue_is_bounded() -> None:
    """While nobody reads, the transport stops reading the socket: the sender stalls."""
    sent = 0
    release = asyncio.Event()

    async def flood(ws: web.WebSocketResponse, request: web.Request) -> None:
        nonlocal sent
        for _ in range(4096):
            await ws.send_str("z" * 4096)  # 16 MiB in all; waits when the socket is full
            sent += 1
        release.set()
        await _drain(ws, server)

    async with Server(flood) as server:
        ws = await _open(server)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(release.wait(), 0.5)  # stalled: the client is not reading
        assert sent < 4096
        for _ in range(4096):
            assert len(await asyncio.wait_for(ws.recv(), WAIT)) == 4096
        await asyncio.wait_for(release.wait(), WAIT)
        await ws.close(1000)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, UnauthorizedError), (403, UnauthorizedError), (503, HandshakeError)],
)
async def test_refused_upgrade_keeps_the_error_body(
    echo: Server, status: int, expected: type[Exception]
) -> None:
    """An HTTP refusal maps to the client's errors, with the service's error details."""
    echo.status = status
    echo.body = json.dumps({"errors": [{"errorType": "X", "message": "no"}]}).encode()
    with pytest.raises(expected) as info:
        await _open(echo)
    assert type(info.value) is expected
    assert info.value.errors[0].error_type == "X"  # type: ignore[attr-defined]


async def _idle(ws: web.WebSocketResponse, request: web.Request) -> None:
    async for _ in ws:
        pass


async def test_nothing_listening() -> None:
    """A refused TCP connection is a HandshakeError naming the endpoint."""
    async with Server(_idle) as server:
        url = server.url
    with pytest.raises(HandshakeError, match=r"cannot connect to ws://127\.0\.0\.1"):
        await open_websocket(url, subprotocols=PROTOCOLS, ssl=None, max_size=None, close_timeout=1)


async def test_not_a_websocket_server() -> None:
    """A 101 without the WebSocket headers is a HandshakeError."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(status=101, headers={"Upgrade": "h2c", "Connection": "Upgrade"})

    runner, port = await serve_realtime(handle)
    try:
        url = f"ws://127.0.0.1:{port}/event/realtime"
        with pytest.raises(HandshakeError, match=r"handshake with .* failed"):
            await asyncio.wait_for(
                open_websocket(
                    url, subprotocols=PROTOCOLS, ssl=None, max_size=None, close_timeout=1
                ),
                WAIT,
            )
    finally:
        await runner.cleanup()


async def test_tls_with_a_trusted_local_ca() -> None:
    """wss:// works with an SSLContext trusting the server's CA, and fails without it."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with Server(_idle, ssl_context=server_context) as server:
        ws = await _open(server, ssl=client_context)
        assert ws.subprotocol == "aws-appsync-event-ws"
        await ws.close(1000)
        with pytest.raises(HandshakeError, match="cannot connect"):
            await _open(server, ssl=ssl.create_default_context())


def _tls_pair() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


async def test_close_over_tls_returns_once_the_socket_is_closed() -> None:
    """A TLS shutdown finishes on later loop turns: close() waits for it, so a caller that
    closes its loop right after leaves no socket open."""
    server_context, client_context = _tls_pair()
    async with Server(_idle, ssl_context=server_context) as server:
        ws = await _open(server, ssl=client_context)
        sock = ws._connection().transport.get_extra_info("socket")
        assert sock.fileno() != -1
        await ws.close(1000)
        assert sock.fileno() == -1


async def test_close_aborts_a_connection_that_does_not_go_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TCP connection still there RELEASE_TIMEOUT after its release is aborted."""
    server_context, client_context = _tls_pair()
    async with Server(_idle, ssl_context=server_context) as server:
        ws = await _open(server, ssl=client_context)
        sock = ws._connection().transport.get_extra_info("socket")
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        monkeypatch.setattr(WebSocket, "lost", lambda self: never)
        monkeypatch.setattr(transport_module, "RELEASE_TIMEOUT", 0.01)
        await ws.close(1000)
        assert not never.done()
        for _ in range(10):  # an abort closes the socket on the next loop turns
            if sock.fileno() == -1:
                break
            await asyncio.sleep(0)
        assert sock.fileno() == -1


async def test_proxy_from_the_environment_except_for_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP(S)_PROXY is used for remote endpoints and ignored for loopback ones."""
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(proxy, "127.0.0.1", 0)
    async with listener:
        port = listener.sockets[0].getsockname()[1]
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with pytest.raises(HandshakeError, match="HTTP 502"):
            await asyncio.wait_for(
                open_websocket(
                    "ws://appsync.invalid/event/realtime",
                    subprotocols=PROTOCOLS,
                    ssl=None,
                    max_size=None,
                    close_timeout=1,
                ),
                WAIT,
            )
        assert b"appsync.invalid" in seen[0]
        async with Server(_idle) as server:
            ws = await _open(server)  # loopback: straight to the server
            await ws.close(1000)
        assert len(seen) == 1


async def test_is_loopback() -> None:
    """localhost and loopback addresses are loopback; other hosts are not."""
    assert is_loopback("ws://localhost:1/event/realtime")
    assert is_loopback("ws://127.0.0.2:1/event/realtime")
    assert is_loopback("ws://[::1]:1/event/realtime")
    assert not is_loopback("wss://example.com/event/realtime")


async def test_client_maps_a_server_close_to_connection_closed_error() -> None:
    """Through the client: a server close surfaces as ConnectionClosedError(code, reason)."""

    async def appsync(ws: web.WebSocketResponse, request: web.Request) -> None:
        async for msg in ws:
            frame = json.loads(msg.data)
            if frame["type"] == "connection_init":
                await ws.send_str('{"type":"connection_ack","connectionTimeoutMs":300000}')
            elif frame["type"] == "subscribe":
                await ws.send_str(json.dumps({"type": "subscribe_success", "id": frame["id"]}))
                await ws.send_str(json.dumps({"type": "data", "id": frame["id"], "event": "1"}))
                await ws.close(code=4002, message=b"maintenance")

    async with Server(appsync) as server:
        authz = authorizer.ApiKey(api_key=API_KEY, endpoint=server.url)
        client = await appsync_events.connect(server.url, authorizer=authz)
        sub = await client.subscribe("default/a")
        assert (await asyncio.wait_for(sub.next(), WAIT)).json() == 1  # delivered before the close
        with pytest.raises(ConnectionClosedError) as info:
            await asyncio.wait_for(sub.next(), WAIT)
        assert (info.value.code, info.value.reason) == (4002, "maintenance")
        await client.close()


async def test_env_proxy_per_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    """wss:// takes HTTPS_PROXY (credentials become Proxy-Authorization), NO_PROXY bypasses."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.invalid:3128")
    assert env_proxy("wss://api.invalid/event/realtime") == (
        "http://proxy.invalid:3128",
        "Basic dXNlcjpwQHNz",  # base64("user:p@ss")
    )
    assert env_proxy("ws://api.invalid/event/realtime") == (None, None)  # no HTTP_PROXY
    assert env_proxy("wss://127.0.0.1/event/realtime") == (None, None)
    monkeypatch.setenv("NO_PROXY", "api.invalid")
    assert env_proxy("wss://api.invalid/event/realtime") == (None, None)
