"""Edge cases of the client shell: odd servers, TLS, failures in background tasks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import appsync_events
from appsync_emulator import EmulatorServer
from appsync_events import authorizer
from appsync_events._transport import is_loopback as _is_loopback
from appsync_events.errors import (
    ConnectionClosedError,
    HandshakeError,
    OperationTimeoutError,
    RemoteProtocolError,
)

from .conftest import api_key, open_client
from .helpers import API_KEY, MS, WAIT, ScriptedServer, scripted
from .test_subscribe import subscribe

pytestmark = pytest.mark.asyncio


async def test_binary_frame_fails_connection(server: ScriptedServer) -> None:
    """A binary frame is a protocol violation: RemoteProtocolError, socket closed with 1002."""
    client, peer = await open_client(server)
    sub, _ = await subscribe(client, peer)
    await peer.ws.send(b"\x00binary")
    with pytest.raises(RemoteProtocolError, match="binary frame"):
        await asyncio.wait_for(sub.next(), WAIT)
    await asyncio.wait_for(peer.done.wait(), WAIT)
    assert peer.ws.close_code == 1002
    await client.close()


async def test_garbage_frame_fails_connection(server: ScriptedServer) -> None:
    """Invalid JSON after the ack fails every call with RemoteProtocolError."""
    client, peer = await open_client(server)
    publishing = asyncio.ensure_future(client.publish("default/a", 1))
    await peer.recv("publish")
    await peer.send("{not json")
    with pytest.raises(RemoteProtocolError, match="invalid JSON"):
        await publishing
    with pytest.raises(RemoteProtocolError):
        await client.subscribe("default/a")
    await client.close()


async def test_invalid_upgrade_answer() -> None:
    """A server that answers the upgrade with a broken 101 gives HandshakeError."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nServer: broken\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/event/realtime"
        authz = authorizer.ApiKey(api_key=API_KEY, endpoint=url)
        with pytest.raises(HandshakeError, match=r"handshake with .* failed"):
            await appsync_events.connect(url, authorizer=authz)


async def test_authorizer_timeout_error_is_not_handshake_timeout(server: ScriptedServer) -> None:
    """A TimeoutError raised by the authorizer itself is not mistaken for the handshake's."""

    class TimesOut:
        async def authorize(
            self, request: authorizer.AuthorizeRequest
        ) -> authorizer.AuthorizeResult:
            raise TimeoutError("token service timed out")

    with pytest.raises(TimeoutError, match="token service") as info:
        await appsync_events.connect(server.url, authorizer=TimesOut())
    assert not isinstance(info.value, appsync_events.HandshakeTimeoutError)
    with pytest.raises(TimeoutError, match="token service") as http_info:
        await appsync_events.publish_http(server.http_url, "default/a", 1, authorizer=TimesOut())
    assert not isinstance(http_info.value, OperationTimeoutError)


async def test_tls_with_emulator_ca() -> None:
    """wss:// and https:// work with an ssl context trusting the emulator's local CA."""
    async with EmulatorServer(tls=True) as server:
        context = server.client_ssl_context()
        authz = authorizer.ApiKey(api_key=server.api_key or "", endpoint=server.http_endpoint)
        assert server.realtime_endpoint.startswith("wss://")
        async with appsync_events.connect(
            server.realtime_endpoint, authorizer=authz, ssl=context
        ) as client:
            sub = await client.subscribe("default/tls")
            await appsync_events.publish_http(
                server.http_endpoint, "default/tls", {"secure": True}, authorizer=authz, ssl=context
            )
            assert (await asyncio.wait_for(sub.next(), WAIT)).json() == {"secure": True}
        server.check()


async def test_close_while_unsubscribe_pending_and_connection_dies() -> None:
    """sub.close() returns quietly when the connection dies during its unsubscribe."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(server)
        sub, _ = await subscribe(client, peer)
        closing = asyncio.ensure_future(sub.close())
        await peer.recv("unsubscribe")
        await peer.ws.close(1001, "going away")
        await asyncio.wait_for(closing, WAIT)
        assert isinstance(client.failure, ConnectionClosedError)
        await client.close()


async def test_client_close_logs_failed_unsubscribes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """close() goes on when an unsubscribe is refused."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(server)
        _, sub_id = await subscribe(client, peer)
        closing = asyncio.ensure_future(client.close())
        await peer.recv("unsubscribe")
        errors = [{"errorType": "UnknownOperationError", "message": "Unknown operation id"}]
        await peer.send({"type": "unsubscribe_error", "id": sub_id, "errors": errors})
        await asyncio.wait_for(closing, WAIT)
        assert any("could not unsubscribe" in r.getMessage() for r in caplog.records)


