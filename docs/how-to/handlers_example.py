"""Namespace handlers in the emulator: filter, transform and refuse, as APPSYNC_JS code would."""

from __future__ import annotations

import pytest

import appsync_events
from appsync_emulator import HandlerError, NamespaceConfig, Unauthorized


def on_publish(ctx):  # may be async
    out = []
    for event in ctx.events:  # [{"id": ..., "payload": <the parsed JSON>}]
        if event["payload"].get("spam"):
            continue  # filtered: not broadcast, still "successful"
        if "text" not in event["payload"]:
            out.append({"id": event["id"], "error": "text required"})  # -> result.failed
        else:
            out.append({"id": event["id"], "payload": {**event["payload"], "checked": True}})
    return out  # None or [] broadcasts nothing


def on_subscribe(ctx):
    if ctx.info.channel.path.endswith("/*"):
        raise HandlerError("no wildcards here")  # util.error(msg): subscribe_error
    groups = (ctx.identity or {}).get("groups") or []  # API_KEY has no identity
    if ctx.info.channel.path.startswith("/chat/admins") and "admins" not in groups:
        raise Unauthorized()  # util.unauthorized(): subscribe_error, Unauthorized


CHAT = NamespaceConfig(name="chat", on_publish=on_publish, on_subscribe=on_subscribe)


@pytest.mark.appsync(namespaces=["default", CHAT])
@pytest.mark.asyncio
async def test_handlers(appsync_client):
    """on_publish transforms and filters events; on_subscribe refuses some channels."""
    sub = await appsync_client.subscribe("chat/lobby")
    result = await appsync_client.publish(
        "chat/lobby", {"text": "hi"}, {"spam": True}, {"no": "text"}
    )
    assert [ok.index for ok in result.successful] == [0, 1]
    assert [(bad.index, bad.message) for bad in result.failed] == [(2, "text required")]
    assert (await sub.next()).json() == {"text": "hi", "checked": True}

    with pytest.raises(appsync_events.SubscribeError, match="no wildcards here"):
        await appsync_client.subscribe("chat/*")
    with pytest.raises(appsync_events.UnauthorizedError):
        await appsync_client.subscribe("chat/admins")
