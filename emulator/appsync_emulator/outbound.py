"""The outbound side of one WebSocket connection: a bounded, fault-aware queue and its writer.

Frames from the core (:class:`~appsync_events.protocol.messages.Outgoing`) pass the fault
plan (drop, replace, delay, latency) and are recorded just before they are written, each
batch (the frames of one fan-out, or up to :data:`BATCH_FRAMES` queued frames) under one
recorder lock and in **one transport write**: the frames are framed here (uncompressed
text frames, as the upgrade never negotiates compression) rather than one
``send_str`` each, which was half of the fan-out's cost at 100 subscribers.

Theory of operation:

* the common case is an idle connection whose socket keeps up: a batch is written at once,
  from the fan-out's own call, with no task switch (a publish to 1,000 subscribers does
  not wake 1,000 writer tasks);
* a frame that cannot go out at once (the transport is paused because the peer reads
  slowly, writes are stalled by a fault, a frame carries latency, or frames are already
  waiting) is queued, and a writer task, started then and ending when the queue is empty,
  writes the queue in order as the transport drains;
* while a connection's reader handles frames it has already read, the writes those frames
  cause (to any socket) are held by the :class:`Cork` and each socket gets them in one
  transport write before the reader awaits anything (bounded: :data:`HOLD_WRITES`,
  :data:`HOLD_BYTES`);
* when more than ``limit`` frames wait, the connection is closed with 1008 (a slow
  consumer never blocks the publisher or the other subscribers).  Past half its capacity
  the queue reports :attr:`OutboundQueue.under_pressure`, and
  :meth:`OutboundQueue.wait_drained` waits until the writer brings it back under half.

Without a raw transport (``transport=None``) every frame goes through ``send`` from the
writer task.
"""

from __future__ import annotations

import asyncio
import struct
from asyncio import selector_events
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

from aiohttp import web

from appsync_events.errors import ErrorDetail
from appsync_events.protocol import codec
from appsync_events.protocol.messages import Outgoing

from ._clock import real_time
from ._logging import LOG_FAULTS, ConnectionLogger, redact_frame
from .broker import Match
from .catalogue import send_queue_overflow
from .faults import FaultPlan, Point
from .recorder import ConnectionInfo, ErrorRecord, Recorder
from .server_protocol import ErrorFrame

__all__ = [
    "BATCH_FRAMES",
    "Cork",
    "FramedEvents",
    "HOLD_BYTES",
    "HOLD_WRITES",
    "Gate",
    "OutboundQueue",
    "RawTransport",
    "data_prefix",
    "fan_out",
]

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

_LEN2: Final = struct.Struct("!BBH").pack
_LEN3: Final = struct.Struct("!BBQ").pack


_SHORT_HEADERS: Final = [bytes((0x81, n)) for n in range(126)]
"""The headers of text frames under 126 bytes, by size (the usual event)."""


def _header(n: int) -> bytes:
    """The header of an unmasked, uncompressed, unfragmented text frame of ``n`` bytes
    (RFC 6455 section 5.2)."""
    if n < 126:
        return _SHORT_HEADERS[n]
    if n < 65536:
        return _LEN2(0x81, 126, n)
    return _LEN3(0x81, 127, n)


def _frame(text: str) -> bytes:
    payload = text.encode()
    return _header(len(payload)) + payload


class FramedEvents:
    """The events of one publish, encoded once for every subscriber's ``data`` frames.

    A subscriber's frames are ``header + prefix + tail`` per event: the prefix names its
    subscription, the tail (the event's JSON string literal and the closing brace) is
    shared, and the headers depend only on the prefix's length.  So the bytes between
    two prefixes are the same for every subscription whose id has the same length, and
    each subscriber's batch is one ``prefix.join(segments)``.

    Args:
        events: the publish's events.
        faults: whether outbound faults may apply (the fault plan had some when the
            fan-out began); ``False`` lets every subscriber skip asking the plan.
    """

    __slots__ = (
        "_segments",
        "closes",
        "direct",
        "events",
        "faults",
        "prefixes",
        "pressure",
        "recorder",
        "tails",
        "targets",
        "writes",
    )

    def __init__(self, events: codec.DataEvents, *, faults: bool = True) -> None:
        self.events = events
        """The publish's events (their texts and literals)."""
        self.faults = faults
        self.pressure = False
        """Set when a subscriber's send queue was more than half full."""
        self.direct: list[OutboundQueue] = []
        """The queues whose frames the cork holds, to be written at once on its release
        (they were idle and writable when the fan-out reached them)..."""
        self.targets: list[tuple[str, str]] = []
        """...and their ``(connection id, subscription id)``, in the same order (the
        broker's own keys: no tuple is made per subscriber)..."""
        self.prefixes: list[bytes] | None = None
        """...and their ``data`` prefixes, when the fan-out had them (else looked up)..."""
        self.writes: list[tuple[Any, bytes]] | None = None
        """...and their transports with those prefixes, when the fan-out had them."""
        self.closes = -1
        """:attr:`Cork.closes` when the fan-out found every one of :attr:`direct` open
        (-1: not known)..."""
        self.recorder: Recorder | None = None
        """...and their recorder, when it is the same for all."""
        literals = events.literals
        if len(literals) > 1:
            # A JSON string literal holds no raw control character: NUL splits them
            # (three calls for any number of events).
            self.tails = ("}\x00".join(literals) + "}").encode().split(b"\x00")
        else:
            self.tails = [literal.encode() + b"}" for literal in literals]
        self._segments: dict[int, list[bytes]] = {}

    def frames(self, prefix: bytes) -> bytes:
        """The wire bytes of every event's ``data`` frame for one subscription."""
        return prefix.join(self.segments(len(prefix)))

    def segments(self, size: int) -> list[bytes]:
        """What a subscription's prefix of ``size`` bytes joins into its frames (made once
        per size: the subscription ids of a fan-out mostly have one length)."""
        found = self._segments.get(size)
        if found is None:
            found = self._segments[size] = self._split(size)
        return found

    def _split(self, size: int) -> list[bytes]:
        # header1 | prefix | tail1 + header2 | prefix | ... | tailN
        short = _SHORT_HEADERS
        segments = []
        last = b""
        for tail in self.tails:
            n = size + len(tail)
            segments.append(last + (short[n] if n < 126 else _header(n)))
            last = tail
        segments.append(last)
        return segments


