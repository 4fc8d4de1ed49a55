"""Connecting: subprotocols, connection_init/ack, handshake failures."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest

import appsync_events
from appsync_events import authorizer
from appsync_events.errors import (
    ConfigurationError,
    ConnectionClosedError,
    HandshakeError,
    HandshakeTimeoutError,
    UnauthorizedError,
)
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS

from .conftest import api_key, open_client
from .helpers import API_KEY, MS, WAIT, ScriptedServer, scripted

pytestmark = pytest.mark.asyncio

UNAUTHORIZED = {
    "errorType": "UnauthorizedException",
    "message": "You are not authorized to make this call.",
    "errorCode": 401,
}


class Recording:
    """An authorizer that records its requests and delegates to another."""

    def __init__(self, inner: Any, name: str = "rec") -> None:
        self.inner = inner
        self.name = name
        self.requests: list[authorizer.AuthorizeRequest] = []

    async def authorize(self, request: authorizer.AuthorizeRequest) -> authorizer.AuthorizeResult:
        self.requests.append(request)
        result: authorizer.AuthorizeResult = await self.inner.authorize(request)
        return authorizer.AuthorizeResult({**result.authorization, "x-authorizer": self.name})


async def test_connect_offers_subprotocols_and_sends_init(server: ScriptedServer) -> None:
    """connect offers aws-appsync-event-ws plus header-<auth>, sends connection_init, gets ack."""
    authz = Recording(api_key(server))
    client, peer = await open_client(server, authorizer=authz)
    async with client:
        assert peer.offered[0] == PROTOCOL_EVENTS
        assert peer.offered[1].startswith("header-")
        assert len(peer.offered) == 2
        assert peer.auth["x-api-key"] == API_KEY
        assert peer.auth["host"] == f"127.0.0.1:{server.port}"
        assert peer.received[0] == {"type": "connection_init"}
        assert [r.operation for r in authz.requests] == [authorizer.Operation.CONNECT]
        assert authz.requests[0].channel is None
        assert client.subprotocol == PROTOCOL_EVENTS
        assert client.keepalive_timeout == pytest.approx(300 * MS)
        assert client.connection_timeout_ms == round(300 * MS * 1000)
        assert not client.closed


async def test_connect_context_manager(server: ScriptedServer) -> None:
    """async with connect(...) opens and closes the client."""
    async with appsync_events.connect(server.url, authorizer=api_key(server)) as client:
        peer = await server.connection()
        assert not client.closed
    assert client.closed
    await asyncio.wait_for(peer.done.wait(), WAIT)
    assert peer.ws.close_code == 1000


async def test_connect_accepts_http_endpoint(server: ScriptedServer) -> None:
    """The HTTP endpoint is converted to the real-time one."""
    client = await appsync_events.connect(server.http_url, authorizer=api_key(server))
    async with client:
        assert client.endpoint == server.url


async def test_connect_ack_without_timeout_uses_default(server: ScriptedServer) -> None:
    """Without connectionTimeoutMs the heartbeat timeout is AWS's 5 minutes."""
    server.options.connection_timeout_ms = None
    client, _ = await open_client(server)
    async with client:
        assert client.keepalive_timeout == 300.0
        assert client.connection_timeout_ms is None


async def test_connect_heartbeat_override(server: ScriptedServer) -> None:
    """heartbeat_timeout overrides connectionTimeoutMs."""
    client, _ = await open_client(server, heartbeat_timeout=7.5)
    async with client:
        assert client.keepalive_timeout == 7.5


async def test_connect_custom_subprotocols() -> None:
    """Custom subprotocols are offered (header- added) and must be the one selected."""
    async with scripted(select="custom-proto") as server:
        client, peer = await open_client(server, subprotocols=["custom-proto"])
        async with client:
            assert peer.offered[0] == "custom-proto"
            assert client.subprotocol == "custom-proto"


