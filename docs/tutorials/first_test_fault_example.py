"""A fault: the emulator stops sending keep-alives, and the client gives up on it."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import DropKeepAlives
from appsync_events import HeartbeatTimeoutError


@pytest.mark.appsync(keepalive_interval=0.05, connection_timeout_ms=300)
@pytest.mark.asyncio
async def test_silent_service(appsync_server, appsync_client):
    """A client that hears nothing for connectionTimeoutMs raises HeartbeatTimeoutError."""
    sub = await appsync_client.subscribe("default/news")
    appsync_server.inject(DropKeepAlives())
    with pytest.raises(HeartbeatTimeoutError):
        await sub.next()
