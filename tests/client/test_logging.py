"""Logging: frames at DEBUG under appsync_events.client, secrets redacted everywhere."""

from __future__ import annotations

import asyncio
import logging

import pytest

import appsync_events
from appsync_events import authorizer

from .conftest import open_client
from .helpers import API_KEY, CREDENTIALS, REGION, ScriptedServer
from .test_http import HttpServer, http_server  # noqa: F401 - fixture
from .test_publish import publish

pytestmark = pytest.mark.asyncio


async def test_frames_logged_redacted(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Sent and received frames are logged at DEBUG without secrets."""
    caplog.set_level(logging.DEBUG, logger="appsync_events")
    client, peer = await open_client(server)
    async with client:
        await publish(client, peer, {"m": 1})
    records = [r for r in caplog.records if r.name.startswith("appsync_events")]
    text = "\n".join(r.getMessage() for r in records)
    assert API_KEY not in text
    assert "header-ey" not in text  # the base64 credentials of the connect subprotocol
    sent = [
        r.getMessage()
        for r in records
        if r.name == "appsync_events.client" and "] > " in r.getMessage()
    ]
    assert any('"type":"publish"' in m and '"x-api-key":"<redacted>"' in m for m in sent)
    received = [r.getMessage() for r in records if "] < " in r.getMessage()]
    assert any("publish_success" in m for m in received)
    assert any("= connected to" in r.getMessage() for r in records)


async def test_iam_frames_logged_redacted(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """IAM signatures and session tokens do not reach the log."""
    caplog.set_level(logging.DEBUG, logger="appsync_events")
    authz = authorizer.IAM(region=REGION, endpoint=server.http_url, credentials=CREDENTIALS)
    client, peer = await open_client(server, authorizer=authz)
    async with client:
        await publish(client, peer, 1)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "SESSIONTOKEN" not in text
    assert "Signature=" not in text


async def test_http_publish_logged_redacted(
    http_server: HttpServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """HTTP publish logs request and answer at DEBUG without the key."""
    caplog.set_level(logging.DEBUG, logger="appsync_events")
    authz = authorizer.ApiKey(api_key=API_KEY, endpoint=http_server.url)
    await appsync_events.publish_http(http_server.url, "default/a", {"m": 1}, authorizer=authz)
    messages = [r.getMessage() for r in caplog.records if r.name == "appsync_events.http"]
    assert any(m.startswith("> POST") and '"x-api-key":"<redacted>"' in m for m in messages)
    assert any(m.startswith("< HTTP 200") for m in messages)
    assert all(API_KEY not in m for m in messages)


async def test_overflow_logged_as_warning(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An inbox overflow is a WARNING naming the subscription."""
    client, peer = await open_client(
        server, backpressure=appsync_events.Backpressure(subscription_events=1)
    )
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/a"))
        message = await peer.subscribed()
        await subscribing
        await peer.data(message["id"], "1")
        await peer.data(message["id"], "2")
        await peer.recv("unsubscribe")
    assert any(
        r.levelno == logging.WARNING
        and "inbox full" in r.getMessage()
        and message["id"] in r.getMessage()
        for r in caplog.records
    )
