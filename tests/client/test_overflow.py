"""Overflow policies of subscription inboxes (fail, drop the oldest, pause reading).

Against the emulator over loopback sockets: a second client publishes the bursts, so that
the consumer's connection only reads.  Tests know that the consumer has read a burst
through a *barrier*: a wide subscription on the same connection that also receives a last
event published after the burst (frames reach one connection in order), or, for a paused
reader, through the moment it starts waiting for room.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import appsync_events
from appsync_emulator import EmulatorConfig, EmulatorServer, NamespaceConfig, faults
from appsync_events import Overflow, authorizer
from appsync_events.errors import (
    ConfigurationError,
    OperationTimeoutError,
    SubscriptionClosedError,
    SubscriptionInboxFullError,
)
from appsync_events.subscription import _NO_INBOX, Subscription

from .helpers import MS, WAIT

pytestmark = pytest.mark.asyncio

BURST = 100
"""Events per burst: ten times :data:`INBOX`."""
INBOX = 10


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    config = EmulatorConfig(
        # Keep-alives flow often; the deadline leaves room for a loaded machine (the pause's
        # effect on the deadline is tested on a controlled clock in test_overflow_clock.py).
        connection_timeout_ms=round(3000 * MS * 1000),
        keepalive_interval=50 * MS,
        namespaces=(NamespaceConfig(name="default"),),
    )
    async with EmulatorServer(config) as server:
        yield server
        server.check()


async def connect(server: EmulatorServer, **options: Any) -> appsync_events.Client:
    options.setdefault("operation_timeout", WAIT)
    authz = authorizer.ApiKey(server.api_key or "")
    return await appsync_events.connect(server.realtime_endpoint, authorizer=authz, **options)


@pytest_asyncio.fixture
async def publisher(emulator: EmulatorServer) -> AsyncIterator[appsync_events.Client]:
    """A client that only publishes (its connection is never paused)."""
    async with await connect(emulator) as client:
        yield client


async def burst(publisher: appsync_events.Client, channel: str, count: int = BURST) -> None:
    """Publish ``"0"`` .. ``str(count - 1)`` to ``channel`` in order, five per frame."""
    for start in range(0, count, 5):
        events = [str(n) for n in range(start, min(start + 5, count))]
        result = await publisher.publish(channel, *[appsync_events.RawJSON(e) for e in events])
        assert result.ok


async def barrier(publisher: appsync_events.Client, wide: Subscription, skip: int) -> None:
    """Publish ``"end"`` to ``default/end``; read ``skip`` events then it from ``wide``."""
    await publisher.publish("default/end", "end")
    async with asyncio.timeout(WAIT):
        for _ in range(skip):
            await wide.next()
        assert (await wide.next()).json() == "end"


async def wait_unsubscribed(emulator: EmulatorServer) -> None:
    def unsubscribed(recorder: Any) -> bool | None:
        return any(f.frame_type == "unsubscribe" for f in recorder.received) or None

    await emulator.wait_for(unsubscribed, WAIT)


async def read(sub: Subscription, count: int) -> list[str]:
    async with asyncio.timeout(WAIT):
        return [(await sub.next()).data for _ in range(count)]


def watch_pauses(sub: Subscription) -> asyncio.Queue[int]:
    """Report ``sub.pending`` each time the reader starts waiting for room in ``sub``."""
    pauses: asyncio.Queue[int] = asyncio.Queue()

    class Watched(Subscription):
        __slots__ = ()  # the same layout: ``sub`` can become one

        async def _wait_room(self) -> None:
            pauses.put_nowait(self.pending)
            await super()._wait_room()

    sub.__class__ = Watched
    return pauses


# --- configuration --------------------------------------------------------------------------


async def test_overflow_default_is_fail() -> None:
    """Backpressure's default policy is FAIL; the plain strings are accepted and normalised."""
    assert appsync_events.Backpressure().overflow is Overflow.FAIL
    assert appsync_events.Backpressure(overflow="pause").overflow is Overflow.PAUSE  # type: ignore[arg-type]
    assert Overflow.parse("drop_oldest") is Overflow.DROP_OLDEST
    assert str(Overflow.DROP_OLDEST) == "drop_oldest"  # a str enum: its value


