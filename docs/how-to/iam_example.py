"""IAM (SigV4) in a test, signed with the emulator's own credentials."""

from __future__ import annotations

import pytest


@pytest.mark.appsync(auth_modes=["AWS_IAM"])
@pytest.mark.asyncio
async def test_iam(appsync_server, appsync_auth, appsync_client_factory):
    """Requests signed with the emulator's IAM credentials are accepted."""
    client = await appsync_client_factory(appsync_server, authorizer=appsync_auth.iam())
    await client.publish("default/audit", {"by": "iam"})
    assert appsync_server.recorder.published[0].auth_mode == "AWS_IAM"