async def test_connect_no_subprotocol_selected() -> None:
    """A server that selects no subprotocol fails the handshake."""
    async with scripted(select=None) as server:
        with pytest.raises(HandshakeError, match="selected no subprotocol"):
            await appsync_events.connect(server.url, authorizer=api_key(server))
        peer = await server.connection()
        await asyncio.wait_for(peer.done.wait(), WAIT)
        assert peer.received == []  # nothing was sent on it


async def test_connect_never_acked() -> None:
    """A server that never acks gives HandshakeTimeoutError (Go: ErrHandshakeTimeout)."""
    async with scripted(auto_ack=False) as server:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(HandshakeTimeoutError) as info:
            await appsync_events.connect(
                server.url, authorizer=api_key(server), handshake_timeout=200 * MS
            )
        assert 150 * MS < loop.time() - start < WAIT
        assert info.value.timeout == pytest.approx(200 * MS)
        assert isinstance(info.value, TimeoutError)
        peer = await server.connection()
        assert peer.received == [{"type": "connection_init"}]
        await asyncio.wait_for(peer.done.wait(), WAIT)  # the client closed the socket


async def test_connect_connection_error_unauthorized() -> None:
    """connection_error UnauthorizedException gives UnauthorizedError with .errors."""
    async with scripted(auto_ack=False) as server:
        connecting = asyncio.ensure_future(
            appsync_events.connect(server.url, authorizer=api_key(server, "da2-wrong"))
        )
        peer = await server.connection()
        await peer.recv("connection_init") if not peer.received else None
        await peer.send({"type": "connection_error", "errors": [UNAUTHORIZED]})
        with pytest.raises(UnauthorizedError) as info:
            await connecting
        [detail] = info.value.errors
        assert detail.error_type == "UnauthorizedException"
        assert detail.error_code == 401
        assert detail.message == "You are not authorized to make this call."
        assert info.value.operation == "connect"


async def test_connect_connection_error_other() -> None:
    """Any other connection_error gives HandshakeError with .errors."""
    async with scripted(auto_ack=False) as server:
        connecting = asyncio.ensure_future(
            appsync_events.connect(server.url, authorizer=api_key(server))
        )
        peer = await server.connection()
        errors = [{"errorType": "BadRequestException", "message": "signature mismatch"}]
        await peer.send({"type": "connection_error", "errors": errors})
        with pytest.raises(HandshakeError) as info:
            await connecting
        assert not isinstance(info.value, UnauthorizedError)
        assert info.value.errors[0].error_type == "BadRequestException"


async def test_connect_closed_during_handshake() -> None:
    """The server closing before the ack gives HandshakeError."""
    async with scripted(auto_ack=False) as server:
        connecting = asyncio.ensure_future(
            appsync_events.connect(server.url, authorizer=api_key(server))
        )
        peer = await server.connection()
        await peer.ws.close(4000, "go away")
        with pytest.raises(HandshakeError, match="closed during the handshake") as info:
            await connecting
        assert isinstance(info.value.__cause__, ConnectionClosedError)
        assert info.value.__cause__.code == 4000


async def test_connect_garbage_during_handshake() -> None:
    """A bad frame before the ack gives HandshakeError."""
    async with scripted(auto_ack=False) as server:
        connecting = asyncio.ensure_future(
            appsync_events.connect(server.url, authorizer=api_key(server))
        )
        peer = await server.connection()
        await peer.send("not json")
        with pytest.raises(HandshakeError, match="broke the protocol"):
            await connecting


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, UnauthorizedError), (403, UnauthorizedError), (500, HandshakeError)],
)
async def test_connect_upgrade_refused(status: int, expected: type[Exception]) -> None:
    """An HTTP error instead of 101 maps to UnauthorizedError (401/403) or HandshakeError."""
    body = json.dumps({"errors": [{"errorType": "UnauthorizedException", "message": "no"}]})
    async with scripted(status=status, status_body=body.encode()) as server:
        with pytest.raises(expected) as info:
            await appsync_events.connect(server.url, authorizer=api_key(server))
        assert type(info.value) is expected
        assert info.value.errors[0].error_type == "UnauthorizedException"  # type: ignore[attr-defined]
        if expected is UnauthorizedError:
            assert info.value.status == status  # type: ignore[attr-defined]
        else:
            assert "HTTP 500" in str(info.value)