_PREFIXES: dict[str, bytes] = {}
"""``data_prefix`` by subscription id, shared by every connection (ids repeat across
connections: ``s1``, ``sub-0``...); bounded by :data:`_MAX_PREFIXES`."""
_MAX_PREFIXES: Final = 4096


def _prefix(subscription_id: str) -> bytes:
    prefix = _PREFIXES.get(subscription_id)
    if prefix is None:
        if len(_PREFIXES) >= _MAX_PREFIXES:  # ids churn: keep it bounded
            _PREFIXES.clear()
        prefix = _PREFIXES[subscription_id] = data_prefix(subscription_id)
    return prefix


def data_prefix(subscription_id: str) -> bytes:
    """The bytes of a ``data`` frame for ``subscription_id`` that precede the event."""
    text = codec.encode_data_frames(subscription_id, ("",))[0]
    return text[: -len('""}')].encode()


HOLD_WRITES: Final = 64
"""Writes to one socket a held read burst may keep; one more writes them at once."""
HOLD_BYTES: Final = 1 << 20
"""Bytes a held read burst may keep over all sockets; more writes them all at once."""


class Cork:
    """Holds the writes made while a record is still to be made, and those made while a
    read burst is handled (shared by every connection of an emulator).

    A publish is recorded after its fan-out (the record counts the deliveries), and a
    test that saw a frame must find the publish recorded: inside ``with cork:`` the
    batches that would be written at once are kept, in order, and written on leaving
    (nested uses write on leaving the outermost).

    The write hold: a connection's reader handles the frames it has already read back to
    back; between :meth:`hold` and :meth:`flush_held` every transport write of this
    cork's queues (:meth:`write`) is kept per socket, in order, and each socket gets
    what was kept in **one** transport write when the reader flushes, which it does
    before it awaits anything (a read that would wait, a yield, a handler, a close).  So
    the replies and ``data`` frames of a burst of publishes cost one ``send`` per socket,
    not one per frame.  The hold is only ever on while that reader runs without
    suspending: a frame written by any other task or timer goes out as before.  It is
    bounded: :data:`HOLD_WRITES` writes to one socket, or :data:`HOLD_BYTES` in all,
    write at once.  A kept write is one the queue decided to write (its socket was
    writable, nothing of it was queued): backpressure, stalls and faults decide before
    it, unchanged.
    """

    __slots__ = ("closes", "depth", "held", "held_bytes", "holding", "pending")

    def __init__(self) -> None:
        self.depth = 0
        self.closes = 0
        """Times a queue of this cork was closed or asked to close (its ``closed`` or
        ``close_sent`` set): a fan-out that saw it unchanged needs not look again."""
        self.pending: list[tuple[OutboundQueue | None, str | None, Any]] = []
        """``(queue, subscription id or None, frames)`` in order; ``(None, None,
        framed)`` stands for the fan-out's :attr:`FramedEvents.direct` subscriptions."""
        self.holding = False
        """Whether writes are held (a read burst is being handled)."""
        self.held: dict[Any, list[bytes]] = {}
        """The held writes, per transport, in order."""
        self.held_bytes = 0
        """Their size."""

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.depth -= 1
        if self.depth == 0 and self.pending:
            pending, self.pending = self.pending, []
            _release(pending, self)

    def hold(self) -> None:
        """Hold the writes from now until :meth:`flush_held`."""
        self.holding = True

    def write(self, transport: Any, data: bytes) -> None:
        """Write ``data`` to ``transport``, or keep it there while writes are held."""
        if self.holding:
            self.keep(transport, data)
        else:
            transport.write(data)

    def keep(self, transport: Any, data: bytes) -> None:
        """Keep ``data`` for ``transport`` (writes are held): :meth:`write`'s hold."""
        chunks = self.held.get(transport)
        if chunks is None:
            self.held[transport] = [data]
        elif len(chunks) < HOLD_WRITES - 1:
            chunks.append(data)
        else:  # the socket's cap: its writes go now (nothing else of it is kept)
            del self.held[transport]
            chunks.append(data)
            self.held_bytes -= sum(map(len, chunks)) - len(data)
            transport.write(b"".join(chunks))
            return
        self.held_bytes += len(data)
        if self.held_bytes > HOLD_BYTES:  # the cap on all: write them, go on holding
            self._write_held()

    def flush_held(self) -> None:
        """Stop holding; write each socket's held writes in one transport write."""
        self.holding = False
        if self.held:
            self._write_held()

    def _write_held(self) -> None:
        held, self.held = self.held, {}
        self.held_bytes = 0
        for transport, chunks in held.items():
            if not transport.is_closing():  # aborted meanwhile: nothing can be written
                transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))


