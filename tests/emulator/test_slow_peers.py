"""Peers that go away mid-request, or drip bytes: cut cleanly, logged in one quiet line.

The peers are raw sockets on 127.0.0.1 that write part of a request and then stop, close,
or reset the connection.  The server runs on the test's loop, so its log records are
captured as they are emitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from websockets.exceptions import InvalidStatus

from appsync_emulator import AuthType, EmulatorServer, Limits
from appsync_emulator.config import LambdaAuthorizerConfig
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol
from tests.conftest import MS

from .conftest import WAIT, fast_config, open_raw

PARTIAL_BODY = b'{"channel":"default/x","events":["'
"""The start of a publish body; the request announces more than this."""


class Counter(logging.Handler):
    """Counts the records whose message contains ``text`` and wakes a waiter at ``target``."""

    def __init__(self, text: str, target: int) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.target = target
        self.count = 0
        self.reached = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.count += 1
            if self.count >= self.target:
                self.reached.set()


@pytest_asyncio.fixture
async def quiet_server() -> AsyncIterator[EmulatorServer]:
    """An emulator with test timings."""
    async with EmulatorServer(fast_config()) as emulator:
        yield emulator
        emulator.check()


async def raw_socket(server: EmulatorServer) -> socket.socket:
    """A connected non-blocking socket to the server."""
    port = server.port
    assert port is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


def publish_head(server: EmulatorServer, length: int) -> bytes:
    """The headers of a ``POST /event`` announcing a ``length``-byte body."""
    return (
        f"POST /event HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"x-api-key: {server.api_key}\r\ncontent-type: application/json\r\n"
        f"content-length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.asyncio
@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
async def test_client_gone_mid_body_logs_one_quiet_line(
    quiet_server: EmulatorServer, caplog: pytest.LogCaptureFixture, reset: bool
) -> None:
    """A client that goes away mid-body is logged once at DEBUG/INFO, with no traceback."""
    server = quiet_server
    times = 20
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp's included
    counter = Counter("went away mid-body", times)
    logging.getLogger().addHandler(counter)
    loop = asyncio.get_running_loop()
    try:
        for _ in range(times):
            sock = await raw_socket(server)
            try:
                await loop.sock_sendall(sock, publish_head(server, 1000) + PARTIAL_BODY)
                if reset:  # an RST instead of a FIN
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                sock.close()
        async with asyncio.timeout(WAIT):
            await counter.reached.wait()
    finally:
        logging.getLogger().removeHandler(counter)
    assert counter.count == times
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]
    assert server.recorder.published == []


# --- slow peers: header and body timeouts ----------------------------------------------------

SLOW_TIMEOUT = 1000 * MS
"""The header and body timeouts of the slow-peer tests: long enough for a normal request's
headers to arrive from this loop even when it is busy with 50 slow peers."""
DRIP = 20 * MS
"""A slow peer's pace: one byte per DRIP."""


@pytest_asyncio.fixture
async def guarded_server() -> AsyncIterator[EmulatorServer]:
    """An emulator with short header and body timeouts."""
    limits = Limits(header_timeout=SLOW_TIMEOUT, body_timeout=SLOW_TIMEOUT)
    async with EmulatorServer(fast_config(limits=limits)) as emulator:
        yield emulator
        emulator.check()


async def drip(sock: socket.socket, data: bytes) -> bytes:
    """Send ``data`` one byte per :data:`DRIP` until the server cuts the connection; return
    what the server sent before it did.  Bounded by the data's length.

    A reader task reads everything the server sends (a read cancelled by a timeout could
    lose what it had just read); the pause between two bytes is a wait for the cut.
    """
    loop = asyncio.get_running_loop()
    received = bytearray()
    cut = asyncio.Event()

    async def read() -> None:
        try:
            while chunk := await loop.sock_recv(sock, 4096):
                received.extend(chunk)
        except ConnectionResetError:
            pass
        finally:
            cut.set()

    reader = asyncio.create_task(read())
    try:
        for position in range(len(data) + 1):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRIP):
                    await cut.wait()
            if cut.is_set():
                return bytes(received)
            if position < len(data):
                try:
                    await loop.sock_sendall(sock, data[position : position + 1])
                except (ConnectionResetError, BrokenPipeError):
                    async with asyncio.timeout(WAIT):
                        await cut.wait()
                    return bytes(received)
        raise AssertionError(f"not cut after {len(data)} bytes; received {bytes(received)!r}")
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def upgrade_request(server: EmulatorServer) -> bytes:
    """A complete WebSocket upgrade request (more bytes than a slow peer sends in time)."""
    auth = {"host": f"127.0.0.1:{server.port}", "x-api-key": server.api_key or ""}
    return (
        f"GET /event/realtime HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {PROTOCOL_EVENTS}, {encode_auth_subprotocol(auth)}\r\n\r\n"
    ).encode()


async def slow_peer(server: EmulatorServer, kind: str) -> bytes:
    """One slow peer of ``kind``; returns what the server answered before cutting it."""
    sock = await raw_socket(server)
    try:
        if kind == "headers":
            return await drip(sock, upgrade_request(server))
        if kind == "silent":  # connects and sends nothing: wait for the cut
            async with asyncio.timeout(WAIT + SLOW_TIMEOUT):
                return await asyncio.get_running_loop().sock_recv(sock, 4096)
        body = b'{"channel":"default/x","events":["1"]}' * 20
        await asyncio.get_running_loop().sock_sendall(sock, publish_head(server, len(body)))
        return await drip(sock, body)
    finally:
        sock.close()