async def test_data_after_close_before_unsubscribed_is_dropped() -> None:
    """Events arriving between close() and unsubscribe_success are dropped."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(server)
        async with client:
            sub, sub_id = await subscribe(client, peer)
            closing = asyncio.ensure_future(sub.close())
            await peer.recv("unsubscribe")
            await peer.data(sub_id, "late")
            await peer.send({"type": "unsubscribe_success", "id": sub_id})
            await asyncio.wait_for(closing, WAIT)
            assert sub.pending == 0


async def test_async_with_subscription_swallows_close_error_when_body_raised() -> None:
    """A failing unsubscribe does not hide the body's exception."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(server, operation_timeout=50 * MS)
        async with client:
            sub, _ = await subscribe(client, peer)
            with pytest.raises(KeyError):
                async with sub:
                    raise KeyError("body")


async def test_unsubscribe_authorizer_crash_is_not_fatal(server: ScriptedServer) -> None:
    """Any exception from the authorizer on unsubscribe (even after an overflow) is logged only."""

    class CrashesOnUnsubscribe:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def authorize(
            self, request: authorizer.AuthorizeRequest
        ) -> authorizer.AuthorizeResult:
            if request.operation is authorizer.Operation.UNSUBSCRIBE:
                raise RuntimeError("bug in a custom authorizer")
            result: authorizer.AuthorizeResult = await self.inner.authorize(request)
            return result

    client, peer = await open_client(
        server,
        authorizer=CrashesOnUnsubscribe(api_key(server)),
        backpressure=appsync_events.Backpressure(subscription_events=1),
    )
    async with client:
        _, sub_id = await subscribe(client, peer)
        await peer.data(sub_id, "1")
        await peer.data(sub_id, "2")  # overflow: background unsubscribe
        assert (await peer.recv("unsubscribe"))["id"] == sub_id
        other, other_id = await subscribe(client, peer, "default/b")
        await peer.data(other_id, "ok")
        assert (await asyncio.wait_for(other.next(), WAIT)).data == "ok"
        assert not client.closed


async def test_background_task_crash_fails_connection(server: ScriptedServer) -> None:
    """An unexpected exception in an owned task is recorded as the connection's failure."""
    client, _ = await open_client(server)

    async def crash() -> None:
        raise RuntimeError("bug")

    client._connection.spawn(crash(), name="crasher")
    await asyncio.wait_for(client.wait_closed(), WAIT)
    assert isinstance(client.failure, ConnectionClosedError)
    assert isinstance(client.failure.__cause__, RuntimeError)
    with pytest.raises(ConnectionClosedError, match="internal error in appsync-events crasher"):
        await client.publish("default/a", 1)


async def test_reprs(server: ScriptedServer) -> None:
    """Client and Subscription have readable reprs."""
    client, peer = await open_client(server)
    sub, sub_id = await subscribe(client, peer)
    assert repr(client) == f"<Client {server.url}>"
    assert repr(sub) == f"<Subscription {sub_id} 'default/a' active>"
    await client.close()
    assert repr(client).endswith(" closed>")
    assert repr(sub).endswith(" closed>")


async def test_localhost_endpoint() -> None:
    """localhost works and counts as loopback (no proxy from the environment)."""
    assert _is_loopback("ws://localhost:1/event/realtime")
    assert _is_loopback("ws://[::1]:1/event/realtime")
    assert not _is_loopback("wss://example.com/event/realtime")
    assert not _is_loopback("wss://10.0.0.1/event/realtime")


async def test_overflow_unsubscribe_refused_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A refused background unsubscribe (after an overflow) is logged; nothing else breaks."""
    async with scripted(auto_unsubscribe=False) as server:
        client, peer = await open_client(
            server, backpressure=appsync_events.Backpressure(subscription_events=1)
        )
        async with client:
            sub, sub_id = await subscribe(client, peer)
            await peer.data(sub_id, "1")
            await peer.data(sub_id, "2")
            await peer.recv("unsubscribe")
            errors = [{"errorType": "UnknownOperationError", "message": "Unknown operation id"}]
            await peer.send({"type": "unsubscribe_error", "id": sub_id, "errors": errors})
            assert (await sub.next()).data == "1"
            with pytest.raises(appsync_events.SubscriptionInboxFullError):
                await sub.next()
            publishing = asyncio.ensure_future(client.publish("default/a", 1))
            await peer.published()
            assert (await publishing).ok
        assert any("could not unsubscribe" in r.getMessage() for r in caplog.records)


async def test_async_with_subscription_normal_exit(server: ScriptedServer) -> None:
    """Leaving async with normally unsubscribes."""
    client, peer = await open_client(server)
    async with client:
        sub, sub_id = await subscribe(client, peer)
        async with sub as same:
            assert same is sub
        assert sub.closed
        assert (await peer.unsubscribed())["id"] == sub_id
