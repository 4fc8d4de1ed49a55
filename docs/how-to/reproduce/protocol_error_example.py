"""Reproduce a protocol error: the service sends a frame that is not valid."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import CorruptFrame
from appsync_events import RemoteProtocolError


@pytest.mark.appsync(keepalive_interval=0.05)
@pytest.mark.asyncio
async def test_corrupt_keepalive(appsync_server, appsync_client):
    """A keep-alive replaced by text that is not JSON: RemoteProtocolError."""
    sub = await appsync_client.subscribe("default/news")
    appsync_server.inject(CorruptFrame(match="ka"))
    with pytest.raises(RemoteProtocolError):
        await sub.next()