def _release(pending: list[tuple[OutboundQueue | None, str | None, Any]], cork: Cork) -> None:
    if len(pending) == 2 and _release_publish(pending, cork):
        return
    # The fan-out's frames that can be written at once are recorded together (one
    # recorder lock per publish, not per subscriber), then written; any other batch
    # first flushes those before it, so each connection's frames keep their order.
    # (The hot loop: ``writable`` is inlined.)
    queues: list[OutboundQueue] = []
    targets: list[tuple[str, str]] = []
    framed: FramedEvents | None = None
    for queue, subscription_id, payload in pending:
        if queue is None:  # a fan-out's idle, writable subscribers
            if queues:
                assert framed is not None
                _write_fan_out(framed, queues, targets, cork)
                queues, targets, framed = [], [], None
            direct, payload.direct = payload.direct, []
            found, payload.targets = payload.targets, []
            prefixes, payload.prefixes = payload.prefixes, None
            writes, payload.writes = payload.writes, None
            payload.closes = -1
            _write_fan_out(payload, direct, found, cork, prefixes, writes)
            continue
        queue.corked -= 1
        if queue._closed or queue._close_sent is not None:
            continue
        if (
            subscription_id is not None
            and (framed is None or payload is framed)
            and not queue._queue
            and queue.writer is None
            and queue.writable()
        ):
            framed = payload
            queues.append(queue)
            targets.append((queue.connection_id, subscription_id))
            continue
        if queues:
            assert framed is not None
            _write_fan_out(framed, queues, targets, cork)
            queues, targets, framed = [], [], None
        if subscription_id is None:
            if (
                len(payload) == 1
                and payload[0][3] is None
                and not queue._queue
                and queue.writer is None
                and not queue.debug
                and queue.writable()
            ):
                # A lone plain frame (the publisher's publish_success): place's direct
                # write, in one call.
                queue.recorder.record_frames(queue.connection_id, payload)
                cork.write(queue.transport, _frame(payload[0][0]))
            else:
                queue.place(payload)
        else:
            queue.place_framed(subscription_id, payload)
    if queues:
        assert framed is not None
        _write_fan_out(framed, queues, targets, cork)


def _release_publish(
    pending: list[tuple[OutboundQueue | None, str | None, Any]], cork: Cork
) -> bool:
    """:func:`_release` of a WebSocket publish's usual writes: the publisher's lone
    ``publish_success`` (idle, writable queue), then one fan-out whose subscribers are all
    still open.  Both are recorded under one recorder lock, then written in that order.
    ``False``, having done nothing, for any other shape."""
    (queue, subscription_id, items), (none, _, framed) = pending
    if (
        queue is None
        or none is not None
        or subscription_id is not None
        or len(items) != 1
        or items[0][3] is not None
        or queue.corked != 1
        or queue._closed
        or queue._close_sent is not None
        or queue._queue
        or queue.writer is not None
        or queue.debug
        or not queue.writable()
    ):
        return False
    recorder = queue.recorder
    direct: list[OutboundQueue] = framed.direct
    if framed.closes != cork.closes or framed.recorder is not recorder:
        # Unless the fan-out saw every one open with this recorder and no queue closed
        # since, look at each.
        for other in direct:
            if other._closed or other._close_sent is not None or other.recorder is not recorder:
                return False
    queue.corked = 0
    targets, prefixes, writes = framed.targets, framed.prefixes, framed.writes
    framed.direct, framed.targets, framed.prefixes, framed.writes = [], [], None, None
    framed.closes = -1
    recorder.record_reply_and_data(queue.connection_id, items, framed.events, targets)
    cork.write(queue.transport, _frame(items[0][0]))
    _write_direct(framed, direct, targets, cork, prefixes, writes)
    return True


def _write_fan_out(
    framed: FramedEvents,
    queues: list[OutboundQueue],
    targets: list[tuple[str, str]],
    cork: Cork,
    prefixes: list[bytes] | None = None,
    writes: list[tuple[Any, bytes]] | None = None,
) -> None:
    """Record a fan-out's frames to writable queues (``targets`` are their ``(connection
    id, subscription id)``; the recorder keeps the list), then write each queue's in one
    write.  ``prefixes`` are their ``data`` prefixes and ``writes`` their transports with
    those prefixes, if the caller has them.  No list is changed (they may be a kept
    :class:`_Routes`' own)."""
    for queue in queues:
        if queue._closed or queue._close_sent is not None:  # closed meanwhile (rare)
            live = [i for i, q in enumerate(queues) if not q._closed and q._close_sent is None]
            queues = [queues[i] for i in live]
            targets = [targets[i] for i in live]
            prefixes = writes = None
            if not queues:
                return
            break
    queues[0].recorder.record_data(framed.events, targets)
    _write_direct(framed, queues, targets, cork, prefixes, writes)


