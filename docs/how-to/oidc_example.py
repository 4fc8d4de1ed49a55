"""OpenID Connect in a test, with a token from the emulator's local issuer."""

from __future__ import annotations

import pytest


@pytest.mark.appsync(auth_modes=["OPENID_CONNECT"], oidc=True)
@pytest.mark.asyncio
async def test_oidc(appsync_server, appsync_auth, appsync_client_factory):
    """An OIDC token from the local issuer is accepted."""
    client = await appsync_client_factory(appsync_server, authorizer=appsync_auth.oidc(sub="bob"))
    await client.publish("default/audit", {"by": "bob"})
    assert appsync_server.recorder.published[0].auth_mode == "OPENID_CONNECT"