async def normal_clients(server: EmulatorServer, rounds: int) -> int:
    """Subscribe, publish over WebSocket and HTTP, receive: ``rounds`` times; count rounds."""
    done = 0
    async with aiohttp.ClientSession() as http:
        for round_ in range(rounds):
            client = await open_raw(server)
            try:
                await client.init()
                await client.subscribe(f"default/ok{round_}")
                body = json.dumps({"channel": f"default/ok{round_}", "events": ['"h"']})
                headers = {"x-api-key": server.api_key or "", "content-type": "application/json"}
                async with http.post(server.http_endpoint, data=body, headers=headers) as reply:
                    assert reply.status == 200, await reply.text()
                frame = await client.expect("data")
                assert frame["event"] == '"h"'
            finally:
                await client.ws.close()
            done += 1
    return done


@pytest.mark.asyncio
async def test_slow_peers_are_cut_while_normal_clients_work(
    guarded_server: EmulatorServer,
) -> None:
    """50 peers dripping headers or a body (or silent) are cut; normal clients are served."""
    server = guarded_server
    kinds = ["headers", "body", "silent", "headers", "body"] * 10
    async with asyncio.timeout(WAIT + 10 * SLOW_TIMEOUT):
        async with asyncio.TaskGroup() as group:
            peers = [group.create_task(slow_peer(server, kind)) for kind in kinds]
            served = group.create_task(normal_clients(server, 5))
    assert served.result() == 5
    for kind, peer in zip(kinds, peers, strict=True):
        answer = peer.result()
        if kind == "body":
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert b"RequestTimeoutException" in answer
        else:
            assert answer == b"", answer  # no answer: the headers never arrived
    assert [p for p in server.recorder.published if p.channel == "default/x"] == []
    assert server.emulator.connections == {}


@pytest.mark.asyncio
async def test_idle_keepalive_connection_outlives_the_header_timeout(
    guarded_server: EmulatorServer,
) -> None:
    """An idle kept-alive connection is not cut by the header timeout (only a started,
    unfinished request is): its next request is served, a dripped one is cut."""
    server = guarded_server
    loop = asyncio.get_running_loop()
    body = b'{"channel":"default/k","events":["1"]}'
    sock = await raw_socket(server)
    try:
        for round_ in range(2):
            await loop.sock_sendall(sock, publish_head(server, len(body)) + body)
            answer = b""
            async with asyncio.timeout(WAIT):
                while b'"successful"' not in answer:
                    chunk = await loop.sock_recv(sock, 4096)
                    assert chunk, answer
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            if round_:
                break
            # Stay idle for longer than the header timeout: the connection must stay open.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1.5 * SLOW_TIMEOUT):
                    assert await loop.sock_recv(sock, 4096) != b""
        # The next request's headers, dripped, are cut like a new connection's.
        assert await drip(sock, publish_head(server, len(body))) == b""
    finally:
        sock.close()


@pytest.mark.asyncio
async def test_upgrades_being_authorized_count_against_max_connections() -> None:
    """Concurrent upgrades cannot exceed limits.max_connections while they are being
    authorized: the extra one gets 429 TooManyConnections at once."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def authorizer(event: object) -> dict[str, object]:
        entered.set()
        await release.wait()
        return {"isAuthorized": True}

    config = fast_config(
        limits=Limits(max_connections=1),
        lambda_authorizer=LambdaAuthorizerConfig(authorizer=authorizer),
        auth_providers=(AuthType.API_KEY, AuthType.AWS_LAMBDA),
        connection_auth_modes=(AuthType.AWS_LAMBDA,),
    )
    async with EmulatorServer(config) as server:
        auth = {"host": f"127.0.0.1:{server.port}", "Authorization": "token"}
        first = asyncio.ensure_future(open_raw(server, auth=auth))
        try:
            async with asyncio.timeout(WAIT):
                await entered.wait()
            with pytest.raises(InvalidStatus) as refused:
                await open_raw(server, auth=auth)
            assert refused.value.response.status_code == 429
            assert b"Too many connections" in refused.value.response.body
        finally:
            release.set()
            client = await first
            await client.ws.close()
        server.check()


@pytest.mark.asyncio
async def test_sockets_over_max_sockets_are_answered_429() -> None:
    """Past limits.max_sockets a new socket gets 429 TooManyConnections and is closed,
    before its request is read; the sockets within the cap are served."""
    config = fast_config(limits=Limits(max_sockets=4))
    async with EmulatorServer(config) as server:
        loop = asyncio.get_running_loop()
        idle = [await raw_socket(server) for _ in range(3)]
        try:
            client = await open_raw(server)  # the fourth socket
            try:
                await client.init()
                refused = await raw_socket(server)
                try:
                    answer = b""
                    async with asyncio.timeout(WAIT):
                        while chunk := await loop.sock_recv(refused, 4096):
                            answer += chunk
                finally:
                    refused.close()
                assert answer.startswith(b"HTTP/1.1 429 "), answer
                assert b'"errorType":"LimitExceededException"' in answer, answer
                assert b"Too many connections" in answer
                await client.subscribe("default/cap")  # still served
            finally:
                await client.ws.close()
        finally:
            for sock in idle:
                sock.close()
        server.check()
