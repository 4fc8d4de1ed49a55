"""IAM and Cognito authorization in tests, against the emulator's own credentials."""

from __future__ import annotations

import pytest


@pytest.mark.appsync(auth_modes=["AWS_IAM"])
@pytest.mark.asyncio
async def test_iam(appsync_server, appsync_auth, appsync_client_factory):
    client = await appsync_client_factory(appsync_server, authorizer=appsync_auth.iam())
    await client.publish("default/audit", {"by": "iam"})
    assert appsync_server.recorder.published[0].auth_mode == "AWS_IAM"


@pytest.mark.appsync(auth_modes=["AMAZON_COGNITO_USER_POOLS"], cognito=True)
@pytest.mark.asyncio
async def test_cognito(appsync_server, appsync_auth, appsync_client_factory):
    authorizer = appsync_auth.cognito(sub="alice", groups=["admins"])
    client = await appsync_client_factory(appsync_server, authorizer=authorizer)
    await client.publish("default/audit", {"by": "alice"})
    assert appsync_server.recorder.published[0].identity.ctx["sub"] == "alice"