def _write_direct(
    framed: FramedEvents,
    queues: list[OutboundQueue],
    targets: list[tuple[str, str]],
    cork: Cork,
    prefixes: list[bytes] | None,
    writes: list[tuple[Any, bytes]] | None = None,
) -> None:
    """Write a fan-out's frames (recorded already) to its writable queues, one write each
    (``writes``: each queue's transport and prefix, if the caller has them, which it has
    only when every one of these queues is ``cork``'s)."""
    if writes is not None:
        if cork.holding:
            _keep_direct(framed, writes, cork)
            return
        size = -1
        segments: list[bytes] = []
        for transport, prefix in writes:
            if len(prefix) != size:
                size = len(prefix)
                segments = framed.segments(size)
            transport.write(prefix.join(segments))
        return
    if prefixes is None:
        shared = _PREFIXES
        prefixes = [shared.get(sub) or _prefix(sub) for _, sub in targets]
    size = -1
    segments = []
    for queue, prefix in zip(queues, prefixes, strict=True):
        if len(prefix) != size:
            size = len(prefix)
            segments = framed.segments(size)
        transport = queue.transport
        assert transport is not None
        queue.cork.write(transport, prefix.join(segments))


def _keep_direct(framed: FramedEvents, writes: list[tuple[Any, bytes]], cork: Cork) -> None:
    """:func:`_write_direct` from kept (transport, prefix) pairs while ``cork`` holds the
    writes: each subscriber's frames are kept (:meth:`Cork.keep`, inlined: the hot loop
    of a burst of publishes to many subscribers)."""
    held = cork.held
    total = cork.held_bytes
    most = HOLD_WRITES - 1
    limit = HOLD_BYTES
    size = -1
    segments: list[bytes] = []
    for transport, prefix in writes:
        if len(prefix) != size:
            size = len(prefix)
            segments = framed.segments(size)
        data = prefix.join(segments)
        chunks = held.get(transport)
        if chunks is None:
            held[transport] = [data]
        elif len(chunks) < most:
            chunks.append(data)
        else:  # the socket's cap: keep writes its frames now
            cork.held_bytes = total
            cork.keep(transport, data)
            held, total = cork.held, cork.held_bytes
            continue
        total += len(data)
        if total > limit:  # the cap on all
            cork.held_bytes = total
            cork._write_held()
            held, total = cork.held, 0
    cork.held_bytes = total


_SOCKET_TRANSPORT: Final = getattr(selector_events, "_SelectorSocketTransport", None)
"""asyncio's plain TCP transport (the default event loop's), whose state the fan-out
reads directly (see :func:`_plain`)."""


def _plain(queue: OutboundQueue) -> bool:
    """Whether the fan-out may read the state of ``queue``'s transport and WebSocket from
    their attributes rather than through their methods and properties.

    That is so for asyncio's own TCP transport (not TLS, not another event loop's) whose
    protocol is the queue's ``flow``, under aiohttp's own ``WebSocketResponse``: then
    ``transport._closing`` is ``transport.is_closing()``; ``transport._protocol_paused``
    is set exactly while the transport has asked its protocol to pause writing, which is
    what ``flow.writing_paused`` reports (they differ only once the connection is lost,
    and then the transport is closing); and ``socket._closed`` is ``socket.closed``.
    Three calls fewer per subscriber and publish, and the protocol's object is not read.
    """
    transport, socket = queue.transport, queue.socket
    return (
        _SOCKET_TRANSPORT is not None
        and type(transport) is _SOCKET_TRANSPORT
        and transport.get_protocol() is queue.flow  # type: ignore[union-attr]
        and type(socket) is web.WebSocketResponse
        and type(getattr(transport, "_closing", None)) is bool
        and type(getattr(transport, "_protocol_paused", None)) is bool
        and type(getattr(socket, "_closed", None)) is bool
    )


