"""Reproduce a lost connection: the service closes it, or the TCP connection drops."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import CloseConnection, DropConnection
from appsync_events import ConnectionClosedError, ConnectionLostError


@pytest.mark.asyncio
async def test_service_closes(appsync_server, appsync_client):
    """A close frame from the service: ConnectionClosedError with its code and reason."""
    sub = await appsync_client.subscribe("default/news")
    appsync_server.inject(CloseConnection(1001, "going away"))
    with pytest.raises(ConnectionClosedError) as caught:
        await sub.next()
    assert (caught.value.code, caught.value.reason) == (1001, "going away")


@pytest.mark.asyncio
async def test_connection_drops(appsync_server, appsync_client):
    """A TCP abort without a close frame: code 1006, also a ConnectionLostError."""
    sub = await appsync_client.subscribe("default/news")
    # Aimed at this client's connection; done once the server has dropped it.
    await appsync_server.inject(DropConnection(), connection=appsync_client).wait_done()
    with pytest.raises(ConnectionLostError) as caught:
        await sub.next()
    assert caught.value.code == 1006
