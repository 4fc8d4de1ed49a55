"""Sans-I/O server side of the AppSync Events WebSocket protocol.

One :class:`ServerProtocol` per WebSocket connection.  The emulator's aiohttp shell feeds
it every inbound frame (:meth:`~ServerProtocol.receive_text`,
:meth:`~ServerProtocol.receive_binary`, :meth:`~ServerProtocol.receive_eof`), acts on
:meth:`~ServerProtocol.events_received` (authorize, run handlers, apply faults, fan out),
tells it what it decided (``send_connection_ack``, ``accept_subscribe``,
``reject_publish``, ``send_events``...) and writes :meth:`~ServerProtocol.data_to_send`
to the socket.  The core has no clock and does no I/O: keep-alive timing, authorization,
handlers and faults are the shell's; every answer on the wire is the core's.

Theory of operation
-------------------

The connection moves through these phases (``_Phase``)::

    READY ───connection_init───▶ INIT_RECEIVED ───send_connection_ack()───▶ ACKED
    READY ───refuse_connection()───▶ UNAUTHORIZED ───any frame───▶ CLOSING
    any open phase ───fail_connection()───▶ CLOSING
    any phase ───receive_eof()───▶ CLOSED

* ``READY``: the socket is open and no ``connection_init`` has arrived.  ``subscribe``,
  ``unsubscribe`` and ``publish`` are served without one (AWS makes init optional).
* ``UNAUTHORIZED``: like ``READY`` but the connection is refused (its auth failed at the
  upgrade, or a fault refuses it): the first frame of any kind is answered with
  ``connection_error`` and the connection closes.
* ``INIT_RECEIVED``: ``connection_init`` arrived and the ack has not been sent.  Nothing may
  precede ``connection_ack``, so every frame queued meanwhile (errors for pipelined frames,
  ``subscribe_success``...) is *held* and released right after the ack.
* ``ACKED``: the ack went out; a second ``connection_init`` is ignored.
* ``CLOSING``: ``connection_error`` was queued and :attr:`ServerProtocol.close_expected`
  is set; inbound frames are ignored and later decisions are discarded.
* ``CLOSED``: the peer is gone; output is discarded.

Inbound frames are classified into a *kind* (the client ``type``, ``"invalid"`` for a frame
that cannot be decoded or is too large, ``"binary"``), and ``_TRANSITIONS[(phase, kind)]``
gives the action and the next phase.  A missing key (only ``CLOSED``) is shell misuse and
raises :class:`~appsync_events.errors.LocalProtocolError`.

Subscriptions go ``pending`` (a :class:`SubscribeRequested` event, waiting for the shell's
decision) → ``active`` (``accept_subscribe``; listed in :attr:`ServerProtocol.subscriptions`)
→ ``unsubscribing`` (an :class:`UnsubscribeRequested` event) → gone (``accept_unsubscribe``)
or active again (``reject_unsubscribe``).  Publishes go ``pending`` → answered.  Bad peer
input never raises: the core answers it with the exact AppSync error frame.  Every
rejection, whether the core, the shell or a fault decided it, is reported as a
:class:`Rejected` event.  Misuse by the shell raises ``LocalProtocolError`` at once.

Output is a list of :class:`~appsync_events.protocol.messages.Outgoing` frames; an error
frame is an :class:`ErrorFrame`, which also carries its ``errors``, so that a shell
records what it sends without decoding it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from types import MappingProxyType
from typing import Any, Final, assert_never

from appsync_events.errors import (
    ErrorDetail,
    LocalProtocolError,
    RemoteProtocolError,
)
from appsync_events.protocol import codec
from appsync_events.protocol.channels import Channel
from appsync_events.protocol.limits import (
    DEFAULT_CONNECTION_TIMEOUT_MS,
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_PUBLISH,
    MAX_REQUEST_BYTES,
    MAX_SUBSCRIPTIONS_PER_CONNECTION,
    is_valid_id,
)
from appsync_events.protocol.messages import (
    BroadcastError,
    ClientMessage,
    ConnectionAck,
    ConnectionErrorMessage,
    ConnectionInit,
    Data,
    ErrorMessage,
    FailedEvent,
    KeepAlive,
    Outgoing,
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

from ._fast import new_outgoing, new_publish, new_publish_success, published_events, setters
from .catalogue import (
    BINARY_FRAME,
    CONNECTION_UNAUTHORIZED,
    DUPLICATE_SUBSCRIPTION,
    INVALID_ID,
    UNSUPPORTED_OPERATION,
    invalid_message,
    subscription_limit,
    unknown_operation,
)
from .validation import check_publish, check_request_size, check_subscribe, orjson_loads

__all__ = [
    "ErrorFrame",
    "InitReceived",
    "PublishRequested",
    "Rejected",
    "ServerEvent",
    "ServerProtocol",
    "ServerState",
    "SubscribeRequested",
    "UnsubscribeRequested",
]


# --- output -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorFrame(Outgoing):
    """An outgoing error frame (``subscribe_error``, ``connection_error``, ``error``...),
    with the errors it carries, for the shell's error log."""

    errors: tuple[ErrorDetail, ...] = ()


