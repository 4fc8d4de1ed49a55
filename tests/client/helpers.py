"""A scripted AppSync-like WebSocket server for client tests (raw ``websockets``).

Each accepted connection is handed to the test as a :class:`PeerConnection`, which can
do the standard handshake, read the client's frames and send whatever the test wants.
By default the server selects ``aws-appsync-event-ws``, answers ``connection_init`` with
``connection_ack`` and sends ``ka`` every 50 ms; every knob can be turned off per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from appsync_events.protocol.subprotocol import (
    PROTOCOL_EVENTS,
    decode_auth_subprotocol,
    find_auth_subprotocol,
    lower_keys,
)

TIMEOUT_FACTOR = float(os.environ.get("APPSYNC_TESTS_TIMEOUT_FACTOR", "1"))
MS = 0.001 * TIMEOUT_FACTOR
"""One millisecond, scaled for slow CI machines."""
WAIT = 5.0 * TIMEOUT_FACTOR
"""Upper bound for waits that should succeed (a failing test fails instead of hanging)."""

API_KEY = "da2-abcdefghijklmnopqrstuvwxyz"


@dataclass
class ServerOptions:
    select: str | None = PROTOCOL_EVENTS
    """Subprotocol to select (``None``: select none)."""
    auto_ack: bool = True
    connection_timeout_ms: int | None = round(300 * MS * 1000)
    """``connectionTimeoutMs`` of the ack: 300 ms, scaled like :attr:`ka_interval`."""
    ka_interval: float | None = 50 * MS
    status: int | None = None
    """Refuse the upgrade with this HTTP status."""
    status_body: bytes = b""
    auto_unsubscribe: bool = True
    max_queue: int = 16
    """The server's receive queue (frames): small values make a paused peer stall the client."""
    """Answer every ``unsubscribe`` with ``unsubscribe_success`` (still queued for the test)."""


