"""A subscriber that never reads is cut: 1008, then abort; its descriptor is released.

The peer is a raw socket that completes the upgrade, subscribes, and then never reads,
so the server's writes back up into aiohttp's drain.  The test measures the server's open
descriptors (``/proc/self/fd``: the server runs in this process) and its connection table.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import socket
import struct
import weakref
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import pytest_asyncio

from appsync_emulator import EmulatorServer, Limits
from appsync_emulator.recorder import ConnectionInfo, Recorder
from appsync_emulator.ws_connection import CLOSE_TIMEOUT
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol
from tests.conftest import MS

from .conftest import WAIT, api_auth, fast_config

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")

CHANNEL = "default/stalled"
EVENT = json.dumps("x" * 100_000)
"""One ~100 kB event: a few of them fill the loopback buffers."""


def open_fds() -> int:
    """Descriptors open in this process (the server runs in it)."""
    return len(os.listdir("/proc/self/fd"))


async def wait_fds(expected: int, within: float = WAIT) -> int:
    """Poll the descriptor count until it is ``expected`` (bounded); return the last count.

    Nothing signals a descriptor's release, so this is a bounded measurement, not a sleep
    for synchronisation: it returns as soon as the count is reached.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    count = open_fds()
    while count != expected and loop.time() < deadline:
        await asyncio.sleep(10 * MS)
        count = open_fds()
    return count


def ws_frame(text: str) -> bytes:
    """A masked text frame (RFC 6455 section 5.2) with an all-zero mask key."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    return header + b"\0\0\0\0" + payload


async def upgrade(server: EmulatorServer, auth: dict[str, str]) -> socket.socket:
    """A raw socket with a tiny receive buffer, upgraded to ``/event/realtime``."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    port = server.port
    assert port is not None
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /event/realtime HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {PROTOCOL_EVENTS}, {encode_auth_subprotocol(auth)}\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    async with asyncio.timeout(WAIT):
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 1)
            assert chunk, head
            head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def read_until_cut(sock: socket.socket, within: float = WAIT) -> str:
    """Read (and drop) what the server sent until EOF or a reset; say which it was."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(within):
        while True:
            try:
                chunk = await loop.sock_recv(sock, 1 << 20)
            except ConnectionResetError:
                return "reset"
            if not chunk:
                return "eof"


async def stalled_subscriber(server: EmulatorServer, sock: socket.socket) -> None:
    """Upgrade done: send connection_init and subscribe, then never read again."""
    auth = api_auth(server)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, ws_frame(json.dumps({"type": "connection_init"})))
    subscribe = {"type": "subscribe", "id": "s1", "channel": CHANNEL, "authorization": auth}
    await loop.sock_sendall(sock, ws_frame(json.dumps(subscribe)))
    await server.wait_subscribed(CHANNEL, timeout=WAIT)
    assert len(server.emulator.connections) == 1


async def publish_until(server: EmulatorServer, done: Callable[[], bool]) -> None:
    """Publish five big events at a time over HTTP until ``done()`` (at most 200 times)."""
    body = json.dumps({"channel": CHANNEL, "events": [EVENT] * 5}).encode()
    headers = {"x-api-key": server.api_key or "", "content-type": "application/json"}
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if done():
                return
            async with http.post(server.http_endpoint, data=body, headers=headers) as response:
                assert response.status == 200, await response.text()
    assert done()


async def wait_closed(server: EmulatorServer, within: float = WAIT) -> ConnectionInfo:
    """The record of the (only) connection once it is closed."""

    def closed(recorder: Recorder) -> ConnectionInfo | None:
        info = recorder.connections[0]
        return None if info.open else info

    return await server.wait_for(closed, timeout=within)


@pytest_asyncio.fixture
async def small_queue_server() -> AsyncIterator[EmulatorServer]:
    """An emulator whose send queue holds 8 frames."""
    config = fast_config(limits=Limits(send_queue_frames=8))
    async with EmulatorServer(config) as emulator:
        yield emulator
        emulator.check()


@pytest.mark.asyncio
async def test_stalled_subscriber_is_cut_and_its_descriptor_released(
    small_queue_server: EmulatorServer,
) -> None:
    """A subscriber that never reads is closed with 1008, aborted, and leaves no descriptor."""
    server = small_queue_server
    baseline = open_fds()
    sock = await upgrade(server, api_auth(server))
    try:
        await stalled_subscriber(server, sock)
        connected = open_fds()  # both ends of the socket: ours and the server's
        (conn,) = server.emulator.connections.values()
        connection = weakref.ref(conn)
        queue = weakref.ref(conn.outbound.queue)
        del conn
        await publish_until(
            server, lambda: any(e.frame_type == "overflow" for e in server.recorder.errors)
        )
        info = await wait_closed(server)
        assert info.close_code == 1008
        assert server.emulator.connections == {}
        gc.collect()
        assert connection() is None  # its memory (queue and all) is released
        assert queue() is None
        # The server's end is released while ours is still open (the peer never went
        # away); the HTTP session's sockets are closed by now too.
        assert connected - baseline == 2
        assert await wait_fds(connected - 1) == connected - 1
        assert await read_until_cut(sock) in ("reset", "eof")
    finally:
        sock.close()


@pytest.mark.asyncio
async def test_queued_close_to_a_stalled_subscriber_is_not_held_back(
    server: EmulatorServer,
) -> None:
    """A close queued behind frames a peer never reads happens within the close timeout."""
    baseline = open_fds()
    sock = await upgrade(server, api_auth(server))
    try:
        await stalled_subscriber(server, sock)
        connected = open_fds()
        (conn,) = server.emulator.connections.values()
        await publish_until(server, lambda: len(conn.outbound.queue) >= 10)
        server.close_connection(conn.id, 1000, "bye")
        # The close waits CLOSE_TIMEOUT for the queued frames, then closes at once.
        info = await wait_closed(server, within=WAIT + 2 * CLOSE_TIMEOUT)
        assert (info.close_code, info.close_reason) == (1000, "bye")
        assert not any(e.frame_type == "overflow" for e in server.recorder.errors)
        assert server.emulator.connections == {}
        assert connected - baseline == 2
        assert await wait_fds(connected - 1, within=WAIT) == connected - 1
    finally:
        sock.close()


@pytest.mark.asyncio
async def test_shutdown_releases_a_stalled_subscriber() -> None:
    """Stopping the server with a stalled subscriber is bounded and releases its socket."""
    async with EmulatorServer(fast_config()) as server:
        baseline = open_fds()
        sock = await upgrade(server, api_auth(server))
        try:
            await stalled_subscriber(server, sock)
            connected = open_fds()
            (conn,) = server.emulator.connections.values()
            await publish_until(server, lambda: len(conn.outbound.queue) >= 10)
            async with asyncio.timeout(WAIT + 2 * CLOSE_TIMEOUT):
                await server.stop()
            assert server.emulator.connections == {}
            assert connected - baseline == 2
            # Only ours is left (the listener is closed too).
            assert await wait_fds(connected - 2) == connected - 2
            assert await read_until_cut(sock) in ("reset", "eof")
        finally:
            sock.close()
