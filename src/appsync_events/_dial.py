"""Opening one connection: authorize, WebSocket upgrade, ``connection_init``/``connection_ack``.

A :class:`Dialer` holds everything needed to open a connection to one endpoint;
:func:`~appsync_events.connect` uses it for the first connection, and the reconnector
for every later one.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl as ssl_module
from collections.abc import Sequence

from ._transport import WebSocket, open_websocket
from ._types import Backpressure
from .authorizer import Authorizer, AuthorizeRequest, Operation
from .connection import Connection, ConnectionLogger, logger
from .errors import (
    ConnectionClosedError,
    HandshakeError,
    HandshakeTimeoutError,
    RemoteProtocolError,
)
from .protocol.client import ClientProtocol
from .protocol.subprotocol import encode_auth_subprotocol

__all__ = ["Dialer"]


class Dialer:
    """Opens and handshakes connections to one endpoint (configuration already checked)."""

    def __init__(
        self,
        *,
        endpoint: str,
        host: str,
        authorizer: Authorizer,
        subprotocols: Sequence[str],
        backpressure: Backpressure,
        handshake_timeout: float | None,
        heartbeat_timeout: float | None,
        close_timeout: float | None,
        ssl: ssl_module.SSLContext | None,
        max_size: int | None,
    ) -> None:
        self.endpoint = endpoint
        self.host = host
        self.authorizer = authorizer
        self.subprotocols = list(subprotocols)
        self.backpressure = backpressure
        self.handshake_timeout = handshake_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.close_timeout = close_timeout
        self.ssl = ssl
        self.max_size = max_size

    async def __call__(self) -> tuple[Connection, int | None]:
        """Authorize, open and handshake one connection (bounded by ``handshake_timeout``)."""
        log = ConnectionLogger(logger, {"connection_id": secrets.token_hex(4)})
        state: dict[str, Connection] = {}
        deadline = asyncio.timeout(self.handshake_timeout)
        try:
            try:
                async with deadline:
                    accepted = await self._handshake(log, state)
            except TimeoutError:
                if deadline.expired():
                    raise HandshakeTimeoutError(self.handshake_timeout or 0.0) from None
                raise
        except BaseException:
            connection = state.get("connection")
            if connection is not None:
                await self._abort(connection)
            raise
        connection = state["connection"]
        log.info(
            "= connected to %s (keep-alive timeout %gs)",
            self.endpoint,
            connection.keepalive_timeout,
        )
        return connection, accepted

    async def _handshake(self, log: ConnectionLogger, state: dict[str, Connection]) -> int | None:
        auth = await self.authorizer.authorize(
            AuthorizeRequest(operation=Operation.CONNECT, host=self.host)
        )
        offered = [*self.subprotocols, encode_auth_subprotocol(auth.authorization)]
        log.debug(
            "= connecting to %s, subprotocols %s + header-<redacted>", self.endpoint, offered[:-1]
        )
        ws = await self._open_socket(offered)
        connection = Connection(
            ws,
            protocol=ClientProtocol(),
            outbound=self.backpressure.connection_outbound,
            heartbeat_timeout=self.heartbeat_timeout,
            close_timeout=self.close_timeout,
            log=log,
        )
        state["connection"] = connection
        if ws.subprotocol not in self.subprotocols:
            selected = "no subprotocol" if ws.subprotocol is None else repr(ws.subprotocol)
            raise HandshakeError(
                f"the server selected {selected}; expected one of {self.subprotocols}"
            )
        connection.start()
        try:
            accepted = await connection.handshake()
        except ConnectionClosedError as exc:
            raise HandshakeError(f"the connection closed during the handshake: {exc}") from exc
        except RemoteProtocolError as exc:
            raise HandshakeError(
                f"the server broke the protocol during the handshake: {exc}"
            ) from exc
        return accepted.connection_timeout_ms

    async def _open_socket(self, offered: list[str]) -> WebSocket:
        return await open_websocket(
            self.endpoint,
            subprotocols=offered,
            ssl=self.ssl,
            max_size=self.max_size,
            close_timeout=self.close_timeout,
        )

    async def _abort(self, connection: Connection) -> None:
        connection.fail(ConnectionClosedError(message="the handshake failed"), clean=True)
        try:
            await connection.wait_closed()
        except asyncio.CancelledError:  # pragma: no cover - cancelled twice while cleaning up
            connection.ws.abort()
            raise
