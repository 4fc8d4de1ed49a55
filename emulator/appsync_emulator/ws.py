"""``GET /event/realtime``: the WebSocket upgrade.

The handshake checks the method, the shutdown state, the ``aws-appsync-event-ws``
subprotocol and the connection limit, authorizes the connection (from the ``header-``
subprotocol or the upgrade headers), then hands the socket to a
:class:`~appsync_emulator.ws_connection.WebSocketConnection` for its whole life.  A failed
connection authorization still upgrades: the first frame is answered with
``connection_error`` (:meth:`~appsync_emulator.ws_connection.WebSocketConnection.run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from aiohttp import web

from appsync_events.errors import ErrorDetail, RemoteProtocolError
from appsync_events.protocol.server import BAD_REQUEST
from appsync_events.protocol.subprotocol import (
    PROTOCOL_EVENTS,
    decode_auth_subprotocol,
    find_auth_subprotocol,
)

from ._clock import real_time
from ._http import SHUTTING_DOWN, error_response, method_not_allowed, request_headers
from ._logging import LOG_FAULTS, LOG_WS, ConnectionLogger, redact_subprotocols
from .faults import Point
from .recorder import ConnectionInfo
from .verify import AuthFailure, AuthRequest, Identity, Operation, Transport, unauthorized
from .ws_connection import CLOSE_TIMEOUT, WebSocketConnection

if TYPE_CHECKING:
    from .server import Emulator

__all__ = [
    "MAX_FRAME_MARGIN",
    "MISSING_SUBPROTOCOL",
    "TOO_MANY_CONNECTIONS",
    "UPGRADE_REQUIRED",
    "handle_realtime",
]

MAX_FRAME_MARGIN: Final = 16 * 1024
"""aiohttp's ``max_msg_size`` is the request limit plus this margin: frames a little over
the limit reach the core and get ``publish_error``; bigger ones are closed with 1009."""

UPGRADE_REQUIRED: Final = ErrorDetail(
    error_type=BAD_REQUEST,
    message=f"WebSocket upgrade required, offering the subprotocol {PROTOCOL_EVENTS!r}",
)
MISSING_SUBPROTOCOL: Final = ErrorDetail(
    error_type=BAD_REQUEST,
    message=f"Sec-WebSocket-Protocol must offer {PROTOCOL_EVENTS!r}",
)
TOO_MANY_CONNECTIONS: Final = ErrorDetail(
    error_type="LimitExceededException", message="Too many connections to this emulator"
)


def _offered_subprotocols(request: web.BaseRequest) -> list[str]:
    offered: list[str] = []
    for value in request.headers.getall("Sec-WebSocket-Protocol", ()):
        offered.extend(p.strip() for p in value.split(",") if p.strip())
    return offered


async def handle_realtime(emulator: Emulator, request: web.Request) -> web.StreamResponse:
    """``/event/realtime``: upgrade and serve one WebSocket until it closes."""
    if request.method != "GET":
        return method_not_allowed(
            emulator.recorder, f"{request.method} is not supported on /event/realtime", "GET"
        )
    conn_id = emulator.new_connection_id()
    offered = _offered_subprotocols(request)
    info = ConnectionInfo(
        id=conn_id,
        opened_at=real_time(),
        subprotocols=tuple(redact_subprotocols(offered)),
        remote=request.remote,
    )
    log = ConnectionLogger(LOG_WS, {"conn": conn_id})
    decision = emulator.plan.decide(Point.UPGRADE, info)
    if decision.status is not None:
        LOG_FAULTS.info("[%s] refusing the upgrade with %d (fault)", conn_id, decision.status)
        return web.Response(
            status=decision.status, text=decision.body or "", content_type="application/json"
        )
    if emulator.closing.is_set():
        return error_response(emulator.recorder, 503, [SHUTTING_DOWN], record=False)
    if PROTOCOL_EVENTS not in offered:
        log.info("refusing upgrade: %s not offered (%s)", PROTOCOL_EVENTS, info.subprotocols)
        return error_response(emulator.recorder, 400, [MISSING_SUBPROTOCOL], record=False)
    protocols = (PROTOCOL_EVENTS,) if decision.select_subprotocol else ()
    ws = web.WebSocketResponse(
        protocols=protocols,
        heartbeat=None,
        autoping=True,
        compress=False,
        timeout=CLOSE_TIMEOUT,
        max_msg_size=emulator.config.limits.max_request_bytes + MAX_FRAME_MARGIN,
    )
    if not ws.can_prepare(request).ok:
        return error_response(emulator.recorder, 400, [UPGRADE_REQUIRED], record=False)
    if len(emulator.connections) >= emulator.config.limits.max_connections:
        return error_response(emulator.recorder, 429, [TOO_MANY_CONNECTIONS], record=False)

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
            identity = await emulator.authorize(
                AuthRequest(
                    operation=Operation.CONNECT,
                    transport=Transport.WEBSOCKET,
                    auth=auth_map,
                    http_method="GET",
                    http_path=request.path,
                    http_query=request.query_string,
                    request_headers=headers,
                    source_ip=request.remote,
                    connection_id=conn_id,
                ),
                emulator.config.connection_auth_modes,
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
        await ws.prepare(request)
    except (ConnectionError, RuntimeError) as exc:
        log.info("upgrade failed: %s", exc)
        return ws
    conn = WebSocketConnection(emulator, ws, request, info, headers, failure, log)
    emulator.connections[conn_id] = conn
    emulator.recorder.record_connection(info)
    log.info(
        "= open from %s, subprotocols %s, auth %s",
        request.remote,
        list(info.subprotocols),
        identity.mode if identity else "FAILED",
    )
    try:
        await conn.run()
    finally:
        emulator.connections.pop(conn_id, None)
        emulator.broker.remove_connection(conn_id)
    return ws
