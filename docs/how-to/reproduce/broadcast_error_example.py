"""Reproduce a broadcast error: the service could not deliver an event to a subscription."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import SendBroadcastError
from appsync_events import BroadcastError


@pytest.mark.asyncio
async def test_next_raises_then_continues(appsync_server, appsync_client):
    """sub.next() raises BroadcastError once; the subscription stays active."""
    sub = await appsync_client.subscribe("default/news")
    appsync_server.inject(SendBroadcastError(subscription=sub))
    with pytest.raises(BroadcastError):
        await sub.next()
    await appsync_client.publish("default/news", {"n": 1})
    assert (await sub.next()).json() == {"n": 1}


@pytest.mark.asyncio
async def test_async_for_skips_it(appsync_server, appsync_client):
    """`async for` skips the error and records it on the subscription."""
    sub = await appsync_client.subscribe("default/news")
    appsync_server.inject(SendBroadcastError(subscription=sub))
    await appsync_client.publish("default/news", {"n": 1})
    async for message in sub:
        assert message.json() == {"n": 1}
        break
    assert sub.broadcast_error_count == 1
