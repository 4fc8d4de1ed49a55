"""Transport faults as the client sees them (ka 50 ms, connectionTimeoutMs 300 ms)."""

from __future__ import annotations

import asyncio

import pytest

from appsync_emulator import EmulatorThread
from appsync_emulator.faults import (
    CloseConnection,
    CorruptFrame,
    DropConnection,
    FrameLatency,
    SendRawText,
    Stall,
)
from appsync_emulator.pytest_plugin import ClientFactory
from appsync_events import (
    Client,
    ConnectionClosedError,
    HeartbeatTimeoutError,
    RemoteProtocolError,
)


@pytest.mark.asyncio
async def test_close_with_code_and_reason(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A server close raises ConnectionClosedError with its code and reason."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(CloseConnection(4000, "maintenance"))
    with pytest.raises(ConnectionClosedError) as info:
        await sub.next()
    assert (info.value.code, info.value.reason) == (4000, "maintenance")
    with pytest.raises(ConnectionClosedError):
        await appsync_client.publish("default/x", {"n": 1})


@pytest.mark.asyncio
async def test_close_targets_one_connection(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """CloseConnection aimed at one connection id leaves the others open."""
    doomed = await appsync_client_factory(appsync_server)
    doomed_id = appsync_server.connections[-1].id
    survivor = await appsync_client_factory(appsync_server)
    sub = await doomed.subscribe("default/x")
    appsync_server.inject(CloseConnection(1001, "going away"), connection=doomed_id)
    with pytest.raises(ConnectionClosedError) as info:
        await sub.next()
    assert info.value.code == 1001
    result = await survivor.publish("default/x", {"n": 1})
    assert result.ok


@pytest.mark.asyncio
async def test_dropped_tcp_connection(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A TCP abort (no close frame) raises ConnectionClosedError with code 1006."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(DropConnection())
    with pytest.raises(ConnectionClosedError) as info:
        await sub.next()
    assert info.value.code in (1006, None)


@pytest.mark.asyncio
async def test_stalled_connection_raises_heartbeat_timeout(
    appsync_server: EmulatorThread, appsync_client: Client, ms: float
) -> None:
    """A blackholed connection (open socket, nothing flows) is caught by the heartbeat."""
    sub = await appsync_client.subscribe("default/x")
    loop = asyncio.get_running_loop()
    started = loop.time()
    appsync_server.inject(Stall())
    with pytest.raises(HeartbeatTimeoutError):
        await sub.next()
    assert loop.time() - started < 5000 * ms  # a hang guard


@pytest.mark.asyncio
async def test_frame_latency_slows_but_does_not_break(
    appsync_server: EmulatorThread, appsync_client: Client, ms: float
) -> None:
    """100 ms per frame (under the 300 ms heartbeat) delays replies without failures."""
    sub = await appsync_client.subscribe("default/x")
    loop = asyncio.get_running_loop()
    with appsync_server.inject(FrameLatency(100 * ms)):
        started = loop.time()
        await appsync_client.publish("default/x", {"n": 1})
        assert loop.time() - started >= 100 * ms
        assert (await sub.next()).json() == {"n": 1}
        for n in range(2, 8):  # > 2 x connectionTimeoutMs of slow traffic
            await appsync_client.publish("default/x", {"n": n})
            assert (await sub.next()).json() == {"n": n}


@pytest.mark.asyncio
async def test_corrupt_frame_raises_remote_protocol_error(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A non-JSON frame from the service raises RemoteProtocolError at the next await."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(CorruptFrame(match="ka", text="not json"))
    with pytest.raises(RemoteProtocolError) as info:
        await sub.next()
    assert "JSON" in info.value.reason or "json" in info.value.reason


@pytest.mark.asyncio
async def test_unknown_frame_type_is_ignored(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A frame type the client does not know is ignored (new service frames must not
    break old clients); the connection keeps working."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(SendRawText('{"type":"surprise","id":"x"}'))
    await appsync_client.publish("default/x", {"n": 1})
    assert (await asyncio.wait_for(sub.next(), timeout=5)).json() == {"n": 1}


@pytest.mark.asyncio
async def test_known_frame_with_bad_fields_raises_remote_protocol_error(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A known frame type with invalid fields is a protocol violation by the service."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(SendRawText('{"type":"data","id":42}'))
    with pytest.raises(RemoteProtocolError) as info:
        await asyncio.wait_for(sub.next(), timeout=5)
    assert info.value.frame_type == "data"
