"""Reproduce a heartbeat timeout: the service never sends a keep-alive."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import DropKeepAlives
from appsync_events import HeartbeatTimeoutError


@pytest.mark.appsync(connection_timeout_ms=300, faults=[DropKeepAlives()])
@pytest.mark.asyncio
async def test_heartbeat_timeout(appsync_client):
    # Not one "ka" arrives, so the client gives up 0.3 s after connection_ack, whatever
    # it is doing by then (subscribing, or waiting for an event), however busy the machine.
    with pytest.raises(HeartbeatTimeoutError):
        await subscribe_and_read(appsync_client)


async def subscribe_and_read(client):
    sub = await client.subscribe("default/news")
    return await sub.next()