# --- events reported to the shell ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InitReceived:
    """The first ``connection_init``; the shell answers with ``send_connection_ack()``
    (or ``fail_connection()``).  A second one is ignored."""


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
class UnsubscribeRequested:
    """An ``unsubscribe`` of an active subscription; the shell answers with
    ``accept_unsubscribe(id)`` (then removes it from the broker) or
    ``reject_unsubscribe(id, errors)``.  Data may still be sent for ``id`` until then."""

    id: str
    channel: Channel


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A frame was answered with an error, by the core itself or by a shell's decision."""

    frame_type: str | None
    """The inbound frame's ``type`` when it could be read (``None`` for binary frames)."""
    id: str | None
    errors: tuple[ErrorDetail, ...]


ServerEvent = InitReceived | SubscribeRequested | PublishRequested | UnsubscribeRequested | Rejected

_SET_PUBLISH_ID, _SET_PUBLISH_CHANNEL, _SET_PUBLISH_MESSAGE = setters(PublishRequested)


def _publish_requested(frame_id: str, channel: Channel, message: Publish) -> PublishRequested:
    # PublishRequested(id=..., channel=..., message=...), one per publish: its slots set
    # directly, which the frozen __init__ does through object.__setattr__ at twice the cost.
    event: PublishRequested = object.__new__(PublishRequested)
    _SET_PUBLISH_ID(event, frame_id)
    _SET_PUBLISH_CHANNEL(event, channel)
    _SET_PUBLISH_MESSAGE(event, message)
    return event


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

    # Members are singletons compared by identity: hash them by identity too, in C
    # (``Enum.__hash__`` is a Python call, and every frame looks a phase up).
    __hash__ = object.__hash__


class _Action(enum.Enum):
    INIT = enum.auto()  # report InitReceived
    IGNORE = enum.auto()  # drop the frame silently
    OPERATION = enum.auto()  # subscribe / unsubscribe / publish
    REJECT = enum.auto()  # answer the undecodable frame with its error
    REFUSE = enum.auto()  # connection_error, then close


_ID_LENGTH: Final = 128
"""The longest id :data:`~appsync_events.protocol.limits.ID_PATTERN` accepts."""

_INIT = "connection_init"
_OPS = ("subscribe", "unsubscribe", "publish")
_PUBLISH = "publish"
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
    # A refused connection: the first frame of any kind gets connection_error, then the
    # connection closes.
    **{
        (_Phase.UNAUTHORIZED, kind): (_Action.REFUSE, _Phase.CLOSING)
        for kind in (_INIT, *_OPS, _INVALID, _BINARY)
    },
    # A second connection_init is ignored (never a second ack).
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


@dataclass(frozen=True, slots=True)
class _Bad:
    """An inbound frame the core answers by itself."""

    frame_type: str | None
    frame_id: str | None
    error: ErrorDetail


