"""Cognito user pools in a test, with a token from the emulator's local issuer."""

from __future__ import annotations

import pytest


@pytest.mark.appsync(auth_modes=["AMAZON_COGNITO_USER_POOLS"], cognito=True)
@pytest.mark.asyncio
async def test_cognito(appsync_server, appsync_auth, appsync_client_factory):
    """A token minted by the local issuer identifies the user to handlers."""
    authorizer = appsync_auth.cognito(sub="alice", groups=["admins"])
    client = await appsync_client_factory(appsync_server, authorizer=authorizer)
    await client.publish("default/audit", {"by": "alice"})
    assert appsync_server.recorder.published[0].identity.ctx["sub"] == "alice"
