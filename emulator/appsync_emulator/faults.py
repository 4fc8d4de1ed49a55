"""Fault injection: faults are values, a pure :class:`FaultPlan` decides, the shell acts.

Inject with ``server.inject(fault, connection=...)``; the returned handle removes the
fault when its ``with`` block ends (or on ``handle.remove()``)::

    with server.inject(DelayReply(0.2, match="subscribe_success")):
        ...

``connection`` targets every connection (``None``, the default; HTTP publish requests are
only affected by such untargeted faults), one connection id (``"c2"``), or a predicate over
:class:`~appsync_emulator.recorder.ConnectionInfo`.

Two kinds of faults:

* **standing** faults change how the server behaves while they are installed, for every
  matching connection, present and future: the keep-alive, handshake and operation faults,
  :class:`Stall`, :class:`FrameLatency`, :class:`CorruptFrame` and :class:`StallSubscriber`;
* **one-shot** faults act once, at injection, on the matching connections that are open
  then: :class:`CloseConnection`, :class:`DropConnection`, :class:`SendBroadcastError`,
  :class:`SendError`, :class:`SendRawText` and :class:`FloodSubscription`.

The plan is pure: :meth:`FaultPlan.decide` maps a decision point (the upgrade, the first
frame, the ack, an operation, an outbound frame, the flow of a connection) to a
:class:`Decision`; it does no I/O and reads no clock.  It tells a fault's listener (the
:class:`~appsync_emulator.FaultHandle`) each time the fault acts, so that a test can wait
for it: ``await server.inject(fault).wait_done()``.

Faults that act on subscriptions (:class:`FloodSubscription`, :class:`SendBroadcastError`)
name them as a test knows them: ``subscription=`` takes the client's
:class:`~appsync_events.Subscription` (or anything with an ``id``, such as a
:class:`~appsync_emulator.recorder.SubscriptionRecord`, or the id itself), and
``channel=`` takes the channel (pattern) as subscribed.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import Final, Literal, Protocol

from appsync_events.errors import ErrorDetail
from appsync_events.protocol import codec
from appsync_events.protocol.channels import parse_subscribe_channel

from . import catalogue
from ._logging import LOG_FAULTS
from .recorder import ConnectionInfo

__all__ = [
    "AckTimeoutOverride",
    "CloseConnection",
    "CorruptFrame",
    "Decision",
    "DelayAck",
    "DelayKeepAlives",
    "DelayReply",
    "DropConnection",
    "DropKeepAlives",
    "FailEvents",
    "Fault",
    "FaultListener",
    "FaultPlan",
    "FloodSubscription",
    "FrameLatency",
    "NeverAck",
    "NoSubprotocol",
    "Point",
    "RefuseUpgrade",
    "RejectConnection",
    "RejectPublish",
    "RejectSubscribe",
    "RejectUnsubscribe",
    "ReplyType",
    "SendBroadcastError",
    "SendError",
    "SendRawText",
    "Stall",
    "StallSubscriber",
    "SubscriptionRef",
    "Target",
    "WithholdReply",
    "subscription_id_of",
]

ReplyType = Literal["subscribe_success", "publish_success", "unsubscribe_success"]
_REPLY_TYPES: Final = ("subscribe_success", "publish_success", "unsubscribe_success")

UNAUTHORIZED: Final = catalogue.UNAUTHORIZED
SUBSCRIBE_FAILED: Final = catalogue.SUBSCRIBE_FAILURE
BROADCAST_FAILED: Final = catalogue.BROADCAST_FAILED
UNSUPPORTED: Final = catalogue.UNSUPPORTED_OPERATION


class Fault:
    """Base class of every fault value."""

    __slots__ = ()

    one_shot: bool = False
    """``True`` for faults that act once at injection."""


def _non_negative(value: float, name: str) -> None:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def _errors(value: Sequence[ErrorDetail], name: str) -> tuple[ErrorDetail, ...]:
    items = tuple(value)
    if not items or not all(isinstance(e, ErrorDetail) for e in items):
        raise ValueError(f"{name} must be a non-empty sequence of ErrorDetail")
    return items


def _reply(match: str) -> None:
    if match not in _REPLY_TYPES:
        raise ValueError(f"match must be one of {', '.join(_REPLY_TYPES)}, got {match!r}")


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


SubscriptionRef = str | _HasId
"""A subscription as a test knows it: the client's :class:`~appsync_events.Subscription`,
a :class:`~appsync_emulator.recorder.SubscriptionRecord`, or the subscription id itself
(anything with a string ``id``)."""


def subscription_id_of(ref: SubscriptionRef) -> str:
    """The id of ``ref``.

    Raises:
        TypeError: ``ref`` is neither an id nor has one.
    """
    value = ref if isinstance(ref, str) else getattr(ref, "id", None)
    if not isinstance(value, str) or not value:
        raise TypeError(
            "subscription must be a subscription id or have one in .id (the client's "
            f"Subscription, a SubscriptionRecord), not {ref!r}"
        )
    return value


def _target_subscription(
    fault: FloodSubscription | SendBroadcastError, subscription: SubscriptionRef | None
) -> None:
    """Resolve ``subscription=`` into ``subscription_id`` and canonicalise ``channel``."""
    if subscription is not None:
        sub_id = subscription_id_of(subscription)
        if fault.subscription_id is not None and fault.subscription_id != sub_id:
            raise ValueError(
                f"subscription= (id {sub_id!r}) and subscription_id={fault.subscription_id!r} "
                "name different subscriptions: give one"
            )
        object.__setattr__(fault, "subscription_id", sub_id)
    if fault.channel is not None:
        if fault.subscription_id is not None:
            raise ValueError("give a subscription or a channel, not both")
        # InvalidChannelError (a ValueError) names the rule a bad channel breaks.
        object.__setattr__(fault, "channel", parse_subscribe_channel(fault.channel).path)


# --- keep-alive ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DropKeepAlives(Fault):
    """No ``ka`` frames are sent (the one after the ack included): a silent server."""


@dataclass(frozen=True, slots=True)
class DelayKeepAlives(Fault):
    """Every ``ka`` frame leaves ``seconds`` late (other frames are not held back)."""

    seconds: float

    def __post_init__(self) -> None:
        _non_negative(self.seconds, "seconds")


@dataclass(frozen=True, slots=True)
class AckTimeoutOverride(Fault):
    """``connection_ack`` advertises ``connectionTimeoutMs = ms`` instead of the config's."""

    ms: int

    def __post_init__(self) -> None:
        if isinstance(self.ms, bool) or not isinstance(self.ms, int) or self.ms < 0:
            raise ValueError(f"ms must be a non-negative int, got {self.ms!r}")


