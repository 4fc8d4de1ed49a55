"""Heartbeat: no ka (or other frame) within the keep-alive timeout fails everything."""

from __future__ import annotations

import asyncio

import pytest

from appsync_events.errors import ConnectionClosedError, HeartbeatTimeoutError

from .conftest import open_client
from .helpers import MS, WAIT, ScriptedServer

pytestmark = pytest.mark.asyncio


async def test_heartbeat_timeout_fails_pending_and_future_calls(server: ScriptedServer) -> None:
    """A server that stops ka gives HeartbeatTimeoutError everywhere (Go: ErrHeartbeatTimeout)."""
    client, peer = await open_client(server)
    subscribing = asyncio.ensure_future(client.subscribe("default/a"))
    message = await peer.subscribed()
    sub = await subscribing
    await peer.data(message["id"], '{"n":1}')
    publishing = asyncio.ensure_future(client.publish("default/a", 1))
    await peer.recv("publish")  # never answered
    peer.stop_ka()
    with pytest.raises(HeartbeatTimeoutError) as info:  # exact timing: test_timers.py
        await publishing
    assert info.value.timeout == pytest.approx(300 * MS)
    assert isinstance(info.value, TimeoutError)
    assert (await sub.next()).data == '{"n":1}'  # buffered events are still delivered
    with pytest.raises(HeartbeatTimeoutError):
        await sub.next()
    with pytest.raises(HeartbeatTimeoutError):
        await client.subscribe("default/b")
    with pytest.raises(HeartbeatTimeoutError):
        await client.publish("default/b", 1)
    assert client.closed
    assert client.failure is info.value
    await asyncio.wait_for(peer.done.wait(), WAIT)  # the socket was closed
    await client.close()  # idempotent, quiet
    await client.wait_closed()


async def test_heartbeat_reset_by_any_frame(server: ScriptedServer) -> None:
    """Frames other than ka keep the connection alive too."""
    client, peer = await open_client(server)
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        message = await peer.subscribed()
        sub = await subscribing
        peer.stop_ka()
        for n in range(12):  # 12 x 50 ms = 600 ms, twice the 300 ms timeout
            await peer.data(message["id"], str(n))
            assert (await asyncio.wait_for(sub.next(), WAIT)).data == str(n)
            await asyncio.sleep(50 * MS)  # pacing the server, not synchronising
        assert not client.closed


async def test_heartbeat_survives_ka(server: ScriptedServer) -> None:
    """With ka every 50 ms a 300 ms timeout never fires."""
    client, peer = await open_client(server)
    async with client:
        await asyncio.sleep(600 * MS)  # ka flows meanwhile; nothing to wait for
        assert not client.closed
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        await peer.subscribed()
        await subscribing


async def test_heartbeat_override_shorter(server: ScriptedServer) -> None:
    """heartbeat_timeout overrides the ack's value."""
    client, peer = await open_client(server, heartbeat_timeout=100 * MS)
    peer.stop_ka()
    await asyncio.wait_for(client.wait_closed(), WAIT)
    assert isinstance(client.failure, HeartbeatTimeoutError)
    assert client.failure.timeout == pytest.approx(100 * MS)  # exact timing: test_timers.py


async def test_server_close_fails_everything(server: ScriptedServer) -> None:
    """A server close fails pending calls with ConnectionClosedError carrying the code."""
    client, peer = await open_client(server)
    subscribing = asyncio.ensure_future(client.subscribe("default/a"))
    message = await peer.subscribed()
    sub = await subscribing
    await peer.data(message["id"], "1")
    publishing = asyncio.ensure_future(client.publish("default/a", 1))
    await peer.recv("publish")
    await peer.ws.close(4001, "bye")
    with pytest.raises(ConnectionClosedError) as info:
        await publishing
    assert (info.value.code, info.value.reason) == (4001, "bye")
    assert (await sub.next()).data == "1"
    with pytest.raises(ConnectionClosedError):
        await sub.next()
    with pytest.raises(ConnectionClosedError):
        async for _ in sub:
            pass
    await client.close()