def _error_reply(frame_type: str | None, frame_id: str | None, error: ErrorDetail) -> ServerMessage:
    """The frame answering a bad request: the operation's own error frame when its type and
    id are known, else the generic ``error``."""
    errors = (error,)
    match frame_type, frame_id:
        case "subscribe", str() as known:
            return SubscribeError(id=known, errors=errors)
        case "publish", str() as known:
            return PublishError(id=known, errors=errors)
        case "unsubscribe", str() as known:
            return UnsubscribeError(id=known, errors=errors)
        case _:
            return ErrorMessage(errors=errors)


def _undecodable(text: str, limit: int) -> _Bad | None:
    # An over-limit frame is never parsed, yet the useful answer to a big publish is
    # publish_error for its id: the codec sniffs the type and id from the raw text.
    too_large = check_request_size(text, limit)
    if too_large is not None:
        return _Bad(*codec.sniff_frame(text), too_large)
    return None


def _classify(text: str, frame_type: str | None, frame_id: str | None, reason: str) -> _Bad:
    if frame_type is not None and frame_type not in (_INIT, *_OPS):
        # An unknown type gets exactly this frame, without id (the emulator's choice).
        return _Bad(frame_type, None, UNSUPPORTED_OPERATION)
    if frame_type is None and codec.is_json_object(text):
        return _Bad(None, None, UNSUPPORTED_OPERATION)  # an object without a string "type"
    return _Bad(frame_type, frame_id, invalid_message(reason))


_FAST_LOADS: Callable[[str], Any] | None = orjson_loads()
"""The optional fast parser of :func:`_publish_frame` (``orjson.loads``)."""

_RAW_DECODE: Final = json.JSONDecoder().raw_decode

_PUBLISH_FIELDS: Final = frozenset(("type", "id", "channel", "events", "authorization"))


def _parse(text: str) -> Any:
    """The JSON value of ``text``, or ``None`` when it is not one the codec would return
    as it is: text either parser refuses, and, without ``orjson``, text with whitespace
    around the value (the codec's general path judges those)."""
    fast = _FAST_LOADS
    if fast is not None:
        try:
            return fast(text)
        except ValueError:
            return None
    try:
        value, end = _RAW_DECODE(text)
    except (ValueError, RecursionError):
        return None
    return value if end == len(text) else None


def _publish_frame(text: str) -> Publish | None:
    """The ``publish`` of a well-formed frame holding only a publish's fields, decoded in
    one go (the hot path); ``None`` for anything else, which
    :func:`~appsync_events.protocol.codec.decode_client` decodes or explains.

    Equal to what the codec returns: a value ``orjson`` parses holds the same strings as
    ``json``'s, and one of these fields (strings, an array of strings, an object of
    strings) cannot hold the floats or the nesting on which the two could differ.
    """
    obj = _parse(text)
    if type(obj) is not dict or obj.get("type") != "publish" or not _PUBLISH_FIELDS.issuperset(obj):
        return None
    frame_id = obj.get("id")
    channel = obj.get("channel")
    events = obj.get("events")
    if type(frame_id) is not str or type(channel) is not str or type(events) is not list:
        return None
    for event in events:
        if type(event) is not str:
            return None
    authorization = obj.get("authorization")
    if authorization is not None:
        if type(authorization) is not dict:
            return None
        for value in authorization.values():
            if type(value) is not str:
                return None
    return new_publish(frame_id, channel, tuple(events), authorization)


_SUCCESS_FORMATS: dict[int, str] = {}
"""``publish_success`` texts by event count, with ``%s`` for the id and each identifier."""
_PLAIN_FORMATS: dict[int, str] = {}
"""The same, with ``"%s"`` for identifiers that need no escaping."""
_SUCCESS_FORMATS_KEPT: Final = 128


def _publish_success_text(frame_id: str, identifiers: Sequence[str]) -> str | None:
    """The text of ``publish_success`` for ``frame_id`` whose ``i``-th event is
    ``identifiers[i]`` and none failed, as :func:`codec.encode` writes it; ``None`` when it
    is not ASCII (the codec's general path writes those)."""
    count = len(identifiers)
    joined = "".join(identifiers)
    # Identifiers of printable ASCII without a quote or a backslash (the emulator's own
    # are hex digits and dashes) are their JSON strings between quotes: no escaping each.
    plain = joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined
    forms = _PLAIN_FORMATS if plain else _SUCCESS_FORMATS
    form = forms.get(count)
    if form is None:
        value = '"%s"' if plain else "%s"
        items = ",".join([f'{{"identifier":{value},"index":{i}}}' for i in range(count)])
        form = '{"type":"publish_success","id":%s,"successful":[' + items + '],"failed":[]}'
        if count <= _SUCCESS_FORMATS_KEPT:
            forms[count] = form
    if plain:
        text = form % (encode_basestring(frame_id), *identifiers)
    else:
        text = form % (encode_basestring(frame_id), *map(encode_basestring, identifiers))
    return text if text.isascii() else None


