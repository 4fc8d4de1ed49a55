"""Overflow policies on a controllable clock, and through the synchronous API.

The clock tests run on a :class:`~tests.helpers.ClockLoop` against the scripted server with
its ``ka`` task off, so that only ``loop.advance`` moves time (see ``test_timers.py``).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

import appsync_events
from appsync_emulator import EmulatorThread
from appsync_events import Overflow, authorizer, sync
from appsync_events.errors import ConfigurationError
from appsync_events.subscription import DROP_LOG_INTERVAL, Subscription
from tests.helpers import ClockLoop, run_on_clock

from .conftest import open_client as open_scripted
from .helpers import WAIT, scripted
from .test_subscribe import subscribe


def watch_pauses(sub: Subscription) -> asyncio.Queue[str]:
    """Report when the reader starts (``"paused"``) and stops (``"resumed"``) waiting for
    room in ``sub``; the reader's own bookkeeping is done when the test sees ``"resumed"``."""
    pauses: asyncio.Queue[str] = asyncio.Queue()
    wait_room = sub._wait_room

    async def spy() -> None:
        pauses.put_nowait("paused")
        try:
            await wait_room()
        finally:
            pauses.put_nowait("resumed")

    sub._wait_room = spy  # type: ignore[method-assign]
    return pauses


def test_overflow_drop_oldest_logs_again_after_the_interval() -> None:
    """After DROP_LOG_INTERVAL the next drop logs again, with the count since the last line."""

    async def main(loop: ClockLoop) -> None:
        records: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
        log = logging.getLogger("appsync_events.client")
        log.addHandler(handler)
        try:
            async with scripted(ka_interval=None, connection_timeout_ms=None) as server:
                client, peer = await open_scripted(server, heartbeat_timeout=1000.0)
                async with client:
                    sub, sub_id = await subscribe(
                        client, peer, overflow=Overflow.DROP_OLDEST, capacity=2
                    )
                    other, other_id = await subscribe(client, peer, "default/b")
                    for n in range(10):
                        await peer.data(sub_id, str(n))
                    await peer.data(other_id, "barrier")
                    await asyncio.wait_for(other.next(), WAIT)
                    await loop.advance(DROP_LOG_INTERVAL - 0.001)
                    await peer.data(sub_id, "10")
                    await peer.data(other_id, "barrier")
                    await asyncio.wait_for(other.next(), WAIT)
                    await loop.advance(0.001)
                    await peer.data(sub_id, "11")
                    await peer.data(other_id, "barrier")
                    await asyncio.wait_for(other.next(), WAIT)
        finally:
            log.removeHandler(handler)
        dropped = [line for line in records if "dropping the oldest" in line]
        assert sub.dropped == 10
        assert [line.rpartition(": ")[2] for line in dropped] == [
            "1 since the last report, 1 in total",
            "9 since the last report, 10 in total",
        ]

    run_on_clock(main)


def test_overflow_pause_does_not_trip_the_heartbeat() -> None:
    """A pause longer than the keep-alive timeout is no heartbeat failure; the deadline
    restarts when reading resumes."""

    async def main(loop: ClockLoop) -> None:
        async with scripted(ka_interval=None, connection_timeout_ms=300) as server:
            client, peer = await open_scripted(server)
            sub, sub_id = await subscribe(client, peer, overflow=Overflow.PAUSE, capacity=2)
            pauses = watch_pauses(sub)
            await peer.data(sub_id, "1")
            await peer.data(sub_id, "2")
            assert await asyncio.wait_for(pauses.get(), WAIT) == "paused"
            await loop.advance(10 * 0.3)  # ten keep-alive timeouts without reading
            assert not client.closed
            assert sub.pausing
            assert (await sub.next()).data == "1"  # room again: reading resumes now
            assert await asyncio.wait_for(pauses.get(), WAIT) == "resumed"
            await loop.advance(0.3 - 0.001)
            assert not client.closed
            await loop.advance(0.001)
            assert isinstance(client.failure, appsync_events.HeartbeatTimeoutError)
            assert (await sub.next()).data == "2"  # buffered events are still delivered
            await client.close()

    run_on_clock(main)


def test_overflow_sync_api_passes_it_through(appsync_server: EmulatorThread) -> None:
    """The synchronous subscribe() takes overflow= and capacity=; dropped is readable."""
    authz = authorizer.ApiKey(appsync_server.api_key or "")
    with (
        sync.connect(appsync_server.realtime_endpoint, authorizer=authz) as client,
        client.subscribe("default/a", overflow="drop_oldest", capacity=2) as sub,
        client.subscribe("default/*") as wide,
    ):
        client.publish("default/a", 1, 2, 3, 4, 5)
        client.publish("default/end", "end")
        assert [wide.next(timeout=WAIT).json() for _ in range(6)][-1] == "end"
        assert sub.dropped == 3
        assert [sub.next(timeout=WAIT).json() for _ in range(2)] == [4, 5]
        with pytest.raises(ConfigurationError, match="'pause'"):
            client.subscribe("default/a", overflow="stop")
