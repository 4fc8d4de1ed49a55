"""A fault: the emulator sends no keep-alives, and the client gives up on it."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import DropKeepAlives
from appsync_events import HeartbeatTimeoutError


@pytest.mark.appsync(connection_timeout_ms=300, faults=[DropKeepAlives()])
@pytest.mark.asyncio
async def test_silent_service(appsync_client):
    """A client that hears nothing for connectionTimeoutMs raises HeartbeatTimeoutError."""
    with pytest.raises(HeartbeatTimeoutError):
        await subscribe_and_read(appsync_client)


async def subscribe_and_read(client):
    sub = await client.subscribe("default/news")
    return await sub.next()
