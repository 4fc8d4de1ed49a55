"""The aiohttp shell of the emulator: ``POST /event`` and ``GET /event/realtime``.

Theory of operation
-------------------

One :class:`Emulator` owns the configuration, the auth policy, the fan-out
:class:`~appsync_emulator.broker.Broker`, the :class:`~appsync_emulator.recorder.Recorder`,
the :class:`~appsync_emulator.faults.FaultPlan` and the live connections, and builds the
``aiohttp`` application.  Hosting (listener, TLS, threads) is :mod:`.hosting`'s job.
The endpoints live beside it: ``POST /event`` in :mod:`.http_publish`, the WebSocket
upgrade in :mod:`.ws` and the per-connection machinery in :mod:`.ws_connection`.

Each WebSocket is a :class:`~.ws_connection.WebSocketConnection` that drives one sans-I/O
:class:`~appsync_events.protocol.server.ServerProtocol`:

* the *reader* (the aiohttp handler itself) feeds inbound frames to the core **in order**
  and acts on its events: authorization, handlers, ``accept_*``/``reject_*``, fan-out.  A
  slow authorizer or handler only holds back its own connection;
* the *writer* task drains a bounded per-connection outbound queue, so a slow subscriber
  never blocks the publisher or other subscribers (TESTING-RESEARCH.md §5.4 row 9).  When
  more than ``limits.send_queue_frames`` frames wait, the connection is closed with 1008;
* the *keep-alive* task sends ``ka`` at once after ``connection_ack`` (or after the first
  successful operation of an init-less connection, EMULATOR-CHOICE §3.3.2) and then every
  ``keepalive_interval``;
* timers close the connection at ``max_connection_lifetime`` (1001) and when the client
  sends no frame within ``limits.init_timeout`` (1008).

Every outbound frame passes the fault plan (drop, delay, replace, latency) and is recorded
just before it is written.  Handler and internal exceptions are logged with their traceback
and collected for :meth:`Emulator.check`; they never take the server down.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from aiohttp import web

from appsync_events.protocol.channels import Channel
from appsync_events.protocol.messages import FailedEvent, PublishedEvent

from . import handlers, http_publish, ws
from ._clock import real_time
from ._logging import LOG_AUTH, LOG_FAULTS, LOG_SERVER
from .broker import Broker
from .config import EmulatorConfig, NamespaceConfig
from .faults import Decision, Fault, FaultPlan, Target
from .http_publish import CORS_HEADERS
from .issuer import LocalIssuer, routes as issuer_routes
from .recorder import PublishRecord, Recorder
from .verify import AuthFailure, AuthPolicy, AuthRequest, Identity, build_policy, unauthorized
from .ws import MAX_FRAME_MARGIN
from .ws_connection import CLOSE_TIMEOUT, THROTTLED, WebSocketConnection

__all__ = [
    "CORS_HEADERS",
    "Emulator",
    "MAX_FRAME_MARGIN",
    "THROTTLED",
]

_VARIANT: Final = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class _Identifiers:
    """Random RFC 4122 version-4 UUID strings, drawn 64 at a time (~5x faster than
    ``str(uuid.uuid4())``).  Event identifiers need uniqueness, not unpredictability, so
    ``random`` is enough.  One per emulator, used from its loop only."""

    __slots__ = ("_at", "_hex")

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0

    def take(self, count: int) -> tuple[str, ...]:
        out = []
        for _ in range(count):
            i = self._at
            if i >= len(self._hex):
                self._hex = f"{random.getrandbits(128 * 64):0{32 * 64}x}"
                i = 0
            h = self._hex
            self._at = i + 32
            # version nibble 4, variant bits 10 (RFC 4122 §4.4)
            out.append(
                f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
                f"{_VARIANT[h[i + 16]]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
            )
        return tuple(out)


def _describe(request: AuthRequest) -> str:
    return f"{request.operation.value} ({request.transport.value}) {request.channel or ''}"


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
        self._identifiers = _Identifiers()
        self.send_pressure = False
        """Set when a connection's send queue passes half its capacity: the connection
        whose frame caused it yields at once, so writers drain before more fan-out and a
        fast subscriber never overflows because of a publisher's burst."""
        self.issuer = LocalIssuer.for_config(config)
        """The local JWT issuer (Cognito/OIDC modes) whose JWKS the server publishes."""
        self.policy = self.build_policy()
        self.connections: dict[str, WebSocketConnection] = {}
        self._ids = itertools.count(1)
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self.closing = asyncio.Event()
        """Set when the application shuts down: no new upgrades, withheld replies end."""
        self.http_tasks: set[asyncio.Task[Any]] = set()
        """The running HTTP publishes (shielded from their requests, awaited at shutdown)."""

    # --- extension points ---------------------------------------------------------------

    def build_policy(self) -> AuthPolicy:
        """The auth policy: one verifier per configured provider (the one place it is built)."""
        return build_policy(self.config, issuer=self.issuer, on_error=self.record_exception)

    def route_table(self) -> list[web.RouteDef]:
        """Every route served.  Add routes here; the JSON 404 catch-all is appended after."""
        return [
            web.route("*", "/event", self._http_event),
            web.route("*", "/event/realtime", self._realtime),
            *issuer_routes(self.issuer),  # /.well-known/jwks.json, openid-configuration
        ]

    def build_app(self) -> web.Application:
        """The aiohttp application (routes, size limit, shutdown hook)."""
        app = web.Application(client_max_size=self.config.limits.max_request_bytes + 1)
        app.add_routes(self.route_table())
        app.add_routes([web.route("*", "/{tail:.*}", self._not_found)])
        app.on_shutdown.append(self._on_shutdown)
        return app

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
        offset = self.config.clock_offset
        now = datetime.now(UTC)
        return now + timedelta(seconds=offset) if offset else now

    async def authorize(self, request: AuthRequest, modes: Sequence[Any]) -> Identity:
        """Authorize ``request`` against ``modes``.

        Raises:
            AuthFailure: denied (a verifier crash is collected and counts as denied).
        """
        try:
            identity = await self.policy.authorize(request, modes, self.now())
        except AuthFailure as exc:
            LOG_AUTH.info("%s denied: %s", _describe(request), exc)
            raise
        except Exception as exc:
            LOG_AUTH.error("%s: verifier failed", _describe(request), exc_info=exc)
            self.record_exception(exc)
            raise unauthorized() from exc
        if LOG_AUTH.isEnabledFor(logging.DEBUG):
            LOG_AUTH.debug(
                "%s authorized via %s (%s)", _describe(request), identity.mode, identity.principal
            )
        return identity

    # --- publish (shared by WebSocket and HTTP) -----------------------------------------

    async def run_publish(
        self,
        namespace: NamespaceConfig,
        channel: Channel,
        events: tuple[str, ...],
        identity: Identity | None,
        request_headers: Mapping[str, str],
        *,
        transport: Literal["websocket", "http"],
        decision: Decision,
    ) -> tuple[handlers.PublishOutcome, tuple[str, ...]]:
        """Run ``on_publish`` (minus the events a ``FailEvents`` fault fails).

        Returns:
            The outcome with original indexes, and the identifier of each event.

        Raises:
            handlers.HandlerRejection: the handler rejected the request.
        """
        ids = self._identifiers.take(len(events))
        forced: dict[int, FailedEvent] = {}
        for fault in decision.fail_events:
            for index in fault.indexes:
                if index < len(events) and index not in forced:
                    forced[index] = FailedEvent(
                        identifier=ids[index], index=index, code=fault.code, message=fault.message
                    )
        if not forced:
            outcome = await handlers.run_on_publish(
                self.config,
                namespace,
                channel=channel,
                events=events,
                identifiers=ids,
                identity=identity,
                request_headers=request_headers,
                operation_transport=transport,
                on_error=self.record_exception,
            )
            return outcome, ids
        LOG_FAULTS.info("failing events %s of a publish to %s", sorted(forced), channel.path)
        keep = [i for i in range(len(events)) if i not in forced]
        successful: list[PublishedEvent] = []
        failed = list(forced.values())
        broadcast: tuple[str, ...] = ()
        if keep:
            inner = await handlers.run_on_publish(
                self.config,
                namespace,
                channel=channel,
                events=tuple(events[i] for i in keep),
                identifiers=tuple(ids[i] for i in keep),
                identity=identity,
                request_headers=request_headers,
                operation_transport=transport,
                on_error=self.record_exception,
            )
            broadcast = inner.broadcast
            # The handler saw positions in the reduced list; map them back.
            successful = [replace(s, index=keep[s.index]) for s in inner.successful]
            failed += [replace(f, index=keep[f.index]) for f in inner.failed]
        outcome = handlers.PublishOutcome(
            broadcast=broadcast,
            successful=tuple(sorted(successful, key=lambda s: s.index)),
            failed=tuple(sorted(failed, key=lambda f: f.index)),
        )
        return outcome, ids

    def deliver_publish(
        self,
        channel: Channel,
        events: tuple[str, ...],
        identifiers: tuple[str, ...],
        outcome: handlers.PublishOutcome,
        identity: Identity | None,
        *,
        transport: Literal["websocket", "http"],
        connection_id: str | None = None,
        publish_id: str | None = None,
    ) -> int:
        """Fan out an accepted publish and record it (WebSocket and HTTP); return deliveries."""
        delivered = self.fan_out(channel, outcome.broadcast)
        self.recorder.record_publish(
            PublishRecord(
                channel=channel.path,
                events=events,
                identifiers=identifiers,
                auth_mode=identity.mode if identity else None,
                identity=identity,
                transport=transport,
                time=real_time(),
                failed=outcome.failed,
                broadcast=outcome.broadcast,
                deliveries=delivered,
                connection_id=connection_id,
                publish_id=publish_id,
            )
        )
        return delivered

    def fan_out(self, channel: Channel, texts: Sequence[str]) -> int:
        """Queue one ``data`` frame per event per matching subscription; return the count."""
        if not texts:
            return 0
        delivered = 0
        for conn_id, sub_id in self.broker.match(channel):
            conn = self.connections.get(conn_id)
            if conn is not None:
                delivered += conn.deliver(sub_id, texts)
        return delivered

    # --- faults (event-loop thread) -------------------------------------------------------

    def add_fault(self, fault: Fault, target: Target) -> int:
        """Install ``fault``; act at once if it is one-shot.  Returns its key."""
        key = self.plan.add(fault, target)
        if fault.one_shot:
            for conn in list(self.connections.values()):
                if self.plan.matches(target, conn.info):
                    conn.execute(fault)
        self.refresh_flow()
        return key

    def remove_fault(self, key: int) -> None:
        if self.plan.remove(key):
            self.refresh_flow()

    def clear_faults(self) -> None:
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
        return await http_publish.not_found(self, request)

    async def _http_event(self, request: web.Request) -> web.StreamResponse:
        return await http_publish.handle_event(self, request)

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        return await ws.handle_realtime(self, request)

    async def _on_shutdown(self, app: web.Application) -> None:
        """Close every socket with 1001 so that cleanup is immediate (TESTING-RESEARCH §4)."""
        self.closing.set()
        conns = list(self.connections.values())
        if conns:
            LOG_SERVER.info("closing %d connection(s) with 1001", len(conns))
        await asyncio.gather(
            *(c.close_now(1001, "server shutdown") for c in conns), return_exceptions=True
        )
        if self.http_tasks:
            await asyncio.wait(list(self.http_tasks), timeout=CLOSE_TIMEOUT)
