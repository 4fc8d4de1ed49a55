"""My first tests against the AppSync Events emulator."""

from __future__ import annotations

import pytest


def test_server_starts(appsync_server):
    """A sync test can use the emulator: it runs on its own thread."""
    assert appsync_server.http_endpoint.endswith("/event")
    assert appsync_server.api_key.startswith("da2-")


@pytest.mark.asyncio
async def test_publish_reaches_subscriber(appsync_server, appsync_client):
    """An event published to a channel reaches its subscriber."""
    async with appsync_client.subscribe("default/room") as sub:
        await appsync_client.publish("default/room", {"n": 1})
        message = await sub.next()
        assert message.json() == {"n": 1}
    appsync_server.assert_published("/default/room", count=1)


@pytest.mark.appsync(namespaces=["default", "chat"])
@pytest.mark.asyncio
async def test_wildcard_subscription(appsync_client):
    """A subscription to chat/* receives the events of every channel below chat."""
    sub = await appsync_client.subscribe("chat/*")
    await appsync_client.publish("chat/lobby", {"text": "hi"})
    await appsync_client.publish("chat/rooms/42", {"text": "deep"})
    assert (await sub.next()).json() == {"text": "hi"}
    assert (await sub.next()).json() == {"text": "deep"}
