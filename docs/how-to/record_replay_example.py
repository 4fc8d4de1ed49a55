"""Record a session against the emulator, then replay it: a bug seen once becomes a test."""

from __future__ import annotations

import pytest

from appsync_emulator import EmulatorConfig, EmulatorServer
from appsync_emulator.faults import DropKeepAlives
from appsync_emulator.recording_file import start_recording
from appsync_emulator.replay import Replayer
from appsync_events import HeartbeatTimeoutError, connect
from appsync_events.authorizer import ApiKey


async def chat(server, when_subscribed=None):
    """The code under test: what it received, and how it ended."""
    auth = ApiKey(api_key=server.api_key, endpoint=server.http_endpoint)
    seen = []
    async with connect(server.realtime_endpoint, authorizer=auth) as client:
        sub = await client.subscribe("default/chat")
        await client.publish("default/chat", {"text": "hi"})
        seen.append((await sub.next()).json())
        if when_subscribed is not None:
            when_subscribed()
        try:
            await sub.next()
        except HeartbeatTimeoutError:
            seen.append("heartbeat timeout")
    return seen


@pytest.mark.asyncio
async def test_record_then_replay(tmp_path):
    """The replay gives the client the same events and the same error as the session."""
    path = tmp_path / "session.jsonl"
    # 1. Record a session: here against the emulator, with the keep-alives dropped.
    config = EmulatorConfig(keepalive_interval=0.05, connection_timeout_ms=300)
    async with EmulatorServer(config) as server:
        start_recording(server, path)
        recorded = await chat(server, lambda: server.inject(DropKeepAlives()))
    assert recorded == [{"text": "hi"}, "heartbeat timeout"]

    # 2. Replay it: the server side of that session, played back to the same code.
    async with Replayer(path, speed=2.0) as replayer:
        assert await chat(replayer) == recorded
