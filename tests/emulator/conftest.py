"""Raw-socket helpers for the emulator shell tests.

The tests talk to a live emulator on 127.0.0.1:0 with hand-written frames, through a
:class:`RawClient` over ``websockets`` and an ``aiohttp.ClientSession``, so that every byte
the server sends is checked without the project's client in between.  Timings are short:
``ka`` every 50 ms, ``connectionTimeoutMs`` 300.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from appsync_emulator import EmulatorConfig, EmulatorServer
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol
from tests.conftest import MS

KA_INTERVAL = 50 * MS
TIMEOUT_MS = 300
WAIT = 2000 * MS
"""How long a test waits for a frame that must arrive."""


def fast_config(**changes: Any) -> EmulatorConfig:
    """The default configuration with test timings (ka 50 ms, connectionTimeoutMs 300)."""
    base: dict[str, Any] = {
        "keepalive_interval": KA_INTERVAL,
        "connection_timeout_ms": TIMEOUT_MS,
    }
    base.update(changes)
    return EmulatorConfig(**base)


def api_auth(server: Any, key: str | None = None) -> dict[str, str]:
    """An API-key authorization map as Amplify sends it."""
    host = server.http_endpoint.split("://", 1)[1].split("/", 1)[0]
    return {"host": host, "x-api-key": key if key is not None else server.api_key}


class RawClient:
    """A WebSocket client that sends and reads raw frames."""

    def __init__(self, ws: ClientConnection, auth: Mapping[str, str]) -> None:
        self.ws = ws
        self.auth = dict(auth)
        self.kas = 0

    async def send(self, frame: Mapping[str, Any] | str | bytes) -> None:
        if isinstance(frame, str | bytes):
            await self.ws.send(frame)
        else:
            await self.ws.send(json.dumps(frame))

    async def recv(self, *, skip_ka: bool = True, within: float = WAIT) -> dict[str, Any]:
        """The next frame as JSON (``ka`` frames are counted and skipped by default)."""
        async with asyncio.timeout(within):
            while True:
                text = await self.ws.recv()
                frame = json.loads(text)
                assert isinstance(frame, dict), text
                if skip_ka and frame.get("type") == "ka":
                    self.kas += 1
                    continue
                return frame

    async def recv_text(self, *, within: float = WAIT) -> str | bytes:
        async with asyncio.timeout(within):
            return await self.ws.recv()

    async def expect(self, frame_type: str, **fields: Any) -> dict[str, Any]:
        """Read the next non-``ka`` frame and check its type and fields."""
        frame = await self.recv()
        assert frame.get("type") == frame_type, frame
        for key, value in fields.items():
            assert frame.get(key) == value, frame
        return frame

    async def init(self) -> dict[str, Any]:
        await self.send({"type": "connection_init"})
        return await self.expect("connection_ack")

    async def subscribe(
        self, channel: str, sub_id: str = "s1", auth: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        await self.send(
            {
                "type": "subscribe",
                "id": sub_id,
                "channel": channel,
                "authorization": dict(auth if auth is not None else self.auth),
            }
        )
        return await self.recv()

    async def publish(
        self,
        channel: str,
        events: Sequence[str],
        pub_id: str = "p1",
        auth: Mapping[str, str] | None = None,
    ) -> None:
        await self.send(
            {
                "type": "publish",
                "id": pub_id,
                "channel": channel,
                "events": list(events),
                "authorization": dict(auth if auth is not None else self.auth),
            }
        )

    async def closed(self, within: float = WAIT) -> tuple[int | None, str]:
        """Read (and drop) frames until the server closes; return the close code and reason."""
        async with asyncio.timeout(within):
            while True:
                try:
                    await self.ws.recv()
                except ConnectionClosed as exc:
                    received = exc.rcvd
                    if received is None:
                        return None, ""
                    return received.code, received.reason


async def open_raw(
    server: Any,
    *,
    auth: Mapping[str, str] | None = None,
    subprotocols: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    ssl: Any = None,
) -> RawClient:
    """Connect with ``aws-appsync-event-ws`` and a ``header-`` subprotocol for ``auth``."""
    auth = dict(auth if auth is not None else api_auth(server))
    if subprotocols is None:
        subprotocols = [PROTOCOL_EVENTS, encode_auth_subprotocol(auth)]
    ws = await connect(
        server.realtime_endpoint,
        subprotocols=list(subprotocols),  # type: ignore[arg-type]
        additional_headers=dict(headers or {}),
        ping_interval=None,
        proxy=None,
        max_size=None,
        compression=None,
        open_timeout=WAIT,
        close_timeout=WAIT,
        ssl=ssl,
    )
    return RawClient(ws, auth)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    """An emulator on the test's loop with fast timings; ``check()`` runs at teardown."""
    async with EmulatorServer(fast_config()) as emulator:
        yield emulator
        emulator.check()


@pytest_asyncio.fixture
async def client(server: EmulatorServer) -> AsyncIterator[RawClient]:
    """A raw client that has sent connection_init and read the ack."""
    raw = await open_raw(server)
    await raw.init()
    try:
        yield raw
    finally:
        await raw.ws.close()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
