"""Lone surrogates and non-UTF-8 bytes from clients: exact errors, never a crash or a hang.

A JSON ``\\udXXX`` escape decodes to a lone surrogate, and aiohttp decodes non-UTF-8 header
bytes to lone surrogates too.  No UTF-8 text frame can carry one, and the libraries the
verifiers use cannot encode one.  Each case gets an AppSync error, the connection keeps
serving, and nothing is collected as an emulator bug (``check()`` stays clean).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from appsync_emulator import EmulatorServer
from appsync_emulator.config import (
    DEFAULT_ACCESS_KEY_ID,
    AuthType,
    NamespaceConfig,
)
from appsync_emulator.handlers import PUBLISH_FAILURE, HandlerContext, HandlerFailure
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS

from .conftest import WAIT, RawClient, api_auth, fast_config, open_raw

LONE = "\ud800"
MODES = (AuthType.API_KEY, AuthType.AWS_IAM)


def surrogate_payload(ctx: HandlerContext) -> list[dict[str, Any]]:
    assert ctx.events is not None
    return [{"id": event["id"], "payload": {"text": LONE}} for event in ctx.events]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    """Replaces the conftest server (``client`` uses this one): API key and IAM, and a
    namespace whose handler returns a payload no frame can carry."""
    config = fast_config(
        auth_providers=MODES,
        default_publish_auth_modes=MODES,
        default_subscribe_auth_modes=MODES,
        namespaces=(
            NamespaceConfig(name="default"),
            NamespaceConfig(name="shaped", on_publish=surrogate_payload),
        ),
    )
    async with EmulatorServer(config) as emulator:
        yield emulator


def _iam_map(server: EmulatorServer, **changes: str) -> dict[str, str]:
    """An IAM-shaped map (the signature is never reached) with ``changes`` applied."""
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    region = changes.pop("region", server.region)
    credential = f"{DEFAULT_ACCESS_KEY_ID}/{now[:8]}/{region}/appsync/aws4_request"
    auth = {
        "host": api_auth(server)["host"],
        "x-amz-date": now,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}",
    }
    auth.update(changes)
    return auth


async def _post_raw(server: EmulatorServer, header_lines: bytes) -> tuple[int, dict[str, Any]]:
    """POST /event with hand-written header bytes; return the status and JSON body."""
    authority = server.http_endpoint.split("/")[2]
    host, port = authority.rsplit(":", 1)
    body = b'{"channel":"default/x","events":["1"]}'
    request = (
        b"POST /event HTTP/1.1\r\nHost: " + authority.encode() + b"\r\n" + header_lines
        + b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )  # fmt: skip
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        async with asyncio.timeout(WAIT):
            response = await reader.read()
    finally:
        writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(payload)


# --- events -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_ws_event_with_a_lone_surrogate_is_not_json(
    server: EmulatorServer, client: RawClient
) -> None:
    """publish_error BadRequestException naming the index; the connection keeps serving."""
    await client.subscribe("default/x")
    await client.publish("default/x", ['"ok"', f'"{LONE}"'])
    frame = await client.expect("publish_error", id="p1")
    assert frame["errors"] == [
        {
            "errorType": "BadRequestException",
            "message": "Invalid event at index 1: not valid JSON: "
            "lone surrogate U+D800 at char 1 (not UTF-8 text)",
        }
    ]
    await client.publish("default/x", ['"\\ud800"'], pub_id="p2")  # the escape is fine
    await client.expect("publish_success", id="p2")
    await client.expect("data", id="s1", event='"\\ud800"')
    server.check()


@pytest.mark.asyncio
async def test_http_event_with_a_lone_surrogate_is_400(server: EmulatorServer) -> None:
    """The same rule on POST /event: 400 BadRequestException."""
    body = json.dumps({"channel": "default/x", "events": ['"a"', f'"{LONE}"']})
    headers = {"x-api-key": server.api_key or "", "content-type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.post(server.http_endpoint, data=body, headers=headers) as response:
            assert response.status == 400
            result = await response.json()
    assert result["errors"][0]["errorType"] == "BadRequestException"
    assert "index 1" in result["errors"][0]["message"]
    assert "lone surrogate" in result["errors"][0]["message"]
    server.check()


@pytest.mark.asyncio
async def test_handler_payload_with_a_lone_surrogate_is_a_handler_failure(
    server: EmulatorServer, client: RawClient
) -> None:
    """An on_publish payload no frame can carry: PublishProcessingError, collected as the
    handler's bug (not the emulator's), and the connection keeps serving."""
    await client.publish("shaped/x", ['"e"'])
    frame = await client.expect("publish_error", id="p1")
    assert frame["errors"] == [
        {"errorType": PUBLISH_FAILURE.error_type, "message": PUBLISH_FAILURE.message}
    ]
    with pytest.raises(HandlerFailure, match="not JSON"):
        server.check()
    await client.publish("default/x", ['"e"'], pub_id="p2")
    await client.expect("publish_success", id="p2")


# --- auth maps ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_api_key_with_a_lone_surrogate_is_unauthorized(
    server: EmulatorServer, client: RawClient
) -> None:
    frame = await client.subscribe("default/x", auth={**client.auth, "x-api-key": "da2-" + LONE})
    assert frame["type"] == "subscribe_error"
    assert frame["errors"][0]["errorType"] == "UnauthorizedException"
    server.check()


@pytest.mark.asyncio
async def test_header_subprotocol_with_a_lone_surrogate_is_unauthorized(
    server: EmulatorServer,
) -> None:
    """The ``header-`` JSON may hold an escape; the connection is refused as unauthorized."""
    token = base64.urlsafe_b64encode(b'{"host":"h","x-api-key":"\\ud800"}').rstrip(b"=")
    raw = await open_raw(server, subprotocols=[PROTOCOL_EVENTS, "header-" + token.decode()])
    await raw.send({"type": "connection_init"})
    frame = await raw.expect("connection_error")
    assert frame["errors"][0]["errorType"] == "UnauthorizedException"
    await raw.closed()
    server.check()


@pytest.mark.asyncio
@pytest.mark.parametrize("header", ["host", "x-amz-date"])
async def test_iam_signed_header_with_a_lone_surrogate_is_a_bad_request(
    server: EmulatorServer, client: RawClient, header: str
) -> None:
    auth = _iam_map(server)
    auth[header] = auth[header][:-1] + LONE
    await client.publish("default/x", ['"e"'], auth=auth)
    frame = await client.expect("publish_error", id="p1")
    assert frame["errors"] == [
        {
            "errorType": "BadRequestException",
            "message": f"The value of the signed header '{header}' is not UTF-8 text.",
        }
    ]
    server.check()


@pytest.mark.asyncio
async def test_error_quoting_a_lone_surrogate_is_sent_escaped(
    server: EmulatorServer, client: RawClient
) -> None:
    """An error message that quotes the client's text goes out with a ``\\udXXX`` escape,
    which decodes to the same message (it used to kill the connection's writer)."""
    await client.publish("default/x", ['"e"'], auth=_iam_map(server, region=LONE))
    text = await client.recv_text()
    while text == '{"type":"ka"}':
        text = await client.recv_text()
    assert isinstance(text, str)
    assert "\\ud800" in text
    frame = json.loads(text)
    assert frame["type"] == "publish_error"
    assert frame["errors"][0]["message"] == (
        f"Credential should be scoped to a valid region, not '{LONE}'. "
    )
    server.check()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("header_lines", "status"),
    [
        (b"x-api-key: da2-\xff\xfe\r\n", 401),
        (b"Authorization: eyJ\xff.e30.c2ln\r\n", 401),
        (None, 200),  # a valid key with an unrelated non-UTF-8 header
    ],
)
async def test_http_headers_that_are_not_utf8(
    server: EmulatorServer, header_lines: bytes | None, status: int
) -> None:
    if header_lines is None:
        header_lines = b"x-api-key: " + (server.api_key or "").encode() + b"\r\nx-note: \xe9\r\n"
    got, body = await _post_raw(server, header_lines)
    assert got == status, body
    if status == 401:
        assert body["errors"][0]["errorType"] == "UnauthorizedException"
    server.check()


# --- the writer ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_bug_in_the_writer_closes_1011_and_is_collected(
    server: EmulatorServer, client: RawClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer task never dies silently (which would leave the client waiting forever)."""
    (connection,) = server._emulator.connections.values()

    def broken(*args: object) -> None:
        raise LookupError("writer bug")

    monkeypatch.setattr(connection.outbound, "_record_error_frame", broken)
    await client.send("{")  # any reply reaches the broken writer
    code, reason = await client.closed()
    assert (code, reason) == (1011, "internal error")
    with pytest.raises(LookupError, match="writer bug"):
        server.check()
