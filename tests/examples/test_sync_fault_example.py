"""Reproduce a lost connection in synchronous code, waiting for the fault, not sleeping."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import CloseConnection
from appsync_events import ConnectionClosedError, authorizer, sync


def test_sync_client_sees_the_close(appsync_server):
    authz = authorizer.ApiKey(appsync_server.api_key)
    with sync.connect(appsync_server.http_endpoint, authorizer=authz) as client:
        sub = client.subscribe("default/news")
        fault = CloseConnection(1001, "going away")
        # Aimed at this client; wait_done_sync() blocks until the server has closed it.
        appsync_server.inject(fault, connection=client).wait_done_sync()
        with pytest.raises(ConnectionClosedError) as caught:
            sub.next(timeout=5)
    assert caught.value.code == 1001
    assert appsync_server.connections[0].close_code == 1001
