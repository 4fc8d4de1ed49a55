"""One emulator for the whole suite: ``appsync_server_scope = session`` in the ini file.

The tests are the same as with a new emulator per test: each one finds the shared server
as a new one would be, whatever the test before it left behind.
"""

from __future__ import annotations

import pytest

from appsync_emulator.faults import DropKeepAlives


@pytest.mark.asyncio
async def test_publish(appsync_server, appsync_client):
    sub = await appsync_client.subscribe("default/room")
    await appsync_client.publish("default/room", {"n": 1})
    assert (await sub.next()).json() == {"n": 1}
    appsync_server.inject(DropKeepAlives())  # left installed: the reset removes it


@pytest.mark.asyncio
async def test_starts_clean(appsync_server, appsync_client):
    assert [c.id for c in appsync_server.connections] == ["c1"]  # this test's client only
    assert appsync_server.recorder.published == []
    assert appsync_server.recorder.subscriptions == []
    await appsync_client.publish("default/room", {"n": 2})
    appsync_server.assert_published("/default/room", events=[{"n": 2}])


@pytest.mark.appsync(namespaces=["default", "chat"])
def test_another_config(appsync_server):
    # Tests with this configuration share another emulator.
    assert [ns.name for ns in appsync_server.config.namespaces] == ["default", "chat"]