def _outgoing(message: ServerMessage) -> Outgoing:
    text = codec.encode(message)
    frame_id = getattr(message, "id", None)
    errors: tuple[ErrorDetail, ...] | None = getattr(message, "errors", None)
    if errors is not None:
        return ErrorFrame(message.TYPE, frame_id, text, errors)
    return new_outgoing(message.TYPE, frame_id, text)


class ServerProtocol:
    """Sans-I/O state machine of one server-side WebSocket connection.

    Args:
        connection_timeout_ms: ``connectionTimeoutMs`` of the ``connection_ack``.
        max_events_per_publish: events per publish.
        max_event_bytes: UTF-8 bytes of one event; ``None`` skips the check so the shell
            can report oversized events in ``failed[]`` instead, as AWS does.
        max_request_bytes: UTF-8 bytes of one inbound frame.
        max_subscriptions: pending plus active subscriptions per connection.
        namespace_exists: whether a namespace is defined; ``None`` accepts every one.
        connection_authorized: ``False`` when connection auth failed at the upgrade: the
            first frame is then answered with the ``UnauthorizedException``
            ``connection_error`` (see :meth:`refuse_connection` for other errors).
    """

    # Slots: one of these per connection (memory per idle connection).
    __slots__ = (
        "_acked",
        "_active",
        "_close_expected",
        "_events",
        "_held",
        "_init_received",
        "_output",
        "_pending_publishes",
        "_pending_subscribes",
        "_phase",
        "_refusal",
        "_unsubscribing",
        "connection_timeout_ms",
        "max_event_bytes",
        "max_events_per_publish",
        "max_request_bytes",
        "max_subscriptions",
        "namespace_exists",
    )

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
        self._refusal: tuple[ErrorDetail, ...] = (CONNECTION_UNAUTHORIZED,)
        self._init_received = False
        self._acked = False
        self._close_expected: tuple[int, str] | None = None
        self._events: list[ServerEvent] = []
        self._output: list[Outgoing] = []
        self._held: list[Outgoing] = []
        self._pending_subscribes: dict[str, Channel] = {}
        self._active: dict[str, Channel] = {}
        self._unsubscribing: set[str] = set()
        self._pending_publishes: dict[str, int] = {}

    # --- state ------------------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        """``OPEN``, ``CLOSING`` (after ``connection_error``) or ``CLOSED`` (after EOF)."""
        return _PUBLIC_STATE[self._phase]

    @property
    def has_output(self) -> bool:
        """Whether :meth:`data_to_send` has frames to return."""
        return bool(self._output)

    @property
    def close_expected(self) -> tuple[int, str] | None:
        """``(code, reason)`` once the shell must close the socket, else ``None``.

        ``(1000, "")`` right after ``connection_error``.
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

    def receive_text(self, text: str) -> str | None:
        """Process one inbound text frame.  Never raises on bad peer input.

        Returns:
            The frame's ``type`` as far as it could be read (``None`` when it could not),
            for the shell's frame log.

        Raises:
            LocalProtocolError: called after :meth:`receive_eof`.
        """
        if 4 * len(text) <= self.max_request_bytes:  # cannot be over the limit
            message = _publish_frame(text)
            if message is not None:  # the hot path
                self._dispatch(_PUBLISH, message)
                return _PUBLISH
        return self._receive_decoded(text)

    def receive_publish(self, text: str) -> PublishRequested | str | None:
        """:meth:`receive_text`, except that the :class:`PublishRequested` of a valid
        ``publish`` the connection serves now is returned instead of being added to
        :meth:`events_received` (the publish path: the shell acts on it at once).

        Returns:
            That event; else what :meth:`receive_text` returns (the frame's ``type``, the
            frame answered or reported as it does).

        Raises:
            LocalProtocolError: called after :meth:`receive_eof`.
        """
        if 4 * len(text) <= self.max_request_bytes:  # cannot be over the limit
            message = _publish_frame(text)
            if message is not None:
                phase = self._phase
                # (phase, "publish") -> (OPERATION, phase) in these three: no table lookup.
                if phase is _Phase.ACKED or phase is _Phase.READY or phase is _Phase.INIT_RECEIVED:
                    return self._check_publish(message) or _PUBLISH
                self._dispatch(_PUBLISH, message)
                return _PUBLISH
        return self._receive_decoded(text)

    def _receive_decoded(self, text: str) -> str | None:
        # receive_text of a frame the hot decode did not take.
        inbound = self._decode(text)
        if isinstance(inbound, _Bad):
            self._dispatch(_INVALID, inbound)
            return inbound.frame_type
        self._dispatch(inbound.TYPE, inbound)
        return inbound.TYPE

    def receive_binary(self, data: bytes) -> None:
        """Process one inbound binary frame: answered with ``error`` (AWS's answer is
        unknown).

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
        bad = _undecodable(text, self.max_request_bytes)
        if bad is not None:
            return bad
        try:
            return codec.decode_client(text)
        except RemoteProtocolError as exc:
            return _classify(text, exc.frame_type, exc.id, exc.reason)

    def _dispatch(self, kind: str, inbound: ClientMessage | _Bad) -> None:
        try:
            action, self._phase = _TRANSITIONS[(self._phase, kind)]
        except KeyError:
            raise LocalProtocolError(
                f"cannot receive a {kind} frame in phase {self._phase.name}"
                " (the connection saw EOF)"
            ) from None
        if action is _Action.OPERATION and type(inbound) is Publish:  # the hot path
            self._on_publish(inbound)
            return
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
            case _Action.REJECT, _Bad(frame_type=frame_type, frame_id=frame_id, error=error):
                self._reject(frame_type, frame_id, error)
            case _Action.REFUSE, _Bad(frame_type=frame_type, frame_id=frame_id):
                self._refuse(frame_type, frame_id)
            case _Action.REFUSE, ConnectionInit():
                self._refuse(inbound.TYPE, None)
            case _Action.REFUSE, Subscribe() | Unsubscribe() | Publish():
                self._refuse(inbound.TYPE, inbound.id)
            case _:  # pragma: no cover - the table only pairs these
                raise AssertionError(f"no handler for {action} with {inbound!r}")

    def _refuse(self, frame_type: str | None, frame_id: str | None) -> None:
        errors = self._refusal
        self._events.append(Rejected(frame_type=frame_type, id=frame_id, errors=errors))
        self._send_connection_error(errors)

    def _reject(self, frame_type: str | None, frame_id: str | None, error: ErrorDetail) -> None:
        self._events.append(Rejected(frame_type=frame_type, id=frame_id, errors=(error,)))
        self._queue(_error_reply(frame_type, frame_id, error))

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
        subscription_id = message.id
        if subscription_id in self._pending_subscribes:
            return  # dropped silently (the emulator's choice); the subscribe still completes
        channel = self._active.get(subscription_id)
        if channel is None or subscription_id in self._unsubscribing:
            self._reject(message.TYPE, subscription_id, unknown_operation(subscription_id))
        else:
            self._unsubscribing.add(subscription_id)
            self._events.append(UnsubscribeRequested(id=subscription_id, channel=channel))

    def _on_publish(self, message: Publish) -> None:
        event = self._check_publish(message)
        if event is not None:
            self._events.append(event)

    def _check_publish(self, message: Publish) -> PublishRequested | None:
        """The event of a valid publish (now pending), else ``None`` (rejected: answered
        and reported)."""
        # Order: (frame size, before parsing), id syntax, channel syntax, namespace, event
        # count, then each event's size and JSON validity.
        checked: Channel | ErrorDetail = INVALID_ID
        frame_id = message.id
        # ASCII letters and digits, 1 to 128 of them, are an id without the pattern's regex.
        if (
            frame_id.isascii() and frame_id.isalnum() and len(frame_id) <= _ID_LENGTH
        ) or is_valid_id(frame_id):
            checked = check_publish(
                message.channel,
                message.events,
                namespace_exists=self.namespace_exists,
                max_events=self.max_events_per_publish,
                max_event_bytes=self.max_event_bytes,
            )
        if isinstance(checked, ErrorDetail):
            self._reject(message.TYPE, message.id, checked)
            return None
        pending = self._pending_publishes
        pending[message.id] = pending.get(message.id, 0) + 1
        return _publish_requested(message.id, checked, message)

    # --- output -------------------------------------------------------------------------------

    def events_received(self) -> list[ServerEvent]:
        """Return and clear the events the shell must act on, in arrival order."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[Outgoing]:
        """Return and clear the frames to send, in order (error frames are
        :class:`ErrorFrame`)."""
        output, self._output = self._output, []
        return output

    def _queue(self, message: ServerMessage) -> None:
        match self._phase:
            case _Phase.CLOSING | _Phase.CLOSED:
                pass  # the peer will never read it
            case _Phase.INIT_RECEIVED:
                self._held.append(_outgoing(message))  # nothing may precede the ack
            case _Phase.READY | _Phase.UNAUTHORIZED | _Phase.ACKED:
                self._output.append(_outgoing(message))
            case _:  # pragma: no cover - exhaustive
                assert_never(self._phase)

    def _send_connection_error(self, errors: Sequence[ErrorDetail]) -> None:
        self._held.clear()
        self._output.append(_outgoing(ConnectionErrorMessage(errors=tuple(errors))))
        self._phase = _Phase.CLOSING
        self._close_expected = (1000, "")

    # --- decisions by the shell ------------------------------------------------------------

    def refuse_connection(self, errors: Sequence[ErrorDetail] = (CONNECTION_UNAUTHORIZED,)) -> None:
        """Refuse the connection: its next frame, of any kind, is answered with
        ``connection_error`` carrying ``errors`` (reported as :class:`Rejected`), and the
        connection closes.  A no-op once a frame was answered or the connection closes.
        """
        if self._phase in (_Phase.READY, _Phase.UNAUTHORIZED):
            self._refusal = tuple(errors)
            self._phase = _Phase.UNAUTHORIZED

    def send_connection_ack(self, connection_timeout_ms: int | None = None) -> None:
        """Answer ``connection_init`` with ``connection_ack``, then release held frames.

        The shell should follow it with ``send_keepalive()`` at once, as AWS does.

        Raises:
            LocalProtocolError: no ``connection_init`` was received, or the ack was sent
                already (never unsolicited, never twice).
        """
        if not self._init_received:
            raise LocalProtocolError("connection_ack is only sent in reply to connection_init")
        if self._acked:
            raise LocalProtocolError("connection_ack was already sent")
        self._acked = True
        if self._phase is not _Phase.INIT_RECEIVED:
            return  # closing or closed: nobody to tell
        ms = self.connection_timeout_ms if connection_timeout_ms is None else connection_timeout_ms
        self._output.append(_outgoing(ConnectionAck(connection_timeout_ms=ms)))
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

    def accept_subscribe(self, subscription_id: str) -> None:
        """Queue ``subscribe_success``; the subscription is active from now on.

        Raises:
            LocalProtocolError: ``subscription_id`` is not a pending subscription.
        """
        channel = self._take_pending_subscribe(subscription_id, "accept_subscribe")
        self._active[subscription_id] = channel
        self._queue(SubscribeSuccess(id=subscription_id))

    def reject_subscribe(self, subscription_id: str, errors: Sequence[ErrorDetail]) -> None:
        """Queue ``subscribe_error``; the id is free again.

        Raises:
            LocalProtocolError: ``subscription_id`` is not a pending subscription.
        """
        self._take_pending_subscribe(subscription_id, "reject_subscribe")
        self._rejected(SubscribeError(id=subscription_id, errors=tuple(errors)))

    def _take_pending_subscribe(self, subscription_id: str, what: str) -> Channel:
        try:
            return self._pending_subscribes.pop(subscription_id)
        except KeyError:
            raise LocalProtocolError(
                f"{what}({subscription_id!r}): no such pending subscription"
            ) from None

    def accept_unsubscribe(self, subscription_id: str) -> None:
        """Queue ``unsubscribe_success``; the subscription is gone (no more ``data``).

        Raises:
            LocalProtocolError: ``subscription_id`` has no unsubscribe waiting.
        """
        self._take_unsubscribe(subscription_id, "accept_unsubscribe")
        del self._active[subscription_id]
        self._queue(UnsubscribeSuccess(id=subscription_id))

    def reject_unsubscribe(self, subscription_id: str, errors: Sequence[ErrorDetail]) -> None:
        """Queue ``unsubscribe_error``; the subscription stays active.

        Raises:
            LocalProtocolError: ``subscription_id`` has no unsubscribe waiting.
        """
        self._take_unsubscribe(subscription_id, "reject_unsubscribe")
        self._rejected(UnsubscribeError(id=subscription_id, errors=tuple(errors)))

    def _take_unsubscribe(self, subscription_id: str, what: str) -> None:
        if subscription_id not in self._unsubscribing:
            raise LocalProtocolError(f"{what}({subscription_id!r}): no such unsubscribe waiting")
        self._unsubscribing.discard(subscription_id)

    def accept_publish(
        self,
        operation_id: str,
        successful: Sequence[PublishedEvent],
        failed: Sequence[FailedEvent],
    ) -> None:
        """Queue ``publish_success``.

        Raises:
            LocalProtocolError: ``operation_id`` is not a pending publish.
        """
        self._take_pending_publish(operation_id, "accept_publish")
        self._queue(new_publish_success(operation_id, tuple(successful), tuple(failed)))

    def accept_publish_all(self, operation_id: str, identifiers: Sequence[str]) -> None:
        """Queue ``publish_success`` for a publish whose every event was published, the
        ``i``-th with identifier ``identifiers[i]``: :meth:`accept_publish` with
        ``PublishedEvent(identifier=identifiers[i], index=i)`` for each and no failure,
        without making those (the publish path).

        Raises:
            LocalProtocolError: ``operation_id`` is not a pending publish.
        """
        self._take_pending_publish(operation_id, "accept_publish")
        phase = self._phase
        if phase is _Phase.ACKED or phase is _Phase.READY:
            text = _publish_success_text(operation_id, identifiers)
            if text is not None:
                self._output.append(new_outgoing(PublishSuccess.TYPE, operation_id, text))
                return
        self._queue(new_publish_success(operation_id, published_events(identifiers), ()))

    def publish_success_text(self, operation_id: str, identifiers: Sequence[str]) -> str | None:
        """:meth:`accept_publish_all` returning the ``publish_success`` text to write next
        instead of queueing it, when nothing else waits in :meth:`data_to_send` (the
        publish path: no :class:`Outgoing` made); ``None`` when it queued (or held or
        dropped) the frame as :meth:`accept_publish_all` does.

        Raises:
            LocalProtocolError: ``operation_id`` is not a pending publish.
        """
        if self._output:
            self.accept_publish_all(operation_id, identifiers)
            return None
        self._take_pending_publish(operation_id, "accept_publish")
        phase = self._phase
        if phase is _Phase.ACKED or phase is _Phase.READY:
            text = _publish_success_text(operation_id, identifiers)
            if text is not None:
                return text
        self._queue(new_publish_success(operation_id, published_events(identifiers), ()))
        return None

    def reject_publish(self, operation_id: str, errors: Sequence[ErrorDetail]) -> None:
        """Queue ``publish_error`` (authorization, handler, fault or throttling).

        Raises:
            LocalProtocolError: ``operation_id`` is not a pending publish.
        """
        self._take_pending_publish(operation_id, "reject_publish")
        self._rejected(PublishError(id=operation_id, errors=tuple(errors)))

    def _take_pending_publish(self, operation_id: str, what: str) -> None:
        # A client may reuse a publish id while an earlier publish is pending; each
        # decision answers one of them.
        pending = self._pending_publishes
        count = pending.get(operation_id, 0)
        if count <= 0:
            raise LocalProtocolError(f"{what}({operation_id!r}): no such pending publish")
        if count == 1:
            del pending[operation_id]
        else:
            pending[operation_id] = count - 1

    def _rejected(self, message: SubscribeError | UnsubscribeError | PublishError) -> None:
        request = {SubscribeError: "subscribe", UnsubscribeError: "unsubscribe"}
        frame_type = request.get(type(message), "publish")
        self._events.append(Rejected(frame_type=frame_type, id=message.id, errors=message.errors))
        self._queue(message)

    def send_data(self, subscription_id: str, event: str) -> bool:
        """Queue ``data`` for active subscription ``subscription_id``.

        Returns:
            ``False``, sending nothing, when ``subscription_id`` is not an active
            subscription (never subscribed, not yet accepted, unsubscribed) or the
            connection is not open.
        """
        return self.send_events(subscription_id, (event,))

    def send_events(self, subscription_id: str, events: Sequence[str] | codec.DataEvents) -> bool:
        """Queue one ``data`` frame per event, in order, for active ``subscription_id``.

        The fan-out of one publish to one subscription: ``events`` may be the
        :class:`~appsync_events.protocol.codec.DataEvents` of the publish, encoded once for
        every subscription.  Otherwise as :meth:`send_data`.
        """
        if subscription_id not in self._active or self.state is not ServerState.OPEN:
            return False
        if self._phase is _Phase.ACKED or self._phase is _Phase.READY:
            texts = codec.encode_data_frames(subscription_id, events)
            self._output.extend([Outgoing("data", subscription_id, text) for text in texts])
        else:
            held = events.events if isinstance(events, codec.DataEvents) else events
            for event in held:
                self._queue(Data(id=subscription_id, event=event))
        return True

    def data_ready(self, subscription_id: str) -> bool | None:
        """Whether a fan-out to ``subscription_id`` may be written as it is, now.

        ``True``: the shell frames and writes the ``data`` frames itself (the fan-out's
        fastest path, equal to :meth:`data_frames`); ``False``: call :meth:`send_events`
        (the frames are held for the ack); ``None``: nothing is sent (no such active
        subscription, or the connection is not open).
        """
        if subscription_id not in self._active:
            return None
        phase = self._phase  # compared by identity: once per delivery
        if phase is _Phase.ACKED or phase is _Phase.READY:
            return True
        if phase is _Phase.INIT_RECEIVED or phase is _Phase.UNAUTHORIZED:
            return False
        return None  # closing or closed

    def data_frames(self, subscription_id: str, events: codec.DataEvents) -> list[str] | None:
        """The fan-out fast path: :meth:`send_events` returning the frames' texts directly.

        The texts are ``data`` frames for ``subscription_id``, to be written as they are,
        in order, after what :meth:`data_to_send` returned before.  ``None`` (nothing sent)
        where :meth:`send_events` returns ``False``; an empty list when the frames are held
        for the ack (or queued for :meth:`data_to_send`).
        """
        if subscription_id not in self._active or self.state is not ServerState.OPEN:
            return None
        if self._phase is _Phase.ACKED or self._phase is _Phase.READY:
            return codec.encode_data_frames(subscription_id, events)
        self.send_events(subscription_id, events)
        return []

    def send_broadcast_error(self, subscription_id: str, errors: Sequence[ErrorDetail]) -> None:
        """Queue ``broadcast_error`` for active subscription ``subscription_id``.

        Raises:
            LocalProtocolError: ``subscription_id`` is not an active subscription.
        """
        if subscription_id not in self._active:
            raise LocalProtocolError(
                f"send_broadcast_error({subscription_id!r}): no such subscription"
            )
        self._queue(BroadcastError(id=subscription_id, errors=tuple(errors)))

    def send_error(self, errors: Sequence[ErrorDetail], operation_id: str | None = None) -> None:
        """Queue a generic ``error`` frame, with ``operation_id`` when given."""
        self._queue(ErrorMessage(id=operation_id, errors=tuple(errors)))
