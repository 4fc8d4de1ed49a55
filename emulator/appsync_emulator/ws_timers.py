"""What happens to a WebSocket connection on its own: keep-alive, its lifetime, flow faults
and the one-shot faults (close, drop, broadcast errors, raw text, floods)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from ._logging import LOG_FAULTS
from .config import EmulatorConfig
from .faults import (
    CloseConnection,
    DropConnection,
    Fault,
    FaultListener,
    FaultPlan,
    FloodSubscription,
    Point,
    SendBroadcastError,
    SendError,
    SendRawText,
)
from .outbound import Gate, OutboundQueue
from .recorder import ConnectionInfo
from .server_protocol import ServerProtocol

__all__ = ["ConnectionTimers", "TimedConnection"]


class TimedConnection(Protocol):
    """What the timers and one-shot faults need of their connection."""

    @property
    def id(self) -> str: ...
    @property
    def config(self) -> EmulatorConfig: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def closing(self) -> bool: ...
    @property
    def protocol(self) -> ServerProtocol: ...
    @property
    def plan(self) -> FaultPlan: ...
    @property
    def info(self) -> ConnectionInfo: ...
    @property
    def read_gate(self) -> Gate: ...
    @property
    def outbound(self) -> OutboundQueue: ...

    def flush(self) -> None: ...
    def schedule_close(self, code: int, reason: str = "") -> None: ...
    def abort(self) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None: ...
    def when_closed(self, callback: Callable[[], None]) -> None: ...


class ConnectionTimers:
    """The keep-alive, the lifetime timer and the fault-driven actions of one connection.

    The keep-alive and the lifetime share one timer, armed for whichever is due first (an
    idle connection holds one timer, not two: with tens of thousands of connections,
    timers are a good part of the memory per connection).
    """

    __slots__ = ("_due", "_end", "_keepalive_at", "_timer", "conn")

    def __init__(self, conn: TimedConnection) -> None:
        self.conn = conn
        self._timer: asyncio.TimerHandle | None = None
        self._due = math.inf
        """When the timer fires."""
        self._end = math.inf
        """Loop time at which ``max_connection_lifetime`` is over (closes with 1001)."""
        self._keepalive_at: float | None = None
        """Loop time of the next ``ka`` (``inf`` while the first is pending); ``None``
        until the keep-alive starts."""

    def start(self) -> None:
        """Arm the ``max_connection_lifetime`` timer (closes with 1001)."""
        lifetime = self.conn.config.max_connection_lifetime
        if lifetime > 0:
            self._end = self.conn.loop.time() + lifetime
            self._arm()

    def cancel(self) -> None:
        """Disarm the lifetime and keep-alive timers (the tasks are cancelled by the connection)."""
        self._end = math.inf
        self._keepalive_at = math.inf
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        next_ka = self._keepalive_at
        due = self._end if next_ka is None or self._end <= next_ka else next_ka
        if self._timer is not None:
            if due == self._due:
                return
            self._timer.cancel()
            self._timer = None
        self._due = due
        if due != math.inf:
            self._timer = self.conn.loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self._timer = None
        due, self._due = self._due, math.inf
        conn = self.conn
        if conn.closing:
            return
        if self._end <= due:
            self._end = math.inf
            conn.schedule_close(1001, "connection lifetime exceeded")
        next_ka = self._keepalive_at
        if next_ka is not None and next_ka <= due:
            self._send_keepalive()
        self._arm()

    # --- keep-alive -----------------------------------------------------------------------

    def start_keepalive(self) -> None:
        """Send ``ka`` now and every ``keepalive_interval`` (idempotent)."""
        conn = self.conn
        if self._keepalive_at is None and not conn.closing:
            self._keepalive_at = math.inf
            conn.loop.call_soon(self._first_keepalive)

    def _first_keepalive(self) -> None:
        if self.conn.closing:
            return
        self._send_keepalive()
        self._arm()

    def _send_keepalive(self) -> None:
        conn = self.conn
        conn.protocol.send_keepalive()
        conn.flush()
        self._keepalive_at = conn.loop.time() + conn.config.keepalive_interval

    # --- faults ----------------------------------------------------------------------------

    def refresh_flow(self) -> None:
        """Apply ``Stall``/``StallSubscriber``: open or close the read and write gates."""
        conn = self.conn
        plan = conn.plan
        decision = plan.decide(Point.FLOW, conn.info) if plan.active(Point.FLOW) else None
        stall_reads = decision is not None and decision.stall_reads
        stall_writes = decision is not None and decision.stall_writes
        gates = ((conn.read_gate, stall_reads), (conn.outbound.write_gate, stall_writes))
        for gate, stalled in gates:
            if stalled and gate.is_set():
                gate.clear()
            elif not stalled and not gate.is_set():
                gate.set()
        if stall_reads or stall_writes:
            LOG_FAULTS.info("[%s] stalled: reads %s, writes %s", conn.id, stall_reads, stall_writes)

    def execute(self, fault: Fault, listener: FaultListener | None = None) -> None:
        """Carry out a one-shot fault on this connection.

        ``listener`` hears ``target_started`` if the fault has something to do here, and
        ``target_finished`` once that is done: its frames queued, its flood over, or the
        connection closed (``CloseConnection``, ``DropConnection``).
        """
        conn = self.conn
        if conn.closing:
            return
        protocol = conn.protocol
        match fault:
            case SendBroadcastError() | FloodSubscription():
                targets = self._targets(fault.subscription_id, fault.channel)
                if not targets:
                    LOG_FAULTS.info("[%s] %r: no matching subscription here", conn.id, fault)
                    return
            case _:
                targets = []
        LOG_FAULTS.info("[%s] executing %r", conn.id, fault)
        if listener is not None:
            listener.target_started()
        finished = listener.target_finished if listener is not None else _nothing
        match fault:
            case CloseConnection(code=code, reason=reason):
                conn.when_closed(finished)
                conn.schedule_close(code, reason)
                return
            case DropConnection():
                conn.when_closed(finished)
                conn.abort()
                return
            case SendBroadcastError(errors=errors):
                for target in targets:
                    protocol.send_broadcast_error(target, errors)
                conn.flush()
            case SendError(errors=errors, id=operation_id):
                protocol.send_error(errors, operation_id)
                conn.flush()
            case SendRawText(text=text):
                conn.outbound.put_raw(text)
            case FloodSubscription(count=count, rate=rate, event=text):
                # A flood also ends with its connection (even one cancelled before it ran).
                finished = _once(finished)
                conn.when_closed(finished)
                conn.spawn(self._flood(targets, count, rate, text, finished), "flood")
                return
            case _:
                pass
        finished()

    def _targets(self, subscription_id: str | None, channel: str | None) -> list[str]:
        """The active subscriptions of this connection that a one-shot fault names."""
        active = self.conn.protocol.subscriptions
        if subscription_id is not None:
            return [subscription_id] if subscription_id in active else []
        if channel is not None:
            return [sub_id for sub_id, pattern in active.items() if pattern.path == channel]
        return list(active)

    async def _flood(
        self,
        targets: Sequence[str],
        count: int,
        rate: float | None,
        text: str,
        finished: Callable[[], None],
    ) -> None:
        try:
            await self._flood_frames(targets, count, rate, text)
        finally:  # over, cut short, or cancelled with its connection
            finished()

    async def _flood_frames(
        self, targets: Sequence[str], count: int, rate: float | None, text: str
    ) -> None:
        conn = self.conn
        period = 1.0 / rate if rate else 0.0
        next_at = conn.loop.time()
        for _ in range(count):
            if conn.closing:
                return
            await conn.outbound.wait_drained()
            sent = [conn.protocol.send_data(target, text) for target in targets]
            conn.flush()
            if not any(sent):
                return  # every target was unsubscribed
            if period:
                next_at += period
                await asyncio.sleep(max(0.0, next_at - conn.loop.time()))
            # Without a rate, frames are queued back to back (a burst on the wire); the
            # only pause is the wait for the queue to drain below half its capacity.


def _nothing() -> None:
    pass


def _once(callback: Callable[[], None]) -> Callable[[], None]:
    """``callback``, called at most once."""
    called = False

    def call() -> None:
        nonlocal called
        if not called:
            called = True
            callback()

    return call
