"""Each auth mode in a test, against the emulator's own credentials and token issuer."""

from __future__ import annotations

import pytest
from lambda_authorizer_example import authorize


@pytest.mark.asyncio
async def test_api_key(appsync_server, appsync_auth, appsync_client_factory):
    """The default emulator accepts its own API key."""
    client = await appsync_client_factory(appsync_server, authorizer=appsync_auth.api_key())
    await client.publish("default/audit", {"by": "api key"})
    assert appsync_server.recorder.published[0].auth_mode == "API_KEY"


@pytest.mark.appsync(auth_modes=["AWS_IAM"])
@pytest.mark.asyncio
async def test_iam(appsync_server, appsync_auth, appsync_client_factory):
    """Requests signed with the emulator's IAM credentials are accepted."""
    client = await appsync_client_factory(appsync_server, authorizer=appsync_auth.iam())
    await client.publish("default/audit", {"by": "iam"})
    assert appsync_server.recorder.published[0].auth_mode == "AWS_IAM"


@pytest.mark.appsync(auth_modes=["AMAZON_COGNITO_USER_POOLS"], cognito=True)
@pytest.mark.asyncio
async def test_cognito(appsync_server, appsync_auth, appsync_client_factory):
    """A token minted by the local issuer identifies the user to handlers."""
    authorizer = appsync_auth.cognito(sub="alice", groups=["admins"])
    client = await appsync_client_factory(appsync_server, authorizer=authorizer)
    await client.publish("default/audit", {"by": "alice"})
    assert appsync_server.recorder.published[0].identity.ctx["sub"] == "alice"


@pytest.mark.appsync(auth_modes=["OPENID_CONNECT"], oidc=True)
@pytest.mark.asyncio
async def test_oidc(appsync_server, appsync_auth, appsync_client_factory):
    """An OIDC token from the local issuer is accepted."""
    client = await appsync_client_factory(appsync_server, authorizer=appsync_auth.oidc(sub="bob"))
    await client.publish("default/audit", {"by": "bob"})
    assert appsync_server.recorder.published[0].auth_mode == "OPENID_CONNECT"


@pytest.mark.appsync(auth_modes=["AWS_LAMBDA"], lambda_authorizer=authorize)
@pytest.mark.asyncio
async def test_lambda(appsync_server, appsync_auth, appsync_client_factory):
    """The Lambda authorizer's decision and handlerContext apply."""
    client = await appsync_client_factory(
        appsync_server, authorizer=appsync_auth.lambda_token("tok-123")
    )
    await client.publish("default/audit", {"by": "lambda"})
    published = appsync_server.recorder.published[0]
    assert published.auth_mode == "AWS_LAMBDA"
