"""One WebSocket connection: reader, writer, keep-alive and timers around the sans-I/O core.

The theory of operation is in :mod:`appsync_emulator.server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMsgType, web

from appsync_events.errors import ErrorDetail, LocalProtocolError, RemoteProtocolError
from appsync_events.protocol import codec
from appsync_events.protocol.messages import Unsubscribe, UnsubscribeError
from appsync_events.protocol.server import (
    InitReceived,
    PublishRequested,
    Rejected,
    ServerProtocol,
    SubscribeRequested,
    Unsubscribed,
)

from . import handlers
from ._clock import real_time
from ._logging import LOG_FAULTS, LOG_WS, ConnectionLogger, redact_frame
from .faults import (
    CloseConnection,
    DropConnection,
    Fault,
    FloodSubscription,
    Point,
    SendBroadcastError,
    SendError,
    SendRawText,
)
from .recorder import ConnectionInfo, ErrorRecord
from .verify import AuthFailure, AuthRequest, Identity, Operation, Transport, unauthorized

if TYPE_CHECKING:
    from .server import Emulator

__all__ = ["CLOSE_TIMEOUT", "READ_BURST", "READ_SLICE", "THROTTLED", "WebSocketConnection"]

CLOSE_TIMEOUT: Final = 2.0
"""Seconds a close handshake may take before the transport is aborted."""

READ_BURST: Final = 16
"""Inbound frames a connection may process back to back before yielding to other tasks."""
READ_SLICE: Final = 0.005
"""...or seconds it may spend on them, whichever comes first (big events take long to
validate).  Bigger bursts mean bigger write batches: 16 frames instead of 4 gave the
fan-out benchmark ~12% more throughput at one subscriber."""

THROTTLED: Final = ErrorDetail(
    error_type="ThrottlingException",
    message="Rate exceeded: too many publish requests per second on this connection",
)
"""``publish_error`` beyond ``limits.max_publish_per_second`` (EMULATOR-CHOICE §7.3)."""

_ERROR_FRAMES: Final = frozenset(
    {
        "connection_error",
        "subscribe_error",
        "publish_error",
        "unsubscribe_error",
        "broadcast_error",
        "error",
    }
)
# The codec writes "type" first and "id" second: a cheap peek, no JSON parsing.
_PEEK: Final = re.compile(r'\{"type":"([a-z_]{1,32})"(?:,"id":"([^"\\]{1,128})")?')
_SNIFF_TYPE: Final = re.compile(r'"type"\s*:\s*"([a-z_]{1,32})"')


def _peek(text: str) -> tuple[str | None, str | None]:
    match = _PEEK.match(text)
    if match is None:
        return None, None
    return match.group(1), match.group(2)


_Out = tuple[str | None, str | None, str | None, float]
"""One outbound queue item: ``(text, frame type, frame id, due time)``; ``text`` is
``None`` for the close instruction (its code and reason are in ``close_sent``)."""


class WebSocketConnection:
    """One WebSocket connection: reader, writer, keep-alive and timers around the core."""

    def __init__(
        self,
        emulator: Emulator,
        ws: web.WebSocketResponse,
        request: web.Request,
        info: ConnectionInfo,
        headers: Mapping[str, str],
        auth_failure: AuthFailure | None,
        log: ConnectionLogger,
    ) -> None:
        config = emulator.config
        self.emulator = emulator
        self.config = config
        self.ws = ws
        self.request = request
        self.info = info
        self.id = info.id
        self.headers = headers
        self.auth_failure = auth_failure
        self.log = log
        self.debug = LOG_WS.isEnabledFor(logging.DEBUG)
        self.loop = asyncio.get_running_loop()
        self.proto = ServerProtocol(
            connection_timeout_ms=config.connection_timeout_ms,
            max_events_per_publish=config.limits.max_events_per_publish,
            max_event_bytes=None,  # oversized events are reported in failed[] (§7.2, observed)
            max_request_bytes=config.limits.max_request_bytes,
            max_subscriptions=config.limits.max_subscriptions_per_connection,
            namespace_exists=lambda ns: config.namespace(ns) is not None,
            connection_authorized=auth_failure is None,
        )
        self.queue: deque[_Out] = deque()
        self.prerecorded = 0
        """Frames at the front of the queue that were recorded already (stalled mid-batch)."""
        self.recorder = emulator.recorder
        self.queue_limit = config.limits.send_queue_frames
        self.wakeup = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()
        self.read_gate = asyncio.Event()
        self.read_gate.set()
        self.write_gate = asyncio.Event()
        self.write_gate.set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.writer: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None
        self.keepalive: asyncio.Task[None] | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.first_frame = True
        self.closing = False
        self.close_sent: tuple[int, str] | None = None
        self.publish_times: deque[float] = deque()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; never raises for peer behaviour."""
        self.writer = self.loop.create_task(self._write(), name=f"{self.id}-writer")
        lifetime = self.config.max_connection_lifetime
        if lifetime > 0:
            self.timers.append(
                self.loop.call_later(
                    lifetime, self.schedule_close, 1001, "connection lifetime exceeded"
                )
            )
        self.refresh_flow()
        try:
            await self._read_loop()
        except Exception as exc:  # a bug here must not take the server down
            self.log.error("internal error", exc_info=exc)
            self.emulator.record_exception(exc)
            await self.close_now(1011, "internal error")
        finally:
            await self._finish()

    async def _finish(self) -> None:
        self.closing = True
        with contextlib.suppress(LocalProtocolError):
            self.proto.receive_eof()
        for timer in self.timers:
            timer.cancel()
        if self.closer is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.closer), CLOSE_TIMEOUT * 2)
        others = [t for t in (self.writer, self.keepalive, *self.tasks) if t is not None]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=CLOSE_TIMEOUT)
        code: int | None
        if self.close_sent is not None:
            code, reason = self.close_sent
        else:
            code, reason = self.ws.close_code, ""
        self.info = replace(self.info, closed_at=real_time(), close_code=code, close_reason=reason)
        self.emulator.recorder.record_close(self.id, code, reason)
        self.log.info("= closed (code %s%s)", code, f", {reason}" if reason else "")

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a task owned by this connection (cancelled when it closes)."""
        task = self.loop.create_task(self._guard(coro), name=f"{self.id}-{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.error("internal error in a connection task", exc_info=exc)
            self.emulator.record_exception(exc)

    # --- reading ----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        init_timeout = self.config.limits.init_timeout
        clock = self.loop.time
        emulator = self.emulator
        burst = 0
        slice_start = clock()
        while True:
            try:
                if self.first_frame and init_timeout > 0:
                    msg = await self.ws.receive(timeout=init_timeout)
                else:
                    msg = await self.ws.receive()
            except TimeoutError:
                self.log.info("no frame within %s s of the upgrade: closing", init_timeout)
                await self.close_now(1008, "no frame received")
                return
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if msg.type is WSMsgType.ERROR:
                self.log.info("= transport error: %s", msg.data)
                return
            if not self.read_gate.is_set():
                await self.read_gate.wait()
            if self.closing:
                return
            if msg.type is WSMsgType.TEXT:
                await self._on_text(msg.data)
            elif msg.type is WSMsgType.BINARY:
                self._on_binary(msg.data)
            # Frames already buffered are returned without a suspension point: yield every
            # few frames so that one chatty client cannot starve the writers of the others.
            # A send queue past half its capacity (see Emulator.send_pressure) yields at once.
            burst += 1
            if burst >= READ_BURST or emulator.send_pressure or clock() - slice_start >= READ_SLICE:
                burst = 0
                emulator.send_pressure = False
                await asyncio.sleep(0)
                slice_start = clock()

    def _first(self) -> bool:
        """Handle the first frame: a failed connection auth (or fault) refuses it."""
        self.first_frame = False
        errors: tuple[ErrorDetail, ...] | None = None
        if self.auth_failure is not None:
            errors = self.auth_failure.errors
        if self.emulator.plan.active(Point.CONNECT):
            decision = self.emulator.plan.decide(Point.CONNECT, self.info)
            if decision.reject is not None:
                LOG_FAULTS.info("[%s] rejecting the connection (fault)", self.id)
                errors = decision.reject
        if errors is None:
            return False
        self.proto.fail_connection(errors)
        self.flush()
        return True

    def _on_binary(self, data: bytes) -> None:
        self.emulator.recorder.record_frame(self.id, "received", data)
        if self.debug:
            self.log.debug("< binary %s", redact_frame(data))
        if self.first_frame and self._first():
            return
        self.proto.receive_binary(data)
        self.flush()
        self._log_rejections()

    async def _on_text(self, text: str) -> None:
        sniffed = _PEEK.match(text) or _SNIFF_TYPE.search(text)  # "type" usually comes first
        self.emulator.recorder.record_frame(
            self.id, "received", text, sniffed.group(1) if sniffed else None
        )
        if self.debug:
            self.log.debug("< %s", redact_frame(text))
        if self.first_frame and self._first():
            return
        if (
            self.emulator.plan.active(Point.UNSUBSCRIBE)
            and sniffed is not None
            and sniffed.group(1) == "unsubscribe"
            and self._reject_unsubscribe(text)
        ):
            return
        self.proto.receive_text(text)
        self.flush()
        for event in self.proto.events_received():
            match event:
                case InitReceived():
                    await self._on_init()
                case SubscribeRequested():
                    await self._on_subscribe(event)
                case PublishRequested():
                    await self._on_publish(event)
                case Unsubscribed(id=sub_id):
                    self.emulator.broker.remove(self.id, sub_id)
                    self.emulator.recorder.record_unsubscribe(self.id, sub_id)
                case Rejected():
                    self._log_rejection(event)

    def _log_rejections(self) -> None:
        for event in self.proto.events_received():
            if isinstance(event, Rejected):
                self._log_rejection(event)

    def _log_rejection(self, event: Rejected) -> None:
        self.log.info(
            "= rejected %s %s: %s",
            event.frame_type or "frame",
            event.id or "",
            "; ".join(str(e) for e in event.errors),
        )

    def _reject_unsubscribe(self, text: str) -> bool:
        try:
            message = codec.decode_client(text)
        except RemoteProtocolError:
            return False
        if not isinstance(message, Unsubscribe) or message.id not in self.proto.subscriptions:
            return False
        decision = self.emulator.plan.decide(Point.UNSUBSCRIBE, self.info, frame_id=message.id)
        if decision.reject is None:
            return False
        LOG_FAULTS.info("[%s] rejecting unsubscribe %s (fault)", self.id, message.id)
        self.send_frame(codec.encode(UnsubscribeError(id=message.id, errors=decision.reject)))
        return True

    # --- operations -----------------------------------------------------------------------

    async def _on_init(self) -> None:
        decision = self.emulator.plan.decide(Point.ACK, self.info)
        if decision.drop:
            LOG_FAULTS.info("[%s] never acknowledging connection_init (fault)", self.id)
            return
        if decision.delay:
            LOG_FAULTS.info("[%s] delaying connection_ack by %s s (fault)", self.id, decision.delay)
            await asyncio.sleep(decision.delay)
            if self.closing:
                return
        ms = decision.ack_timeout_ms
        self.proto.send_connection_ack(ms if ms is not None else self.config.connection_timeout_ms)
        self.flush()
        self.start_keepalive()

    def _operation_succeeded(self) -> None:
        # EMULATOR-CHOICE §3.3.2: an init-less connection gets ka from its first success.
        if not self.proto.init_received:
            self.start_keepalive()

    async def _on_subscribe(self, event: SubscribeRequested) -> None:
        namespace = self.config.namespace(event.channel.namespace)
        assert namespace is not None  # the core checked it
        plan = self.emulator.plan
        errors: tuple[ErrorDetail, ...] | None = None
        identity: Identity | None = None
        decision = plan.decide(Point.SUBSCRIBE, self.info)
        if decision.reject is not None:
            LOG_FAULTS.info("[%s] rejecting subscribe %s (fault)", self.id, event.id)
            errors = decision.reject
        elif event.message.authorization is None:
            # EMULATOR-CHOICE §5.7: an operation without authorization is unauthorized.
            errors = unauthorized().errors
        else:
            try:
                identity = await self.emulator.authorize(
                    self._auth_request(
                        Operation.SUBSCRIBE,
                        event.message.authorization,
                        event.message.channel,
                        None,
                    ),
                    self.config.subscribe_modes(namespace),
                )
                await handlers.run_on_subscribe(
                    self.config,
                    namespace,
                    channel=event.channel,
                    identity=identity,
                    request_headers=self.headers,
                    on_error=self.emulator.record_exception,
                )
            except AuthFailure as exc:
                errors = exc.errors
            except handlers.HandlerRejection as exc:
                errors = exc.errors
        if self.closing:
            return
        if errors is not None:
            self.proto.reject_subscribe(event.id, errors)
            self.flush()
            return
        reply = plan.decide(Point.SUBSCRIBE_REPLY, self.info)
        if reply.drop:
            LOG_FAULTS.info("[%s] withholding subscribe_success %s (fault)", self.id, event.id)
            return
        if reply.delay:
            LOG_FAULTS.info("[%s] delaying subscribe_success %s (fault)", self.id, event.id)
            self.spawn(self._accept_later(event, identity, reply.delay), "delayed-accept")
            return
        self._accept(event, identity)

    async def _accept_later(
        self, event: SubscribeRequested, identity: Identity | None, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        self._accept(event, identity)

    def _accept(self, event: SubscribeRequested, identity: Identity | None) -> None:
        if self.closing or event.id not in self.proto.pending_subscriptions:
            return
        self.proto.accept_subscribe(event.id)
        self.emulator.broker.add(self.id, event.id, event.channel)
        self.emulator.recorder.record_subscription(
            self.id, event.id, event.message.channel, event.channel.path, identity
        )
        self.flush()
        self._operation_succeeded()

    def _throttled(self) -> bool:
        limit = self.config.limits.max_publish_per_second
        if limit is None:
            return False
        now = self.loop.time()
        while self.publish_times and now - self.publish_times[0] >= 1.0:
            self.publish_times.popleft()
        if len(self.publish_times) >= limit:
            return True
        self.publish_times.append(now)
        return False

    async def _on_publish(self, event: PublishRequested) -> None:
        namespace = self.config.namespace(event.channel.namespace)
        assert namespace is not None  # the core checked it
        message = event.message
        if self._throttled():
            self.proto.reject_publish(event.id, [THROTTLED])
            self.flush()
            return
        decision = self.emulator.plan.decide(Point.PUBLISH, self.info)
        errors: tuple[ErrorDetail, ...] | None = None
        identity: Identity | None = None
        outcome: handlers.PublishOutcome | None = None
        ids: tuple[str, ...] = ()
        if decision.reject is not None:
            LOG_FAULTS.info("[%s] rejecting publish %s (fault)", self.id, event.id)
            errors = decision.reject
        elif message.authorization is None:
            errors = unauthorized().errors  # EMULATOR-CHOICE §5.7
        else:
            try:
                identity = await self.emulator.authorize(
                    self._auth_request(
                        Operation.PUBLISH, message.authorization, message.channel, message.events
                    ),
                    self.config.publish_modes(namespace),
                )
                outcome, ids = await self.emulator.run_publish(
                    namespace,
                    event.channel,
                    message.events,
                    identity,
                    self.headers,
                    transport="websocket",
                    decision=decision,
                )
            except AuthFailure as exc:
                errors = exc.errors
            except handlers.HandlerRejection as exc:
                errors = exc.errors
        if errors is not None or outcome is None:
            if not self.closing:
                self.proto.reject_publish(event.id, errors or unauthorized().errors)
                self.flush()
            return
        if not self.closing:
            self.proto.accept_publish(event.id, outcome.successful, outcome.failed)
            self.flush()
        self.emulator.deliver_publish(
            event.channel,
            message.events,
            ids,
            outcome,
            identity,
            transport="websocket",
            connection_id=self.id,
            publish_id=event.id,
        )
        self._operation_succeeded()

    def _auth_request(
        self,
        operation: Operation,
        auth: Mapping[str, str],
        channel: str,
        events: tuple[str, ...] | None,
    ) -> AuthRequest:
        return AuthRequest(
            operation=operation,
            transport=Transport.WEBSOCKET,
            auth=auth,
            channel=channel,
            events=events,
            request_headers=self.headers,
            source_ip=self.request.remote,
            connection_id=self.id,
        )

    # --- fan-out ------------------------------------------------------------------------

    def deliver(self, sub_id: str, texts: Sequence[str]) -> int:
        """Queue ``data`` frames for subscription ``sub_id``; return how many."""
        if self.closing or not self.proto.send_events(sub_id, texts):
            return 0
        frames = self.proto.data_to_send()
        if len(frames) != len(texts) or self.emulator.plan.active(Point.OUTBOUND):
            for frame in frames:  # the general path: peek each frame, apply faults
                self.send_frame(frame)
        else:  # the hot path: these are exactly the data frames just queued
            self._enqueue_data(frames, sub_id)
        return len(texts)

    # --- sending ------------------------------------------------------------------------

    def flush(self) -> None:
        """Move the core's output to the outbound queue; schedule a close it asks for."""
        for text in self.proto.data_to_send():
            self.send_frame(text)
        expected = self.proto.close_expected
        if expected is not None and self.close_sent is None:
            self.schedule_close(*expected)

    def send_frame(self, text: str) -> None:
        """Queue one text frame, subject to the outbound faults."""
        frame_type, frame_id = _peek(text)
        latency = 0.0
        plan = self.emulator.plan
        if plan.active(Point.OUTBOUND):
            decision = plan.decide(
                Point.OUTBOUND, self.info, frame_type=frame_type, frame_id=frame_id
            )
            if decision.drop:
                LOG_FAULTS.info("[%s] dropping %s %s (fault)", self.id, frame_type, frame_id or "")
                return
            if decision.replace is not None:
                LOG_FAULTS.info("[%s] corrupting %s (fault)", self.id, frame_type)
                text, frame_type, frame_id = decision.replace, None, None
            latency = decision.latency
            if decision.delay:
                self.timers.append(
                    self.loop.call_later(
                        decision.delay, self._enqueue, text, frame_type, frame_id, latency
                    )
                )
                return
        self._enqueue(text, frame_type, frame_id, latency)

    def _enqueue(
        self, text: str, frame_type: str | None, frame_id: str | None, latency: float = 0.0
    ) -> None:
        if self.closing:
            return
        queue = self.queue
        if len(queue) >= self.queue_limit:
            self._overflow()
            return
        queue.append((text, frame_type, frame_id, self.loop.time() + latency if latency else 0.0))
        self._queued()

    def _enqueue_data(self, frames: Sequence[str], sub_id: str) -> None:
        """:meth:`_enqueue` for the ``data`` frames of one fan-out, at once."""
        if self.closing:
            return
        queue = self.queue
        if len(queue) + len(frames) > self.queue_limit:
            self._overflow()
            return
        queue.extend([(text, "data", sub_id, 0.0) for text in frames])
        self._queued()

    def _queued(self) -> None:
        # Past half its capacity the queue is "not drained", and readers yield at once.
        if len(self.queue) * 2 > self.queue_limit:
            self.drained.clear()
            self.emulator.send_pressure = True
        self.wakeup.set()

    def _overflow(self) -> None:
        self.log.warning(
            "send queue overflow (%d frames waiting): closing with 1008", len(self.queue)
        )
        self.recorder.record_error(
            ErrorRecord(
                transport="websocket",
                frame_type="overflow",
                errors=(
                    ErrorDetail(
                        error_type="SlowConsumer",
                        message=f"more than {self.queue_limit} frames waiting: closed 1008",
                    ),
                ),
                connection_id=self.id,
                time=real_time(),
            )
        )
        self.queue.clear()
        self.prerecorded = 0
        self._start_closer(1008, "send queue overflow")

    def schedule_close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued (idempotent)."""
        if self.closing or self.close_sent is not None:
            return
        self.close_sent = (code, reason)
        self.queue.append((None, None, None, 0.0))
        self.wakeup.set()

    async def _write(self) -> None:
        """The writer task: a bug in it closes the connection with 1011, never hangs it."""
        try:
            await self._write_loop()
        except Exception as exc:
            self.log.error("internal error in the writer", exc_info=exc)
            self.emulator.record_exception(exc)
            self.queue.clear()
            self.prerecorded = 0
            self._start_closer(1011, "internal error")

    async def _write_loop(self) -> None:
        record = self.recorder.record_frames
        queue = self.queue
        send = self.ws.send_str
        conn_id = self.id
        limit = self.queue_limit
        gate = self.write_gate
        batch: list[_Out] = []
        while True:
            if not queue:
                self.drained.set()
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            if not gate.is_set():
                await gate.wait()
                continue
            text, frame_type, frame_id, due = queue[0]
            if text is None or due:  # a close instruction, or a frame with latency
                queue.popleft()
                if text is None:
                    code, reason = self.close_sent or (1000, "")
                    self._start_closer(code, reason)
                    return
                wait = due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                batch.append((text, frame_type, frame_id, due))
            else:
                # Plain frames go out in batches: one recorder lock for many frames.
                while queue and len(batch) < 64:
                    item = queue[0]
                    if item[0] is None or item[3]:
                        break
                    batch.append(queue.popleft())
            if len(queue) * 2 <= limit and not self.drained.is_set():
                self.drained.set()
            # Record before sending, so a test that sees a frame also finds it recorded.
            skip = min(self.prerecorded, len(batch))
            self.prerecorded -= skip
            record(conn_id, batch[skip:] if skip else batch)
            for position, item in enumerate(batch):
                sent_text = item[0]
                assert sent_text is not None
                if not gate.is_set():  # stalled in the middle of a batch: put the rest back
                    queue.extendleft(reversed(batch[position:]))
                    self.prerecorded += len(batch) - position
                    break
                if item[1] in _ERROR_FRAMES:
                    self._record_error_frame(sent_text, item[1] or "error", item[2])
                if self.debug:
                    self.log.debug("> %s", redact_frame(sent_text))
                try:
                    await send(sent_text)
                except (ConnectionError, RuntimeError) as exc:
                    self.log.debug("= send failed: %s", exc)
                    return
            batch.clear()

    def _record_error_frame(self, text: str, frame_type: str, frame_id: str | None) -> None:
        try:
            message = codec.decode_server(text)
        except RemoteProtocolError:
            return
        errors = getattr(message, "errors", ())
        self.recorder.record_error(
            ErrorRecord(
                transport="websocket",
                frame_type=frame_type,
                errors=tuple(errors),
                connection_id=self.id,
                id=frame_id,
                time=real_time(),
            )
        )

    def _start_closer(self, code: int, reason: str) -> None:
        if self.closer is None:
            self.closer = self.loop.create_task(
                self.close_now(code, reason), name=f"{self.id}-close"
            )

    async def close_now(self, code: int, reason: str = "") -> None:
        """Close at once (queued frames are dropped); abort if the peer does not answer."""
        self.closing = True
        self.queue.clear()
        self.prerecorded = 0
        if self.writer is not None and self.writer is not asyncio.current_task():
            self.writer.cancel()
        if self.ws.closed:
            return
        self.close_sent = (code, reason)
        self.log.info("= closing with %d %s", code, reason)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=reason.encode())
        except (TimeoutError, ConnectionError, RuntimeError):
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (clients see 1006)."""
        self.closing = True
        self.queue.clear()
        self.prerecorded = 0
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    # --- keep-alive -----------------------------------------------------------------------

    def start_keepalive(self) -> None:
        """Send ``ka`` now and every ``keepalive_interval`` (idempotent)."""
        if self.keepalive is None and not self.closing:
            self.keepalive = self.loop.create_task(self._keepalive_loop(), name=f"{self.id}-ka")

    async def _keepalive_loop(self) -> None:
        interval = self.config.keepalive_interval
        while not self.closing:
            self.proto.send_keepalive()
            self.flush()
            await asyncio.sleep(interval)

    # --- faults ----------------------------------------------------------------------------

    def refresh_flow(self) -> None:
        plan = self.emulator.plan
        decision = plan.decide(Point.FLOW, self.info) if plan.active(Point.FLOW) else None
        stall_reads = decision is not None and decision.stall_reads
        stall_writes = decision is not None and decision.stall_writes
        for gate, stalled in ((self.read_gate, stall_reads), (self.write_gate, stall_writes)):
            if stalled and gate.is_set():
                gate.clear()
            elif not stalled and not gate.is_set():
                gate.set()
        if stall_reads or stall_writes:
            LOG_FAULTS.info("[%s] stalled: reads %s, writes %s", self.id, stall_reads, stall_writes)

    def execute(self, fault: Fault) -> None:
        """Carry out a one-shot fault on this connection."""
        if self.closing:
            return
        LOG_FAULTS.info("[%s] executing %r", self.id, fault)
        match fault:
            case CloseConnection(code=code, reason=reason):
                self.schedule_close(code, reason)
            case DropConnection():
                self.abort()
            case SendBroadcastError(subscription_id=sub_id, errors=errors):
                targets = [sub_id] if sub_id is not None else list(self.proto.subscriptions)
                for target in targets:
                    if target in self.proto.subscriptions:
                        self.proto.send_broadcast_error(target, errors)
                self.flush()
            case SendError(errors=errors, id=op_id):
                self.proto.send_error(errors, op_id)
                self.flush()
            case SendRawText(text=text):
                self._enqueue(text, None, None)
            case FloodSubscription(subscription_id=sub_id, count=count, rate=rate, event=text):
                targets = [sub_id] if sub_id is not None else list(self.proto.subscriptions)
                self.spawn(self._flood(targets, count, rate, text), "flood")
            case _:
                pass

    async def _flood(
        self, targets: Sequence[str], count: int, rate: float | None, text: str
    ) -> None:
        period = 1.0 / rate if rate else 0.0
        next_at = self.loop.time()
        for _ in range(count):
            if self.closing:
                return
            if not self.drained.is_set():
                await self.drained.wait()
            sent = [self.proto.send_data(target, text) for target in targets]
            self.flush()
            if not any(sent):
                return  # every target was unsubscribed (or never existed)
            if period:
                next_at += period
                await asyncio.sleep(max(0.0, next_at - self.loop.time()))
            # Without a rate, frames are queued back to back (a burst on the wire); the
            # only pause is the wait for the queue to drain below half its capacity.
