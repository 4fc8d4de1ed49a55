"""The client's timers on a controllable clock: exact bounds, whatever the machine's speed.

Each test runs on a :class:`~tests.helpers.ClockLoop` against the scripted server with its
``ka`` task off, so nothing resets a timer unless the test sends a frame, and the clock
moves only through ``loop.advance``: a timer that fires one millisecond early or late fails
the test deterministically, under any ``APPSYNC_TESTS_TIMEOUT_FACTOR``.
"""

from __future__ import annotations

import asyncio

import pytest

import appsync_events
from appsync_events.errors import (
    HandshakeTimeoutError,
    HeartbeatTimeoutError,
    OperationTimeoutError,
)
from tests.helpers import ClockLoop, run_on_clock

from .conftest import api_key, open_client
from .helpers import scripted

EPSILON = 0.001
"""One millisecond of loop clock: the tests stop just short of a deadline, then cross it."""


def test_timer_heartbeat_fires_exactly_at_keepalive_timeout() -> None:
    """With no frame after the ack, the heartbeat fails the connection at connectionTimeoutMs."""

    async def main(loop: ClockLoop) -> None:
        async with scripted(ka_interval=None, connection_timeout_ms=300) as server:
            client, peer = await open_client(server)
            publishing = asyncio.ensure_future(client.publish("default/a", 1))
            await peer.recv("publish")  # never answered
            await loop.advance(0.3 - EPSILON)
            assert not client.closed
            await loop.advance(EPSILON)
            assert isinstance(client.failure, HeartbeatTimeoutError)
            assert client.failure.timeout == pytest.approx(0.3)
            with pytest.raises(HeartbeatTimeoutError):
                await publishing
            await client.close()

    run_on_clock(main)


def test_timer_heartbeat_counts_from_the_last_frame() -> None:
    """A frame at 200 ms moves the deadline to 500 ms (the timer re-arms, it does not fail)."""

    async def main(loop: ClockLoop) -> None:
        async with scripted(ka_interval=None, connection_timeout_ms=300) as server:
            client, peer = await open_client(server)
            await loop.advance(0.2)
            await peer.send({"type": "ka"})
            await peer.send({"type": "data", "id": "nobody", "event": "1"})
            published = asyncio.ensure_future(client.publish("default/a", 1))
            await peer.published()  # a reply after the ka: the client read the ka
            await published
            await loop.advance(0.3 - EPSILON)
            assert not client.closed
            await loop.advance(EPSILON)
            assert isinstance(client.failure, HeartbeatTimeoutError)
            await client.close()

    run_on_clock(main)


def test_timer_heartbeat_override_replaces_the_ack_value() -> None:
    """heartbeat_timeout=0.1 fails at 100 ms although the ack said 300 ms."""

    async def main(loop: ClockLoop) -> None:
        async with scripted(ka_interval=None, connection_timeout_ms=300) as server:
            client, _ = await open_client(server, heartbeat_timeout=0.1)
            await loop.advance(0.1 - EPSILON)
            assert not client.closed
            await loop.advance(EPSILON)
            assert isinstance(client.failure, HeartbeatTimeoutError)
            assert client.failure.timeout == pytest.approx(0.1)
            await client.close()

    run_on_clock(main)


def test_timer_handshake_timeout_fires_exactly() -> None:
    """A server that never acks fails connect() at handshake_timeout, not before."""

    async def main(loop: ClockLoop) -> None:
        async with scripted(auto_ack=False) as server:
            connecting = asyncio.ensure_future(
                appsync_events.connect(
                    server.url, authorizer=api_key(server), handshake_timeout=0.2
                )
            )
            peer = await server.connection()
            await peer.recv("connection_init")
            await loop.advance(0.2 - EPSILON)
            assert not connecting.done()
            await loop.advance(EPSILON)
            with pytest.raises(HandshakeTimeoutError) as info:
                await connecting
            assert info.value.timeout == pytest.approx(0.2)

    run_on_clock(main)


def test_timer_operation_timeout_fires_exactly() -> None:
    """An unanswered publish raises OperationTimeoutError at operation_timeout, not before."""

    async def main(loop: ClockLoop) -> None:
        async with scripted(ka_interval=None, connection_timeout_ms=60_000) as server:
            client, peer = await open_client(server, operation_timeout=0.25)
            async with client:
                publishing = asyncio.ensure_future(client.publish("default/a", 1))
                await peer.recv("publish")
                await loop.advance(0.25 - EPSILON)
                assert not publishing.done()
                await loop.advance(EPSILON)
                with pytest.raises(OperationTimeoutError) as info:
                    await publishing
                assert info.value.timeout == pytest.approx(0.25)
                assert not client.closed

    run_on_clock(main)
