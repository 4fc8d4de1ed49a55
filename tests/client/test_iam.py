"""IAM: every signature the client sends is recomputed on the server side with botocore."""

from __future__ import annotations

import asyncio
import json

import pytest

from appsync_events import authorizer
from appsync_events.protocol.signing import signing_body

from .conftest import api_key, open_client
from .helpers import CREDENTIALS, REGION, ScriptedServer, verify_sigv4
from .test_publish import publish

pytestmark = pytest.mark.asyncio

TRICKY = {
    "html": "<b>Tom & Jerry</b>",
    "quote": "it's a=b",
    "unicode": "Grüße, 東京 €",
    "slash": "a/b",
}


def iam(server: ScriptedServer) -> authorizer.IAM:
    return authorizer.IAM(region=REGION, endpoint=server.http_url, credentials=CREDENTIALS)


async def test_iam_connect_subscribe_publish_signatures(server: ScriptedServer) -> None:
    """The connect map, subscribe and publish authorizations verify with botocore."""
    client, peer = await open_client(server, authorizer=iam(server))
    async with client:
        verify_sigv4(peer.auth, "{}")
        assert peer.auth["host"] == f"127.0.0.1:{server.port}"
        assert peer.auth["X-Amz-Security-Token"] == "SESSIONTOKEN"
        assert peer.auth["content-encoding"] == "amz-1.0"
        subscribing = asyncio.ensure_future(client.subscribe("default/signed"))
        sub_frame = await peer.subscribed()
        await subscribing
        verify_sigv4(sub_frame["authorization"], '{"channel":"default/signed"}')
        _, pub_frame = await publish(client, peer, TRICKY, b'{"raw":"<&>"}', "plain")
        events = pub_frame["events"]
        verify_sigv4(pub_frame["authorization"], signing_body("default/a", events))
        # Escaped for IAM (docs: protocol.rst, "What the verifier checks"): no raw < > & = ' left,
        # same values.
        for text in events:
            assert not set("<>&='") & set(text)
        assert [json.loads(t) for t in events] == [TRICKY, {"raw": "<&>"}, "plain"]
        assert "Grüße, 東京 €" in events[0]  # non-ASCII stays raw UTF-8
        # The server-side (Gson-style) re-escaping of these texts is a no-op, so the
        # signature holds whichever body the service rebuilds
        # (docs: protocol.rst, "What the verifier checks").
        assert signing_body("default/a", events, html_escape=True) == signing_body(
            "default/a", events
        )


async def test_iam_escaping_can_be_disabled(server: ScriptedServer) -> None:
    """html_escape=False sends IAM events as encoded; the signature still matches them."""
    client, peer = await open_client(server, authorizer=iam(server), html_escape=False)
    async with client:
        _, frame = await publish(client, peer, {"h": "<b>"})
        assert frame["events"] == ['{"h":"<b>"}']
        verify_sigv4(frame["authorization"], signing_body("default/a", frame["events"]))


async def test_api_key_events_not_escaped_unless_asked(server: ScriptedServer) -> None:
    """Only IAM publishes are escaped by default; html_escape=True forces it."""
    client, peer = await open_client(server)
    async with client:
        _, frame = await publish(client, peer, {"h": "<b>"})
        assert frame["events"] == ['{"h":"<b>"}']
        _, frame = await publish(client, peer, {"h": "<b>"}, authorizer=iam(server))
        assert frame["events"] == ['{"h":"\\u003cb\\u003e"}']
    client, peer = await open_client(server, authorizer=api_key(server), html_escape=True)
    async with client:
        _, frame = await publish(client, peer, {"h": "<b>"})
        assert frame["events"] == ['{"h":"\\u003cb\\u003e"}']


async def test_iam_per_operation_signatures_differ(server: ScriptedServer) -> None:
    """Each operation is signed over its own body: a subscribe map does not verify as publish."""
    client, peer = await open_client(server, authorizer=iam(server))
    async with client:
        subscribing = asyncio.ensure_future(client.subscribe("default/x"))
        frame = await peer.subscribed()
        await subscribing
        with pytest.raises(AssertionError, match="signature mismatch"):
            verify_sigv4(frame["authorization"], '{"channel":"default/y"}')
