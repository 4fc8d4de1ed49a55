"""Reproduce a refused publish, over the WebSocket and over HTTP."""

from __future__ import annotations

import pytest

import appsync_events
from appsync_emulator.faults import RejectPublish
from appsync_events import PublishError, PublishUnauthorizedError, UnauthorizedError


@pytest.mark.appsync(faults=[RejectPublish()])
@pytest.mark.asyncio
async def test_publish_unauthorized(appsync_server, appsync_client, appsync_authorizer):
    """An unauthorized publish is both a PublishError and an UnauthorizedError."""
    with pytest.raises(PublishUnauthorizedError) as caught:
        await appsync_client.publish("default/news", {"n": 1})
    assert isinstance(caught.value, PublishError)
    assert isinstance(caught.value, UnauthorizedError)

    with pytest.raises(PublishUnauthorizedError) as caught:
        await appsync_events.publish_http(
            appsync_server.http_endpoint, "default/news", {"n": 1}, authorizer=appsync_authorizer
        )
    assert caught.value.status == 401
