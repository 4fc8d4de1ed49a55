"""The emulator's aiohttp runner: aiohttp's server plus a header timeout and a socket cap.

aiohttp's server has no per-request header timeout: a peer that sends a request's headers
(a WebSocket upgrade's included) one byte at a time holds its socket for as long as it
likes.  Its ``keepalive_timeout`` does close a connection that sends nothing at all, but
only after the keep-alive period, which must stay long (an HTTP client reuses idle
connections for seconds) and which a single byte every so often does not restart.

:class:`EmulatorRunner` is an ``AppRunner`` whose server makes :class:`GuardedRequestHandler`
protocols: each starts a timer when a connection opens and when the first byte of a new
request arrives, stops it when the request's headers are complete, and disconnects the peer
if it fires first.  Request bodies have their own deadline in the endpoint that reads them
(``limits.body_timeout`` in :mod:`.http_publish`).

The server also caps its open sockets (``limits.max_sockets``, lowered to fit the process's
descriptor limit): a socket over the cap is answered at once with ``429`` and the
``TooManyConnections`` error body, then closed, before its request is read.  WebSocket
connections have their own, lower cap (``limits.max_connections``, checked at the upgrade).

The handler reads four of aiohttp's ``RequestHandler`` attributes (``_messages``,
``_upgraded``, ``_request_in_progress`` and ``_force_close``, all present in aiohttp 3.9
to 3.14); ``tests/emulator/test_slow_peers.py`` fails if they change meaning.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler

from appsync_events.protocol import codec

from ._logging import LOG_HTTP
from .catalogue import TOO_MANY_CONNECTIONS

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

__all__ = ["FD_RESERVE", "KEEPALIVE_TIMEOUT", "EmulatorRunner", "GuardedRequestHandler"]

FD_RESERVE: Final = 64
"""Descriptors kept free of sockets (listeners, files, the event loop's own)."""

_REFUSAL: Final = codec.encode_error_body([TOO_MANY_CONNECTIONS]).encode()
_REFUSAL_RESPONSE: Final = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
    b"Access-Control-Allow-Origin: *\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_REFUSAL), _REFUSAL)
)

KEEPALIVE_TIMEOUT: Final = 75.0
"""Seconds an idle keep-alive HTTP connection is kept (aiohttp's own default is an hour).
Longer than the 15 s for which aiohttp's client reuses an idle connection, so that a
client never sends a request on a connection the server is closing."""


class GuardedRequestHandler(RequestHandler):
    """aiohttp's HTTP protocol with a deadline for each request's headers.

    Args:
        manager: the server, which counts the open sockets.
        **kwargs: aiohttp's ``RequestHandler`` arguments.
    """

    # aiohttp's handler has slots: without these, each socket would also get a dict.
    __slots__ = ("counted", "guard", "header_timeout", "header_timer")

    def __init__(self, manager: _GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = manager
        self.header_timeout = manager.header_timeout
        self.header_timer: asyncio.TimerHandle | None = None
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        guard = self.guard
        guard.open_sockets += 1
        self.counted = True
        if guard.open_sockets > guard.max_sockets:
            if not guard.refusing:
                LOG_HTTP.warning(
                    "%d sockets open (limits.max_sockets %d): refusing new ones with 429",
                    guard.open_sockets - 1,
                    guard.max_sockets,
                )
            guard.refusing = True
            assert isinstance(transport, asyncio.Transport)
            transport.write(_REFUSAL_RESPONSE)
            self.force_close()  # closes once the answer is written
            return
        guard.refusing = False
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_headers():
            self._disarm()
        elif self.header_timer is None and data:
            self._arm()  # the first byte of the next request on a kept-alive connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        if self.counted:
            self.counted = False
            self.guard.open_sockets -= 1
        super().connection_lost(exc)

    def _awaiting_headers(self) -> bool:
        """Whether the connection is between requests: nothing upgraded, no complete
        request waiting or being handled."""
        return not (self._upgraded or self._messages or self._request_in_progress)

    def _arm(self) -> None:
        if self.header_timeout > 0:
            self.header_timer = self._loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _expired(self) -> None:
        self.header_timer = None
        if self.transport is None or self._force_close or not self._awaiting_headers():
            return
        peer = self.transport.get_extra_info("peername")
        LOG_HTTP.info(
            "request headers from %s not received within %g s: disconnecting",
            peer[0] if isinstance(peer, tuple) else peer,
            self.header_timeout,
        )
        self.force_close()


class _GuardedServer(web.Server):
    """aiohttp's low-level server, making :class:`GuardedRequestHandler` protocols."""

    def __init__(
        self,
        base: web.Server,
        handler: Any,
        header_timeout: float,
        max_sockets: int,
        kwargs: dict[str, Any],
    ) -> None:
        super().__init__(
            handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            **kwargs,
        )
        self.header_timeout = header_timeout
        self.max_sockets = max_sockets
        self.open_sockets = 0
        self.refusing = False
        """Whether the last socket was refused (the warning is logged once per episode)."""

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


def socket_cap(max_sockets: int) -> int:
    """``max_sockets``, lowered to fit the process's descriptor limit (less :data:`FD_RESERVE`)."""
    if resource is None:  # pragma: no cover - not on Windows
        return max_sockets
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_sockets
    return max(1, min(max_sockets, soft - FD_RESERVE))


class EmulatorRunner(web.AppRunner):
    """An ``AppRunner`` whose connections have a header timeout and a bounded keep-alive.

    Args:
        app: the application.
        header_timeout: seconds a request's headers may take (``limits.header_timeout``).
        max_sockets: open sockets before new ones are refused (``limits.max_sockets``);
            lowered to fit the process's descriptor limit.
        middlewares: called for every request, outside the application, as aiohttp calls
            an application's (``middleware(request, handler)``, the first outermost).  An
            application with middlewares of its own wraps every request in one more
            coroutine of aiohttp's, alive as long as the request (a WebSocket's whole
            life); these add nothing, and a middleware that is not a coroutine function
            (it returns the handler's awaitable) keeps no frame either.
        **kwargs: ``AppRunner`` arguments.
    """

    def __init__(
        self,
        app: web.Application,
        *,
        header_timeout: float,
        max_sockets: int,
        middlewares: Sequence[Middleware] = (),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_TIMEOUT)
        super().__init__(app, **kwargs)
        self.middlewares = tuple(middlewares)
        self.header_timeout = header_timeout
        self.max_sockets = socket_cap(max_sockets)
        if self.max_sockets < max_sockets:
            LOG_HTTP.info(
                "limits.max_sockets %d lowered to %d to fit the descriptor limit",
                max_sockets,
                self.max_sockets,
            )

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()
        handler = base.request_handler
        for middleware in reversed(self.middlewares):
            handler = functools.partial(middleware, handler=handler)
        # The same arguments aiohttp gave its server (handler arguments, debug, logging).
        return _GuardedServer(
            base, handler, self.header_timeout, self.max_sockets, dict(base._kwargs)
        )