class _Routes:
    """What the fan-out resolved from a :class:`~appsync_emulator.broker.Match`, kept in
    it: per subscription, in order, its connection, queue (``None`` for a connection the
    fan-out always asks to ``deliver``), core, subscription id and ``data`` prefix, as
    parallel lists (the hot loop reads only what it needs)."""

    __slots__ = (
        "checks",
        "cores",
        "cork",
        "direct",
        "keys",
        "prefixes",
        "queues",
        "recorder",
        "subscriptions",
        "targets",
        "writes",
    )

    def __init__(self, keys: list[tuple[str, str]], targets: list[Any]) -> None:
        self.keys = keys
        self.targets = targets
        self.subscriptions = [sub for _, sub in keys]
        self.prefixes = [_prefix(sub) for sub in self.subscriptions]
        self.queues: list[OutboundQueue | None] = []
        self.cores: list[Any] = []
        for target in targets:
            queue = getattr(target, "outbound", None)
            if (
                isinstance(queue, OutboundQueue)
                and queue.transport is not None
                and queue.flow is not None
                and queue.socket is not None
                and not queue.debug
            ):
                # A WebSocketConnection: its ``closing`` is never set without its
                # queue's ``closed``, so the loop reads the queue's alone.
                self.queues.append(queue)
                self.cores.append(target.protocol)
            else:
                self.queues.append(None)
                self.cores.append(None)
        self.direct: list[OutboundQueue] | None = (
            cast("list[OutboundQueue]", self.queues) if None not in self.queues else None
        )
        """:attr:`queues` when every one is a raw queue (the list a fan-out to all of
        them writes), else ``None``."""
        self.checks: list[tuple[OutboundQueue, Any, str, Any, Any]] | None = None
        """Per subscription, its queue, core, id, transport and WebSocket, when every
        queue is raw and :func:`_plain` (the hot loop's one list), else ``None``..."""
        self.writes: list[tuple[Any, bytes]] | None = None
        """...and then per subscription its transport and ``data`` prefix (the writes')..."""
        self.recorder: Recorder | None = None
        """...and their queues' recorder, when it is the same for all..."""
        self.cork: Cork | None = None
        """...and their cork, when it is the same for all."""
        direct = self.direct
        if direct is not None and all(_plain(queue) for queue in direct):
            self.checks = [
                (queue, core, sub, queue.transport, queue.socket)
                for queue, core, sub in zip(direct, self.cores, self.subscriptions, strict=True)
            ]
            self.writes = [
                (check[3], prefix) for check, prefix in zip(self.checks, self.prefixes, strict=True)
            ]
            recorders = {id(queue.recorder): queue.recorder for queue in direct}
            if len(recorders) == 1:
                (self.recorder,) = recorders.values()
            corks = {id(queue.cork): queue.cork for queue in direct}
            if len(corks) == 1:
                (self.cork,) = corks.values()


def _resolve(found: Match, subscribers: Mapping[str, Any]) -> _Routes | None:
    """The kept routes of ``found``, made on first use; ``None`` if a connection is
    missing (not open yet, or gone: resolved again next time)."""
    routes = found.routes
    if routes is None:
        targets = [subscribers.get(conn_id) for conn_id, _ in found.keys]
        if None in targets:
            return None
        routes = found.routes = _Routes(found.keys, targets)
    return cast(_Routes, routes)


def fan_out(found: Match, subscribers: Mapping[str, Any], framed: FramedEvents, cork: Cork) -> int:
    """Deliver a publish's frames to the subscriptions ``found``; return the frames queued.

    ``subscribers`` are the open connections by id.  What is resolved from ``found`` (the
    connections, queues, prefixes) is kept in it until the next subscribe or unsubscribe.
    A subscription whose queue is idle and writable gets its frames written on the cork's
    release, with no call beyond its core's ``data_ready`` (and when all are, the kept
    lists are the write list: nothing is appended per subscriber); any other goes
    through its connection's ``deliver``, which queues, holds or drops exactly as before
    (faults, stalls, paused sockets, limits).
    """
    routes = _resolve(found, subscribers)
    delivered = 0
    if routes is None:
        for key in found.keys:
            target = subscribers.get(key[0])
            if target is not None:
                delivered += target.deliver(key[1], framed, key)
        return delivered
    if framed.faults or not cork.depth or routes.direct is None:
        return _deliver_each(routes, framed, cork, 0)
    checks = routes.checks
    if checks is not None:
        # The hot loop: put_framed's idle-and-writable test, inlined, reading the
        # transport's and the WebSocket's state directly (see _plain).
        closes = cork.closes
        position = 0
        for queue, core, subscription_id, transport, socket in checks:
            if not (
                not queue._closed
                and core.data_ready(subscription_id)
                and not queue._queue
                and queue.writer is None
                and not queue.corked
                and queue._close_sent is None
                and not queue.stalled
                and not transport._closing
                and not transport._protocol_paused
                and not socket._closed
            ):
                return _deliver_each(routes, framed, cork, position)
            position += 1
        if position:
            cork.pending.append((None, None, framed))
            framed.direct = routes.direct
            framed.targets = routes.keys
            framed.prefixes = routes.prefixes
            if routes.cork is cork:  # every queue's closes (and writes) are counted there
                framed.writes = routes.writes
                framed.closes = closes
                framed.recorder = routes.recorder
        return position * len(framed.tails)
    # The same, through the methods and properties.
    position = 0
    for queue, core, subscription_id in zip(
        routes.direct, routes.cores, routes.subscriptions, strict=True
    ):
        if not (
            not queue._closed
            and core.data_ready(subscription_id)
            and not queue._queue
            and queue.writer is None
            and not queue.corked
            and queue._close_sent is None
            and not queue.stalled
            and not queue.transport.is_closing()  # type: ignore[union-attr]
            and not queue.flow.writing_paused  # type: ignore[union-attr]
            and not queue.socket.closed  # type: ignore[union-attr]
        ):
            return _deliver_each(routes, framed, cork, position)
        position += 1
    if position:
        cork.pending.append((None, None, framed))
        framed.direct = routes.direct
        framed.targets = routes.keys
        framed.prefixes = routes.prefixes
    return position * len(framed.tails)