# --- handshake ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NeverAck(Fault):
    """``connection_init`` gets no answer at all (no ack, no ``ka``)."""


@dataclass(frozen=True, slots=True)
class DelayAck(Fault):
    """The ack is sent ``seconds`` late; later frames of that connection wait behind it."""

    seconds: float

    def __post_init__(self) -> None:
        _non_negative(self.seconds, "seconds")


@dataclass(frozen=True, slots=True)
class RejectConnection(Fault):
    """The first frame (``connection_init`` or not) gets ``connection_error``, then close 1000."""

    errors: Sequence[ErrorDetail] = (UNAUTHORIZED,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", _errors(self.errors, "errors"))


@dataclass(frozen=True, slots=True)
class RefuseUpgrade(Fault):
    """The WebSocket upgrade is answered with HTTP ``status`` and ``body`` instead of 101."""

    status: int = 401
    body: str = (
        '{"errors":[{"errorType":"UnauthorizedException",'
        '"message":"You are not authorized to make this call."}]}'
    )

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (4xx/5xx), got {self.status}")


@dataclass(frozen=True, slots=True)
class NoSubprotocol(Fault):
    """The upgrade succeeds but selects no subprotocol (clients must refuse it)."""


# --- operations ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DelayReply(Fault):
    """The ``match`` reply leaves ``seconds`` late without holding back other frames.

    A delayed ``subscribe_success`` also delays the subscription itself (no ``data``
    before it); a delayed ``publish_success`` does not delay the fan-out.  Applies to
    HTTP publish responses too (``match="publish_success"``).
    """

    seconds: float
    match: ReplyType = "subscribe_success"

    def __post_init__(self) -> None:
        _non_negative(self.seconds, "seconds")
        _reply(self.match)


@dataclass(frozen=True, slots=True)
class WithholdReply(Fault):
    """The ``match`` reply is never sent.

    A withheld ``subscribe_success`` leaves the subscription pending for good; a withheld
    ``publish_success`` still broadcasts the events; an HTTP publish is answered only when
    the server stops.
    """

    match: ReplyType = "subscribe_success"

    def __post_init__(self) -> None:
        _reply(self.match)


@dataclass(frozen=True, slots=True)
class RejectSubscribe(Fault):
    """Every ``subscribe`` gets ``subscribe_error`` with ``errors``."""

    errors: Sequence[ErrorDetail] = (SUBSCRIBE_FAILED,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", _errors(self.errors, "errors"))


@dataclass(frozen=True, slots=True)
class RejectPublish(Fault):
    """Every publish gets ``publish_error`` (HTTP: ``status`` with ``{"errors":…}``)."""

    errors: Sequence[ErrorDetail] = (UNAUTHORIZED,)
    status: int = 401

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", _errors(self.errors, "errors"))
        if not 400 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP error status (4xx/5xx), got {self.status}")


@dataclass(frozen=True, slots=True)
class RejectUnsubscribe(Fault):
    """Every ``unsubscribe`` gets ``unsubscribe_error``; the subscription stays active.

    ``errors=None`` sends AWS's ``UnknownOperationError`` / ``Unknown operation id <id>``.
    """

    errors: Sequence[ErrorDetail] | None = None

    def __post_init__(self) -> None:
        if self.errors is not None:
            object.__setattr__(self, "errors", _errors(self.errors, "errors"))


@dataclass(frozen=True, slots=True)
class FailEvents(Fault):
    """The events at ``indexes`` of every publish land in ``failed`` and are not broadcast."""

    indexes: Sequence[int] = (0,)
    code: str = "EventProcessingError"
    message: str = "The event could not be processed"

    def __post_init__(self) -> None:
        items = tuple(self.indexes)
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in items):
            raise ValueError(f"indexes must be non-negative ints, got {self.indexes!r}")
        object.__setattr__(self, "indexes", items)


@dataclass(frozen=True, slots=True)
class SendBroadcastError(Fault):
    """One-shot: ``broadcast_error`` for one subscription (or every active one).

    Name the subscription with ``subscription=`` (the client's ``Subscription``, a
    record or an id), or every subscription to ``channel`` (the pattern as subscribed);
    ``subscription_id`` is the older spelling of ``subscription=``.
    """

    subscription_id: str | None = None
    errors: Sequence[ErrorDetail] = (BROADCAST_FAILED,)
    _: KW_ONLY
    channel: str | None = None
    """Every subscription to this channel (pattern), as subscribed (``/`` optional)."""
    subscription: InitVar[SubscriptionRef | None] = None
    one_shot = True

    def __post_init__(self, subscription: SubscriptionRef | None) -> None:
        object.__setattr__(self, "errors", _errors(self.errors, "errors"))
        _target_subscription(self, subscription)


@dataclass(frozen=True, slots=True)
class SendError(Fault):
    """One-shot: a generic ``error`` frame (with ``id`` when given)."""

    errors: Sequence[ErrorDetail] = (UNSUPPORTED,)
    id: str | None = None
    one_shot = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "errors", _errors(self.errors, "errors"))


