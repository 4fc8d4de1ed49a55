"""Reproduce a slow consumer: a burst overflows one subscription's inbox."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import FloodSubscription
from appsync_events import SubscriptionInboxFullError


@pytest.mark.appsync(client={"backpressure": {"subscription_events": 5}})
@pytest.mark.asyncio
async def test_inbox_full(appsync_server, appsync_client):
    sub = await appsync_client.subscribe("default/firehose")
    appsync_server.inject(FloodSubscription(subscription=sub, count=50))
    # The client gives up on a subscription whose inbox overflowed, and unsubscribes it:
    # once the server saw that, the overflow has happened (no read before it, no sleep).
    await appsync_server.wait_unsubscribed(sub)
    for _ in range(5):  # the 5 buffered events are still delivered,
        await sub.next()
    with pytest.raises(SubscriptionInboxFullError):  # then the error
        await sub.next()
