"""Sans-I/O server side of the AppSync Events WebSocket protocol (PROTOCOL.md §2.3-§4).

One :class:`ServerProtocol` per WebSocket connection.  The emulator's aiohttp shell feeds
it every inbound frame (:meth:`~ServerProtocol.receive_text`,
:meth:`~ServerProtocol.receive_binary`, :meth:`~ServerProtocol.receive_eof`), acts on
:meth:`~ServerProtocol.events_received` (authorize, run handlers, fan out), tells it what it
decided (``send_connection_ack``, ``accept_subscribe``, ``reject_publish``, ``send_data``…)
and writes :meth:`~ServerProtocol.data_to_send` to the socket.  The core has no clock and
does no I/O: keep-alive timing, authorization and handlers are the shell's.

Theory of operation
-------------------

The connection moves through these phases (``_Phase``)::

    READY ───connection_init───▶ INIT_RECEIVED ───send_connection_ack()───▶ ACKED
    UNAUTHORIZED ───any frame───▶ CLOSING ◀───fail_connection()─── any open phase
    any phase ───receive_eof()───▶ CLOSED

* ``READY``: the socket is open and no ``connection_init`` has arrived.  ``subscribe``,
  ``unsubscribe`` and ``publish`` are served without one (§3.2.1: init is optional).
* ``UNAUTHORIZED``: like ``READY`` but connection auth failed at the upgrade; the first
  frame of any kind is answered with ``connection_error`` and the connection closes
  (EMULATOR-CHOICE §2.3).
* ``INIT_RECEIVED``: ``connection_init`` arrived and the ack has not been sent.  Nothing may
  precede ``connection_ack`` (§3.3.1), so every frame queued meanwhile (errors for
  pipelined frames, ``subscribe_success``…) is *held* and released right after the ack.
* ``ACKED``: the ack went out; a second ``connection_init`` is ignored (EMULATOR-CHOICE
  §3.2.1).
* ``CLOSING``: ``connection_error`` was queued and :attr:`ServerProtocol.close_expected`
  is set; inbound frames are ignored and later decisions are discarded.
* ``CLOSED``: the peer is gone; output is discarded.

Inbound frames are classified into a *kind* (the client ``type``, ``"invalid"`` for a frame
that cannot be decoded or is too large, ``"binary"``), and ``_TRANSITIONS[(phase, kind)]``
gives the action and the next phase.  A missing key (only ``CLOSED``) is shell misuse and
raises :class:`~appsync_events.errors.LocalProtocolError`.

Subscriptions go ``pending`` (a ``SubscribeRequested`` event, waiting for the shell's
decision) → ``active`` (``accept_subscribe``; listed in :attr:`ServerProtocol.subscriptions`)
→ gone (``unsubscribe_success``).  Publishes go ``pending`` → answered.  Bad peer input
never raises: the core answers it with the exact AppSync error frame and reports a
:class:`Rejected` event.  Misuse by the shell raises ``LocalProtocolError`` at once.
"""

from __future__ import annotations

import enum
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, assert_never

from ..errors import ErrorDetail, InvalidChannelError, LocalProtocolError, RemoteProtocolError
from . import codec
from .channels import Channel, parse_channel, parse_subscribe_channel
from .limits import (
    DEFAULT_CONNECTION_TIMEOUT_MS,
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_PUBLISH,
    MAX_REQUEST_BYTES,
    MAX_SUBSCRIPTIONS_PER_CONNECTION,
    is_valid_id,
)
from .messages import (
    BroadcastError,
    ClientMessage,
    ConnectionAck,
    ConnectionErrorMessage,
    ConnectionInit,
    Data,
    ErrorMessage,
    FailedEvent,
    KeepAlive,
    Publish,
    PublishedEvent,
    PublishError,
    PublishSuccess,
    ServerMessage,
    Subscribe,
    SubscribeError,
    SubscribeSuccess,
    Unsubscribe,
    UnsubscribeError,
    UnsubscribeSuccess,
)

__all__ = [
    "BAD_REQUEST",
    "BINARY_FRAME",
    "CONNECTION_UNAUTHORIZED",
    "DUPLICATE_SUBSCRIPTION",
    "INVALID_ID",
    "LIMIT_EXCEEDED",
    "NO_EVENTS",
    "UNSUPPORTED_OPERATION",
    "InitReceived",
    "PublishRequested",
    "Rejected",
    "ServerEvent",
    "ServerProtocol",
    "ServerState",
    "SubscribeRequested",
    "Unsubscribed",
    "check_events",
    "check_publish",
    "check_request_size",
    "check_subscribe",
    "event_too_large",
    "invalid_channel",
    "invalid_event_json",
    "invalid_message",
    "request_too_large",
    "subscription_limit",
    "too_many_events",
    "unknown_namespace",
    "unknown_operation",
    "size_over",
    "utf8_length",
]


