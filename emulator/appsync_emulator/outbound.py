"""The outbound side of one WebSocket connection: a bounded, fault-aware queue and its writer.

Frames from the core (:class:`~appsync_events.protocol.messages.Outgoing`) pass the fault
plan (drop, replace, delay, latency), wait in a bounded queue and are written by one writer
task in batches, each batch recorded under one recorder lock just before it is written.
When more than ``limit`` frames wait, the connection is closed with 1008 (a slow consumer
never blocks the publisher or the other subscribers).  Past half its capacity the queue
reports :attr:`OutboundQueue.under_pressure`, and :attr:`OutboundQueue.drained` is clear
until the writer brings it back under half.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from appsync_events.errors import ErrorDetail
from appsync_events.protocol.messages import Outgoing

from ._clock import real_time
from ._logging import LOG_FAULTS, ConnectionLogger, redact_frame
from .catalogue import send_queue_overflow
from .faults import FaultPlan, Point
from .recorder import ConnectionInfo, ErrorRecord, Recorder
from .server_protocol import ErrorFrame

__all__ = ["BATCH_FRAMES", "OutboundQueue"]

BATCH_FRAMES: Final = 64
"""Frames written (and recorded under one lock) per batch."""


@dataclass(frozen=True, slots=True)
class _Extra:
    """What a queued frame needs beyond its text, kind and id (rare: most frames are data)."""

    due: float = 0.0
    """Loop time before which it may not be written (``FrameLatency``), or 0."""
    errors: tuple[ErrorDetail, ...] | None = None
    """The errors of an error frame, recorded when it is written."""


_Item = tuple[str | None, str | None, str | None, _Extra | None]
"""``(text, frame type, frame id, extra)``: the recorder's frame tuple.  ``text`` is
``None`` for the close instruction (its code and reason are in ``close_sent``)."""

_CLOSE: Final[_Item] = (None, None, None, None)


class OutboundQueue:
    """The bounded outbound queue and writer task of one connection.

    Args:
        send: writes one text frame (``WebSocketResponse.send_str``).
        recorder: where written frames and error frames are recorded.
        plan: the fault plan (outbound faults, stalled writes).
        info: the connection, for fault targets and records.
        limit: frames that may wait; one more closes the connection with 1008.
        close: starts closing the connection with ``(code, reason)`` (idempotent).
        on_error: collects an internal exception for ``Emulator.check``.
        log: the connection's logger.
    """

    def __init__(
        self,
        *,
        send: Callable[[str], Awaitable[None]],
        recorder: Recorder,
        plan: FaultPlan,
        info: ConnectionInfo,
        limit: int,
        close: Callable[[int, str], None],
        on_error: Callable[[BaseException], None],
        log: ConnectionLogger,
        debug: bool,
    ) -> None:
        self.send = send
        self.recorder = recorder
        self.plan = plan
        self.info = info
        self.connection_id = info.id
        self.limit = limit
        self.close = close
        self.on_error = on_error
        self.log = log
        self.debug = debug
        self.loop = asyncio.get_running_loop()
        self.queue: deque[_Item] = deque()
        self.prerecorded = 0
        """Frames at the front of the queue that were recorded already (stalled mid-batch)."""
        self.wakeup = asyncio.Event()
        self.drained = asyncio.Event()
        """Clear while more than half the queue is full."""
        self.drained.set()
        self.write_gate = asyncio.Event()
        """Clear while writes are stalled (``Stall``/``StallSubscriber``)."""
        self.write_gate.set()
        self.timers: list[asyncio.TimerHandle] = []
        self.closed = False
        """Set once the connection closes: nothing more is queued."""
        self.close_sent: tuple[int, str] | None = None

    @property
    def under_pressure(self) -> bool:
        """Whether more than half the queue is full (readers should yield to the writer)."""
        return len(self.queue) * 2 > self.limit

    # --- queueing -----------------------------------------------------------------------

    def put(self, frames: Sequence[Outgoing]) -> None:
        """Queue the core's frames, subject to the outbound faults."""
        if self.plan.active(Point.OUTBOUND):
            for frame in frames:
                self._put_with_faults(frame)
            return
        items: list[_Item] = []
        for frame in frames:
            extra = _Extra(errors=frame.errors) if isinstance(frame, ErrorFrame) else None
            items.append((frame.text, frame.kind, frame.id, extra))
        self._extend(items)

    def put_data(self, texts: Sequence[str], subscription_id: str) -> None:
        """Queue the ``data`` frames of one fan-out to ``subscription_id`` (the hot path)."""
        if self.plan.active(Point.OUTBOUND):
            self.put([Outgoing("data", subscription_id, text) for text in texts])
        else:
            self._extend([(text, "data", subscription_id, None) for text in texts])

    def put_raw(self, text: str) -> None:
        """Queue a text the core did not make (``SendRawText``), past the faults."""
        self._extend([(text, None, None, None)])

    def _put_with_faults(self, frame: Outgoing) -> None:
        text, kind, frame_id = frame.text, frame.kind, frame.id
        errors = frame.errors if isinstance(frame, ErrorFrame) else None
        decision = self.plan.decide(Point.OUTBOUND, self.info, frame_type=kind, frame_id=frame_id)
        if decision.drop:
            LOG_FAULTS.info("[%s] dropping %s %s (fault)", self.connection_id, kind, frame_id or "")
            return
        item: _Item = (text, kind, frame_id, _Extra(errors=errors) if errors else None)
        if decision.replace is not None:
            LOG_FAULTS.info("[%s] corrupting %s (fault)", self.connection_id, kind)
            item = (decision.replace, None, None, None)
        latency = decision.latency
        if latency:
            item = (*item[:3], _Extra(due=latency, errors=errors if item[1] else None))
        if decision.delay:
            self.timers.append(self.loop.call_later(decision.delay, self._put_later, item))
            return
        self._put_later(item)

    def _put_later(self, item: _Item) -> None:
        extra = item[3]
        if extra is not None and extra.due:  # the latency counts from now
            item = (*item[:3], _Extra(due=self.loop.time() + extra.due, errors=extra.errors))
        self._extend([item])

    def _extend(self, items: list[_Item]) -> None:
        if self.closed:
            return
        queue = self.queue
        if len(queue) + len(items) > self.limit:
            self._overflow()
            return
        queue.extend(items)
        if len(queue) * 2 > self.limit:
            self.drained.clear()
        self.wakeup.set()

    def _overflow(self) -> None:
        self.log.warning(
            "send queue overflow (%d frames waiting): closing with 1008", len(self.queue)
        )
        self.recorder.record_error(
            ErrorRecord(
                transport="websocket",
                frame_type="overflow",
                errors=(send_queue_overflow(self.limit),),
                connection_id=self.connection_id,
                time=real_time(),
            )
        )
        self.clear()
        self.close(1008, "send queue overflow")

    def put_close(self, code: int, reason: str) -> bool:
        """Close after the frames already queued; ``False`` if a close was already asked."""
        if self.closed or self.close_sent is not None:
            return False
        self.close_sent = (code, reason)
        self.queue.append(_CLOSE)
        self.wakeup.set()
        return True

    def clear(self) -> None:
        """Drop every queued frame."""
        self.queue.clear()
        self.prerecorded = 0

    def shut(self) -> None:
        """The connection is closing: drop the queue and the delayed frames."""
        self.closed = True
        self.clear()
        for timer in self.timers:
            timer.cancel()

    # --- the writer task ------------------------------------------------------------------

    async def run(self) -> None:
        """The writer task: a bug in it closes the connection with 1011, never hangs it."""
        try:
            await self._write_loop()
        except Exception as exc:
            self.log.error("internal error in the writer", exc_info=exc)
            self.on_error(exc)
            self.clear()
            self.close(1011, "internal error")

    async def _write_loop(self) -> None:
        record = self.recorder.record_frames
        queue = self.queue
        send = self.send
        connection_id = self.connection_id
        gate = self.write_gate
        batch: list[_Item] = []
        while True:
            if not queue:
                self.drained.set()
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            if not gate.is_set():
                await gate.wait()
                continue
            head = queue[0]
            if head[0] is None:  # the close instruction
                queue.popleft()
                code, reason = self.close_sent or (1000, "")
                self.close(code, reason)
                return
            extra = head[3]
            if extra is not None and extra.due:  # a frame with latency
                queue.popleft()
                wait = extra.due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                batch.append(head)
            else:
                # Plain frames go out in batches: one recorder lock for many frames.
                while queue and len(batch) < BATCH_FRAMES:
                    item = queue[0]
                    if item[0] is None or (item[3] is not None and item[3].due):
                        break
                    batch.append(queue.popleft())
            if not self.under_pressure and not self.drained.is_set():
                self.drained.set()
            # Record before sending, so a test that sees a frame also finds it recorded.
            skip = min(self.prerecorded, len(batch))
            self.prerecorded -= skip
            record(connection_id, batch[skip:] if skip else batch)
            if not await self._send_batch(batch, send, gate):
                return
            batch.clear()

    async def _send_batch(
        self, batch: list[_Item], send: Callable[[str], Awaitable[None]], gate: asyncio.Event
    ) -> bool:
        for position, (text, kind, frame_id, extra) in enumerate(batch):
            assert text is not None
            if not gate.is_set():  # stalled in the middle of a batch: put the rest back
                self.queue.extendleft(reversed(batch[position:]))
                self.prerecorded += len(batch) - position
                return True
            if extra is not None and extra.errors is not None:
                self._record_error_frame(kind, frame_id, extra.errors)
            if self.debug:
                self.log.debug("> %s", redact_frame(text))
            try:
                await send(text)
            except (ConnectionError, RuntimeError) as exc:
                self.log.debug("= send failed: %s", exc)
                return False
        return True

    def _record_error_frame(
        self, kind: str | None, frame_id: str | None, errors: tuple[ErrorDetail, ...]
    ) -> None:
        self.recorder.record_error(
            ErrorRecord(
                transport="websocket",
                frame_type=kind or "error",
                errors=errors,
                connection_id=self.connection_id,
                id=frame_id,
                time=real_time(),
            )
        )
