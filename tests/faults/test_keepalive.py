"""Keep-alive faults as the client sees them (server: ka 50 ms, connectionTimeoutMs 300 ms)."""

from __future__ import annotations

import asyncio

import pytest

from appsync_emulator import EmulatorThread
from appsync_emulator.faults import AckTimeoutOverride, DelayKeepAlives, DropKeepAlives
from appsync_emulator.pytest_plugin import ClientFactory
from appsync_events import Client, HeartbeatTimeoutError


async def wait_kas(server: EmulatorThread, count: int) -> None:
    """Wait until ``count`` more ``ka`` frames were sent (a blocking recorder wait in a
    worker thread: frame records wake blocking waiters only)."""

    def sent() -> int:
        return sum(1 for f in server.recorder.sent if f.frame_type == "ka")

    target = sent() + count
    await asyncio.to_thread(server.recorder.wait_for_sync, lambda r: sent() >= target or None, 5.0)


async def roundtrip(client: Client, channel: str = "default/ka") -> None:
    """Subscribe, publish and receive one event: the connection is healthy."""
    async with await client.subscribe(channel) as sub:
        await client.publish(channel, {"alive": True})
        assert (await sub.next()).json() == {"alive": True}


@pytest.mark.asyncio
async def test_drop_keepalives_raises_heartbeat_timeout(
    appsync_server: EmulatorThread, appsync_client: Client, ms: float
) -> None:
    """A server that stops sending ka is detected after connectionTimeoutMs."""
    sub = await appsync_client.subscribe("default/ka")
    loop = asyncio.get_running_loop()
    started = loop.time()
    appsync_server.inject(DropKeepAlives())
    with pytest.raises(HeartbeatTimeoutError) as info:
        await sub.next()
    assert info.value.timeout == pytest.approx(300 * ms)
    assert 250 * ms <= loop.time() - started < 5000 * ms  # a hang guard
    with pytest.raises(HeartbeatTimeoutError):
        await appsync_client.publish("default/ka", {"n": 1})


@pytest.mark.asyncio
async def test_drop_keepalives_from_the_start(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """Without even the ka after the ack, the client still times out (no hang)."""
    with appsync_server.inject(DropKeepAlives()):
        client = await appsync_client_factory(appsync_server)
        sub = await client.subscribe("default/ka")
        with pytest.raises(HeartbeatTimeoutError):
            await sub.next()


@pytest.mark.asyncio
async def test_short_keepalive_delay_is_tolerated(
    appsync_server: EmulatorThread, appsync_client: Client, ms: float
) -> None:
    """ka frames 100 ms late (under the 300 ms timeout) keep the connection alive."""
    with appsync_server.inject(DelayKeepAlives(100 * ms)):
        await wait_kas(appsync_server, 12)  # > 2 x timeout
        await roundtrip(appsync_client)


@pytest.mark.asyncio
async def test_long_keepalive_delay_raises_heartbeat_timeout(
    appsync_server: EmulatorThread, appsync_client: Client, ms: float
) -> None:
    """ka frames 600 ms late (over the 300 ms timeout) trip the heartbeat."""
    sub = await appsync_client.subscribe("default/ka")
    appsync_server.inject(DelayKeepAlives(600 * ms))
    with pytest.raises(HeartbeatTimeoutError):
        await sub.next()


@pytest.mark.asyncio
async def test_ack_timeout_override_shortens_heartbeat(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory, ms: float
) -> None:
    """The client's heartbeat follows connectionTimeoutMs of the ack (here 100 ms)."""
    appsync_server.inject(AckTimeoutOverride(round(100 * ms * 1000)))
    appsync_server.inject(DelayKeepAlives(200 * ms))
    client = await appsync_client_factory(appsync_server)
    sub = await client.subscribe("default/ka")
    with pytest.raises(HeartbeatTimeoutError) as info:
        await sub.next()
    assert info.value.timeout == pytest.approx(100 * ms)


@pytest.mark.asyncio
async def test_ack_timeout_override_lengthens_heartbeat(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory, ms: float
) -> None:
    """With connectionTimeoutMs 2000 in the ack, ka 500 ms late are fine."""
    appsync_server.inject(AckTimeoutOverride(round(2000 * ms * 1000)))
    client = await appsync_client_factory(appsync_server)
    with appsync_server.inject(DelayKeepAlives(500 * ms)):
        await wait_kas(appsync_server, 4)
        await roundtrip(client)


@pytest.mark.asyncio
async def test_keepalive_fault_targets_one_connection(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """DropKeepAlives on one connection leaves the other one alive."""
    silent = await appsync_client_factory(appsync_server)
    silent_id = appsync_server.connections[-1].id
    healthy = await appsync_client_factory(appsync_server)
    sub = await silent.subscribe("default/ka")
    appsync_server.inject(DropKeepAlives(), connection=silent_id)
    with pytest.raises(HeartbeatTimeoutError):
        await sub.next()
    await roundtrip(healthy)