async def test_connect_upgrade_refused_without_json_body() -> None:
    """A non-JSON refusal body still gives a clear error."""
    async with scripted(status=502, status_body=b"<html>bad gateway</html>") as server:
        with pytest.raises(HandshakeError, match="HTTP 502") as info:
            await appsync_events.connect(server.url, authorizer=api_key(server))
        assert info.value.errors == ()


async def test_connect_refused_port() -> None:
    """Nothing listening gives HandshakeError naming the endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"ws://127.0.0.1:{port}/event/realtime"
    authz = authorizer.ApiKey(api_key=API_KEY, endpoint=url)
    with pytest.raises(HandshakeError, match="cannot connect") as info:
        await appsync_events.connect(url, authorizer=authz)
    assert isinstance(info.value.__cause__, OSError)


async def test_connect_authorizer_failure_propagates(server: ScriptedServer) -> None:
    """An authorizer error on connect is raised as is; nothing is opened."""

    class Broken:
        async def authorize(
            self, request: authorizer.AuthorizeRequest
        ) -> authorizer.AuthorizeResult:
            raise appsync_events.CredentialsError("no credentials")

    with pytest.raises(appsync_events.CredentialsError):
        await appsync_events.connect(server.url, authorizer=Broken())
    assert server.peers == []


async def test_connect_cancelled_during_handshake_closes_socket() -> None:
    """Cancelling connect() closes the half-open socket."""
    async with scripted(auto_ack=False) as server:
        connecting = asyncio.ensure_future(
            appsync_events.connect(server.url, authorizer=api_key(server))
        )
        peer = await server.connection()
        await peer.recv("connection_init") if not peer.received else None
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        await asyncio.wait_for(peer.done.wait(), WAIT)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"handshake_timeout": 0}, "handshake_timeout"),
        ({"operation_timeout": -1}, "operation_timeout"),
        ({"heartbeat_timeout": "5"}, "heartbeat_timeout"),
        ({"close_timeout": True}, "close_timeout"),
        ({"subprotocols": []}, "subprotocols"),
        ({"subprotocols": "aws-appsync-event-ws"}, "subprotocols"),
        ({"subprotocols": ["header-abc"]}, "header- subprotocol is added"),
        ({"backpressure": {"connection_inbound": 1}}, "Backpressure"),
        ({"max_size": 10}, "max_size"),
        ({"authorizer": object()}, "authorize"),
    ],
)
async def test_connect_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    """Bad arguments raise ConfigurationError before any I/O."""
    kwargs.setdefault(
        "authorizer", authorizer.ApiKey(api_key=API_KEY, endpoint="http://127.0.0.1:1/event")
    )
    with pytest.raises(ConfigurationError, match=match):
        appsync_events.connect("ws://127.0.0.1:1/event/realtime", **kwargs)


async def test_connect_bad_endpoint_and_ssl() -> None:
    """Bad endpoints and ssl= on ws:// are configuration errors."""
    authz = authorizer.ApiKey(api_key=API_KEY, endpoint="http://127.0.0.1:1/event")
    with pytest.raises(ConfigurationError, match="invalid endpoint"):
        appsync_events.connect("ftp://x/event", authorizer=authz)
    import ssl

    with pytest.raises(ConfigurationError, match="wss://"):
        appsync_events.connect(
            "ws://127.0.0.1:1/event/realtime", authorizer=authz, ssl=ssl.create_default_context()
        )
    with pytest.raises(ConfigurationError, match="SSLContext"):
        appsync_events.connect("wss://127.0.0.1:1/event/realtime", authorizer=authz, ssl=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["connection_inbound", "connection_outbound", "subscription_events"]
)
@pytest.mark.parametrize("value", [0, -1, True, 1.5])
async def test_backpressure_validation(name: str, value: Any) -> None:
    """Backpressure sizes must be positive integers."""
    with pytest.raises(ConfigurationError, match=name):
        appsync_events.Backpressure(**{name: value})