# --- transport ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CloseConnection(Fault):
    """One-shot: close with ``code``/``reason`` after the frames already queued."""

    code: int = 1000
    reason: str = ""
    one_shot = True

    def __post_init__(self) -> None:
        if not (1000 <= self.code <= 1014 or 3000 <= self.code <= 4999) or self.code in (
            1004,
            1005,
            1006,
        ):
            raise ValueError(f"code {self.code} cannot be sent in a close frame")
        if len(self.reason.encode()) > 123:
            raise ValueError("reason must be at most 123 bytes of UTF-8")


@dataclass(frozen=True, slots=True)
class DropConnection(Fault):
    """One-shot: abort the TCP connection (no close frame; clients see 1006)."""

    one_shot = True


@dataclass(frozen=True, slots=True)
class Stall(Fault):
    """Blackhole: the connection neither reads nor sends while the fault is installed."""


@dataclass(frozen=True, slots=True)
class FrameLatency(Fault):
    """Every outbound frame is delayed by ``seconds`` (order kept, throughput not capped)."""

    seconds: float

    def __post_init__(self) -> None:
        _non_negative(self.seconds, "seconds")


@dataclass(frozen=True, slots=True)
class CorruptFrame(Fault):
    """Replace the next ``times`` outbound frames of type ``match`` (any type if ``None``).

    ``times=None`` corrupts every matching frame while installed.
    """

    match: str | None = None
    text: str = "not json"
    times: int | None = 1

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be >= 1 or None, got {self.times}")
        _check_frame_text(self.text)


