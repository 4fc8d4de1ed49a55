"""An API key in a test: the emulator accepts its own key."""

from __future__ import annotations

import pytest


@pytest.mark.asyncio
async def test_api_key(appsync_server, appsync_auth, appsync_client_factory):
    """The default emulator accepts its own API key."""
    client = await appsync_client_factory(appsync_server, authorizer=appsync_auth.api_key())
    await client.publish("default/audit", {"by": "api key"})
    assert appsync_server.recorder.published[0].auth_mode == "API_KEY"