def _deliver_each(routes: _Routes, framed: FramedEvents, cork: Cork, start: int) -> int:
    """The fan-out from subscription ``start`` on, the ones before it being idle and
    writable: those that are still go in ``framed.direct``, the others to ``deliver``."""
    count = len(framed.tails)
    direct = framed.direct
    targets = framed.targets
    pending = cork.pending
    if start:
        pending.append((None, None, framed))
        direct.extend(cast("list[OutboundQueue]", routes.queues[:start]))
        targets.extend(routes.keys[:start])
    delivered = start * count
    fast = not framed.faults and cork.depth
    keys = routes.keys
    targets_all = routes.targets
    cores = routes.cores
    subscriptions = routes.subscriptions
    for i, queue in enumerate(routes.queues[start:], start):
        subscription_id = subscriptions[i]
        if (
            fast
            and queue is not None
            and not queue._closed
            and cores[i].data_ready(subscription_id)
            and queue.idle_writable()
        ):
            if not direct:
                pending.append((None, None, framed))
            direct.append(queue)
            targets.append(keys[i])
            delivered += count
        else:
            delivered += targets_all[i].deliver(subscription_id, framed, keys[i])
    return delivered


class RawTransport(Protocol):
    """The parts of :class:`asyncio.Transport` the writer uses."""

    def write(self, data: bytes) -> None: ...
    def is_closing(self) -> bool: ...


class FlowControl(Protocol):
    """The transport's protocol, as far as writing goes (aiohttp's ``BaseProtocol``)."""

    @property
    def writing_paused(self) -> bool: ...


class ClosingSocket(Protocol):
    """The WebSocket, as far as its closing goes (``WebSocketResponse``)."""

    @property
    def closed(self) -> bool: ...


class Gate:
    """An open/closed flag to wait on, like :class:`asyncio.Event` (``set`` opens it)
    but lighter: the event behind the wait exists only while someone waits (every
    connection has two gates, and almost none is ever closed)."""

    __slots__ = ("_event", "_open")

    def __init__(self) -> None:
        self._open = True
        self._event: asyncio.Event | None = None

    def is_set(self) -> bool:
        """Whether the gate is open."""
        return self._open

    def set(self) -> None:
        """Open the gate and wake the waiters."""
        self._open = True
        if self._event is not None:
            self._event.set()
            self._event = None

    def clear(self) -> None:
        """Close the gate."""
        self._open = False

    async def wait(self) -> None:
        """Wait until the gate is open (at once if it is).

        Cancellation: cancelling the wait leaves the gate as it is.  No timeout.
        """
        while not self._open:
            if self._event is None:
                self._event = asyncio.Event()
            await self._event.wait()


class _WriteGate(Gate):
    """A queue's write gate: mirrors its state in the queue's ``stalled`` (read by the
    fan-out without touching the gate)."""

    __slots__ = ("_owner",)

    def __init__(self, owner: OutboundQueue) -> None:
        super().__init__()
        self._owner = owner

    def set(self) -> None:
        self._owner.stalled = False
        super().set()

    def clear(self) -> None:
        self._owner.stalled = True
        super().clear()