class PeerConnection:
    """The server side of one client connection."""

    def __init__(self, ws: ServerConnection, options: ServerOptions) -> None:
        self.ws = ws
        self.options = options
        offered = ws.request.headers.get_all("Sec-WebSocket-Protocol") if ws.request else []
        self.offered = [p.strip() for item in offered for p in item.split(",")]
        header = find_auth_subprotocol(self.offered)
        self.auth: dict[str, str] = decode_auth_subprotocol(header) if header else {}
        self.received: list[dict[str, Any]] = []
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.acked = asyncio.Event()
        self.done = asyncio.Event()
        self.reading = asyncio.Event()
        self.reading.set()
        self._ka: asyncio.Task[None] | None = None

    async def run(self) -> None:
        try:
            while True:
                await self.reading.wait()  # cleared: stop reading, so TCP stalls the client
                frame = await self.ws.recv()
                message = json.loads(frame)
                self.received.append(message)
                if message.get("type") == "connection_init" and self.options.auto_ack:
                    await self.ack()
                    continue
                if message.get("type") == "unsubscribe" and self.options.auto_unsubscribe:
                    await self.send({"type": "unsubscribe_success", "id": message["id"]})
                await self.inbox.put(message)
        except ConnectionClosed:
            pass
        finally:
            self.stop_ka()
            self.done.set()

    async def ack(self, connection_timeout_ms: int | None = -1) -> None:
        ms = (
            self.options.connection_timeout_ms
            if connection_timeout_ms == -1
            else connection_timeout_ms
        )
        frame: dict[str, Any] = {"type": "connection_ack"}
        if ms is not None:
            frame["connectionTimeoutMs"] = ms
        await self.send(frame)
        self.acked.set()
        if self.options.ka_interval is not None:
            self._ka = asyncio.get_running_loop().create_task(self._keepalive())

    async def _keepalive(self) -> None:
        assert self.options.ka_interval is not None
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.send({"type": "ka"})
                await asyncio.sleep(self.options.ka_interval)

    def stop_ka(self) -> None:
        if self._ka is not None:
            self._ka.cancel()
            self._ka = None

    async def send(self, frame: Mapping[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, kind: str | None = None, within: float = WAIT) -> dict[str, Any]:
        """Return the next client frame (of type ``kind``, skipping others when given)."""
        async with asyncio.timeout(within):
            while True:
                message = await self.inbox.get()
                if kind is None or message.get("type") == kind:
                    return message

    async def subscribed(self, within: float = WAIT) -> dict[str, Any]:
        """Read a ``subscribe`` and accept it."""
        message = await self.recv("subscribe", within)
        await self.send({"type": "subscribe_success", "id": message["id"]})
        return message

    async def published(self, within: float = WAIT) -> dict[str, Any]:
        """Read a ``publish`` and accept every event."""
        message = await self.recv("publish", within)
        successful = [{"identifier": f"id-{i}", "index": i} for i in range(len(message["events"]))]
        await self.send(
            {"type": "publish_success", "id": message["id"], "successful": successful, "failed": []}
        )
        return message

    async def unsubscribed(self, within: float = WAIT) -> dict[str, Any]:
        """Read an ``unsubscribe`` (accepted automatically unless ``auto_unsubscribe`` is off)."""
        message = await self.recv("unsubscribe", within)
        if not self.options.auto_unsubscribe:
            await self.send({"type": "unsubscribe_success", "id": message["id"]})
        return message

    async def data(self, sub_id: str, event: str) -> None:
        await self.send({"type": "data", "id": sub_id, "event": event})


class ScriptedServer:
    """``async with ScriptedServer() as server:``; ``await server.connection()`` per client."""

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        self._accepted: asyncio.Queue[PeerConnection] = asyncio.Queue()
        self._server: Server | None = None
        self.peers: list[PeerConnection] = []

    async def __aenter__(self) -> ScriptedServer:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            select_subprotocol=self._select,
            process_request=self._process_request,
            ping_interval=None,
            compression=None,
            max_size=None,
            max_queue=self.options.max_queue,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await asyncio.wait_for(self._server.wait_closed(), WAIT)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/event/realtime"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/event"

    def _select(self, connection: ServerConnection, offered: Any) -> Subprotocol | None:
        select = self.options.select
        return Subprotocol(select) if select is not None and select in offered else None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.options.status is None:
            return None
        return Response(
            self.options.status,
            "Refused",
            Headers(
                {
                    "Content-Type": "application/json",
                    "Content-Length": str(len(self.options.status_body)),
                }
            ),
            self.options.status_body,
        )

    async def _handle(self, ws: ServerConnection) -> None:
        peer = PeerConnection(ws, self.options)
        self.peers.append(peer)
        await self._accepted.put(peer)
        await peer.run()

    async def connection(self, within: float = WAIT) -> PeerConnection:
        """Return the next accepted connection."""
        return await asyncio.wait_for(self._accepted.get(), within)


@contextlib.asynccontextmanager
async def scripted(**options: Any) -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer(ServerOptions(**options)) as server:
        yield server


async def serve_realtime(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve ``handler`` at ``/event/realtime`` with aiohttp on a free loopback port.

    Returns the runner (``await runner.cleanup()`` stops it) and the port.
    """
    app = web.Application()
    app.router.add_get("/event/realtime", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    assert site._server is not None
    port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, port


# --- IAM: an independent SigV4 check with botocore's primitives -------------------------------


CREDENTIALS = ReadOnlyCredentials(
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "SESSIONTOKEN"
)
REGION = "eu-central-1"


def verify_sigv4(headers: Mapping[str, str], body: str, *, region: str = REGION) -> None:
    """Recompute the SigV4 signature of the virtual ``POST https://<host>/event``.

    Raises:
        AssertionError: the signature does not match.
    """
    h = lower_keys(headers)
    auth = h["authorization"]
    algorithm, _, rest = auth.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256", auth
    parts = dict(item.strip().split("=", 1) for item in rest.split(","))
    access_key, date, scope_region, service, terminal = parts["Credential"].split("/")
    assert (access_key, scope_region, service, terminal) == (
        CREDENTIALS.access_key,
        region,
        "appsync",
        "aws4_request",
    )
    signed = parts["SignedHeaders"].split(";")
    assert signed == sorted(signed)
    assert {"host", "x-amz-date"} <= set(signed)
    request = AWSRequest(
        method="POST",
        url=f"https://{h['host']}/event",
        data=body.encode("utf-8"),
        headers={name: h[name] for name in signed},
    )
    request.context["timestamp"] = h["x-amz-date"]
    assert h["x-amz-date"].startswith(date)
    signer = SigV4Auth(CREDENTIALS, "appsync", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    assert parts["Signature"] == expected, f"signature mismatch; canonical request:\n{canonical}"
