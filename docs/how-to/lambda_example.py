"""A Lambda authorizer in a test: a Python function decides."""

from __future__ import annotations

import pytest
from lambda_authorizer_example import authorize


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