# --- the error catalogue (PROTOCOL.md §3.4) ----------------------------------------------

BAD_REQUEST: Final = "BadRequestException"
"""errorType of malformed requests (Amplify treats it as non-retryable, §3.3.3)."""
LIMIT_EXCEEDED: Final = "LimitExceededException"
"""errorType of quota breaches (EMULATOR-CHOICE §7.3)."""

CONNECTION_UNAUTHORIZED: Final = ErrorDetail(
    error_type="UnauthorizedException",
    message="You are not authorized to make this call.",
    error_code=401,
)
"""``connection_error`` for bad connection auth (§2.3, observed on AWS)."""

UNSUPPORTED_OPERATION: Final = ErrorDetail(
    error_type="UnsupportedOperation",
    message="Operation not supported through the realtime channel",
)
"""``error`` for an unknown or missing ``type`` (EMULATOR-CHOICE §3.3.11)."""

DUPLICATE_SUBSCRIPTION: Final = ErrorDetail(
    error_type="DuplicatedOperationError", message="Duplicate subscription ID"
)
"""``subscribe_error`` for an id already pending or active (EMULATOR-CHOICE §3.2.2)."""

# EMULATOR-CHOICE §3.1: AWS's answer to a binary frame is unknown; we answer ``error``.
BINARY_FRAME: Final = ErrorDetail(
    error_type=BAD_REQUEST,
    message="Binary frames are not supported: send each message as one JSON text frame",
)
"""``error`` for a binary frame (EMULATOR-CHOICE §3.1)."""

# EMULATOR-CHOICE §3.1 / §11 item 7: the error for an id outside ID_PATTERN is unknown.
INVALID_ID: Final = ErrorDetail(
    error_type=BAD_REQUEST,
    message="Invalid operation id: it must be 1 to 128 characters of [a-zA-Z0-9-_+]",
)
"""``subscribe_error``/``publish_error`` for an id that breaks ``ID_PATTERN``."""

# EMULATOR-CHOICE §7.3 / §11 item 7: zero events is a malformed request, not a quota breach.
NO_EVENTS: Final = ErrorDetail(
    error_type=BAD_REQUEST, message="Invalid publish: 'events' must hold at least 1 event"
)
"""``publish_error`` for an empty ``events`` array."""


def unknown_operation(id: str) -> ErrorDetail:
    """``unsubscribe_error`` for an id that is not subscribed (§3.3.8, documented)."""
    return ErrorDetail(error_type="UnknownOperationError", message=f"Unknown operation id {id}")


def invalid_message(reason: str) -> ErrorDetail:
    """A frame that is not valid JSON, not an object, or has a field of the wrong type.

    EMULATOR-CHOICE §3.3.11: ``BadRequestException``; ``reason`` is the codec's
    explanation, e.g. ``invalid JSON: Expecting value: line 1 column 1 (char 0)``.
    """
    return ErrorDetail(error_type=BAD_REQUEST, message=f"Invalid message: {reason}")


def invalid_channel(rule: str) -> ErrorDetail:
    """A channel that breaks §7.1, with the broken rule appended.

    EMULATOR-CHOICE §3.4/§7.1: ``BadRequestException`` ``Invalid Channel Format`` (the text
    of a third-party fixture), then ``: <rule>``.
    """
    return ErrorDetail(error_type=BAD_REQUEST, message=f"Invalid Channel Format: {rule}")


def unknown_namespace(namespace: str) -> ErrorDetail:
    """A channel whose first segment names no defined namespace (§7.1).

    EMULATOR-CHOICE §3.4/§11 item 7: ``BadRequestException`` (non-retryable for Amplify,
    which is right: retrying cannot create the namespace).
    """
    return ErrorDetail(
        error_type=BAD_REQUEST, message=f"Invalid Channel Format: namespace not found: {namespace}"
    )


def subscription_limit(limit: int) -> ErrorDetail:
    """``subscribe_error`` beyond the per-connection subscription quota (EMULATOR-CHOICE §7.3)."""
    return ErrorDetail(
        error_type=LIMIT_EXCEEDED,
        message=f"Subscription limit exceeded: at most {limit} subscriptions per connection",
    )


