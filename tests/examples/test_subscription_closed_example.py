"""Reading from a subscription after it was closed raises SubscriptionClosedError."""

from __future__ import annotations

import pytest

from appsync_events import SubscriptionClosedError


@pytest.mark.asyncio
async def test_read_after_close(appsync_server, appsync_client):
    sub = await appsync_client.subscribe("default/room")
    await sub.close()
    with pytest.raises(SubscriptionClosedError):
        await sub.next()
    assert not appsync_server.recorder.active_subscriptions
