"""Fixtures of the client tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

import appsync_events
from appsync_events import authorizer

from .helpers import API_KEY, PeerConnection, ScriptedServer, ServerOptions


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    """A scripted server with the default behaviour (ack, ka every 50 ms)."""
    async with ScriptedServer(ServerOptions()) as s:
        yield s


def api_key(server: ScriptedServer, key: str = API_KEY) -> authorizer.ApiKey:
    return authorizer.ApiKey(api_key=key, endpoint=server.http_url)


async def open_client(
    server: ScriptedServer, **kwargs: Any
) -> tuple[appsync_events.Client, PeerConnection]:
    """Connect a client to ``server`` and return it with the server side of it."""
    kwargs.setdefault("authorizer", api_key(server))
    kwargs.setdefault("operation_timeout", 2.0)
    client = await appsync_events.connect(server.url, **kwargs)
    peer = await server.connection()
    return client, peer
