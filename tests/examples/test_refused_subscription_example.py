"""A subscription refused by the service (here: by fault injection)."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import RejectSubscribe
from appsync_events import SubscribeError


@pytest.mark.asyncio
async def test_refused_subscription(appsync_server, appsync_client):
    with appsync_server.inject(RejectSubscribe()), pytest.raises(SubscribeError) as info:
        await appsync_client.subscribe("default/secret")
    assert info.value.errors[0].error_type == "SubscriptionProcessingError"
    await appsync_client.subscribe("default/secret")  # the fault ended with the block
