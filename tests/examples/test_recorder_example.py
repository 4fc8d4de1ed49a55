"""Assert on what the emulator saw, and wait for it instead of sleeping."""

from __future__ import annotations

import pytest


@pytest.mark.appsync(namespaces=["default", "chat"])
@pytest.mark.asyncio
async def test_recorder(appsync_server, appsync_client):
    sub = await appsync_client.subscribe("chat/*")
    appsync_server.recorder.assert_subscribed("/chat/*")
    await appsync_client.publish("chat/lobby", {"text": "hi"}, {"text": "bye"})
    await appsync_server.recorder.wait_published("chat/lobby", count=2)
    recorder = appsync_server.recorder
    recorder.assert_published("/chat/lobby", events=[{"text": "hi"}, {"text": "bye"}])
    recorder.assert_no_errors()
    assert (await sub.next()).json() == {"text": "hi"}
