"""One WebSocket connection: the reader and the operations around the sans-I/O core.

The theory of operation is in :mod:`appsync_emulator.server`.  The reader feeds every
inbound frame to the :class:`~appsync_emulator.server_protocol.ServerProtocol` in order and
acts on its events through the shared :class:`~appsync_emulator.operations.Operations`;
frames leave through the connection's :class:`~appsync_emulator.outbound.OutboundQueue`.
Keep-alive, timers and one-shot faults are in :mod:`.ws_timers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any, Final, cast

from aiohttp import WSMsgType, web

from appsync_events.errors import ErrorDetail, LocalProtocolError
from appsync_events.protocol.messages import Operation

from ._clock import real_time
from ._http import request_headers
from ._logging import LOG_FAULTS, LOG_WS, ConnectionLogger, redact_frame
from .catalogue import THROTTLED, Rejection
from .faults import Fault, FaultListener, Point
from .operations import Operations
from .outbound import Cork, FramedEvents, Gate, OutboundQueue
from .recorder import ConnectionInfo
from .server_protocol import (
    InitReceived,
    PublishRequested,
    Rejected,
    ServerEvent,
    ServerProtocol,
    SubscribeRequested,
    UnsubscribeRequested,
)
from .verify import AuthFailure, AuthRequest, Identity
from .verify.base import websocket_request
from .ws_timers import ConnectionTimers

__all__ = ["CLOSE_TIMEOUT", "READ_BURST", "READ_SLICE", "WebSocketConnection"]

_PUBLISH: Final = "publish"
_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY
_ERROR: Final = WSMsgType.ERROR
_ENDED: Final = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)
_HELD_KINDS: Final = frozenset((WSMsgType.TEXT, WSMsgType.BINARY))
"""The frames ``receive`` returns as they are: it writes nothing for them."""


def _read_buffer(ws: web.WebSocketResponse) -> deque[Any] | None:
    """The messages ``ws`` has read and not returned yet, oldest first, as
    ``(message, size)`` pairs, when aiohttp's reader exposes them (else ``None``: every
    read may wait, and the reader holds no write across one)."""
    buffer = getattr(getattr(ws, "_reader", None), "_buffer", None)
    if type(buffer) is not deque:
        return None
    return buffer


CLOSE_TIMEOUT: Final = 2.0
"""Seconds a close handshake may take before the transport is aborted."""

READ_BURST: Final = 16
"""Inbound frames a connection may process back to back before yielding to other tasks."""
READ_SLICE: Final = 0.005
"""...or seconds it may spend on them, whichever comes first (big events take long to
validate).  Bigger bursts mean bigger write batches: 16 frames instead of 4 gave the
fan-out benchmark ~12% more throughput at one subscriber."""


class WebSocketConnection:
    """One WebSocket connection: reader and operations around the core.

    Args:
        operations: the shared operation runner (auth, faults, handlers, fan-out, records).
        ws: the prepared WebSocket.
        request: the upgrade request.
        info: the connection's record.
        headers: the upgrade request's headers (for handlers and authorizers); ``None``
            makes them from ``request`` when first needed (most connections never do).
        auth_failure: why connection auth failed at the upgrade, if it did.
        log: the connection's logger.
        drain: waits until the paused transport drains (what ``ws.prepare`` returned
            has it); without it, frames go through ``ws.send_str`` one by one.
    """

    # Slots: one of these per connection (memory per idle connection).
    __slots__ = (
        "__weakref__",  # tests check that a closed connection is released
        "_headers",
        "auth_failure",
        "close_deadline",
        "closed_callbacks",
        "closer",
        "closing",
        "config",
        "debug",
        "first_frame",
        "id",
        "info",
        "log",
        "loop",
        "operations",
        "outbound",
        "plan",
        "protocol",
        "publish_times",
        "read_gate",
        "recorder",
        "request",
        "tasks",
        "timers",
        "transport",
        "ws",
        "yield_now",
    )

    def __init__(
        self,
        operations: Operations,
        ws: web.WebSocketResponse,
        request: web.Request,
        info: ConnectionInfo,
        headers: Mapping[str, str] | None,
        auth_failure: AuthFailure | None,
        log: ConnectionLogger,
        *,
        drain: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        config = operations.config
        self.operations = operations
        self.config = config
        self.plan = operations.plan
        self.recorder = operations.recorder
        self.ws = ws
        self.request = request
        self.transport = request.transport
        """The socket's transport, kept: aiohttp's handler drops its reference once it
        closes the transport (gracefully), and :meth:`_finish` may still have to abort it."""
        self.info = info
        self.id = info.id
        self._headers = headers
        self.auth_failure = auth_failure
        self.log = log
        self.debug = LOG_WS.isEnabledFor(logging.DEBUG)
        self.loop = asyncio.get_running_loop()
        self.protocol = ServerProtocol(
            connection_timeout_ms=config.connection_timeout_ms,
            max_events_per_publish=config.limits.max_events_per_publish,
            max_event_bytes=None,  # oversized events are reported in failed[], as AWS does
            max_request_bytes=config.limits.max_request_bytes,
            max_subscriptions=config.limits.max_subscriptions_per_connection,
            namespace_exists=operations.namespace_exists,
        )
        transport = self.transport if drain is not None and not ws.compress else None
        self.outbound = OutboundQueue(
            send=ws.send_str,
            transport=transport,
            flow=request.protocol,
            drain=drain,
            socket=ws,
            cork=operations.cork,
            recorder=self.recorder,
            plan=self.plan,
            info=info,
            limit=config.limits.send_queue_frames,
            close=self._start_closer,
            on_error=operations.on_error,
            log=log,
            debug=self.debug,
        )
        self.timers = ConnectionTimers(self)
        self.read_gate = Gate()
        self.tasks: set[asyncio.Task[Any]] | None = None
        """Tasks :meth:`spawn` started (made on first use: most connections have none)."""
        self.closer: asyncio.Task[None] | None = None
        self.close_deadline: asyncio.TimerHandle | None = None
        """Closes at once if a queued close is not reached in time (see schedule_close)."""
        self.first_frame = True
        self.closing = False
        self.yield_now = False
        """Set when this connection's fan-out filled a subscriber's queue past half: the
        reader yields at once so that the writers drain before more fan-out."""
        self.publish_times: deque[float] | None = None
        """Times of the last second's publishes (``max_publish_per_second``), when limited."""
        self.closed_callbacks: list[Callable[[], None]] | None = None
        """Called once the connection is closed and recorded (one-shot close faults);
        created by the first one."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The upgrade request's headers, as handlers and authorizers see them."""
        if self._headers is None:
            self._headers = request_headers(self.request)
        return self._headers

    @property
    def under_pressure(self) -> bool:
        """Whether more than half of the send queue is full."""
        return self.outbound.under_pressure

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; never raises for peer behaviour."""
        self.timers.start()
        self.refresh_flow()
        try:
            await self._read_loop()
        except Exception as exc:  # a bug here must not take the server down
            self.log.error("internal error", exc_info=exc)
            self.operations.on_error(exc)
            await self.close_now(1011, "internal error")
        finally:
            await self._finish()

    async def _finish(self) -> None:
        by_server = self.closing or self.outbound.close_sent is not None  # closed or aborted
        self.closing = True
        self.outbound.closed = True
        with contextlib.suppress(LocalProtocolError):
            self.protocol.receive_eof()
        self.timers.cancel()
        if self.close_deadline is not None:
            self.close_deadline.cancel()
        self.outbound.shut()
        if self.closer is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.closer), CLOSE_TIMEOUT * 2)
        writer = self.outbound.writer
        others = [t for t in (writer, *(self.tasks or ())) if t is not None]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=CLOSE_TIMEOUT)
        code: int | None
        if self.outbound.close_sent is not None:
            code, reason = self.outbound.close_sent
        else:
            code, reason = self.ws.close_code, ""
        self.info = replace(self.info, closed_at=real_time(), close_code=code, close_reason=reason)
        self.recorder.record_close(self.id, code, reason, by_server=by_server)
        self.log.info("= closed (code %s%s)", code, f", {reason}" if reason else "")
        callbacks, self.closed_callbacks = self.closed_callbacks, None
        for callback in callbacks or ():
            callback()
        if self.transport is not None:
            # A graceful transport close waits until every buffered byte is written, which
            # a peer that never reads prevents forever (holding the descriptor and the
            # buffer): give it the close timeout, then abort (a no-op once it is closed).
            self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a task owned by this connection (cancelled when it closes)."""
        task = self.loop.create_task(self._guard(coro), name=f"{self.id}-{name}")
        if self.tasks is None:
            self.tasks = set()
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.error("internal error in a connection task", exc_info=exc)
            self.operations.on_error(exc)

    # --- reading ----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        cork = self.operations.cork
        try:
            await self._read_frames(cork)
        finally:
            cork.flush_held()

    async def _read_frames(self, cork: Cork) -> None:
        """Read and handle frames until the connection ends.

        The writes made while handling frames are held (:meth:`Cork.hold`) as long as the
        next frame is already read, and flushed, one transport write per socket, before
        anything is awaited: a read that could wait (or that may write a pong or a close
        frame itself), a yield, the read gate, a handler.
        """
        init_timeout = self.config.limits.init_timeout
        clock = self.loop.time
        read_gate = self.read_gate  # never replaced
        buffered = _read_buffer(self.ws)
        burst = 0
        slice_start = clock()
        while True:
            if cork.holding and not (buffered and buffered[0][0].type in _HELD_KINDS):
                cork.flush_held()
            try:
                if self.first_frame and init_timeout > 0:
                    msg = await self.ws.receive(timeout=init_timeout)
                else:
                    msg = await self.ws.receive()
            except TimeoutError:
                self.log.info("no frame within %s s of the upgrade: closing", init_timeout)
                await self.close_now(1008, "no frame received")
                return
            kind = msg.type
            data = msg.data
            if kind is _TEXT:  # the usual frame: the type checks below are not its
                if not read_gate.is_set():
                    cork.flush_held()
                    await read_gate.wait()
                if self.closing:
                    return
                # The usual frame (a publish answered at once) needs no coroutine.
                cork.holding = True
                rest = self._take_text(data)
                if rest:
                    cork.flush_held()
                    await self._on_events(rest)
            else:
                if kind in _ENDED:
                    return
                if kind is _ERROR:
                    self.log.info("= transport error: %s", data)
                    return
                if not read_gate.is_set():
                    cork.flush_held()
                    await read_gate.wait()
                if self.closing:
                    return
                if kind is _BINARY:
                    cork.holding = True
                    self._on_binary(data)
            # Frames already buffered are returned without a suspension point: yield every
            # few frames so that one chatty client cannot starve the writers of the others,
            # and at once when this connection's fan-out filled a send queue past half.
            burst += 1
            if burst >= READ_BURST or self.yield_now or clock() - slice_start >= READ_SLICE:
                burst = 0
                self.yield_now = False
                cork.flush_held()
                await asyncio.sleep(0)
                slice_start = clock()

    def _first(self) -> None:
        """Before the first frame: a failed connection auth (or a fault) refuses it."""
        self.first_frame = False
        errors: tuple[ErrorDetail, ...] | None = None
        if self.auth_failure is not None:
            errors = self.auth_failure.errors
        if self.plan.active(Point.CONNECT):
            decision = self.plan.decide(Point.CONNECT, self.info)
            if decision.reject is not None:
                LOG_FAULTS.info("[%s] rejecting the connection (fault)", self.id)
                errors = decision.reject
        if errors is not None:
            self.protocol.refuse_connection(errors)

    def _on_binary(self, data: bytes) -> None:
        self.recorder.record_frame(self.id, "received", data)
        if self.debug:
            self.log.debug("< binary %s", redact_frame(data))
        if self.first_frame:
            self._first()
        self.protocol.receive_binary(data)
        self.flush()

    async def _on_text(self, text: str) -> None:
        rest = self._take_text(text)
        if rest:
            await self._on_events(rest)

    def _take_text(self, text: str) -> list[ServerEvent] | None:
        """Take a text frame: the core reads it, it is recorded, and the publishes that
        need no coroutine are answered (the hot path).  Returns the events left for
        :meth:`_on_events`, from the first that needs a coroutine on (``None``: none)."""
        if self.first_frame:
            self._first()
        protocol = self.protocol
        got = protocol.receive_publish(text)
        if type(got) is PublishRequested:  # a valid publish (the core queued nothing)
            if self.debug:
                self.recorder.record_frame(self.id, "received", text, _PUBLISH)
                self.log.debug("< %s", redact_frame(text))
                if self._publish_now(got):
                    return None
            elif self._publish_now(got, text):  # recorded with the publish
                return None
            else:
                self.recorder.record_frame(self.id, "received", text, _PUBLISH)
            if protocol.has_output or protocol.close_expected is not None:
                self.flush()
            return [got]
        frame_type = cast("str | None", got)
        self.recorder.record_frame(self.id, "received", text, frame_type)
        if self.debug:
            self.log.debug("< %s", redact_frame(text))
        events = protocol.events_received()
        if protocol.has_output or protocol.close_expected is not None:
            self.flush()  # (the core's events were just taken: flush logs none of them)
        for index, event in enumerate(events):
            if type(event) is PublishRequested and self._publish_now(event):
                continue  # answered without a coroutine
            return events[index:]
        return None

    async def _on_events(self, events: list[ServerEvent]) -> None:
        # The first needs a coroutine (:meth:`_take_text` tried it).
        await self._on_event(events[0])
        for event in events[1:]:
            if type(event) is PublishRequested and self._publish_now(event):
                continue  # the hot path: answered without a coroutine
            await self._on_event(event)

    async def _on_event(self, event: ServerEvent) -> None:
        if type(event) is PublishRequested:  # the hot path
            await self._on_publish(event)
            return
        match event:
            case InitReceived():
                await self._on_init()
            case SubscribeRequested():
                await self._on_subscribe(event)
            case PublishRequested():
                await self._on_publish(event)
            case UnsubscribeRequested():
                self._on_unsubscribe(event)
            case Rejected():
                self._log_rejection(event)

    def _log_rejection(self, event: Rejected) -> None:
        if not self.log.isEnabledFor(logging.INFO):  # the arguments cost more than the check
            return
        self.log.info(
            "= rejected %s %s: %s",
            event.frame_type or "frame",
            event.id or "",
            "; ".join(str(e) for e in event.errors),
        )

    # --- operations -----------------------------------------------------------------------

    async def _on_init(self) -> None:
        decision = self.plan.decide(Point.ACK, self.info)
        if decision.drop:
            LOG_FAULTS.info("[%s] never acknowledging connection_init (fault)", self.id)
            return
        if decision.delay:
            LOG_FAULTS.info("[%s] delaying connection_ack by %s s (fault)", self.id, decision.delay)
            await asyncio.sleep(decision.delay)
            if self.closing:
                return
        ms = decision.ack_timeout_ms
        self.protocol.send_connection_ack(
            ms if ms is not None else self.config.connection_timeout_ms
        )
        self.flush()
        self.timers.start_keepalive()

    def _operation_succeeded(self) -> None:
        # An init-less connection gets ka from its first successful operation.
        if not self.protocol.init_received:
            self.timers.start_keepalive()

    def _on_unsubscribe(self, event: UnsubscribeRequested) -> None:
        subscription_id = event.id
        if self.plan.active(Point.UNSUBSCRIBE):
            decision = self.plan.decide(Point.UNSUBSCRIBE, self.info, frame_id=subscription_id)
            if decision.reject is not None:
                LOG_FAULTS.info("[%s] rejecting unsubscribe %s (fault)", self.id, subscription_id)
                self.protocol.reject_unsubscribe(subscription_id, decision.reject)
                self.flush()
                return
        self.protocol.accept_unsubscribe(subscription_id)
        self.operations.broker.remove(self.id, subscription_id)
        self.recorder.record_unsubscribe(self.id, subscription_id)
        self.flush()

    async def _on_subscribe(self, event: SubscribeRequested) -> None:
        message = event.message
        auth = None
        if message.authorization is not None:
            auth = self._auth_request(Operation.SUBSCRIBE, message.authorization, message.channel)
        try:
            identity = await self.operations.subscribe(event.channel, auth, self.headers, self.info)
        except Rejection as exc:
            if not self.closing:
                self.protocol.reject_subscribe(event.id, exc.errors)
                self.flush()
            return
        if self.closing:
            return
        reply = self.plan.decide(Point.SUBSCRIBE_REPLY, self.info)
        if reply.drop:
            LOG_FAULTS.info("[%s] withholding subscribe_success %s (fault)", self.id, event.id)
            return
        if reply.delay:
            LOG_FAULTS.info("[%s] delaying subscribe_success %s (fault)", self.id, event.id)
            self.spawn(self._accept_later(event, identity, reply.delay), "delayed-accept")
            return
        self._accept(event, identity)

    async def _accept_later(
        self, event: SubscribeRequested, identity: Identity, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        self._accept(event, identity)

    def _accept(self, event: SubscribeRequested, identity: Identity) -> None:
        if self.closing or event.id not in self.protocol.pending_subscriptions:
            return
        self.protocol.accept_subscribe(event.id)
        self.operations.broker.add(self.id, event.id, event.channel)
        self.recorder.record_subscription(
            self.id, event.id, event.message.channel, event.channel.path, identity
        )
        self.flush()
        self._operation_succeeded()

    def _throttled(self) -> bool:
        limit = self.config.limits.max_publish_per_second
        if limit is None:
            return False
        now = self.loop.time()
        times = self.publish_times
        if times is None:
            times = self.publish_times = deque()
        while times and now - times[0] >= 1.0:
            times.popleft()
        if len(times) >= limit:
            return True
        times.append(now)
        return False

    async def _on_publish(self, event: PublishRequested) -> None:
        message = event.message
        if self._throttled():
            self.protocol.reject_publish(event.id, [THROTTLED])
            self.flush()
            return
        auth = None
        if message.authorization is not None:
            auth = self._auth_request(
                Operation.PUBLISH, message.authorization, message.channel, message.events
            )
        try:
            published = await self.operations.publish(
                event.channel,
                message.events,
                auth,
                self.headers,
                transport="websocket",
                conn=self.info,
            )
        except Rejection as exc:
            if not self.closing:
                self.protocol.reject_publish(event.id, exc.errors)
                self.flush()
            return
        with self.operations.cork:  # publish_success goes out once the publish is recorded
            if not self.closing:
                self.protocol.accept_publish(
                    event.id, published.outcome.successful, published.outcome.failed
                )
                self.flush()
            delivery = self.operations.deliver(
                event.channel,
                message.events,
                published,
                transport="websocket",
                connection_id=self.id,
                publish_id=event.id,
            )
        self.yield_now = self.yield_now or delivery.pressure
        self._operation_succeeded()

    def _publish_now(self, event: PublishRequested, received: str | None = None) -> bool:
        """:meth:`_on_publish` of a publish that needs no coroutine
        (:meth:`Operations.publish_now`, no throttle); ``False``, having done nothing, when
        :meth:`_on_publish` must run.  ``received``: the frame's text, not recorded yet
        (recorded here with the publish, before any of its answers)."""
        if self.config.limits.max_publish_per_second is not None:
            return False
        message = event.message
        operations = self.operations
        events = message.events
        quick = operations.publish_now(event.channel, events, message.authorization)
        if quick is None:
            return False
        identifiers, identity = quick
        channel = event.channel
        with operations.cork:  # the frames go out once the publish is recorded
            if not self.closing:
                text = self.protocol.publish_success_text(event.id, identifiers)
                if text is None:
                    self.flush()
                else:
                    self.outbound.put_text(text, "publish_success", event.id)
            delivery = operations.fan_out(channel, events)
            if received is not None:
                self.recorder.record_received_publish(
                    self.id,
                    received,
                    channel.path,
                    events,
                    identifiers,
                    identity,
                    delivery.frames,
                    event.id,
                )
            else:
                self.recorder.record_publish_row(
                    channel.path,
                    events,
                    identifiers,
                    identity,
                    "websocket",
                    (),
                    events,
                    delivery.frames,
                    self.id,
                    event.id,
                )
        self.yield_now = self.yield_now or delivery.pressure
        self._operation_succeeded()
        return True

    def _auth_request(
        self,
        operation: Operation,
        auth: Mapping[str, str],
        channel: str,
        events: tuple[str, ...] | None = None,
    ) -> AuthRequest:
        return websocket_request(
            operation, auth, channel, events, self.headers, self.request.remote, self.id
        )

    # --- sending ------------------------------------------------------------------------

    def deliver(
        self, subscription_id: str, events: FramedEvents, key: tuple[str, str] | None = None
    ) -> int:
        """Queue ``data`` frames for subscription ``subscription_id``; return how many.

        ``key`` is ``(connection id, subscription_id)``, if the caller has it.  Sets
        ``events.pressure`` if the send queue is more than half full.
        """
        if self.closing:
            return 0
        # The hot path: when the core says the frames may go as they are, the outbound
        # queue frames them from the publish's shared bytes (no text, no Outgoing per
        # frame).
        ready = self.protocol.data_ready(subscription_id)
        if ready:
            self.outbound.put_framed(subscription_id, events, key)
            return len(events.tails)
        if ready is not None:
            self.protocol.send_events(subscription_id, events.events)
            self.flush()  # held until the ack
        if self.outbound.under_pressure:
            events.pressure = True
        return 0 if ready is None else len(events.tails)

    def flush(self) -> None:
        """Move the core's output to the outbound queue; log the rejections it decided;
        schedule a close it asks for."""
        self.outbound.put(self.protocol.data_to_send())
        for event in self.protocol.events_received():
            if isinstance(event, Rejected):  # the shell's decisions only produce these
                self._log_rejection(event)
        expected = self.protocol.close_expected
        if expected is not None and self.outbound.close_sent is None:
            self.schedule_close(*expected)

    def schedule_close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued (idempotent).

        If the queued frames are not written within :data:`CLOSE_TIMEOUT` (a peer that
        does not read), they are dropped and the connection is closed at once.
        """
        if not self.closing and self.outbound.put_close(code, reason):
            self.close_deadline = self.loop.call_later(
                CLOSE_TIMEOUT, self._close_overdue, code, reason
            )

    def _close_overdue(self, code: int, reason: str) -> None:
        if not self.closing and self.closer is None:
            self.log.info("= queued frames not written within %s s: closing now", CLOSE_TIMEOUT)
            self._start_closer(code, reason)

    def _start_closer(self, code: int, reason: str) -> None:
        if self.closer is None:
            self.closer = self.loop.create_task(
                self.close_now(code, reason), name=f"{self.id}-close"
            )

    async def close_now(self, code: int, reason: str = "") -> None:
        """Close at once (queued frames are dropped); abort if the peer does not answer."""
        self.operations.cork.flush_held()  # written before the close frame
        self.closing = True
        self.outbound.closed = True
        self.outbound.clear()
        self.outbound.cancel_writer()
        if self.ws.closed:
            return
        self.outbound.close_sent = (code, reason)
        self.log.info("= closing with %d %s", code, reason)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=reason.encode())
        except asyncio.CancelledError:
            # Either this task is being cancelled, or aiohttp's shared drain waiter was
            # cancelled under it: cancelling a task blocked in ``drain()`` (the writer, or
            # this close at its timeout) cancels the future every drain of the connection
            # awaits, and each later drain raises CancelledError at once.  The peer is not
            # reading: abort in both cases, and re-raise only a cancellation of this task.
            self.abort()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            self.log.info("= close frame not written (the peer is not reading): aborted")
        except (TimeoutError, ConnectionError, RuntimeError):
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (clients see 1006)."""
        self.operations.cork.flush_held()  # what was written before it goes first
        self.closing = True
        self.outbound.closed = True
        self.outbound.clear()
        if self.transport is not None:
            self.transport.abort()

    # --- faults ----------------------------------------------------------------------------

    def refresh_flow(self) -> None:
        """Apply ``Stall``/``StallSubscriber`` to this connection's reads and writes."""
        self.timers.refresh_flow()

    def execute(self, fault: Fault, listener: FaultListener | None = None) -> None:
        """Carry out a one-shot fault on this connection (``listener`` follows it)."""
        self.timers.execute(fault, listener)

    def when_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the connection is closed and recorded as such."""
        if self.closed_callbacks is None:
            self.closed_callbacks = []
        self.closed_callbacks.append(callback)
