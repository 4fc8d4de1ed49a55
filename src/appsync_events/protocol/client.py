"""Sans-I/O client side of the AppSync Events WebSocket protocol (PROTOCOL.md §3).

:class:`ClientProtocol` keeps the state of one WebSocket connection: whether the
``connection_ack`` arrived, which operations wait for their answer, which subscriptions
are active.  It does no I/O and reads no clock.  The asyncio shell
(:mod:`appsync_events.connection`) feeds it every text frame with :meth:`receive_text`,
drives it with ``send_*()``, sends what :meth:`data_to_send` returns, and acts on what
:meth:`events_received` returns.

Theory of operation
-------------------

States::

    CONNECTING --connection_ack--> OPEN
    CONNECTING, OPEN --connection_error, unroutable error, bad frame--> FAILED
    CONNECTING, OPEN --end of stream--> CLOSED

A frame is *routed* by its ``id``: replies (``*_success``/``*_error``) go to the pending
operation with that id, ``data`` and ``broadcast_error`` to the active subscription with
that id.  A reply nobody waits for, or ``data`` for an unknown id (a subscription that
was just unsubscribed, say), is reported as :class:`FrameIgnored` and otherwise dropped:
unlike the Go client we never tear the connection down for it.

Generic ``error`` frames (§3.3.11):

* with an ``id`` of a pending operation: that operation is rejected;
* with the ``id`` of an active subscription: delivered to it like ``broadcast_error``;
* with an unknown ``id``: ignored;
* without ``id``: the service complains about the oldest pending operation (it handles
  frames in order), so that one is rejected.  With nothing pending it concerns the
  connection itself, which fails (``FAILED``): before the ack as a handshake error.

Bad peer input (invalid JSON, a known frame type with missing fields, a binary frame)
never raises out of ``receive_*()``: the protocol moves to ``FAILED``, stores the
:class:`~appsync_events.errors.RemoteProtocolError` in :attr:`ClientProtocol.failure`
and reports :class:`ConnectionFailed`.  Frame types this client does not know are
ignored, so that a new service frame type cannot break old clients.

Caller misuse (a sixth event, an event that is not JSON, a duplicate id, unsubscribing
an id that is not an active subscription, sending on a failed connection) raises at once
(:class:`~appsync_events.errors.ConfigurationError` or
:class:`~appsync_events.errors.LocalProtocolError`) and queues nothing.

The transition tables below are the whole state machine.  ``_RECEIVE`` gives the state
after a frame that was handled normally; the universal transitions to ``FAILED`` (bad
frame, ``connection_error``, unroutable ``error``) and ``CLOSED`` (end of stream) are
applied by the handlers.  A ``(state, frame type)`` missing from ``_SEND`` is misuse.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, assert_never

from .._types import Message
from ..errors import (
    AppSyncEventsError,
    BroadcastError,
    ConfigurationError,
    ErrorDetail,
    HandshakeError,
    LocalProtocolError,
    OperationError,
    PublishError,
    RemoteProtocolError,
    SubscribeError,
    UnauthorizedError,
    UnsubscribeError,
)
from . import codec
from .channels import parse_channel, parse_subscribe_channel
from .limits import MAX_EVENT_BYTES, MAX_EVENTS_PER_PUBLISH, MAX_REQUEST_BYTES, is_valid_id
from .messages import (
    BroadcastError as BroadcastErrorMessage,
    ConnectionAck,
    ConnectionErrorMessage,
    ConnectionInit,
    Data,
    ErrorMessage,
    FailedEvent,
    KeepAlive,
    Publish,
    PublishedEvent,
    PublishError as PublishErrorMessage,
    PublishSuccess,
    ServerMessage,
    Subscribe,
    SubscribeError as SubscribeErrorMessage,
    SubscribeSuccess,
    Unsubscribe,
    UnsubscribeError as UnsubscribeErrorMessage,
    UnsubscribeSuccess,
)

__all__ = [
    "UNAUTHORIZED_ERROR_TYPES",
    "BroadcastFailed",
    "ClientEvent",
    "ClientProtocol",
    "ClientState",
    "ConnectionAccepted",
    "ConnectionFailed",
    "EventReceived",
    "FrameIgnored",
    "KeepAliveReceived",
    "OperationKind",
    "PublishAccepted",
    "PublishRejected",
    "SubscribeAccepted",
    "SubscribeRejected",
    "UnsubscribeAccepted",
    "UnsubscribeRejected",
    "connection_error",
    "is_unauthorized",
    "operation_error",
]

UNAUTHORIZED_ERROR_TYPES: Final = frozenset(
    {"UnauthorizedException", "Unauthorized", "NotAuthorizedException"}
)
"""errorTypes that mean "not authorized" (PROTOCOL.md §3.4; Amplify treats these three so)."""


class ClientState(enum.Enum):
    """State of a :class:`ClientProtocol`."""

    CONNECTING = "connecting"
    """Before ``connection_ack`` (operations may already be pipelined)."""
    OPEN = "open"
    """``connection_ack`` received."""
    FAILED = "failed"
    """The service refused the connection or broke the protocol; see ``failure``."""
    CLOSED = "closed"
    """The stream ended."""


class OperationKind(enum.Enum):
    """The kind of a pending operation."""

    SUBSCRIBE = "subscribe"
    PUBLISH = "publish"
    UNSUBSCRIBE = "unsubscribe"


# --- error mapping (pure; shared with the HTTP publisher) --------------------------------


def is_unauthorized(errors: Sequence[ErrorDetail]) -> bool:
    """Return whether the service's ``errors`` say "not authorized" (type or 401/403 code)."""
    return any(
        e.error_type in UNAUTHORIZED_ERROR_TYPES or e.error_code in (401, 403) for e in errors
    )


