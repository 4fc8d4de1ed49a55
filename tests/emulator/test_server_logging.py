"""Logging: one logger per component, frames at DEBUG, secrets never written."""

from __future__ import annotations

import logging

import pytest

from appsync_emulator import EmulatorServer
from appsync_emulator._logging import redact_frame, redact_headers, truncate
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS

from .conftest import api_auth, fast_config, open_raw

SECRET = "da2-topsecretkey0000000000000"


def test_redact_headers_hides_credentials() -> None:
    """x-api-key, Authorization, X-Amz-Security-Token and header- tokens are redacted."""
    redacted = redact_headers(
        {
            "X-Api-Key": SECRET,
            "Authorization": "Bearer eyJhbGciOi.payload.signature",
            "x-amz-security-token": "FwoGZXIvYXdzEJr",
            "Sec-WebSocket-Protocol": "aws-appsync-event-ws, header-eyJob3N0Ijoi",
            "host": "example.com",
        }
    )
    text = repr(redacted)
    for secret in (SECRET, "payload.signature", "FwoGZXIvYXdzEJr", "eyJob3N0Ijoi"):
        assert secret not in text
    assert redacted["host"] == "example.com"
    assert redacted["Sec-WebSocket-Protocol"] == "aws-appsync-event-ws, header-<redacted>"


def test_redact_frame_hides_the_authorization_map() -> None:
    """A subscribe frame's authorization values are hidden; other fields stay."""
    frame = (
        '{"type":"subscribe","id":"s1","channel":"default/x","authorization":{"x-api-key":"%s"}}'
    )
    shown = redact_frame(frame % SECRET)
    assert SECRET not in shown
    assert '"channel":"default/x"' in shown
    assert redact_frame("not json") == "<frame: 8 chars, not JSON (Expecting value at char 0)>"
    assert truncate("x" * 600).endswith("(600 chars)")
    assert "bytes" in truncate(b"y" * 600)


@pytest.mark.asyncio
async def test_debug_logs_show_frames_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """At DEBUG every frame is logged on appsync_emulator.ws, and no key appears anywhere."""
    config = fast_config(api_keys=(fast_config().api_keys[0].__class__(key=SECRET),))
    with caplog.at_level(logging.DEBUG, logger="appsync_emulator"):
        async with EmulatorServer(config) as server:
            raw = await open_raw(server)
            await raw.init()
            await raw.subscribe("default/log")
            await raw.publish("default/log", ['"hello"'], auth=api_auth(server, "da2-wrongkey00"))
            await raw.expect("publish_error")
            bad = await open_raw(
                server, subprotocols=[PROTOCOL_EVENTS], headers={"x-api-key": SECRET}
            )
            await bad.ws.close()
            await raw.ws.close()
    text = caplog.text
    assert SECRET not in text
    assert "da2-wrongkey00" not in text
    loggers = {r.name for r in caplog.records}
    assert {"appsync_emulator.ws", "appsync_emulator.auth", "appsync_emulator.server"} <= loggers
    assert any(r.getMessage().startswith("[c1] < ") for r in caplog.records)
    assert any(r.getMessage().startswith("[c1] > ") for r in caplog.records)
