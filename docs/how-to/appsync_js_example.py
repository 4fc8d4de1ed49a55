"""Run the APPSYNC_JS handlers of a namespace (chat_handlers.js) in the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

import appsync_events
from appsync_emulator.config import NamespaceConfig

CHAT = NamespaceConfig(
    name="chat",
    # the file your AWS project deploys; compiled at start-up, reloaded when it changes
    code_handlers_file=Path(__file__).with_name("chat_handlers.js"),
)


@pytest.mark.appsync(namespaces=["default", CHAT])
@pytest.mark.asyncio
async def test_chat_handlers(appsync_client):
    sub = await appsync_client.subscribe("chat/lobby")
    result = await appsync_client.publish("chat/lobby", {"text": "  hi  "}, {"text": 42})
    assert [ok.index for ok in result.successful] == [0]
    assert [(bad.index, bad.message) for bad in result.failed] == [(1, "text must be a string")]
    event = (await sub.next()).json()
    assert event["text"] == "hi"
    assert event["at"].endswith("Z")

    with pytest.raises(appsync_events.UnauthorizedError):
        await appsync_client.subscribe("chat/admin/logs")