class OutboundQueue:
    """The bounded outbound queue and writer of one connection.

    Args:
        send: writes one text frame (``WebSocketResponse.send_str``): the writer's path
            when there is no raw transport.
        transport: the connection's transport, to write pre-framed batches to; ``None``
            sends every frame through ``send``.
        flow: the transport's protocol: while its ``writing_paused`` (the buffer is over
            its high-water mark: the peer reads slowly) frames are queued, not written.
        drain: waits until the paused transport drains (``StreamWriter.drain``).
        socket: the WebSocket: once it is ``closed`` (closing started), no frame may
            follow the close frame.
        cork: the emulator's :class:`Cork`.
        recorder: where written frames and error frames are recorded.
        plan: the fault plan (outbound faults, stalled writes).
        info: the connection, for fault targets and records.
        limit: frames that may wait; one more closes the connection with 1008.
        close: starts closing the connection with ``(code, reason)`` (idempotent).
        on_error: collects an internal exception for ``Emulator.check``.
        log: the connection's logger.
        debug: whether every frame is logged.
    """

    # Slots keep a connection small; "__dict__" (made only when used) keeps the instance
    # patchable (tests replace methods on one queue).
    __slots__ = (
        "__dict__",
        "_close_sent",
        "_closed",
        "_drain_waiters",
        "_queue",
        "close",
        "connection_id",
        "cork",
        "corked",
        "debug",
        "drain",
        "flow",
        "info",
        "limit",
        "log",
        "loop",
        "on_error",
        "plan",
        "prerecorded",
        "recorder",
        "send",
        "socket",
        "stalled",
        "timers",
        "transport",
        "write_gate",
        "writer",
    )

    def __init__(
        self,
        *,
        send: Callable[[str], Awaitable[None]],
        transport: RawTransport | None = None,
        flow: FlowControl | None = None,
        drain: Callable[[], Awaitable[None]] | None = None,
        socket: ClosingSocket | None = None,
        cork: Cork | None = None,
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
        self.transport = transport
        self.flow = flow
        self.drain = drain
        self.socket = socket
        self.cork = cork if cork is not None else Cork()
        self.corked = 0
        """Batches of this queue the cork holds."""
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
        self._queue: deque[_Item] | None = None
        """The frames waiting (made on first use: most connections never queue one)."""
        self.prerecorded = 0
        """Frames at the front of the queue that were recorded already (stalled mid-batch)."""
        self.writer: asyncio.Task[None] | None = None
        """The writer task, while frames wait."""
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self.stalled = False
        """Whether :attr:`write_gate` is closed (kept by the gate)."""
        self.write_gate: Gate = _WriteGate(self)
        """Closed while writes are stalled (``Stall``/``StallSubscriber``)."""
        self.timers: list[asyncio.TimerHandle] | None = None
        """The timers of frames an outbound fault delays, made on first use."""
        self._closed = False
        self._close_sent: tuple[int, str] | None = None

    @property
    def closed(self) -> bool:
        """Set once the connection closes: nothing more is queued."""
        return self._closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self._closed = value
        self.cork.closes += 1

    @property
    def close_sent(self) -> tuple[int, str] | None:
        """The close asked for (code, reason), once asked: nothing more is queued."""
        return self._close_sent

    @close_sent.setter
    def close_sent(self, value: tuple[int, str] | None) -> None:
        self._close_sent = value
        self.cork.closes += 1

    @property
    def under_pressure(self) -> bool:
        """Whether more than half the queue is full (readers should yield to the writer)."""
        queue = self._queue
        return queue is not None and len(queue) * 2 > self.limit

    @property
    def queue(self) -> deque[_Item]:
        """The frames waiting to be written, oldest first."""
        if self._queue is None:
            self._queue = deque()
        return self._queue

    async def wait_drained(self) -> None:
        """Wait until at most half the queue is full (at once if it is).

        Cancellation: safe.  No timeout: the connection closes (and the queue empties)
        when the peer does not read.
        """
        while self.under_pressure and not self._closed:
            future = self.loop.create_future()
            if self._drain_waiters is None:
                self._drain_waiters = []
            self._drain_waiters.append(future)
            await future

    def _wake_drained(self) -> None:
        waiters = self._drain_waiters
        if waiters is not None:
            self._drain_waiters = None
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    # --- queueing -----------------------------------------------------------------------

    def put(self, frames: Sequence[Outgoing]) -> None:
        """Queue the core's frames, subject to the outbound faults."""
        if not frames:
            return
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

    def put_text(self, text: str, kind: str, frame_id: str) -> None:
        """:meth:`put` of one frame the core gave as text (not an error frame): the
        publisher's ``publish_success``, with no :class:`Outgoing` made."""
        if self.plan.active(Point.OUTBOUND):
            self._put_with_faults(Outgoing(kind, frame_id, text))
        else:
            self._extend([(text, kind, frame_id, None)])

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
            if self.timers is None:
                self.timers = []
            self.timers.append(self.loop.call_later(decision.delay, self._put_later, item))
            return
        self._put_later(item)

    def _put_later(self, item: _Item) -> None:
        extra = item[3]
        if extra is not None and extra.due:  # the latency counts from now
            item = (*item[:3], _Extra(due=self.loop.time() + extra.due, errors=extra.errors))
        self._extend([item])

    def put_framed(
        self, subscription_id: str, framed: FramedEvents, key: tuple[str, str] | None = None
    ) -> None:
        """Queue the ``data`` frames of one fan-out, framed once per publish (the hot path).

        ``key`` is ``(connection id, subscription_id)``, if the caller has it.  Sets
        ``framed.pressure`` if this queue is more than half full.
        """
        if self.debug or (framed.faults and self.plan.active(Point.OUTBOUND)):
            texts = codec.encode_data_frames(subscription_id, framed.events)
            self.put_data(texts, subscription_id)
            if self.under_pressure:
                framed.pressure = True
            return
        if self._closed or self._close_sent is not None:
            return
        queue = self._queue
        cork = self.cork
        if not queue and self.writer is None and not self.corked:
            if not cork.depth:
                self.place_framed(subscription_id, framed)
                return
            # Idle: nothing of this queue waits, in the queue or in the cork, so nothing
            # is written to its socket before the cork's release; if it is writable now,
            # it still is then (the common case: one entry per fan-out, not per queue).
            if self.writable():
                direct = framed.direct
                if not direct:
                    cork.pending.append((None, None, framed))
                direct.append(self)
                framed.targets.append(
                    key if key is not None else (self.connection_id, subscription_id)
                )
                return
            self.corked += 1
            cork.pending.append((self, subscription_id, framed))
            return
        if queue and len(queue) * 2 > self.limit:
            framed.pressure = True
        if self.corked:
            self.corked += 1
            cork.pending.append((self, subscription_id, framed))
            return
        self.place_framed(subscription_id, framed)

    def _extend(self, items: list[_Item]) -> None:
        if self._closed or self._close_sent is not None:
            return  # nothing follows a close (the old writer stopped at the instruction)
        cork = self.cork
        if cork.depth and (self.corked or (not self._queue and self.writer is None)):
            self.corked += 1
            cork.pending.append((self, None, items))
            return
        self.place(items)

    def place_framed(self, subscription_id: str, framed: FramedEvents) -> None:
        """Write a fan-out's frames at once if nothing waits, else queue them."""
        if not self._queue and self.writer is None and self.writable():
            self.recorder.record_data(framed.events, [(self.connection_id, subscription_id)])
            self.write_framed(subscription_id, framed)
            return
        texts = codec.encode_data_frames(subscription_id, framed.events)
        self.place([(text, "data", subscription_id, None) for text in texts])

    def write_framed(self, subscription_id: str, framed: FramedEvents) -> None:
        """Write a fan-out's frames (recorded already) in one transport write."""
        assert self.transport is not None
        self.cork.write(self.transport, framed.frames(_prefix(subscription_id)))

    def place(self, items: list[_Item]) -> None:
        """Write a batch at once if nothing waits and the socket keeps up, else queue it."""
        if not self._queue and self.writer is None and self.writable():
            for item in items:
                extra = item[3]
                if extra is not None and extra.due:
                    break  # a frame with latency waits in the queue
            else:
                self._write_now(items)
                return
        queue = self.queue
        if len(queue) + len(items) > self.limit:
            self._overflow()
            return
        queue.extend(items)
        if self.writer is None:
            self.writer = self.loop.create_task(self.run(), name=f"{self.connection_id}-writer")

    def idle_writable(self) -> bool:
        """Whether nothing of this queue waits (queued, corked, or a close) and a batch
        may be written now: a fan-out's frames may be written directly."""
        return (
            not self._queue
            and self.writer is None
            and not self.corked
            and not self._closed
            and self._close_sent is None
            and self.writable()
        )

    def writable(self) -> bool:
        """Whether a batch may be written to the transport now, without waiting."""
        transport = self.transport
        return (
            transport is not None
            and self.write_gate.is_set()
            and not transport.is_closing()
            and not (self.flow is not None and self.flow.writing_paused)
            and not (self.socket is not None and self.socket.closed)
        )

    def _write_now(self, batch: list[_Item]) -> None:
        # Record before sending, so a test that sees a frame also finds it recorded.
        self.recorder.record_frames(self.connection_id, batch)
        parts: list[bytes] = []
        for text, kind, frame_id, extra in batch:
            assert text is not None
            if extra is not None and extra.errors is not None:
                self._record_error_frame(kind, frame_id, extra.errors)
            if self.debug:
                self.log.debug("> %s", redact_frame(text))
            parts.append(_frame(text))
        assert self.transport is not None
        self.cork.write(self.transport, parts[0] if len(parts) == 1 else b"".join(parts))

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
        if self._closed or self._close_sent is not None:
            return False
        self.close_sent = (code, reason)
        self.queue.append(_CLOSE)
        if self.writer is None:
            self.writer = self.loop.create_task(self.run(), name=f"{self.connection_id}-writer")
        return True

    def clear(self) -> None:
        """Drop every queued frame."""
        if self._queue is not None:
            self._queue.clear()
        self.prerecorded = 0
        self._wake_drained()

    def shut(self) -> None:
        """The connection is closing: drop the queue and the delayed frames."""
        self.closed = True
        self.clear()
        for timer in self.timers or ():
            timer.cancel()

    def cancel_writer(self) -> asyncio.Task[None] | None:
        """Cancel the writer task unless it is the caller; return it (to await), if any."""
        writer = self.writer
        if writer is not None and writer is not asyncio.current_task():
            writer.cancel()
            return writer
        return None

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
        finally:
            if self.writer is asyncio.current_task():
                self.writer = None

    async def _write_loop(self) -> None:
        record = self.recorder.record_frames
        queue = self.queue
        connection_id = self.connection_id
        gate = self.write_gate
        batch: list[_Item] = []
        while queue:
            if not gate.is_set():
                await gate.wait()
                continue
            if self.transport is not None:
                if self.transport.is_closing() or (self.socket is not None and self.socket.closed):
                    self._failed("the connection is closing")
                    return
                if self.flow is not None and self.flow.writing_paused and self.drain is not None:
                    try:
                        await self.drain()
                    except (ConnectionError, RuntimeError) as exc:
                        self._failed(str(exc))
                        return
                    continue
            head = queue[0]
            if head[0] is None:  # the close instruction
                queue.popleft()
                code, reason = self._close_sent or (1000, "")
                self.close(code, reason)
                return
            extra = head[3]
            if extra is not None and extra.due:  # a frame with latency
                wait = extra.due - self.loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue  # the gate or the transport may have changed meanwhile
                batch.append(queue.popleft())
            else:
                # Plain frames go out in batches: one recorder lock for many frames.
                while queue and len(batch) < BATCH_FRAMES:
                    item = queue[0]
                    if item[0] is None or (item[3] is not None and item[3].due):
                        break
                    batch.append(queue.popleft())
            if not self.under_pressure:
                self._wake_drained()
            if self.transport is not None:
                self._write_now(batch)
            else:
                skip = min(self.prerecorded, len(batch))
                self.prerecorded -= skip
                record(connection_id, batch[skip:] if skip else batch)
                if not await self._send_batch(batch, self.send, gate):
                    return
            batch.clear()
        self._wake_drained()

    def _failed(self, why: str) -> None:
        """Writing failed (the connection is going): queue nothing more."""
        self.log.debug("= send failed: %s", why)
        self.closed = True
        self.clear()

    async def _send_batch(
        self, batch: list[_Item], send: Callable[[str], Awaitable[None]], gate: Gate
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
                self._failed(str(exc))
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