@dataclass(frozen=True, slots=True)
class SendRawText(Fault):
    """One-shot: send ``text`` as a text frame, verbatim."""

    text: str
    one_shot = True

    def __post_init__(self) -> None:
        _check_frame_text(self.text)


def _check_frame_text(text: str) -> None:
    """Raise ``ValueError`` unless ``text`` can be a text frame (UTF-8: no lone surrogate)."""
    surrogate = codec.lone_surrogate(text)
    if surrogate is not None:
        raise ValueError(f"text must be UTF-8 text for a text frame: {surrogate}")


# --- slow consumers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FloodSubscription(Fault):
    """One-shot: ``count`` ``data`` frames of ``event`` to one subscription (or each one).

    Name the subscription with ``subscription=`` (the client's ``Subscription``, a
    record or an id), or every subscription to ``channel`` (the pattern as subscribed);
    ``subscription_id`` is the older spelling of ``subscription=``.  With none of them,
    every active subscription of the targeted connections is flooded.  ``rate`` caps
    frames per second; ``None`` sends as fast as the connection drains.  The flood stops
    early when its subscriptions end (a client unsubscribes one whose inbox overflowed).
    """

    subscription_id: str | None = None
    count: int = 100
    rate: float | None = None
    event: str = "{}"
    _: KW_ONLY
    channel: str | None = None
    """Every subscription to this channel (pattern), as subscribed (``/`` optional)."""
    subscription: InitVar[SubscriptionRef | None] = None
    one_shot = True

    def __post_init__(self, subscription: SubscriptionRef | None) -> None:
        _target_subscription(self, subscription)
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise ValueError(f"count must be an int, got {self.count!r}")
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"rate must be > 0 or None, got {self.rate}")


@dataclass(frozen=True, slots=True)
class StallSubscriber(Fault):
    """The connection stops being written to (others keep flowing); its queue overflows.

    Once more than ``limits.send_queue_frames`` frames wait, it is closed with 1008.
    """


# --- the plan -----------------------------------------------------------------------------