def too_many_events(count: int, limit: int) -> ErrorDetail:
    """``publish_error`` for more than ``limit`` events (EMULATOR-CHOICE §7.3)."""
    return ErrorDetail(
        error_type=LIMIT_EXCEEDED,
        message=f"Too many events: {count} in one publish (at most {limit})",
    )


def invalid_event_json(index: int, reason: str) -> ErrorDetail:
    """``publish_error`` for an event that is not JSON text (EMULATOR-CHOICE §7.2)."""
    return ErrorDetail(
        error_type=BAD_REQUEST, message=f"Invalid event at index {index}: not valid JSON: {reason}"
    )


def event_too_large(index: int, size: int, limit: int) -> ErrorDetail:
    """``publish_error`` for an event over ``limit`` UTF-8 bytes (§7.2, §7.3).

    The errorType and the wording follow the observed ``failed[]`` entry
    (``EventTooLargeException`` / ``… is larger than 240KB``).
    """
    return ErrorDetail(
        error_type="EventTooLargeException",
        message=f"Event at index {index} is larger than {_kb(limit)} ({size} bytes)",
    )


def request_too_large(size: int, limit: int) -> ErrorDetail:
    """A frame or HTTP body over ``limit`` UTF-8 bytes (EMULATOR-CHOICE §7.3)."""
    return ErrorDetail(
        error_type=LIMIT_EXCEEDED,
        message=f"Request is larger than {_kb(limit)} ({size} bytes)",
    )


def _kb(limit: int) -> str:
    return f"{limit // 1024}KB" if limit % 1024 == 0 else f"{limit} bytes"


# --- pure validators, shared with the emulator's HTTP publish path -----------------------


def utf8_length(text: str) -> int:
    """Return the length of ``text`` in UTF-8 bytes (a lone surrogate counts 3)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def size_over(text: str, limit: int) -> int | None:
    """Return ``text``'s UTF-8 size when it is over ``limit`` bytes, else ``None``."""
    # A string of n code points takes n to 4n bytes: short strings need no encoding.
    if 4 * len(text) <= limit:
        return None
    size = utf8_length(text)
    return size if size > limit else None


def check_request_size(text: str, limit: int) -> ErrorDetail | None:
    """Return :func:`request_too_large` if ``text`` is over ``limit`` UTF-8 bytes."""
    size = size_over(text, limit)
    return None if size is None else request_too_large(size, limit)


def check_events(
    events: Sequence[str],
    *,
    max_events: int = MAX_EVENTS_PER_PUBLISH,
    max_event_bytes: int | None = MAX_EVENT_BYTES,
) -> ErrorDetail | None:
    """Validate a publish's ``events`` (§3.2.4, §7.2, §7.3); ``None`` when they are fine.

    Checks, in order: the count (1..``max_events``), then for each event in index order
    its UTF-8 size (skipped when ``max_event_bytes`` is ``None``) and that it parses as
    JSON.  An oversized event is never parsed.
    """
    if not events:
        return NO_EVENTS
    if len(events) > max_events:
        return too_many_events(len(events), max_events)
    for index, event in enumerate(events):
        if max_event_bytes is not None and (size := size_over(event, max_event_bytes)):
            return event_too_large(index, size, max_event_bytes)
        reason = codec.event_json_error(event)
        if reason is not None:
            return invalid_event_json(index, reason)
    return None


def _check_namespace(
    channel: Channel, namespace_exists: Callable[[str], bool] | None
) -> ErrorDetail | None:
    if namespace_exists is not None and not namespace_exists(channel.namespace):
        return unknown_namespace(channel.namespace)
    return None


def check_subscribe(
    channel: str, *, namespace_exists: Callable[[str], bool] | None = None
) -> Channel | ErrorDetail:
    """Parse a subscription pattern and check its namespace (§7.1).

    Returns:
        The parsed pattern, or the error to answer with.
    """
    try:
        parsed = parse_subscribe_channel(channel)
    except InvalidChannelError as exc:
        return invalid_channel(exc.rule)
    return _check_namespace(parsed, namespace_exists) or parsed


def check_publish(
    channel: str,
    events: Sequence[str],
    *,
    namespace_exists: Callable[[str], bool] | None = None,
    max_events: int = MAX_EVENTS_PER_PUBLISH,
    max_event_bytes: int | None = MAX_EVENT_BYTES,
) -> Channel | ErrorDetail:
    """Validate a publish target and its events: channel syntax, namespace, events.

    Returns:
        The parsed channel, or the first error found (see :func:`check_events`).
    """
    try:
        parsed = parse_channel(channel)
    except InvalidChannelError as exc:
        return invalid_channel(exc.rule)
    return (
        _check_namespace(parsed, namespace_exists)
        or check_events(events, max_events=max_events, max_event_bytes=max_event_bytes)
        or parsed
    )