@pytest.mark.parametrize("value", ["lifo", "FAIL", 1, None])
async def test_overflow_invalid_value_names_it_and_the_allowed_ones(value: object) -> None:
    """A bad overflow value is a ConfigurationError naming it and every allowed value."""
    with pytest.raises(ConfigurationError) as info:
        appsync_events.Backpressure(overflow=value)  # type: ignore[arg-type]
    message = str(info.value)
    assert "Backpressure.overflow" in message
    assert repr(value) in message
    assert "'fail', 'drop_oldest', 'pause'" in message


async def test_overflow_invalid_subscribe_options_send_nothing(
    emulator: EmulatorServer,
) -> None:
    """subscribe(overflow=..., capacity=...) checks both before anything is sent."""
    async with await connect(emulator) as client:
        with pytest.raises(ConfigurationError, match=r"overflow must be .* not 'newest'"):
            await client.subscribe("default/a", overflow="newest")
        for capacity in (0, -1, True, 2.5):
            with pytest.raises(ConfigurationError, match="capacity must be a positive integer"):
                await client.subscribe("default/a", capacity=capacity)  # type: ignore[arg-type]
        assert client.subscriptions == ()
    assert not [r for r in emulator.recorder.received if r.frame_type == "subscribe"]


# --- FAIL ----------------------------------------------------------------------------------


