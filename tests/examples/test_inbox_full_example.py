"""Reproduce a slow consumer: a burst overflows one subscription's inbox."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import FloodSubscription
from appsync_events import SubscriptionInboxFullError


@pytest.mark.appsync(client={"backpressure": {"subscription_events": 5}})
@pytest.mark.asyncio
async def test_inbox_full(appsync_server, appsync_client):
    sub = await appsync_client.subscribe("default/firehose")
    appsync_server.inject(FloodSubscription(subscription_id=sub.id, count=50))
    # the client unsubscribes a subscription whose inbox overflowed: wait for that
    gone = lambda r: not r.active_subscriptions or None  # noqa: E731
    await appsync_server.wait_for(gone)
    with pytest.raises(SubscriptionInboxFullError):  # after the 5 buffered events
        [await sub.next() for _ in range(6)]