# --- events reported to the shell ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InitReceived:
    """The first ``connection_init``; the shell answers with ``send_connection_ack()``
    (or ``fail_connection()``).  A second one is ignored (EMULATOR-CHOICE §3.2.1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeRequested:
    """A valid ``subscribe``; the shell authorizes it and calls ``accept_subscribe(id)``
    or ``reject_subscribe(id, errors)``."""

    id: str
    channel: Channel
    """The parsed pattern (may be a wildcard); the original text is ``message.channel``."""
    message: Subscribe


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishRequested:
    """A valid ``publish``: 1..max events, each JSON text within the size limit.  The shell
    authorizes it, runs ``onPublish`` and calls ``accept_publish`` or ``reject_publish``."""

    id: str
    channel: Channel
    message: Publish


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribed:
    """``unsubscribe_success`` was queued; the subscription is gone (remove it from the
    broker).  No ``data`` will be sent for ``id`` any more."""

    id: str
    channel: Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """The core answered a frame with an error by itself (for the recorder)."""

    frame_type: str | None
    """The inbound frame's ``type`` when it could be read (``None`` for binary frames)."""
    id: str | None
    errors: tuple[ErrorDetail, ...]


ServerEvent = InitReceived | SubscribeRequested | PublishRequested | Unsubscribed | Rejected


# --- the state machine --------------------------------------------------------------------


class ServerState(enum.Enum):
    """Public connection state."""

    OPEN = "open"
    CLOSING = "closing"
    """``connection_error`` was sent; the shell must close (:attr:`close_expected`)."""
    CLOSED = "closed"
    """The peer is gone (:meth:`ServerProtocol.receive_eof`)."""


class _Phase(enum.Enum):
    READY = enum.auto()
    UNAUTHORIZED = enum.auto()
    INIT_RECEIVED = enum.auto()
    ACKED = enum.auto()
    CLOSING = enum.auto()
    CLOSED = enum.auto()


class _Action(enum.Enum):
    INIT = enum.auto()  # report InitReceived
    IGNORE = enum.auto()  # drop the frame silently
    OPERATION = enum.auto()  # subscribe / unsubscribe / publish
    REJECT = enum.auto()  # answer the undecodable frame with its error
    REFUSE = enum.auto()  # connection_error, then close


_INIT = "connection_init"
_OPS = ("subscribe", "unsubscribe", "publish")
_INVALID = "invalid"
_BINARY = "binary"

# Theory of operation (see the module docstring): every inbound frame is reduced to a kind,
# and (phase, kind) -> (action, next phase) is the whole connection-level state machine.
# Per-operation bookkeeping (pending/active subscriptions, pending publishes) lives in the
# ServerProtocol methods that the OPERATION action dispatches to.
_TRANSITIONS: Final[dict[tuple[_Phase, str], tuple[_Action, _Phase]]] = {
    (_Phase.READY, _INIT): (_Action.INIT, _Phase.INIT_RECEIVED),
    **{(_Phase.READY, op): (_Action.OPERATION, _Phase.READY) for op in _OPS},
    (_Phase.READY, _INVALID): (_Action.REJECT, _Phase.READY),
    (_Phase.READY, _BINARY): (_Action.REJECT, _Phase.READY),
    # EMULATOR-CHOICE §2.3: connection auth failed at the upgrade -> the first frame of
    # any kind gets connection_error, then the connection closes.
    **{
        (_Phase.UNAUTHORIZED, kind): (_Action.REFUSE, _Phase.CLOSING)
        for kind in (_INIT, *_OPS, _INVALID, _BINARY)
    },
    # EMULATOR-CHOICE §3.2.1: a second connection_init is ignored (never a second ack).
    (_Phase.INIT_RECEIVED, _INIT): (_Action.IGNORE, _Phase.INIT_RECEIVED),
    **{(_Phase.INIT_RECEIVED, op): (_Action.OPERATION, _Phase.INIT_RECEIVED) for op in _OPS},
    (_Phase.INIT_RECEIVED, _INVALID): (_Action.REJECT, _Phase.INIT_RECEIVED),
    (_Phase.INIT_RECEIVED, _BINARY): (_Action.REJECT, _Phase.INIT_RECEIVED),
    (_Phase.ACKED, _INIT): (_Action.IGNORE, _Phase.ACKED),
    **{(_Phase.ACKED, op): (_Action.OPERATION, _Phase.ACKED) for op in _OPS},
    (_Phase.ACKED, _INVALID): (_Action.REJECT, _Phase.ACKED),
    (_Phase.ACKED, _BINARY): (_Action.REJECT, _Phase.ACKED),
    # After connection_error the shell is closing the socket: read and drop.
    **{
        (_Phase.CLOSING, kind): (_Action.IGNORE, _Phase.CLOSING)
        for kind in (_INIT, *_OPS, _INVALID, _BINARY)
    },
    # No key for CLOSED: receiving after receive_eof() is shell misuse.
}

