"""Slow-consumer faults as the client sees them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from appsync_emulator import EmulatorThread, Recorder
from appsync_emulator.faults import FloodSubscription, StallSubscriber
from appsync_emulator.pytest_plugin import ClientFactory, ServerFactory
from appsync_events import (
    Backpressure,
    ConnectionClosedError,
    Subscription,
    SubscriptionClosedError,
    SubscriptionInboxFullError,
)

INBOX = 10


def unsubscribed(sub_id: str) -> Callable[[Recorder], bool | None]:
    """Recorder predicate: subscription ``sub_id`` was unsubscribed (the client does that
    when its inbox overflows, so this is the moment the overflow happened)."""
    return lambda r: any(s.id == sub_id and not s.active for s in r.subscriptions) or None


@pytest.mark.asyncio
async def test_flood_fills_only_that_subscription(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """Flooding one subscription overflows its inbox alone: buffered events, then the error."""
    client = await appsync_client_factory(
        appsync_server, backpressure=Backpressure(subscription_events=INBOX)
    )
    flooded = await client.subscribe("default/flood")
    calm = await client.subscribe("default/calm")
    appsync_server.inject(FloodSubscription(subscription_id=flooded.id, count=INBOX + 40))
    await appsync_server.recorder.wait_for(unsubscribed(flooded.id), timeout=5)
    received = [await flooded.next() for _ in range(INBOX)]
    assert [m.data for m in received] == ["{}"] * INBOX
    with pytest.raises(SubscriptionInboxFullError) as info:
        await flooded.next()
    assert (info.value.subscription_id, info.value.capacity) == (flooded.id, INBOX)
    await client.publish("default/calm", {"still": "flowing"})
    assert (await calm.next()).json() == {"still": "flowing"}


@pytest.mark.asyncio
async def test_flood_within_capacity_is_delivered(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """A burst that fits the inbox is delivered completely, in order."""
    client = await appsync_client_factory(
        appsync_server, backpressure=Backpressure(subscription_events=INBOX)
    )
    sub = await client.subscribe("default/burst")
    appsync_server.inject(FloodSubscription(subscription_id=sub.id, count=INBOX, event='{"b":1}'))
    assert [(await sub.next()).json() for _ in range(INBOX)] == [{"b": 1}] * INBOX


@pytest.mark.asyncio
async def test_overflowed_subscription_stays_closed(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """After the overflow error, the subscription is unsubscribed and reads keep failing."""
    client = await appsync_client_factory(
        appsync_server, backpressure=Backpressure(subscription_events=2)
    )
    sub = await client.subscribe("default/flood")
    appsync_server.inject(FloodSubscription(subscription_id=sub.id, count=10))
    await appsync_server.recorder.wait_for(unsubscribed(sub.id), timeout=5)
    for _ in range(2):
        await sub.next()
    with pytest.raises(SubscriptionInboxFullError):
        await sub.next()
    with pytest.raises((SubscriptionInboxFullError, SubscriptionClosedError)):
        await sub.next()
    assert sub.closed


@pytest.mark.asyncio
async def test_stalled_subscriber_does_not_block_others(
    appsync_server_factory: ServerFactory, appsync_client_factory: ClientFactory
) -> None:
    """One stalled connection: the publisher and other subscribers keep flowing, and the
    stalled one is closed with 1008 once its send queue overflows."""
    server = appsync_server_factory(send_queue_frames=50)
    stalled = await appsync_client_factory(server, heartbeat_timeout=5.0)
    stalled_id = server.connections[-1].id
    fast = await appsync_client_factory(server)
    stalled_sub = await stalled.subscribe("default/feed")
    fast_sub = await fast.subscribe("default/feed")
    server.inject(StallSubscriber(), connection=stalled_id)
    for n in range(100):  # twice the stalled connection's send queue
        result = await fast.publish("default/feed", {"n": n})
        assert result.ok
        assert (await fast_sub.next()).json() == {"n": n}
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(drain(stalled_sub), timeout=5)
    assert (info.value.code, info.value.reason) == (1008, "send queue overflow")
    assert any(e.frame_type == "overflow" for e in server.recorder.errors)


async def drain(sub: Subscription) -> None:
    """Read until the subscription raises."""
    while True:
        await sub.next()
