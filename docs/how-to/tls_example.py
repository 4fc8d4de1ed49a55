"""The emulator over TLS in a test: wss:// and https:// with a local certificate authority."""

from __future__ import annotations

import pytest


@pytest.mark.appsync(tls=True)
@pytest.mark.asyncio
async def test_tls(appsync_server, appsync_client):
    """The client fixture trusts the emulator's local CA by itself."""
    assert appsync_server.realtime_endpoint.startswith("wss://")
    assert appsync_server.http_endpoint.startswith("https://")
    sub = await appsync_client.subscribe("default/secure")
    await appsync_client.publish("default/secure", {"n": 1})
    assert (await sub.next()).json() == {"n": 1}