_PUBLIC_STATE: Final = {
    _Phase.READY: ServerState.OPEN,
    _Phase.UNAUTHORIZED: ServerState.OPEN,
    _Phase.INIT_RECEIVED: ServerState.OPEN,
    _Phase.ACKED: ServerState.OPEN,
    _Phase.CLOSING: ServerState.CLOSING,
    _Phase.CLOSED: ServerState.CLOSED,
}

# EMULATOR-CHOICE §7.3: an over-limit frame is never JSON-parsed, yet the recommended
# answer to a big publish is publish_error for its id.  These bounded patterns sniff the
# type and id from the raw text; an escaped quote inside a JSON string (\") never matches.
_SNIFF_TYPE: Final = re.compile(r'"type"\s*:\s*"([a-z_]{1,32})"')
_SNIFF_ID: Final = re.compile(r'"id"\s*:\s*"([A-Za-z0-9_+\-]{1,128})"')


@dataclass(frozen=True, slots=True)
class _Bad:
    """An inbound frame the core answers by itself."""

    frame_type: str | None
    id: str | None
    error: ErrorDetail


def _error_reply(frame_type: str | None, id: str | None, error: ErrorDetail) -> ServerMessage:
    """The frame answering a bad request: the operation's own error frame when its type and
    id are known, else the generic ``error`` (§3.3.11)."""
    errors = (error,)
    match frame_type, id:
        case "subscribe", str() as known:
            return SubscribeError(id=known, errors=errors)
        case "publish", str() as known:
            return PublishError(id=known, errors=errors)
        case "unsubscribe", str() as known:
            return UnsubscribeError(id=known, errors=errors)
        case _:
            return ErrorMessage(errors=errors)


def _classify_undecodable(text: str, exc: RemoteProtocolError) -> _Bad:
    if exc.frame_type is not None and exc.frame_type not in (_INIT, *_OPS):
        # EMULATOR-CHOICE §3.3.11: an unknown type gets exactly this frame, without id.
        return _Bad(exc.frame_type, None, UNSUPPORTED_OPERATION)
    if exc.frame_type is None:
        # Either not a JSON object (BadRequestException) or an object without a string
        # "type" (UnsupportedOperation).  This path is rare: parse again to tell them apart.
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            return _Bad(None, None, UNSUPPORTED_OPERATION)
    return _Bad(exc.frame_type, exc.id, invalid_message(exc.reason))