_OPERATION_ERRORS: Final[Mapping[str, type[OperationError]]] = {
    "subscribe": SubscribeError,
    "publish": PublishError,
    "unsubscribe": UnsubscribeError,
    "broadcast": BroadcastError,
}


def operation_error(
    operation: str,
    errors: Sequence[ErrorDetail],
    *,
    id: str | None = None,
    channel: str | None = None,
    status: int | None = None,
) -> AppSyncEventsError:
    """Return the exception for an operation the service answered with ``errors``.

    :class:`~appsync_events.errors.UnauthorizedError` when the errors say so (except for
    ``broadcast``, which is always a :class:`~appsync_events.errors.BroadcastError`),
    else the operation's :class:`~appsync_events.errors.OperationError` subclass.
    """
    if operation != "broadcast" and is_unauthorized(errors):
        return UnauthorizedError(errors, status=status, operation=operation)
    cls = _OPERATION_ERRORS.get(operation, OperationError)
    return cls(errors, id=id, channel=channel, status=status)


def connection_error(errors: Sequence[ErrorDetail], *, handshake: bool) -> AppSyncEventsError:
    """Return the exception for a connection-level error from the service.

    ``connection_error`` frames and unroutable ``error`` frames give
    :class:`~appsync_events.errors.UnauthorizedError` (operation ``"connect"``) when the
    errors say "not authorized"; otherwise :class:`~appsync_events.errors.HandshakeError`
    before the ack and :class:`~appsync_events.errors.OperationError` after it.
    """
    if is_unauthorized(errors):
        return UnauthorizedError(errors, operation="connect")
    if handshake:
        return HandshakeError("the service refused the connection", errors)
    return OperationError(errors)


