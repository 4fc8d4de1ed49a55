"""The aiohttp shell of the emulator: ``POST /event`` and ``GET /event/realtime``.

Theory of operation
-------------------

One :class:`Emulator` owns the configuration, the auth policy, the fan-out
:class:`~appsync_emulator.broker.Broker`, the :class:`~appsync_emulator.recorder.Recorder`,
the :class:`~appsync_emulator.faults.FaultPlan` and the live connections, and builds the
``aiohttp`` application.  Hosting (listener, TLS, threads) is :mod:`.hosting`'s job.
The endpoints live beside it: ``POST /event`` in :mod:`.http_publish`, the WebSocket
upgrade in :mod:`.ws` and the per-connection machinery in :mod:`.ws_connection`.

Both endpoints run their operations (authorization, faults, handlers, fan-out, records)
through one :class:`~.operations.Operations`; they take narrow interfaces
(:class:`~.ws.RealtimeHost`, :class:`~.http_publish.PublishHost`), not this class.

Each WebSocket is a :class:`~.ws_connection.WebSocketConnection` that drives one sans-I/O
:class:`~appsync_emulator.server_protocol.ServerProtocol`:

* the *reader* (the aiohttp handler itself) feeds inbound frames to the core **in order**
  and acts on its events: authorization, handlers, ``accept_*``/``reject_*``, fan-out.  A
  slow authorizer or handler only holds back its own connection;
* frames leave through a bounded per-connection outbound queue
  (:class:`~.outbound.OutboundQueue`): written at once, one transport write per batch,
  while the socket keeps up (while the reader handles frames it has already read, those
  writes are held and each socket gets one transport write before the reader awaits
  anything: :class:`~.outbound.Cork`), and by a *writer* task (started when frames must
  wait) when it does not, so a slow subscriber never blocks the publisher or other
  subscribers.  When more than ``limits.send_queue_frames`` frames wait, the connection
  is closed with 1008.  A publish whose fan-out fills a queue past half makes its own
  reader yield at once, so a burst never overflows a fast subscriber;
* the *keep-alive* timer (:mod:`.ws_timers`) sends ``ka`` at once after ``connection_ack``
  (or after the first successful operation of an init-less connection) and then every
  ``keepalive_interval``;
* timers close the connection at ``max_connection_lifetime`` (1001) and when the client
  sends no frame within ``limits.init_timeout`` (1008).

Every outbound frame passes the fault plan (drop, delay, replace, latency) and is recorded
just before it is written.  Handler and internal exceptions are logged with their traceback
and collected for :meth:`Emulator.check`; they never take the server down.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from . import http_publish, ws
from ._logging import LOG_SERVER
from .broker import Broker
from .catalogue import THROTTLED
from .config import EmulatorConfig
from .console import Console
from .faults import Fault, FaultListener, FaultPlan, Target
from .handler_runtime import HandlerRuntime
from .http_publish import CORS_HEADERS
from .issuer import LocalIssuer, routes as issuer_routes
from .operations import Operations
from .recorder import Recorder
from .recording_file import recording_middleware
from .verify import AuthPolicy, AuthRequest, Identity, build_policy
from .ws import MAX_FRAME_MARGIN
from .ws_connection import CLOSE_TIMEOUT, WebSocketConnection

__all__ = [
    "CORS_HEADERS",
    "Emulator",
    "MAX_FRAME_MARGIN",
    "THROTTLED",
]


class Emulator:
    """The emulator's state and its aiohttp application (one per server).

    All methods run on the event loop that serves the application, except
    :meth:`record_exception`, :meth:`check` and :meth:`clear_errors`, which are
    thread-safe.  :mod:`.hosting` makes the public API thread-safe.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.recorder = Recorder(config.record_limit)
        self.plan = FaultPlan(on_error=self.record_exception)
        self.broker = Broker()
        self.issuer = LocalIssuer.for_config(config)
        """The local JWT issuer (Cognito/OIDC modes) whose JWKS the server publishes."""
        self.policy = self.build_policy()
        self.handler_runtime = HandlerRuntime(config)
        """The namespaces' APPSYNC_JS code and direct Lambdas: loaded when the application
        starts (a syntax error fails the start), closed when it is cleaned up."""
        self.connections: dict[str, WebSocketConnection] = {}
        self.upgrading: set[str] = set()
        """Upgrades past the connection limit check and not yet open (they count against
        ``limits.max_connections``)."""
        self.operations = Operations(
            config=config,
            recorder=self.recorder,
            plan=self.plan,
            broker=self.broker,
            policy=self.policy,
            subscribers=self.connections,
            on_error=self.record_exception,
            runtime=self.handler_runtime,
        )
        """Authorization, faults, handlers and fan-out, shared by every endpoint."""
        self._ids = itertools.count(1)
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self.closing = asyncio.Event()
        """Set when the application shuts down: no new upgrades, withheld replies end."""
        self.http_tasks: set[asyncio.Task[Any]] = set()
        """The running HTTP publishes (shielded from their requests, awaited at shutdown)."""
        self.console = Console(self)
        """The web console at ``/console`` (its own routes; never recorded)."""

    # --- extension points ---------------------------------------------------------------

    def build_policy(self) -> AuthPolicy:
        """The auth policy: one verifier per configured provider (the one place it is built)."""
        return build_policy(self.config, issuer=self.issuer, on_error=self.record_exception)

    def route_table(self) -> list[web.RouteDef]:
        """Every route served.  Add routes here; the JSON 404 catch-all is appended after."""
        return [
            web.route("*", "/event", self._http_event),
            # The endpoint's coroutine runs for a WebSocket's whole life: routed to
            # directly, with no wrapper coroutine kept per connection.
            web.route("*", ws.REALTIME_PATH, functools.partial(ws.handle_realtime, self)),
            *issuer_routes(self.issuer),  # /.well-known/jwks.json, openid-configuration
            *self.console.routes(),  # /console, /console/events, /console/api/* (not recorded)
        ]

    def build_app(self) -> web.Application:
        """The aiohttp application (routes, size limit, shutdown hook); serve it with
        :meth:`middlewares` around it."""
        app = web.Application(client_max_size=self.config.limits.max_request_bytes + 1)
        app.add_routes(self.route_table())
        app.add_routes([web.route("*", "/{tail:.*}", self._not_found)])
        app.on_startup.append(self._start_handlers)
        app.on_shutdown.append(self._on_shutdown)
        app.on_shutdown.append(self.console.shutdown)
        app.on_cleanup.append(self._stop_recording)
        app.on_cleanup.append(self._close_handlers)
        return app

    def middlewares(self) -> list[Middleware]:
        """The request middlewares to run around :meth:`build_app`'s application (the
        recording's), outside it: see :class:`~._runner.EmulatorRunner`."""
        return [recording_middleware(self.recorder)]

    async def _start_handlers(self, app: web.Application) -> None:
        # Raises HandlerLoadError (a ConfigError): the server does not start.
        await self.handler_runtime.start()

    async def _close_handlers(self, app: web.Application) -> None:
        await self.handler_runtime.aclose()

    # --- errors ---------------------------------------------------------------------------

    def record_exception(self, exc: BaseException) -> None:
        """Collect a server-side exception for :meth:`check` (thread-safe)."""
        with self._errors_lock:
            self._errors.append(exc)

    def check(self) -> None:
        """Re-raise the first collected server-side exception (others are attached as notes).

        The collected exceptions are cleared, so a failure is reported once.
        """
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if not errors:
            return
        first = errors[0]
        for other in errors[1:]:
            first.add_note(f"also raised on the server: {other!r}")
        raise first

    def clear_errors(self) -> None:
        with self._errors_lock:
            self._errors.clear()

    # --- auth -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """UTC wall time for auth checks, shifted by ``config.clock_offset``."""
        return self.operations.now()

    async def authorize(self, request: AuthRequest, modes: Sequence[Any]) -> Identity:
        """Authorize ``request`` against ``modes`` (see :meth:`Operations.authorize`)."""
        return await self.operations.authorize(request, modes)

    # --- faults (event-loop thread) -------------------------------------------------------

    def add_fault(self, fault: Fault, target: Target, listener: FaultListener | None = None) -> int:
        """Install ``fault``; act at once if it is one-shot.  Returns its key.

        ``listener`` is told how far the fault got (see :class:`.faults.FaultListener`).
        """
        key = self.plan.add(fault, target, listener)
        if self.recorder.listener is not None:
            self.recorder.listener.on_fault("inject", fault, target)
        if fault.one_shot:
            for conn in list(self.connections.values()):
                if self.plan.matches(target, conn.info):
                    conn.execute(fault, listener)
            if listener is not None:
                listener.targets_known()
        self.refresh_flow()
        return key

    def remove_fault(self, key: int) -> None:
        if self.plan.remove(key):
            if self.recorder.listener is not None:
                self.recorder.listener.on_fault("remove", None, key)
            self.refresh_flow()

    def clear_faults(self) -> None:
        if self.recorder.listener is not None:
            self.recorder.listener.on_fault("clear", None, None)
        self.plan.clear()
        self.refresh_flow()

    def refresh_flow(self) -> None:
        """Re-apply ``Stall``/``StallSubscriber`` to every connection."""
        for conn in list(self.connections.values()):
            conn.refresh_flow()

    def close_connection(self, conn_id: str, code: int = 1000, reason: str = "") -> None:
        """Close connection ``conn_id`` after its queued frames.

        Raises:
            KeyError: no open connection has that id.
        """
        conn = self.connections.get(conn_id)
        if conn is None:
            open_ids = ", ".join(self.connections) or "none"
            raise KeyError(f"no open connection {conn_id!r} (open: {open_ids})")
        conn.schedule_close(code, reason)

    # --- endpoints (:mod:`.http_publish` and :mod:`.ws`) -------------------------------------

    def new_connection_id(self) -> str:
        """A fresh connection id (``c1``, ``c2``, ...)."""
        return f"c{next(self._ids)}"

    async def _not_found(self, request: web.Request) -> web.Response:
        return await http_publish.not_found(self.recorder, request)

    async def _http_event(self, request: web.Request) -> web.StreamResponse:
        return await http_publish.handle_event(self, request)

    async def _stop_recording(self, app: web.Application) -> None:
        """A recording ends with its server (after the shutdown closes are recorded)."""
        if self.recorder.listener is not None:
            self.recorder.listener.close()

    async def _on_shutdown(self, app: web.Application) -> None:
        """Close every socket with 1001 so that cleanup is immediate
        (docs: design.rst, "Closing connections at shutdown")."""
        self.closing.set()
        conns = list(self.connections.values())
        if conns:
            LOG_SERVER.info("closing %d connection(s) with 1001", len(conns))
        await asyncio.gather(
            *(c.close_now(1001, "server shutdown") for c in conns), return_exceptions=True
        )
        if self.http_tasks:
            await asyncio.wait(list(self.http_tasks), timeout=CLOSE_TIMEOUT)
