"""``GET /event/realtime``: the WebSocket upgrade.

The handshake checks the method, the shutdown state, the ``aws-appsync-event-ws``
subprotocol and the connection limit, authorizes the connection (from the ``header-``
subprotocol or the upgrade headers), then hands the socket to a
:class:`~appsync_emulator.ws_connection.WebSocketConnection` for its whole life.  A failed
connection authorization still upgrades: the first frame is answered with
``connection_error`` (:meth:`~appsync_emulator.ws_connection.WebSocketConnection.run`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping
from dataclasses import replace
from typing import Final, Protocol

from aiohttp import web

from appsync_events.errors import RemoteProtocolError
from appsync_events.protocol.messages import Operation
from appsync_events.protocol.subprotocol import (
    PROTOCOL_EVENTS,
    decode_auth_subprotocol,
    find_auth_subprotocol,
)

from ._clock import real_time
from ._http import error_response, method_not_allowed, request_headers
from ._logging import LOG_FAULTS, LOG_WS, ConnectionLogger, redact_subprotocols
from .catalogue import MISSING_SUBPROTOCOL, SHUTTING_DOWN, TOO_MANY_CONNECTIONS, UPGRADE_REQUIRED
from .faults import Point
from .operations import Operations
from .recorder import ConnectionInfo
from .verify import AuthFailure, AuthRequest, Identity, Transport, unauthorized
from .ws_connection import CLOSE_TIMEOUT, WebSocketConnection

__all__ = [
    "MAX_FRAME_MARGIN",
    "REALTIME_PATH",
    "RealtimeHost",
    "handle_realtime",
]

REALTIME_PATH: Final = "/event/realtime"
"""The endpoint's path: the only route to :func:`handle_realtime` (what the request's
decoded ``path`` is, without making the request build and cache it)."""

MAX_FRAME_MARGIN: Final = 16 * 1024
"""aiohttp's ``max_msg_size`` is the request limit plus this margin: frames a little over
the limit reach the core and get ``publish_error``; bigger ones are closed with 1009."""


class RealtimeHost(Protocol):
    """What the realtime endpoint needs of the emulator."""

    @property
    def operations(self) -> Operations:
        """The shared operation runner."""
        ...

    @property
    def closing(self) -> asyncio.Event:
        """Set when the server shuts down (no new upgrades)."""
        ...

    @property
    def connections(self) -> MutableMapping[str, WebSocketConnection]:
        """The open connections by id."""
        ...

    @property
    def upgrading(self) -> set[str]:
        """The ids of the upgrades past the connection limit check, not yet open: they
        count against ``limits.max_connections`` (authorizing one may take a while)."""
        ...

    def new_connection_id(self) -> str:
        """A fresh connection id."""
        ...


def _offered_subprotocols(request: web.BaseRequest) -> list[str]:
    offered: list[str] = []
    for value in request.headers.getall("Sec-WebSocket-Protocol", ()):
        offered.extend(p.strip() for p in value.split(",") if p.strip())
    return offered


def _remote(request: web.BaseRequest) -> str | None:
    """``request.remote`` (the peer's address), read without caching it on the request: a
    connection's request lives as long as it does, and each cached value costs memory."""
    peer = request._transport_peername
    if peer is None:
        return None
    return str(peer[0]) if isinstance(peer, list | tuple) else str(peer)


async def handle_realtime(host: RealtimeHost, request: web.Request) -> web.StreamResponse:
    """``/event/realtime``: upgrade and serve one WebSocket until it closes."""
    operations = host.operations
    recorder = operations.recorder
    if request.method != "GET":
        return method_not_allowed(
            recorder, f"{request.method} is not supported on /event/realtime", "GET"
        )
    conn_id = host.new_connection_id()
    offered = _offered_subprotocols(request)
    info = ConnectionInfo(
        id=conn_id,
        opened_at=real_time(),
        subprotocols=tuple(redact_subprotocols(offered)),
        remote=_remote(request),
    )
    log = ConnectionLogger(LOG_WS, conn_id)
    decision = operations.plan.decide(Point.UPGRADE, info)
    if decision.status is not None:
        LOG_FAULTS.info("[%s] refusing the upgrade with %d (fault)", conn_id, decision.status)
        return web.Response(
            status=decision.status, text=decision.body or "", content_type="application/json"
        )
    if host.closing.is_set():
        return error_response(recorder, 503, [SHUTTING_DOWN], record=False)
    if PROTOCOL_EVENTS not in offered:
        log.info("refusing upgrade: %s not offered (%s)", PROTOCOL_EVENTS, info.subprotocols)
        return error_response(recorder, 400, [MISSING_SUBPROTOCOL], record=False)
    protocols = (PROTOCOL_EVENTS,) if decision.select_subprotocol else ()
    ws = web.WebSocketResponse(
        protocols=protocols,
        heartbeat=None,
        autoping=True,
        compress=False,
        timeout=CLOSE_TIMEOUT,
        max_msg_size=operations.config.limits.max_request_bytes + MAX_FRAME_MARGIN,
    )
    if not ws.can_prepare(request).ok:
        return error_response(recorder, 400, [UPGRADE_REQUIRED], record=False)
    if len(host.connections) + len(host.upgrading) >= operations.config.limits.max_connections:
        log.info("refusing upgrade: %d connections open", len(host.connections))
        return error_response(recorder, 429, [TOO_MANY_CONNECTIONS], record=False)
    host.upgrading.add(conn_id)
    try:
        conn = await _upgrade(host, request, ws, info, offered, log)
        if conn is not None:
            # The upgrade's locals (headers, the decoded auth, ...) are gone by now: an
            # open connection holds only what it needs.
            del offered, decision
            await conn.run()
        return ws
    finally:
        host.upgrading.discard(conn_id)
        host.connections.pop(conn_id, None)
        operations.broker.remove_connection(conn_id)


async def _upgrade(
    host: RealtimeHost,
    request: web.Request,
    ws: web.WebSocketResponse,
    info: ConnectionInfo,
    offered: list[str],
    log: ConnectionLogger,
) -> WebSocketConnection | None:
    """Authorize and upgrade; the open connection, or ``None`` if the upgrade failed."""
    operations = host.operations
    recorder = operations.recorder
    conn_id = info.id
    headers = request_headers(request)
    failure: AuthFailure | None = None
    identity: Identity | None = None
    token = find_auth_subprotocol(offered)
    auth_map: Mapping[str, str] = headers
    if token is not None:
        try:
            auth_map = decode_auth_subprotocol(token)
        except RemoteProtocolError as exc:
            log.info("undecodable header- subprotocol: %s", exc)
            failure = unauthorized()
    if failure is None:
        try:
            identity = await operations.authorize(
                AuthRequest(
                    operation=Operation.CONNECT,
                    transport=Transport.WEBSOCKET,
                    auth=auth_map,
                    http_method="GET",
                    http_path=REALTIME_PATH,
                    http_query=request.rel_url.query_string,
                    request_headers=headers,
                    source_ip=info.remote,
                    connection_id=conn_id,
                ),
                operations.config.connection_auth_modes,
            )
        except AuthFailure as exc:
            failure = exc
    info = replace(
        info,
        authorized=failure is None,
        auth_mode=identity.mode if identity else None,
        identity=identity,
    )
    try:
        stream = await ws.prepare(request)
    except (ConnectionError, RuntimeError) as exc:
        log.info("upgrade failed: %s", exc)
        return None
    conn = WebSocketConnection(
        operations, ws, request, info, None, failure, log, drain=stream.drain
    )
    host.connections[conn_id] = conn
    host.upgrading.discard(conn_id)
    recorder.record_connection(info)
    log.info(
        "= open from %s, subprotocols %s, auth %s",
        info.remote,
        list(info.subprotocols),
        identity.mode if identity else "FAILED",
    )
    return conn