class Point(enum.Enum):
    """Where the shell asks the plan for a decision."""

    UPGRADE = "upgrade"
    """The WebSocket upgrade request."""
    CONNECT = "connect"
    """The first frame of a connection."""
    ACK = "ack"
    """About to answer ``connection_init``."""
    SUBSCRIBE = "subscribe"
    """A subscribe passed validation."""
    SUBSCRIBE_REPLY = "subscribe_reply"
    """About to accept a subscribe."""
    PUBLISH = "publish"
    """A publish (WS or HTTP) passed validation."""
    UNSUBSCRIBE = "unsubscribe"
    """An inbound ``unsubscribe`` frame."""
    OUTBOUND = "outbound"
    """A frame (or HTTP response) about to be sent."""
    FLOW = "flow"
    """Whether the connection may read and write."""

    # Members are singletons compared by identity: hash them by identity too, in C (the
    # hot paths ask ``active(point)`` once per frame).
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What the shell must do at one decision point; the default means "as normal"."""

    drop: bool = False
    """Do not send this frame / withhold this reply / never ack."""
    delay: float = 0.0
    """Seconds to wait before acting (ack, reply, ``ka``)."""
    latency: float = 0.0
    """Seconds every outbound frame spends in flight (order kept)."""
    replace: str | None = None
    """Send this text instead of the frame."""
    reject: tuple[ErrorDetail, ...] | None = None
    """Answer with these errors."""
    status: int | None = None
    """HTTP status of a refusal / rejection."""
    body: str | None = None
    """HTTP body of a refused upgrade."""
    select_subprotocol: bool = True
    ack_timeout_ms: int | None = None
    fail_events: tuple[FailEvents, ...] = ()
    stall_reads: bool = False
    stall_writes: bool = False


PROCEED: Final = Decision()

Target = str | Callable[[ConnectionInfo], bool] | None
"""Which connections a fault applies to: all (``None``), an id, or a predicate."""


class FaultListener(Protocol):
    """Told how far an installed fault got (a :class:`~appsync_emulator.FaultHandle` is one).

    Every method is called on the server's loop thread and must not block.  A standing
    fault calls :meth:`fault_acted` each time it acts; a one-shot fault calls
    :meth:`target_started` for each connection it acts on, :meth:`target_finished` when
    that action is over, and :meth:`targets_known` once every target was started.
    """

    def fault_acted(self) -> None:
        """A standing fault acted once more."""

    def fault_removed(self) -> None:
        """The fault was uninstalled (``remove()``, ``clear_faults()``)."""

    def target_started(self) -> None:
        """A one-shot fault started acting on one more connection."""

    def target_finished(self) -> None:
        """A one-shot fault finished acting on one connection."""

    def targets_known(self) -> None:
        """A one-shot fault has started on every connection it will act on."""


@dataclass(slots=True)
class _Entry:
    key: int
    fault: Fault
    target: Target
    remaining: int | None = None
    points: frozenset[Point] = field(default_factory=frozenset)
    listener: FaultListener | None = None
    stalled: set[str] = field(default_factory=set)
    """Connections a ``Stall``/``StallSubscriber`` stalled (each counts once as an action)."""


def _points(fault: Fault) -> frozenset[Point]:
    match fault:
        case RefuseUpgrade() | NoSubprotocol():
            return frozenset({Point.UPGRADE})
        case RejectConnection():
            return frozenset({Point.CONNECT})
        case NeverAck() | DelayAck() | AckTimeoutOverride():
            return frozenset({Point.ACK})
        case RejectSubscribe():
            return frozenset({Point.SUBSCRIBE})
        case DelayReply(match="subscribe_success") | WithholdReply(match="subscribe_success"):
            return frozenset({Point.SUBSCRIBE_REPLY})
        case DelayReply() | WithholdReply():
            return frozenset({Point.OUTBOUND})
        case RejectPublish() | FailEvents():
            return frozenset({Point.PUBLISH})
        case RejectUnsubscribe():
            return frozenset({Point.UNSUBSCRIBE})
        case DropKeepAlives() | DelayKeepAlives() | FrameLatency() | CorruptFrame():
            return frozenset({Point.OUTBOUND})
        case Stall() | StallSubscriber():
            return frozenset({Point.FLOW})
        case _:
            return frozenset()


class FaultPlan:
    """The installed faults and the pure decision function over them.  Thread-safe.

    Args:
        on_error: receives an exception raised by a target predicate (the predicate then
            counts as not matching), so the server can re-raise it in ``check()``.
    """

    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}
        self._next = 1
        self._counts: dict[Point, int] = dict.fromkeys(Point, 0)
        self._on_error = on_error

    def add(
        self, fault: Fault, target: Target = None, listener: FaultListener | None = None
    ) -> int:
        """Install ``fault`` for ``target``; return the key that removes it.

        ``listener`` is told each time the fault acts, and when it is removed.
        """
        if not isinstance(fault, Fault):
            raise TypeError(f"not a fault: {fault!r}")
        if target is not None and not isinstance(target, str) and not callable(target):
            raise TypeError(f"connection must be an id, a predicate or None, not {target!r}")
        with self._lock:
            key = self._next
            self._next += 1
            remaining = fault.times if isinstance(fault, CorruptFrame) else None
            entry = _Entry(key, fault, target, remaining, _points(fault), listener)
            self._entries[key] = entry
            for point in entry.points:
                self._counts[point] += 1
        LOG_FAULTS.info("installed fault #%d %r for %s", key, fault, _describe(target))
        return key

    def remove(self, key: int) -> bool:
        """Uninstall the fault ``key``; ``False`` if it was not installed."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return False
            for point in entry.points:
                self._counts[point] -= 1
        LOG_FAULTS.info("removed fault #%d %r", key, entry.fault)
        if entry.listener is not None:
            entry.listener.fault_removed()
        return True

    def clear(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            self._counts = dict.fromkeys(Point, 0)
        LOG_FAULTS.info("cleared all faults")
        for entry in entries:
            if entry.listener is not None:
                entry.listener.fault_removed()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def faults(self) -> list[tuple[int, Fault, Target]]:
        """The installed faults as ``(key, fault, target)``."""
        with self._lock:
            return [(e.key, e.fault, e.target) for e in self._entries.values()]

    def active(self, point: Point) -> bool:
        """Whether any installed fault acts at ``point`` (a cheap test for hot paths)."""
        return self._counts[point] > 0

    def matches(self, target: Target, conn: ConnectionInfo | None) -> bool:
        """Whether a fault for ``target`` applies to ``conn`` (``None``: an HTTP request)."""
        if target is None:
            return True
        if conn is None:
            return False
        if isinstance(target, str):
            return conn.id == target
        try:
            return bool(target(conn))
        except Exception as exc:
            LOG_FAULTS.error("fault target predicate failed on %s", conn.id, exc_info=exc)
            if self._on_error is not None:
                self._on_error(exc)
            return False

    def decide(
        self,
        point: Point,
        conn: ConnectionInfo | None,
        *,
        frame_type: str | None = None,
        frame_id: str | None = None,
    ) -> Decision:
        """Return what to do at ``point`` for ``conn`` (and the frame, for ``OUTBOUND``).

        Several matching faults combine: delays add up, the first rejection or
        replacement wins, any drop drops.
        """
        if not self._counts[point]:
            return PROCEED
        with self._lock:
            entries = [e for e in self._entries.values() if point in e.points]
        drop = False
        delay = latency = 0.0
        replace: str | None = None
        reject: tuple[ErrorDetail, ...] | None = None
        status: int | None = None
        body: str | None = None
        select = True
        ack_ms: int | None = None
        fails: list[FailEvents] = []
        stall_reads = stall_writes = False
        for entry in entries:
            fault = entry.fault
            if not self.matches(entry.target, conn):
                continue
            acted = True
            match fault:
                case RefuseUpgrade(status=s, body=b) if status is None:
                    status, body = s, b
                case NoSubprotocol():
                    select = False
                case RejectConnection(errors=errs) | RejectSubscribe(errors=errs) if reject is None:
                    reject = tuple(errs)
                case NeverAck():
                    drop = True
                case DelayAck(seconds=s):
                    delay += s
                case AckTimeoutOverride(ms=ms) if ack_ms is None:
                    ack_ms = ms
                case DelayReply(seconds=s, match=m) if point is not Point.OUTBOUND or (
                    m == frame_type
                ):
                    delay += s
                case WithholdReply(match=m) if point is not Point.OUTBOUND or m == frame_type:
                    drop = True
                case RejectPublish(errors=errs, status=s) if reject is None:
                    reject, status = tuple(errs), s
                case FailEvents():
                    fails.append(fault)
                case RejectUnsubscribe(errors=errs) if reject is None:
                    reject = (
                        tuple(errs)
                        if errs is not None
                        else (catalogue.unknown_operation(frame_id or ""),)
                    )
                case DropKeepAlives() if frame_type == "ka":
                    drop = True
                case DelayKeepAlives(seconds=s) if frame_type == "ka":
                    delay += s
                case FrameLatency(seconds=s):
                    latency += s
                case CorruptFrame(match=m, text=t) if replace is None and (
                    m is None or m == frame_type
                ):
                    acted = self._consume(entry)
                    if acted:
                        replace = t
                case Stall():
                    stall_reads = stall_writes = True
                    acted = self._stalls(entry, conn)
                case StallSubscriber():
                    stall_writes = True
                    acted = self._stalls(entry, conn)
                case _:
                    continue
            if acted and entry.listener is not None:
                entry.listener.fault_acted()
            LOG_FAULTS.debug(
                "fault #%d %r applies at %s on %s (frame %s)",
                entry.key,
                fault,
                point.value,
                conn.id if conn else "http",
                frame_type,
            )
        return Decision(
            drop=drop,
            delay=delay,
            latency=latency,
            replace=replace,
            reject=reject,
            status=status,
            body=body,
            select_subprotocol=select,
            ack_timeout_ms=ack_ms,
            fail_events=tuple(fails),
            stall_reads=stall_reads,
            stall_writes=stall_writes,
        )

    def _consume(self, entry: _Entry) -> bool:
        with self._lock:
            if entry.remaining is None:
                return True
            if entry.remaining <= 0:
                return False
            entry.remaining -= 1
            if entry.remaining == 0 and self._entries.pop(entry.key, None) is not None:
                for point in entry.points:
                    self._counts[point] -= 1
            return True

    def _stalls(self, entry: _Entry, conn: ConnectionInfo | None) -> bool:
        """Whether ``entry`` stalls ``conn`` for the first time (the flow is re-decided often)."""
        key = conn.id if conn is not None else ""
        with self._lock:
            if key in entry.stalled:
                return False
            entry.stalled.add(key)
            return True


def _describe(target: Target) -> str:
    if target is None:
        return "all connections"
    if isinstance(target, str):
        return f"connection {target}"
    return f"connections matching {getattr(target, '__name__', repr(target))}"
