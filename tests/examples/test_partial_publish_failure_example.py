"""A publish where the service fails some events and accepts the others."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import FailEvents


@pytest.mark.asyncio
async def test_partial_publish_failure(appsync_server, appsync_client):
    appsync_server.inject(FailEvents(indexes=[1]))
    result = await appsync_client.publish("default/orders", {"id": 1}, {"id": 2}, {"id": 3})
    assert [f.index for f in result.failed] == [1]
    assert [s.index for s in result.successful] == [0, 2]
    appsync_server.assert_published("/default/orders", events=[{"id": 1}, {"id": 3}])
