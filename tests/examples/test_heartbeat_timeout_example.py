"""Reproduce a heartbeat timeout: the service goes silent after connecting."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import DropKeepAlives
from appsync_events import HeartbeatTimeoutError


@pytest.mark.appsync(keepalive_interval=0.05, connection_timeout_ms=300)
@pytest.mark.asyncio
async def test_heartbeat_timeout(appsync_server, appsync_client):
    sub = await appsync_client.subscribe("default/news")
    appsync_server.inject(DropKeepAlives())
    with pytest.raises(HeartbeatTimeoutError):
        await sub.next()
