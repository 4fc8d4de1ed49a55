"""Reproduce an operation timeout: the service never answers a publish."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import WithholdReply
from appsync_events import OperationTimeoutError


@pytest.mark.appsync(client={"operation_timeout": 0.2})
@pytest.mark.asyncio
async def test_publish_times_out(appsync_server, appsync_client):
    """No publish_success within operation_timeout: OperationTimeoutError."""
    with appsync_server.inject(WithholdReply(match="publish_success")):
        with pytest.raises(OperationTimeoutError):
            await appsync_client.publish("default/news", {"n": 1})
    # The service accepted the publish all the same (only its answer was lost), and the
    # client is still connected.
    await appsync_server.wait_published("default/news")
    assert not appsync_client.closed