# --- events reported to the shell ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionAccepted:
    """``connection_ack``: the connection is open."""

    connection_timeout_ms: int | None
    """``connectionTimeoutMs`` as sent, or ``None`` when absent."""

    @property
    def keepalive_timeout(self) -> float | None:
        """The keep-alive timeout in seconds, or ``None`` when the ack has none."""
        ms = self.connection_timeout_ms
        return None if ms is None else ms / 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepAliveReceived:
    """A ``ka`` frame."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFailed:
    """The connection failed: ``connection_error``, an unroutable ``error``, a bad frame."""

    error: AppSyncEventsError
    """What to raise from every pending and future call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeAccepted:
    """``subscribe_success`` for a pending subscribe; the subscription is now active."""

    id: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeRejected:
    """``subscribe_error`` (or a routed ``error``) for a pending subscribe."""

    id: str
    channel: str
    errors: tuple[ErrorDetail, ...]

    @property
    def error(self) -> AppSyncEventsError:
        """The exception to raise from the subscribe call."""
        return operation_error("subscribe", self.errors, id=self.id, channel=self.channel)


EventReceived = Message
"""``data``: one event for an active subscription, reported as the public
:class:`~appsync_events.Message` named tuple (``data``: the event's JSON text,
``subscription_id``, ``channel`` as subscribed).  One is built per received event, so the
very object the protocol reports is what ``Subscription.next()`` returns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastFailed:
    """``broadcast_error`` (or an ``error`` carrying its id) for an active subscription."""

    id: str
    channel: str
    errors: tuple[ErrorDetail, ...]

    @property
    def error(self) -> AppSyncEventsError:
        """The exception the subscription's reader gets."""
        return operation_error("broadcast", self.errors, id=self.id, channel=self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeAccepted:
    """``unsubscribe_success``; the subscription is no longer active."""

    id: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeRejected:
    """``unsubscribe_error`` (or a routed ``error``); the subscription is dropped anyway."""

    id: str
    channel: str
    errors: tuple[ErrorDetail, ...]

    @property
    def error(self) -> AppSyncEventsError:
        """The exception to raise from the unsubscribe call."""
        return operation_error("unsubscribe", self.errors, id=self.id, channel=self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishAccepted:
    """``publish_success`` with the per-event results."""

    id: str
    channel: str
    successful: tuple[PublishedEvent, ...]
    failed: tuple[FailedEvent, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishRejected:
    """``publish_error`` (or a routed ``error``) for a pending publish."""

    id: str
    channel: str
    errors: tuple[ErrorDetail, ...]

    @property
    def error(self) -> AppSyncEventsError:
        """The exception to raise from the publish call."""
        return operation_error("publish", self.errors, id=self.id, channel=self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameIgnored:
    """A frame that concerned nothing known; worth a DEBUG log line, nothing more."""

    frame_type: str | None
    id: str | None
    reason: str


ClientEvent = (
    ConnectionAccepted
    | KeepAliveReceived
    | ConnectionFailed
    | SubscribeAccepted
    | SubscribeRejected
    | EventReceived
    | BroadcastFailed
    | UnsubscribeAccepted
    | UnsubscribeRejected
    | PublishAccepted
    | PublishRejected
    | FrameIgnored
)

# --- transition tables ---------------------------------------------------------------------

_C, _O = ClientState.CONNECTING, ClientState.OPEN
_REPLIES: Final = (
    "ka",
    "subscribe_success",
    "subscribe_error",
    "data",
    "broadcast_error",
    "unsubscribe_success",
    "unsubscribe_error",
    "publish_success",
    "publish_error",
    "error",
)
_RECEIVE: Final[Mapping[tuple[ClientState, str], ClientState]] = {
    (_C, "connection_ack"): _O,
    (_O, "connection_ack"): _O,  # a second ack is ignored (§3.2.1: never sent twice)
    (_C, "connection_error"): ClientState.FAILED,
    (_O, "connection_error"): ClientState.FAILED,
    **{(_C, t): _C for t in _REPLIES},  # operations may be pipelined before the ack
    **{(_O, t): _O for t in _REPLIES},
}
_SEND: Final[Mapping[tuple[ClientState, str], ClientState]] = {
    (_C, "connection_init"): _C,
    (_C, "subscribe"): _C,
    (_O, "subscribe"): _O,
    (_C, "publish"): _C,
    (_O, "publish"): _O,
    (_C, "unsubscribe"): _C,
    (_O, "unsubscribe"): _O,
}
_SERVER_TYPES: Final = frozenset(t for _, t in _RECEIVE)
_new_tuple: Final = tuple.__new__


@dataclass(slots=True)
class _Pending:
    kind: OperationKind
    channel: str


class ClientProtocol:
    """State machine of one client WebSocket connection (no I/O, no clock).

    Args:
        max_events_per_publish: events allowed in one publish (AppSync: 5).
        max_event_bytes: UTF-8 bytes allowed per event (AppSync: 240 KB).
        max_request_bytes: bytes allowed per publish frame (AppSync: 1.2 MB).
    """

    def __init__(
        self,
        *,
        max_events_per_publish: int = MAX_EVENTS_PER_PUBLISH,
        max_event_bytes: int = MAX_EVENT_BYTES,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.max_events_per_publish = max_events_per_publish
        self.max_event_bytes = max_event_bytes
        self.max_request_bytes = max_request_bytes
        self.state = ClientState.CONNECTING
        """The current :class:`ClientState`."""
        self.failure: AppSyncEventsError | None = None
        """Why the protocol is ``FAILED``, else ``None``."""
        self.connection_timeout_ms: int | None = None
        """``connectionTimeoutMs`` from the ack, once received."""
        self._init_sent = False
        self._acked = False
        self._pending: dict[str, _Pending] = {}
        self._active: dict[str, str] = {}
        self._abandoned: dict[str, str] = {}  # subscribes given up on: id -> channel
        self._internal: set[str] = set()  # unsubscribes of abandoned subscribes in flight
        self._events: list[ClientEvent] = []
        self._out: list[str] = []

    # --- properties ----------------------------------------------------------------------

    @property
    def keepalive_timeout(self) -> float | None:
        """Seconds without a frame after which the connection is dead (from the ack)."""
        ms = self.connection_timeout_ms
        return None if ms is None else ms / 1000.0

    @property
    def subscriptions(self) -> Mapping[str, str]:
        """Active (acknowledged) subscriptions: id -> channel as sent."""
        return dict(self._active)

    @property
    def pending(self) -> Mapping[str, OperationKind]:
        """Operations waiting for their answer: id -> kind, oldest first."""
        return {id: p.kind for id, p in self._pending.items()}

    # --- output ----------------------------------------------------------------------------

    def events_received(self) -> list[ClientEvent]:
        """Return and forget what happened since the last call."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[str]:
        """Return and forget the text frames to send, in order."""
        out, self._out = self._out, []
        return out

    # --- sending ---------------------------------------------------------------------------

    def _check_send(self, frame_type: str) -> None:
        if (self.state, frame_type) not in _SEND:
            raise LocalProtocolError(
                f"cannot send {frame_type!r}: connection is {self.state.value}"
            )

    def _new_id(self, id: str | None) -> str:
        if id is None:
            id = str(uuid.uuid4())
        elif not is_valid_id(id):
            raise LocalProtocolError(
                f"invalid operation id {id!r}: must match [a-zA-Z0-9-_+]{{1,128}}"
            )
        if id in self._pending or id in self._active or id in self._abandoned:
            raise LocalProtocolError(f"operation id {id!r} is already in use on this connection")
        return id

    def send_connection_init(self) -> None:
        """Queue ``connection_init`` (at most once, before the ack).

        Raises:
            LocalProtocolError: it was sent already, or the connection is not connecting.
        """
        self._check_send("connection_init")
        if self._init_sent:
            raise LocalProtocolError("connection_init was already sent")
        self._init_sent = True
        self._out.append(codec.encode(ConnectionInit()))

    def send_subscribe(
        self, channel: str, authorization: Mapping[str, str] | None, id: str | None = None
    ) -> str:
        """Queue ``subscribe`` for ``channel`` (sent as given) and return its id.

        Raises:
            InvalidChannelError: ``channel`` is not a valid subscription channel.
            LocalProtocolError: bad or duplicate ``id``, or the connection is not usable.
        """
        self._check_send("subscribe")
        parse_subscribe_channel(channel)
        id = self._new_id(id)
        frame = codec.encode(Subscribe(id=id, channel=channel, authorization=authorization))
        self._pending[id] = _Pending(OperationKind.SUBSCRIBE, channel)
        self._out.append(frame)
        return id

    def send_publish(
        self,
        channel: str,
        events: Sequence[str],
        authorization: Mapping[str, str] | None,
        id: str | None = None,
    ) -> str:
        """Queue ``publish`` of ``events`` (JSON texts, sent as given) and return its id.

        Raises:
            InvalidChannelError: ``channel`` is not a valid publish channel.
            ConfigurationError: no events, too many, one is not a str of valid JSON or is
                too large, or the frame would exceed the request size limit.
            LocalProtocolError: bad or duplicate ``id``, or the connection is not usable.
        """
        self._check_send("publish")
        parse_channel(channel)
        texts = self.check_events(events)
        id = self._new_id(id)
        frame = codec.encode(
            Publish(id=id, channel=channel, events=texts, authorization=authorization)
        )
        size = len(frame.encode("utf-8"))
        if size > self.max_request_bytes:
            raise ConfigurationError(
                f"the publish frame is {size} bytes, over the {self.max_request_bytes}-byte "
                "request limit; publish fewer events per call"
            )
        self._pending[id] = _Pending(OperationKind.PUBLISH, channel)
        self._out.append(frame)
        return id

    def check_events(self, events: Sequence[str]) -> tuple[str, ...]:
        """Validate publish ``events`` (JSON texts) against the limits and return them.

        Raises:
            ConfigurationError: naming the first problem.
        """
        if isinstance(events, str | bytes):
            raise ConfigurationError("events must be a sequence of JSON texts, not one string")
        texts = tuple(events)
        if not texts:
            raise ConfigurationError("a publish needs at least one event")
        if len(texts) > self.max_events_per_publish:
            raise ConfigurationError(
                f"{len(texts)} events in one publish; at most {self.max_events_per_publish}"
            )
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise ConfigurationError(
                    f"event {index} must be a JSON text (str), not {type(text).__name__}"
                )
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > self.max_event_bytes:
                raise ConfigurationError(
                    f"event {index} is {size} bytes, over the {self.max_event_bytes}-byte limit"
                )
            reason = codec.event_json_error(text)  # the rule the server applies
            if reason is not None:
                raise ConfigurationError(f"event {index} is not valid JSON: {reason}")
        return texts

    def send_unsubscribe(self, id: str) -> None:
        """Queue ``unsubscribe`` for the active subscription ``id``.

        The subscription stays active (its ``data`` is still reported) until the answer.

        Raises:
            LocalProtocolError: ``id`` is not an active subscription, an unsubscribe is
                already pending for it, or the connection is not usable.
        """
        self._check_send("unsubscribe")
        if id not in self._active:
            raise LocalProtocolError(f"{id!r} is not an active subscription")
        if id in self._pending:
            raise LocalProtocolError(f"an unsubscribe of {id!r} is already pending")
        self._pending[id] = _Pending(OperationKind.UNSUBSCRIBE, self._active[id])
        self._out.append(codec.encode(Unsubscribe(id=id)))

    def abandon(self, id: str) -> None:
        """Forget the pending operation ``id`` (the caller stopped waiting for it).

        A late answer is then reported as :class:`FrameIgnored`.  A subscribe that still
        succeeds later is unsubscribed at once, so that the service does not keep a
        subscription nobody reads (an unsubscribe sent while the subscribe is pending
        would be dropped by the service, §3.2.3).  An abandoned unsubscribe drops the
        subscription locally.  Unknown ids are ignored.
        """
        pending = self._pending.pop(id, None)
        if pending is None:
            return
        if pending.kind is OperationKind.SUBSCRIBE:
            self._abandoned[id] = pending.channel
        elif pending.kind is OperationKind.UNSUBSCRIBE:
            self._active.pop(id, None)

    # --- receiving -------------------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """Process one text frame from the service; never raises on bad input."""
        if self.state is ClientState.OPEN:
            # Hot path: ``data`` on an open connection, parsed once, no message object.
            # Same outcome as the general path below (which handles everything else).
            parsed = codec.parse_data_frame(text)
            if parsed is not None:
                id, event = parsed
                channel = self._active.get(id)
                if channel is not None:
                    # What Message(event, id, channel) does, minus a Python-level __new__.
                    self._events.append(_new_tuple(Message, (event, id, channel)))
                else:
                    self._ignore("data", id, "data for an unknown subscription")
                return
        if self.state in (ClientState.FAILED, ClientState.CLOSED):
            self._ignore(None, None, f"connection is {self.state.value}")
            return
        try:
            message = codec.decode_server(text)
        except RemoteProtocolError as exc:
            if exc.frame_type is not None and exc.frame_type not in _SERVER_TYPES:
                self._ignore(exc.frame_type, exc.id, "unknown frame type")
            else:
                self._fail(exc)
            return
        next_state = _RECEIVE[(self.state, message.TYPE)]
        self._dispatch(message)  # handlers see the prior state and may fail the connection
        if self.failure is None:
            self.state = next_state

    def receive_binary(self, data: bytes) -> None:
        """Process a binary frame: AppSync sends text only, so the connection fails."""
        if self.state in (ClientState.FAILED, ClientState.CLOSED):
            self._ignore(None, None, f"connection is {self.state.value}")
            return
        self._fail(RemoteProtocolError(f"unexpected binary frame of {len(data)} bytes"))

    def receive_eof(self) -> None:
        """Process the end of the stream: ``CLOSED`` unless already ``FAILED``."""
        if self.state is not ClientState.FAILED:
            self.state = ClientState.CLOSED

    def _dispatch(self, message: ServerMessage) -> None:
        match message:
            case Data(id=id, event=event):
                if id in self._active:
                    self._events.append(Message(event, id, self._active[id]))
                else:
                    self._ignore(message.TYPE, id, "data for an unknown subscription")
            case KeepAlive():
                self._events.append(KeepAliveReceived())
            case ConnectionAck(connection_timeout_ms=ms):
                self._on_ack(ms)
            case ConnectionErrorMessage(errors=errors):
                handshake = self.state is ClientState.CONNECTING
                self._fail(connection_error(errors, handshake=handshake))
            case SubscribeSuccess(id=id):
                self._on_subscribe_success(id)
            case UnsubscribeSuccess(id=id):
                pending = self._take(id, OperationKind.UNSUBSCRIBE, message.TYPE)
                if pending is not None:
                    del self._active[id]
                    self._events.append(UnsubscribeAccepted(id=id, channel=pending.channel))
            case PublishSuccess(id=id, successful=successful, failed=failed):
                pending = self._take(id, OperationKind.PUBLISH, message.TYPE)
                if pending is not None:
                    self._events.append(
                        PublishAccepted(
                            id=id, channel=pending.channel, successful=successful, failed=failed
                        )
                    )
            case (
                SubscribeErrorMessage(id=id, errors=errors)
                | UnsubscribeErrorMessage(id=id, errors=errors)
                | PublishErrorMessage(id=id, errors=errors)
            ):
                pending = self._take(id, _KIND_OF_ERROR[message.TYPE], message.TYPE)
                if pending is not None:
                    self._reject(id, pending, errors)
            case BroadcastErrorMessage(id=id, errors=errors):
                self._on_broadcast_error(id, errors, message.TYPE)
            case ErrorMessage(id=id, errors=errors):
                self._on_error(id, errors)
            case _:  # pragma: no cover - exhaustive
                assert_never(message)

    def _on_ack(self, ms: int | None) -> None:
        if self._acked:
            # A second ack is harmless, so it is ignored (§3.3.1: never sent twice).
            self._ignore("connection_ack", None, "unexpected second connection_ack")
            return
        self._acked = True
        # A missing or non-positive timeout is treated as absent: the shell's default applies.
        self.connection_timeout_ms = ms if ms is not None and ms > 0 else None
        self._events.append(ConnectionAccepted(connection_timeout_ms=self.connection_timeout_ms))

    def _on_subscribe_success(self, id: str) -> None:
        channel = self._abandoned.pop(id, None)
        if channel is not None:
            # Nobody reads this subscription: end it at once, without reporting its events.
            self._pending[id] = _Pending(OperationKind.UNSUBSCRIBE, channel)
            self._internal.add(id)
            self._out.append(codec.encode(Unsubscribe(id=id)))
            self._ignore("subscribe_success", id, "late answer to an abandoned subscribe")
            return
        pending = self._take(id, OperationKind.SUBSCRIBE, "subscribe_success")
        if pending is not None:
            self._active[id] = pending.channel
            self._events.append(SubscribeAccepted(id=id, channel=pending.channel))

    def _on_broadcast_error(self, id: str, errors: tuple[ErrorDetail, ...], type: str) -> None:
        if id in self._active:
            self._events.append(BroadcastFailed(id=id, channel=self._active[id], errors=errors))
        else:
            self._ignore(type, id, "broadcast_error for an unknown subscription")

    def _on_error(self, id: str | None, errors: tuple[ErrorDetail, ...]) -> None:
        if id is None:
            if not self._pending:
                handshake = self.state is ClientState.CONNECTING
                self._fail(connection_error(errors, handshake=handshake))
                return
            id = next(iter(self._pending))  # the oldest pending operation
        pending = self._pending.pop(id, None)
        if pending is not None:
            if id in self._internal:
                self._internal.discard(id)
                self._ignore("error", id, "answer to an internal unsubscribe")
                return
            self._reject(id, pending, errors)
        elif id in self._active:
            self._on_broadcast_error(id, errors, "error")
        else:
            self._ignore("error", id, "error for an unknown operation")

    def _take(self, id: str, kind: OperationKind, frame_type: str) -> _Pending | None:
        """Pop the pending operation ``id`` of ``kind``; report the frame ignored if none."""
        pending = self._pending.get(id)
        if pending is None or pending.kind is not kind:
            self._ignore(frame_type, id, f"no pending {kind.value} with this id")
            return None
        del self._pending[id]
        if id in self._internal:
            self._internal.discard(id)
            self._ignore(frame_type, id, "answer to an internal unsubscribe")
            return None
        return pending

    def _reject(self, id: str, pending: _Pending, errors: tuple[ErrorDetail, ...]) -> None:
        channel = pending.channel
        match pending.kind:
            case OperationKind.SUBSCRIBE:
                self._events.append(SubscribeRejected(id=id, channel=channel, errors=errors))
            case OperationKind.PUBLISH:
                self._events.append(PublishRejected(id=id, channel=channel, errors=errors))
            case OperationKind.UNSUBSCRIBE:
                # The service does not know the subscription (or refused to end it); either
                # way the client stops routing its events.
                self._active.pop(id, None)
                self._events.append(UnsubscribeRejected(id=id, channel=channel, errors=errors))
            case _:  # pragma: no cover - exhaustive
                assert_never(pending.kind)

    def _ignore(self, frame_type: str | None, id: str | None, reason: str) -> None:
        self._events.append(FrameIgnored(frame_type=frame_type, id=id, reason=reason))

    def _fail(self, error: AppSyncEventsError) -> None:
        self.state = ClientState.FAILED
        self.failure = error
        self._events.append(ConnectionFailed(error=error))


_KIND_OF_ERROR: Final[Mapping[str, OperationKind]] = {
    "subscribe_error": OperationKind.SUBSCRIBE,
    "unsubscribe_error": OperationKind.UNSUBSCRIBE,
    "publish_error": OperationKind.PUBLISH,
}
