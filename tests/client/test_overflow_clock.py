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
from appsync_events.subscription import (
    _NO_INBOX,
    DROP_LOG_INTERVAL,
    Subscription,
    SubscriptionSettings,
)
from tests.helpers import ClockLoop, run_on_clock

from .conftest import open_client as open_scripted
from .helpers import WAIT, scripted
from .test_subscribe import subscribe


def watch_pauses(sub: Subscription) -> asyncio.Queue[str]:
    """Report when the reader starts (``"paused"``) and stops (``"resumed"``) waiting for
    room in ``sub``; the reader's own bookkeeping is done when the test sees ``"resumed"``."""
    pauses: asyncio.Queue[str] = asyncio.Queue()

    class Watched(Subscription):
        __slots__ = ()  # the same layout: ``sub`` can become one

        async def _wait_room(self) -> None:
            pauses.put_nowait("paused")
            try:
                await super()._wait_room()
            finally:
                pauses.put_nowait("resumed")

    sub.__class__ = Watched
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


# --- the subscription alone (no connection) -------------------------------------------------


async def _unsubscribe(sub: Subscription) -> None:
    pass


def make_subscription(overflow: Overflow, capacity: int) -> Subscription:
    sub = Subscription(
        "s1",
        "default/a",
        SubscriptionSettings(
            capacity=capacity,
            authorizer=authorizer.ApiKey("da2-x"),
            unsubscribe=_unsubscribe,
            on_overflow=lambda sub: None,
            overflow=overflow,
        ),
    )
    assert sub._accepted()
    return sub


def message(n: int) -> appsync_events.Message:
    return appsync_events.Message(str(n), "s1", "default/a")


@pytest.mark.asyncio
async def test_overflow_pause_unit_room_at_half_capacity() -> None:
    """PAUSE: the event filling the inbox asks to pause; room comes back at half capacity."""
    sub = make_subscription(Overflow.PAUSE, 4)
    assert [sub._deliver(message(n)) for n in range(4)] == [False, False, False, True]
    assert sub._limit == 3  # the reader's fast path leaves the last slot to _deliver
    waiting = asyncio.ensure_future(sub._wait_room())
    await asyncio.sleep(0)  # let it start waiting (nothing to synchronise on: no I/O)
    assert sub.pausing
    assert (await sub.next()).data == "0"
    assert sub.pausing  # 3 left, more than half
    assert (await sub.next()).data == "1"
    await asyncio.wait_for(waiting, WAIT)
    assert not sub.pausing
    assert sub._deliver(message(4)) is False  # 3 of 4


@pytest.mark.asyncio
async def test_overflow_pause_unit_keeps_events_beyond_capacity() -> None:
    """PAUSE never drops: an event arriving at a full inbox is kept and asks to pause again."""
    sub = make_subscription(Overflow.PAUSE, 1)
    assert sub._deliver(message(0)) is True
    assert sub._deliver(message(1)) is True
    assert sub.pending == 2
    assert [(await sub.next()).data for _ in range(2)] == ["0", "1"]
    await asyncio.wait_for(sub._wait_room(), WAIT)  # room already: returns at once


@pytest.mark.asyncio
async def test_overflow_pause_unit_ending_releases_the_reader() -> None:
    """Closing (or failing, or suspending) a full subscription releases a waiting reader."""
    for end in ("close", "fail", "suspend"):
        sub = make_subscription(Overflow.PAUSE, 2)
        sub._deliver(message(0))
        assert sub._deliver(message(1)) is True
        waiting = asyncio.ensure_future(sub._wait_room())
        await asyncio.sleep(0)
        assert sub.pausing
        if end == "close":
            await sub.close()
            assert sub._inbox is _NO_INBOX
        elif end == "fail":
            sub._fail(appsync_events.ConnectionClosedError(1006, "gone"))
            assert sub.pending == 2  # still readable
        else:
            assert sub._suspend()
        await asyncio.wait_for(waiting, WAIT)
        assert not sub.pausing
        await asyncio.wait_for(sub._wait_room(), WAIT)  # not active: returns at once
        if end != "suspend":
            assert sub._deliver(message(2)) is False  # ended: nothing more comes in


@pytest.mark.asyncio
async def test_overflow_broadcast_errors_take_a_place_in_the_inbox() -> None:
    """A broadcast_error counts for every policy: it pauses, or is dropped and counted."""
    error = appsync_events.BroadcastError((), id="s1", channel="default/a")
    paused = make_subscription(Overflow.PAUSE, 2)
    assert paused._deliver(message(0)) is False
    assert paused._deliver_error(error) is True
    assert (await paused.next()).data == "0"
    with pytest.raises(appsync_events.BroadcastError):
        await paused.next()
    assert paused.broadcast_error_count == 1
    dropping = make_subscription(Overflow.DROP_OLDEST, 1)
    assert dropping._deliver_error(error) is False
    assert dropping._deliver(message(1)) is False
    assert dropping.dropped == 1
    assert (await dropping.next()).data == "1"
    assert dropping.broadcast_errors == ()


@pytest.mark.asyncio
async def test_overflow_pause_unit_cancelled_wait_leaves_nothing() -> None:
    """Cancelling the reader's wait (its connection closing) leaves the subscription as it was."""
    sub = make_subscription(Overflow.PAUSE, 2)
    sub._deliver(message(0))
    sub._deliver(message(1))
    waiting = asyncio.ensure_future(sub._wait_room())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not sub.pausing
    sub._release_room()  # nothing to release: no effect
    assert [(await sub.next()).data for _ in range(2)] == ["0", "1"]
    assert sub.active