class ServerProtocol:
    """Sans-I/O state machine of one server-side WebSocket connection.

    Args:
        connection_timeout_ms: ``connectionTimeoutMs`` of the ``connection_ack`` (§3.3.1).
        max_events_per_publish: events per publish (§7.3).
        max_event_bytes: UTF-8 bytes of one event (§7.2); ``None`` skips the check so the
            shell can report oversized events in ``failed[]`` instead (§7.2, observed).
        max_request_bytes: UTF-8 bytes of one inbound frame (§7.3).
        max_subscriptions: pending plus active subscriptions per connection (§7.3).
        namespace_exists: whether a namespace is defined; ``None`` accepts every one.
        connection_authorized: ``False`` when connection auth failed at the upgrade: the
            first frame is then answered with ``connection_error`` (§2.3).
    """

    def __init__(
        self,
        *,
        connection_timeout_ms: int = DEFAULT_CONNECTION_TIMEOUT_MS,
        max_events_per_publish: int = MAX_EVENTS_PER_PUBLISH,
        max_event_bytes: int | None = MAX_EVENT_BYTES,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_subscriptions: int = MAX_SUBSCRIPTIONS_PER_CONNECTION,
        namespace_exists: Callable[[str], bool] | None = None,
        connection_authorized: bool = True,
    ) -> None:
        self.connection_timeout_ms = connection_timeout_ms
        self.max_events_per_publish = max_events_per_publish
        self.max_event_bytes = max_event_bytes
        self.max_request_bytes = max_request_bytes
        self.max_subscriptions = max_subscriptions
        self.namespace_exists = namespace_exists
        self._phase = _Phase.READY if connection_authorized else _Phase.UNAUTHORIZED
        self._init_received = False
        self._acked = False
        self._close_expected: tuple[int, str] | None = None
        self._events: list[ServerEvent] = []
        self._output: list[str] = []
        self._held: list[str] = []
        self._pending_subscribes: dict[str, Channel] = {}
        self._active: dict[str, Channel] = {}
        self._pending_publishes: Counter[str] = Counter()

    # --- state ------------------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        """``OPEN``, ``CLOSING`` (after ``connection_error``) or ``CLOSED`` (after EOF)."""
        return _PUBLIC_STATE[self._phase]

    @property
    def close_expected(self) -> tuple[int, str] | None:
        """``(code, reason)`` once the shell must close the socket, else ``None``.

        EMULATOR-CHOICE §2.3/§3.5: ``(1000, "")`` right after ``connection_error``.
        """
        return self._close_expected

    @property
    def init_received(self) -> bool:
        """Whether a ``connection_init`` was accepted (not refused)."""
        return self._init_received

    @property
    def acknowledged(self) -> bool:
        """Whether ``connection_ack`` was sent."""
        return self._acked

    @property
    def subscriptions(self) -> Mapping[str, Channel]:
        """Active (acknowledged, not unsubscribed) subscriptions by id, oldest first."""
        return MappingProxyType(self._active)

    @property
    def pending_subscriptions(self) -> Mapping[str, Channel]:
        """Subscriptions waiting for ``accept_subscribe``/``reject_subscribe``."""
        return MappingProxyType(self._pending_subscribes)

    # --- input --------------------------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """Process one inbound text frame.  Never raises on bad peer input.

        Raises:
            LocalProtocolError: called after :meth:`receive_eof`.
        """
        inbound = self._decode(text)
        kind = inbound.TYPE if not isinstance(inbound, _Bad) else _INVALID
        self._dispatch(kind, inbound)

    def receive_binary(self, data: bytes) -> None:
        """Process one inbound binary frame: answered with ``error`` (EMULATOR-CHOICE §3.1).

        Raises:
            LocalProtocolError: called after :meth:`receive_eof`.
        """
        self._dispatch(_BINARY, _Bad(None, None, BINARY_FRAME))

    def receive_eof(self) -> None:
        """The peer closed or the transport dropped.  Idempotent.

        Queued output is discarded (it can no longer be delivered) and so is every later
        decision.  :attr:`subscriptions` keeps what was active, for the record.
        """
        self._phase = _Phase.CLOSED
        self._output.clear()
        self._held.clear()

    def _decode(self, text: str) -> ClientMessage | _Bad:
        too_large = check_request_size(text, self.max_request_bytes)
        if too_large is not None:
            type_match = _SNIFF_TYPE.search(text)
            id_match = _SNIFF_ID.search(text)
            return _Bad(
                type_match.group(1) if type_match else None,
                id_match.group(1) if id_match else None,
                too_large,
            )
        try:
            return codec.decode_client(text)
        except RemoteProtocolError as exc:
            return _classify_undecodable(text, exc)

    def _dispatch(self, kind: str, inbound: ClientMessage | _Bad) -> None:
        try:
            action, self._phase = _TRANSITIONS[(self._phase, kind)]
        except KeyError:
            raise LocalProtocolError(
                f"cannot receive a {kind} frame in phase {self._phase.name}"
                " (the connection saw EOF)"
            ) from None
        match action, inbound:
            case _Action.INIT, _:
                self._init_received = True
                self._events.append(InitReceived())
            case _Action.IGNORE, _:
                pass
            case _Action.OPERATION, Subscribe():
                self._on_subscribe(inbound)
            case _Action.OPERATION, Unsubscribe():
                self._on_unsubscribe(inbound)
            case _Action.OPERATION, Publish():
                self._on_publish(inbound)
            case _Action.REJECT, _Bad(frame_type=frame_type, id=id, error=error):
                self._reject(frame_type, id, error)
            case _Action.REFUSE, _Bad(frame_type=frame_type, id=id):
                self._refuse(frame_type, id)
            case _Action.REFUSE, ConnectionInit():
                self._refuse(inbound.TYPE, None)
            case _Action.REFUSE, Subscribe() | Unsubscribe() | Publish():
                self._refuse(inbound.TYPE, inbound.id)
            case _:  # pragma: no cover - the table only pairs these
                raise AssertionError(f"no handler for {action} with {inbound!r}")

    def _refuse(self, frame_type: str | None, id: str | None) -> None:
        errors = (CONNECTION_UNAUTHORIZED,)
        self._events.append(Rejected(frame_type=frame_type, id=id, errors=errors))
        self._send_connection_error(errors)

    def _reject(self, frame_type: str | None, id: str | None, error: ErrorDetail) -> None:
        self._events.append(Rejected(frame_type=frame_type, id=id, errors=(error,)))
        self._queue(_error_reply(frame_type, id, error))

    def _on_subscribe(self, message: Subscribe) -> None:
        checked = self._check_subscribe(message)
        if isinstance(checked, ErrorDetail):
            self._reject(message.TYPE, message.id, checked)
        else:
            self._pending_subscribes[message.id] = checked
            self._events.append(SubscribeRequested(id=message.id, channel=checked, message=message))

    def _check_subscribe(self, message: Subscribe) -> Channel | ErrorDetail:
        # Order: id syntax, duplicate id, channel syntax, namespace, subscription quota.
        if not is_valid_id(message.id):
            return INVALID_ID
        if message.id in self._pending_subscribes or message.id in self._active:
            return DUPLICATE_SUBSCRIPTION
        checked = check_subscribe(message.channel, namespace_exists=self.namespace_exists)
        if isinstance(checked, ErrorDetail):
            return checked
        if len(self._pending_subscribes) + len(self._active) >= self.max_subscriptions:
            return subscription_limit(self.max_subscriptions)
        return checked

    def _on_unsubscribe(self, message: Unsubscribe) -> None:
        id = message.id
        if id in self._pending_subscribes:
            return  # EMULATOR-CHOICE §3.2.3: dropped silently; the subscribe still completes.
        channel = self._active.pop(id, None)
        if channel is None:
            self._reject(message.TYPE, id, unknown_operation(id))
        else:
            self._queue(UnsubscribeSuccess(id=id))
            self._events.append(Unsubscribed(id=id, channel=channel))

    def _on_publish(self, message: Publish) -> None:
        # Order: (frame size, before parsing), id syntax, channel syntax, namespace, event
        # count, then each event's size and JSON validity.
        checked: Channel | ErrorDetail = INVALID_ID
        if is_valid_id(message.id):
            checked = check_publish(
                message.channel,
                message.events,
                namespace_exists=self.namespace_exists,
                max_events=self.max_events_per_publish,
                max_event_bytes=self.max_event_bytes,
            )
        if isinstance(checked, ErrorDetail):
            self._reject(message.TYPE, message.id, checked)
        else:
            self._pending_publishes[message.id] += 1
            self._events.append(PublishRequested(id=message.id, channel=checked, message=message))

    # --- output -------------------------------------------------------------------------------

    def events_received(self) -> list[ServerEvent]:
        """Return and clear the events the shell must act on, in arrival order."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[str]:
        """Return and clear the text frames to send, in order."""
        output, self._output = self._output, []
        return output

    def _queue(self, message: ServerMessage) -> None:
        match self._phase:
            case _Phase.CLOSING | _Phase.CLOSED:
                pass  # the peer will never read it
            case _Phase.INIT_RECEIVED:
                self._held.append(codec.encode(message))  # nothing may precede the ack
            case _Phase.READY | _Phase.UNAUTHORIZED | _Phase.ACKED:
                self._output.append(codec.encode(message))
            case _:  # pragma: no cover - exhaustive
                assert_never(self._phase)

    def _send_connection_error(self, errors: Sequence[ErrorDetail]) -> None:
        self._held.clear()
        self._output.append(codec.encode(ConnectionErrorMessage(errors=tuple(errors))))
        self._phase = _Phase.CLOSING
        self._close_expected = (1000, "")

    # --- decisions by the shell ------------------------------------------------------------

    def send_connection_ack(self, connection_timeout_ms: int | None = None) -> None:
        """Answer ``connection_init`` with ``connection_ack``, then release held frames.

        The shell should follow it with ``send_keepalive()`` at once (§3.3.2).

        Raises:
            LocalProtocolError: no ``connection_init`` was received, or the ack was sent
                already (EMULATOR-CHOICE §3.3.1: never unsolicited, never twice).
        """
        if not self._init_received:
            raise LocalProtocolError("connection_ack is only sent in reply to connection_init")
        if self._acked:
            raise LocalProtocolError("connection_ack was already sent")
        self._acked = True
        if self._phase is not _Phase.INIT_RECEIVED:
            return  # closing or closed: nobody to tell
        ms = self.connection_timeout_ms if connection_timeout_ms is None else connection_timeout_ms
        self._output.append(codec.encode(ConnectionAck(connection_timeout_ms=ms)))
        self._output.extend(self._held)
        self._held.clear()
        self._phase = _Phase.ACKED

    def send_keepalive(self) -> None:
        """Queue ``{"type":"ka"}`` (held until the ack while one is due)."""
        self._queue(KeepAlive())

    def fail_connection(self, errors: Sequence[ErrorDetail]) -> None:
        """Queue ``connection_error`` (dropping held frames) and expect a close ``(1000, "")``.

        A no-op once the connection is closing or closed.
        """
        if self._phase in (_Phase.CLOSING, _Phase.CLOSED):
            return
        self._send_connection_error(errors)

    def accept_subscribe(self, id: str) -> None:
        """Queue ``subscribe_success``; the subscription is active from now on.

        Raises:
            LocalProtocolError: ``id`` is not a pending subscription.
        """
        self._active[id] = self._take_pending_subscribe(id, "accept_subscribe")
        self._queue(SubscribeSuccess(id=id))

    def reject_subscribe(self, id: str, errors: Sequence[ErrorDetail]) -> None:
        """Queue ``subscribe_error``; the id is free again.

        Raises:
            LocalProtocolError: ``id`` is not a pending subscription.
        """
        self._take_pending_subscribe(id, "reject_subscribe")
        self._queue(SubscribeError(id=id, errors=tuple(errors)))

    def _take_pending_subscribe(self, id: str, what: str) -> Channel:
        try:
            return self._pending_subscribes.pop(id)
        except KeyError:
            raise LocalProtocolError(f"{what}({id!r}): no such pending subscription") from None

    def accept_publish(
        self, id: str, successful: Sequence[PublishedEvent], failed: Sequence[FailedEvent]
    ) -> None:
        """Queue ``publish_success`` (§3.3.9).

        Raises:
            LocalProtocolError: ``id`` is not a pending publish.
        """
        self._take_pending_publish(id, "accept_publish")
        self._queue(PublishSuccess(id=id, successful=tuple(successful), failed=tuple(failed)))

    def reject_publish(self, id: str, errors: Sequence[ErrorDetail]) -> None:
        """Queue ``publish_error`` (§3.3.10).

        Raises:
            LocalProtocolError: ``id`` is not a pending publish.
        """
        self._take_pending_publish(id, "reject_publish")
        self._queue(PublishError(id=id, errors=tuple(errors)))

    def _take_pending_publish(self, id: str, what: str) -> None:
        # A client may reuse a publish id while an earlier publish is pending; each
        # decision answers one of them.
        if self._pending_publishes[id] <= 0:
            raise LocalProtocolError(f"{what}({id!r}): no such pending publish")
        self._pending_publishes[id] -= 1
        if not self._pending_publishes[id]:
            del self._pending_publishes[id]

    def send_data(self, id: str, event: str) -> bool:
        """Queue ``data`` for active subscription ``id`` (§3.3.6).

        Returns:
            ``False``, sending nothing, when ``id`` is not an active subscription (never
            subscribed, not yet accepted, unsubscribed) or the connection is not open.
        """
        return self.send_events(id, (event,))

    def send_events(self, id: str, events: Sequence[str]) -> bool:
        """Queue one ``data`` frame per event, in order, for active subscription ``id``.

        The fan-out of one publish to one subscription; otherwise as :meth:`send_data`.
        """
        if id not in self._active or self.state is not ServerState.OPEN:
            return False
        if self._phase is _Phase.ACKED or self._phase is _Phase.READY:
            self._output.extend(codec.encode_data_frames(id, events))  # the fan-out fast path
        else:
            for event in events:
                self._queue(Data(id=id, event=event))
        return True

    def send_broadcast_error(self, id: str, errors: Sequence[ErrorDetail]) -> None:
        """Queue ``broadcast_error`` for active subscription ``id`` (§3.3.7).

        Raises:
            LocalProtocolError: ``id`` is not an active subscription.
        """
        if id not in self._active:
            raise LocalProtocolError(f"send_broadcast_error({id!r}): no such subscription")
        self._queue(BroadcastError(id=id, errors=tuple(errors)))

    def send_error(self, errors: Sequence[ErrorDetail], id: str | None = None) -> None:
        """Queue a generic ``error`` frame (§3.3.11), with ``id`` when given."""
        self._queue(ErrorMessage(id=id, errors=tuple(errors)))