async def test_overflow_fail_is_unchanged(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """FAIL: the buffered events, then SubscriptionInboxFullError; the others go on."""
    backpressure = appsync_events.Backpressure(subscription_events=INBOX)
    async with await connect(emulator, backpressure=backpressure) as client:
        sub = await client.subscribe("default/a")
        wide = await client.subscribe("default/*", capacity=BURST + 1)
        assert (sub.overflow, sub.capacity) == (Overflow.FAIL, INBOX)
        await burst(publisher, "default/a")
        await barrier(publisher, wide, BURST)
        assert await read(sub, INBOX) == [str(n) for n in range(INBOX)]
        with pytest.raises(SubscriptionInboxFullError) as info:
            await sub.next()
        assert info.value.capacity == INBOX
        assert sub.dropped == 0
        await wait_unsubscribed(emulator)


# --- DROP_OLDEST ----------------------------------------------------------------------------


async def test_overflow_drop_oldest_keeps_the_newest(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """DROP_OLDEST keeps the newest INBOX events, counts the rest, stays subscribed."""
    backpressure = appsync_events.Backpressure(
        subscription_events=INBOX, overflow=Overflow.DROP_OLDEST
    )
    async with await connect(emulator, backpressure=backpressure) as client:
        sub = await client.subscribe("default/a")
        wide = await client.subscribe("default/*", capacity=BURST + 1)
        await burst(publisher, "default/a")
        await barrier(publisher, wide, BURST)
        assert sub.dropped == BURST - INBOX
        assert sub.pending == INBOX
        assert await read(sub, INBOX) == [str(n) for n in range(BURST - INBOX, BURST)]
        assert sub.active
        await publisher.publish("default/a", "later")
        assert (await read(sub, 1)) == ['"later"']
        assert sub.dropped == BURST - INBOX


async def test_overflow_drop_oldest_logs_at_a_bounded_rate(
    emulator: EmulatorServer,
    publisher: appsync_events.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Ninety drops in a burst give one WARNING line, not ninety."""
    caplog.set_level(logging.WARNING, logger="appsync_events.client")
    async with await connect(emulator) as client:
        sub = await client.subscribe("default/a", overflow="drop_oldest", capacity=INBOX)
        wide = await client.subscribe("default/*", capacity=BURST + 1)
        await burst(publisher, "default/a")
        await barrier(publisher, wide, BURST)
    lines = [r.getMessage() for r in caplog.records if "dropping the oldest" in r.getMessage()]
    assert sub.dropped == BURST - INBOX
    assert len(lines) == 1, lines
    assert sub.id in lines[0]
    assert "1 since the last report, 1 in total" in lines[0]


# --- PAUSE ------------------------------------------------------------------------------------


async def test_overflow_pause_delivers_every_event_in_order(
    emulator: EmulatorServer,
    publisher: appsync_events.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PAUSE: a burst of ten inboxes arrives whole and in order; the inbox never overflows."""
    caplog.set_level(logging.DEBUG, logger="appsync_events.client")
    backpressure = appsync_events.Backpressure(subscription_events=INBOX, overflow="pause")  # type: ignore[arg-type]
    async with await connect(emulator, backpressure=backpressure) as client:
        sub = await client.subscribe("default/a")
        pauses = watch_pauses(sub)
        await burst(publisher, "default/a")
        assert await asyncio.wait_for(pauses.get(), WAIT) == INBOX
        assert sub.pausing
        received = []
        async with asyncio.timeout(WAIT):
            for _ in range(BURST):
                assert sub.pending <= INBOX
                received.append((await sub.next()).data)
        assert received == [str(n) for n in range(BURST)]
        assert sub.dropped == 0
        assert pauses.qsize() >= 1  # paused again after the first resume
        assert sub.active
        assert not sub.pausing
    lines = [r.getMessage() for r in caplog.records]
    assert any(f"paused reading: the inbox of subscription {sub.id} is full" in m for m in lines)
    assert any("resumed reading" in m for m in lines)


async def test_overflow_pause_holds_every_subscription_of_the_connection(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """While one inbox holds the reader, other subscriptions (and answers) wait; none is lost."""
    async with await connect(emulator) as client:
        full = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=INBOX)
        other = await client.subscribe("default/b")
        pauses = watch_pauses(full)
        await burst(publisher, "default/a", 2 * INBOX)
        await burst(publisher, "default/b", 5)
        assert await asyncio.wait_for(pauses.get(), WAIT) == INBOX
        assert other.pending == 0  # its events are behind the paused reader
        assert await read(full, 2 * INBOX) == [str(n) for n in range(2 * INBOX)]
        assert await read(other, 5) == [str(n) for n in range(5)]


async def test_overflow_pause_close_of_the_full_subscription_resumes(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """Closing the subscription that holds the reader resumes it at once; nothing else is lost."""
    async with await connect(emulator, close_timeout=60.0) as client:
        full = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=INBOX)
        other = await client.subscribe("default/b")
        pauses = watch_pauses(full)
        await burst(publisher, "default/a")
        await burst(publisher, "default/b", 20)
        await asyncio.wait_for(pauses.get(), WAIT)
        await asyncio.wait_for(full.close(), WAIT)  # its unsubscribe is answered
        assert not full.pausing
        with pytest.raises(StopAsyncIteration):
            await full.__anext__()
        assert await read(other, 20) == [str(n) for n in range(20)]


async def test_overflow_pause_client_close_does_not_wait_for_the_consumer(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """client.close() while paused returns promptly (never close_timeout, never a hang)."""
    client = await connect(emulator, close_timeout=60.0)
    full = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=INBOX)
    pauses = watch_pauses(full)
    await burst(publisher, "default/a")
    await asyncio.wait_for(pauses.get(), WAIT)
    await asyncio.wait_for(client.close(), WAIT)
    assert full.closed
    await wait_unsubscribed(emulator)


async def test_overflow_pause_unsubscribing_another_waits_for_room(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """Another subscription's unsubscribe is answered once reads make room."""
    async with await connect(emulator) as client:
        full = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=INBOX)
        other = await client.subscribe("default/b")
        pauses = watch_pauses(full)
        await burst(publisher, "default/a", 2 * INBOX)
        await asyncio.wait_for(pauses.get(), WAIT)
        closing = asyncio.ensure_future(other.close())
        assert await read(full, 2 * INBOX) == [str(n) for n in range(2 * INBOX)]
        await asyncio.wait_for(closing, WAIT)
        assert other.closed


async def test_overflow_pause_operations_are_bounded_by_their_timeout(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """Answers wait behind a pause that nobody lifts: the operation times out, nothing hangs."""
    async with await connect(emulator, operation_timeout=300 * MS) as client:
        full = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=INBOX)
        other = await client.subscribe("default/b")
        pauses = watch_pauses(full)
        await burst(publisher, "default/a", 2 * INBOX)
        await asyncio.wait_for(pauses.get(), WAIT)
        with pytest.raises(OperationTimeoutError):
            await client.publish("default/c", 1)
        with pytest.raises(OperationTimeoutError):
            await other.close()
        assert other.closed  # closed locally all the same
        assert await read(full, 2 * INBOX) == [str(n) for n in range(2 * INBOX)]
        assert not client.closed


async def test_overflow_pause_cancelled_consumer_loses_nothing(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """A consumer cancelled mid-way while paused loses no event; a new one reads on."""
    async with await connect(emulator) as client:
        sub = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=INBOX)
        pauses = watch_pauses(sub)
        first: list[str] = []
        reading = asyncio.Event()

        async def consume() -> None:
            async for message in sub:
                first.append(message.data)
                if len(first) == 3:
                    reading.set()
                    await asyncio.Future()  # stuck: cancelled below

        await burst(publisher, "default/a", 3 * INBOX)
        await asyncio.wait_for(pauses.get(), WAIT)
        consumer = asyncio.ensure_future(consume())
        await asyncio.wait_for(reading.wait(), WAIT)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        rest = await read(sub, 3 * INBOX - 3)
        assert first + rest == [str(n) for n in range(3 * INBOX)]


async def test_overflow_pause_waiting_reader_cancelled_by_close(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """A next() waiting on another subscription while the reader is paused ends on close."""
    client = await connect(emulator)
    full = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=INBOX)
    other = await client.subscribe("default/b")
    pauses = watch_pauses(full)
    await burst(publisher, "default/a", 2 * INBOX)
    await asyncio.wait_for(pauses.get(), WAIT)
    waiting = asyncio.ensure_future(other.next())
    await asyncio.wait_for(client.close(), WAIT)
    with pytest.raises(SubscriptionClosedError):
        await asyncio.wait_for(waiting, WAIT)


# --- per subscription, the inbox, the sync API -------------------------------------------------


async def test_overflow_per_subscription_override(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """subscribe(overflow=, capacity=) override the connection's Backpressure, one by one."""
    backpressure = appsync_events.Backpressure(
        subscription_events=INBOX, overflow=Overflow.DROP_OLDEST
    )
    async with await connect(emulator, backpressure=backpressure) as client:
        dropping = await client.subscribe("default/a")
        failing = await client.subscribe("default/a", overflow=Overflow.FAIL)
        roomy = await client.subscribe("default/a", capacity=BURST)
        wide = await client.subscribe("default/*", capacity=BURST + 1)
        assert (dropping.overflow, dropping.capacity) == (Overflow.DROP_OLDEST, INBOX)
        assert (failing.overflow, failing.capacity) == (Overflow.FAIL, INBOX)
        assert (roomy.overflow, roomy.capacity) == (Overflow.DROP_OLDEST, BURST)
        await burst(publisher, "default/a")
        await barrier(publisher, wide, BURST)
        assert await read(dropping, INBOX) == [str(n) for n in range(BURST - INBOX, BURST)]
        assert await read(failing, INBOX) == [str(n) for n in range(INBOX)]
        with pytest.raises(SubscriptionInboxFullError):
            await failing.next()
        assert await read(roomy, BURST) == [str(n) for n in range(BURST)]
        assert (dropping.dropped, failing.dropped, roomy.dropped) == (BURST - INBOX, 0, 0)


async def test_overflow_inbox_is_created_by_the_first_event(
    emulator: EmulatorServer, publisher: appsync_events.Client
) -> None:
    """No deque per subscription until an event arrives; closing frees it."""
    async with await connect(emulator) as client:
        sub = await client.subscribe("default/a")
        assert sub._inbox is _NO_INBOX
        assert sub.pending == 0
        await publisher.publish("default/a", 1)
        assert await read(sub, 1) == ["1"]
        assert sub._inbox is not _NO_INBOX
        await sub.close()
        assert sub._inbox is _NO_INBOX


async def test_overflow_pause_server_close_reconnects_and_keeps_every_event(
    emulator: EmulatorServer,
) -> None:
    """A close by the service during a pause is noticed; no event is lost across the
    reconnection, and the resumed subscription reads on."""
    authz = authorizer.ApiKey(emulator.api_key or "")

    async def publish(*events: int) -> None:
        result = await appsync_events.publish_http(
            emulator.http_endpoint, "default/a", *events, authorizer=authz
        )
        assert result.ok

    connected = asyncio.Event()

    def on_state_change(state: appsync_events.ConnectionState) -> None:
        if state is appsync_events.ConnectionState.CONNECTED:
            connected.set()

    policy = appsync_events.Reconnect(initial_delay=10 * MS)
    client = await connect(emulator, reconnect=policy, on_state_change=on_state_change)
    async with client:
        sub = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=INBOX)
        pauses = watch_pauses(sub)
        for start in range(0, 2 * INBOX, 5):
            await publish(*range(start, start + 5))
        await emulator.wait_for(
            lambda r: sum(p.deliveries for p in r.published) >= 2 * INBOX or None, WAIT
        )
        await asyncio.wait_for(pauses.get(), WAIT)
        emulator.inject(faults.CloseConnection(1012, "service restart"))  # after the events
        await asyncio.wait_for(connected.wait(), WAIT)
        assert client.reconnects == 1
        await publish(2 * INBOX)
        assert await read(sub, 2 * INBOX + 1) == [str(n) for n in range(2 * INBOX + 1)]
