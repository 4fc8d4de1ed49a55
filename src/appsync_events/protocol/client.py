"""Sans-I/O client side of the AppSync Events WebSocket protocol.

:class:`ClientProtocol` keeps the state of one WebSocket connection: whether the
``connection_ack`` arrived, which operations wait for their answer, which subscriptions
are active.  It does no I/O and reads no clock.  The asyncio shell
(:mod:`appsync_events.connection`) feeds it every text frame with :meth:`receive_text`,
drives it with ``send_*()``, writes the text of each
:class:`~appsync_events.protocol.messages.Outgoing` that :meth:`data_to_send` returns, and
acts on what :meth:`events_received` returns.

A publish is prepared once (:meth:`ClientProtocol.prepare_publish`: channel and events
checked, events encoded), then authorized by the shell with exactly the prepared channel
and event texts, then sent (:meth:`ClientProtocol.send_publish`).  The HTTP publisher
posts the same :class:`~appsync_events.protocol.publish.PreparedPublish`.

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

Generic ``error`` frames:

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
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn, assert_never

from .._types import Message
from ..errors import (
    AppSyncEventsError,
    ConfigurationError,
    ErrorDetail,
    LocalProtocolError,
    RemoteProtocolError,
)
from . import codec
from ._make import maker
from .channels import parse_subscribe_channel
from .client_events import (
    UNAUTHORIZED_ERROR_TYPES as UNAUTHORIZED_ERROR_TYPES,
    BroadcastFailed as BroadcastFailed,
    ClientEvent as ClientEvent,
    ConnectionAccepted as ConnectionAccepted,
    ConnectionFailed as ConnectionFailed,
    EventReceived as EventReceived,
    FrameIgnored as FrameIgnored,
    KeepAliveReceived as KeepAliveReceived,
    PublishAccepted as PublishAccepted,
    PublishRejected as PublishRejected,
    SubscribeAccepted as SubscribeAccepted,
    SubscribeRejected as SubscribeRejected,
    UnsubscribeAccepted as UnsubscribeAccepted,
    UnsubscribeRejected as UnsubscribeRejected,
    connection_error as connection_error,
    is_unauthorized as is_unauthorized,
    operation_error as operation_error,
)
from .limits import (
    DEFAULT_MAX_CONNECTION_LIFETIME,
    ID_PATTERN,
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_PUBLISH,
    MAX_REQUEST_BYTES,
)
from .messages import (
    BroadcastError as BroadcastErrorMessage,
    ConnectionAck,
    ConnectionErrorMessage,
    ConnectionInit,
    Data,
    ErrorMessage,
    KeepAlive,
    Operation,
    Outgoing,
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
from .publish import PreparedPublish, encode_json, prepare_publish

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
    "PublishAccepted",
    "PublishRejected",
    "SharedHeaders",
    "SubscribeAccepted",
    "SubscribeRejected",
    "UnsubscribeAccepted",
    "UnsubscribeRejected",
    "connection_error",
    "is_unauthorized",
    "operation_error",
]


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
    (_O, "connection_ack"): _O,  # a second ack is ignored (the service never sends one)
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
_MAX_CONNECTION_TIMEOUT_MS: Final = round(DEFAULT_MAX_CONNECTION_LIFETIME * 1000)
"""``connectionTimeoutMs`` values above this (a connection's maximum lifetime) are clamped."""
_new_tuple: Final = tuple.__new__
_PUBLISH: Final = Operation.PUBLISH
_id_match: Final = ID_PATTERN.fullmatch
"""What :func:`~appsync_events.protocol.limits.is_valid_id` checks of a ``str``."""
_published_event: Final = maker(PublishedEvent, "identifier", "index")
_publish_accepted: Final = maker(PublishAccepted, "id", "channel", "successful", "failed")
_outgoing: Final = maker(Outgoing, "kind", "id", "text")
_encode_string: Final = json.encoder.encode_basestring
"""A ``str`` as a JSON string literal, non-ASCII kept (what ``encode_json`` writes)."""
_KNOWN_PUBLISH_CHANNELS: Final = 1024
"""How many channels a protocol keeps the publish frame parts of (all forgotten when full)."""
_MAX_FAST_ANSWER: Final = 4096
"""Frames up to this length are checked for a ``publish_success`` to parse on the fast
path (one answers at most five events, so it is far shorter)."""


class SharedHeaders(dict[str, str]):
    """A header map that several :class:`AuthorizeResult` share: it reads like a ``dict``
    (``json.dumps`` included) and refuses every change, so that no holder can alter the
    headers of another.  Copy it with ``dict()`` to change it.

    Made by :meth:`AuthorizeResult.shared() <appsync_events.authorizer.AuthorizeResult.shared>`;
    :meth:`ClientProtocol.send_publish` encodes one such map once, however often it is sent.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("this header map is shared and read-only; copy it with dict() to change it")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __reduce__(self) -> tuple[type[SharedHeaders], tuple[dict[str, str]]]:
        return (type(self), (dict(self),))

    def __copy__(self) -> SharedHeaders:
        return self  # read-only: a copy would be the same map

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedHeaders:
        return self


def _publish_frame(
    operation_id: str, prepared: PreparedPublish, authorization: Mapping[str, str] | None
) -> dict[str, object]:
    """The wire object of a ``publish`` frame (what ``Publish(...)`` encodes to)."""
    frame: dict[str, object] = {
        "type": "publish",
        "id": operation_id,
        "channel": prepared.channel,
        "events": list(prepared.events),
    }
    if authorization is not None:
        frame["authorization"] = dict(authorization)
    return frame


@dataclass(slots=True)
class _Pending:
    kind: Operation
    channel: str
    id: str = ""  # a subscribe's id as sent: its active subscription is keyed by this object


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
        self.active: Mapping[str, str] = self._active
        """Active (acknowledged) subscriptions: id -> channel as sent; a live read-only
        view (:attr:`subscriptions` is a copy).  A ``data`` frame for an id in here is
        reported as a :class:`Message` for it."""
        self._abandoned: dict[str, str] = {}  # subscribes given up on: id -> channel
        self._internal: set[str] = set()  # unsubscribes of abandoned subscribes in flight
        self._events: list[ClientEvent] = []
        self._out: list[Outgoing] = []
        self._last_authorization: tuple[SharedHeaders, str] | None = None
        self._publish_channels: dict[str, tuple[str, _Pending]] = {}

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
    def pending(self) -> Mapping[str, Operation]:
        """Operations waiting for their answer: id -> operation, oldest first."""
        return {operation_id: p.kind for operation_id, p in self._pending.items()}

    # --- output ----------------------------------------------------------------------------

    def events_received(self) -> list[ClientEvent]:
        """Return and forget what happened since the last call."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[Outgoing]:
        """Return and forget the frames to send, in order (write each one's ``text``)."""
        out, self._out = self._out, []
        return out

    # --- sending ---------------------------------------------------------------------------

    def _check_send(self, frame_type: str) -> None:
        if (self.state, frame_type) not in _SEND:
            raise LocalProtocolError(
                f"cannot send {frame_type!r}: connection is {self.state.value}"
            )

    def _new_id(self, operation_id: str | None) -> str:
        if operation_id is None:
            operation_id = str(uuid.uuid4())
        elif not isinstance(operation_id, str) or _id_match(operation_id) is None:
            raise LocalProtocolError(
                f"invalid operation id {operation_id!r}: must match [a-zA-Z0-9-_+]{{1,128}}"
            )
        if (
            operation_id in self._pending
            or operation_id in self._active
            or operation_id in self._abandoned
        ):
            raise LocalProtocolError(
                f"operation id {operation_id!r} is already in use on this connection"
            )
        return operation_id

    def send_connection_init(self) -> None:
        """Queue ``connection_init`` (at most once, before the ack).

        Raises:
            LocalProtocolError: it was sent already, or the connection is not connecting.
        """
        self._check_send("connection_init")
        if self._init_sent:
            raise LocalProtocolError("connection_init was already sent")
        self._init_sent = True
        message = ConnectionInit()
        self._out.append(Outgoing(message.TYPE, None, codec.encode(message)))

    def send_subscribe(
        self,
        channel: str,
        authorization: Mapping[str, str] | None,
        operation_id: str | None = None,
    ) -> str:
        """Queue ``subscribe`` for ``channel`` (sent as given) and return its id.

        Raises:
            InvalidChannelError: ``channel`` is not a valid subscription channel.
            LocalProtocolError: bad or duplicate ``operation_id``, or the connection is not
                usable.
        """
        self._check_send("subscribe")
        parse_subscribe_channel(channel)
        operation_id = self._new_id(operation_id)
        message = Subscribe(id=operation_id, channel=channel, authorization=authorization)
        text = codec.encode(message)
        self._pending[operation_id] = _Pending(Operation.SUBSCRIBE, channel, operation_id)
        self._out.append(Outgoing(message.TYPE, operation_id, text))
        return operation_id

    def prepare_publish(
        self, channel: str, events: Sequence[object], *, html_escape: bool
    ) -> PreparedPublish:
        """Check ``channel`` and encode and check ``events`` once, under this protocol's limits.

        ``str`` and every other value are JSON-encoded; ``bytes``/``bytearray`` and
        :class:`~appsync_events.RawJSON` are JSON texts sent as they are (see
        :func:`~appsync_events.protocol.publish.prepare_publish`).  Authorize with the
        result's ``channel`` and ``events``, then call :meth:`send_publish`.  Nothing is
        queued and the state does not matter.

        Raises:
            InvalidChannelError: ``channel`` is not a valid publish channel.
            ConfigurationError: no events, too many, one cannot be encoded, is not one
                JSON value or is too large (naming the event and the problem).
        """
        return prepare_publish(
            channel,
            events,
            html_escape=html_escape,
            max_events=self.max_events_per_publish,
            max_event_bytes=self.max_event_bytes,
        )

    def send_publish(
        self,
        prepared: PreparedPublish,
        authorization: Mapping[str, str] | None,
        operation_id: str | None = None,
    ) -> str:
        """Queue ``publish`` of a prepared publish and return its id.

        ``prepared`` comes from :meth:`prepare_publish` and is not checked again; only the
        frame's size, which depends on ``authorization``, is.

        Raises:
            ConfigurationError: the frame would exceed the request size limit.
            LocalProtocolError: ``prepared`` is not a :class:`PreparedPublish`, bad or
                duplicate ``operation_id``, or the connection is not usable.
        """
        if operation_id is None:
            operation_id = str(uuid.uuid4())
        text = self._publish_text(prepared, authorization, operation_id)
        self._out.append(_outgoing("publish", operation_id, text))
        return operation_id

    def _publish_text(
        self,
        prepared: PreparedPublish,
        authorization: Mapping[str, str] | None,
        operation_id: str,
    ) -> str:
        """:meth:`send_publish` with its id given, except that the frame's text is
        returned, not queued: the caller writes it (before any frame queued later)."""
        if self.state is not _O:
            self._check_send("publish")
        if type(prepared) is not PreparedPublish and not isinstance(prepared, PreparedPublish):
            raise LocalProtocolError(
                "send_publish takes the PreparedPublish made by prepare_publish(), "
                f"not {type(prepared).__name__}"
            )
        self._new_id(operation_id)
        # The text encode_json() gives the frame Publish(...) encodes to, put together
        # from its encoded parts: no message object, no dict, one encode of each string.
        # The id matches [a-zA-Z0-9-_+] (checked above): as a JSON string, it is itself in
        # quotes.  The parts that depend on the channel and on the authorization are
        # encoded once and kept while the same channel and map come back.
        channel = prepared.channel
        events = prepared.events
        enc = _encode_string
        text: str | None
        try:
            known = self._publish_channels.get(channel)
            if known is None:
                known = self._publish_channel(channel)
            middle, pending = known
            if len(events) == 1:
                body = enc(events[0])
            else:
                body = ",".join([enc(event) for event in events])
        except TypeError:  # not strings (a PreparedPublish made by hand): the general way
            text = None
        else:
            if authorization is None:
                tail = "]}"
            else:
                last = self._last_authorization  # the map encoded last (see below)
                if last is not None and last[0] is authorization:
                    tail = last[1]
                else:
                    tail = self._authorization_tail(authorization)
            if type(operation_id) is str:
                text = f'{{"type":"publish","id":"{operation_id}{middle}{body}{tail}'
            else:  # a str subclass: its characters, as the checks above saw them
                text = "".join(('{"type":"publish","id":"', operation_id, middle, body, tail))
        if text is None:
            text = encode_json(_publish_frame(operation_id, prepared, authorization))
            pending = _Pending(_PUBLISH, channel)
        if text.isascii():
            size = len(text)
        else:
            if not codec.is_frame_text(text):  # a lone surrogate: written with escapes instead
                text = codec.dumps(_publish_frame(operation_id, prepared, authorization))
            size = len(text.encode("utf-8"))
        if size > self.max_request_bytes:
            raise ConfigurationError(
                f"the publish frame is {size} bytes, over the {self.max_request_bytes}-byte "
                "request limit; publish fewer events per call"
            )
        self._pending[operation_id] = pending
        return text

    def _publish_channel(self, channel: str) -> tuple[str, _Pending]:
        """What :meth:`_publish_text` keeps of ``channel``: the frame's text from the end of
        the id to the first event, and the pending publish (never changed, so shared)."""
        middle = '","channel":' + _encode_string(channel) + ',"events":['
        known = self._publish_channels
        if len(known) >= _KNOWN_PUBLISH_CHANNELS:
            known.clear()
        entry = known[channel] = (middle, _Pending(_PUBLISH, channel))
        return entry

    def _authorization_tail(self, authorization: Mapping[str, str]) -> str:
        """The end of a publish frame with ``authorization`` encoded as in a frame.  A
        :class:`SharedHeaders` map is remembered with its text, which
        :meth:`_publish_text` reuses while the same map comes back: it is encoded only
        once."""
        tail = '],"authorization":' + encode_json(dict(authorization)) + "}"
        if type(authorization) is SharedHeaders:
            self._last_authorization = (authorization, tail)
        return tail

    def send_unsubscribe(self, subscription_id: str) -> None:
        """Queue ``unsubscribe`` for the active subscription ``subscription_id``.

        The subscription stays active (its ``data`` is still reported) until the answer.

        Raises:
            LocalProtocolError: ``subscription_id`` is not an active subscription, an
                unsubscribe is already pending for it, or the connection is not usable.
        """
        self._check_send("unsubscribe")
        if subscription_id not in self._active:
            raise LocalProtocolError(f"{subscription_id!r} is not an active subscription")
        if subscription_id in self._pending:
            raise LocalProtocolError(f"an unsubscribe of {subscription_id!r} is already pending")
        self._pending[subscription_id] = _Pending(
            Operation.UNSUBSCRIBE, self._active[subscription_id]
        )
        self._queue_unsubscribe(subscription_id)

    def _queue_unsubscribe(self, subscription_id: str) -> None:
        message = Unsubscribe(id=subscription_id)
        self._out.append(Outgoing(message.TYPE, subscription_id, codec.encode(message)))

    def abandon(self, operation_id: str) -> None:
        """Forget the pending operation ``operation_id`` (the caller stopped waiting for it).

        A late answer is then reported as :class:`FrameIgnored`.  A subscribe that still
        succeeds later is unsubscribed at once, so that the service does not keep a
        subscription nobody reads (an unsubscribe sent while the subscribe is pending
        would be dropped by the service).  An abandoned unsubscribe drops the
        subscription locally.  Unknown ids are ignored.
        """
        pending = self._pending.pop(operation_id, None)
        if pending is None:
            return
        if pending.kind is Operation.SUBSCRIBE:
            self._abandoned[operation_id] = pending.channel
        elif pending.kind is Operation.UNSUBSCRIBE:
            self._active.pop(operation_id, None)

    # --- receiving -------------------------------------------------------------------------

    def receive_text(self, text: str) -> None:
        """Process one text frame from the service; never raises on bad input."""
        message = self.receive_event(text)
        if message is not None:
            self._events.append(message)

    def receive_event(self, text: str) -> Message | PublishAccepted | None:
        """:meth:`receive_text`, except for the commonest frames: an event for an active
        subscription (a :class:`Message`) and the answer to a pending publish (a
        :class:`PublishAccepted`) are returned, not queued for :meth:`events_received`
        (where nothing else is queued then).  ``None``: anything else, queued as
        :meth:`receive_text` queues it.  Never raises on bad input."""
        if self.state is _O:
            # Every publish is answered with one: parsed once here when it is well formed
            # (a frame that merely mentions the name costs one substring scan).
            if len(text) <= _MAX_FAST_ANSWER and '"publish_success"' in text:
                answered = self._receive_publish_success(text)
                if answered is not False:
                    return answered
            # Hot path: ``data`` on an open connection, parsed once, no message object.
            # Same outcome as the general path below (which handles everything else).
            parsed = codec.parse_data_frame(text)
            if parsed is not None:
                subscription_id, event = parsed
                channel = self._active.get(subscription_id)
                if channel is not None:
                    # What Message(event, id, channel) does, minus a Python-level __new__.
                    result: Message = _new_tuple(Message, (event, subscription_id, channel))
                    return result
                self._ignore("data", subscription_id, "data for an unknown subscription")
                return None
        if self.state in (ClientState.FAILED, ClientState.CLOSED):
            self._ignore(None, None, f"connection is {self.state.value}")
            return None
        try:
            message = codec.decode_server(text)
        except RemoteProtocolError as exc:
            if exc.frame_type is not None and exc.frame_type not in _SERVER_TYPES:
                self._ignore(exc.frame_type, exc.id, "unknown frame type")
            else:
                self._fail(exc)
            return None
        next_state = _RECEIVE[(self.state, message.TYPE)]
        self._dispatch(message)  # handlers see the prior state and may fail the connection
        if self.failure is None:
            self.state = next_state
        return None

    def _receive_publish_success(self, text: str) -> PublishAccepted | Literal[False] | None:
        """Handle a well-formed ``publish_success`` (``failed`` empty or absent): its
        :class:`PublishAccepted` for a pending publish, else ``None`` (the frame is
        reported ignored).

        Same outcome as :func:`~appsync_events.protocol.codec.decode_server` and
        :meth:`_dispatch`.  Anything else, a frame with failed events or a field of an
        unexpected type included, is left to that general path (``False``), which
        reports a malformed frame as such.
        """
        fast = codec._FAST
        try:
            obj = codec.loads(text) if fast is None else fast(text)
        except (ValueError, RecursionError):
            return False
        return self._publish_success_value(obj, fast is not None)

    def receive_publish_success(self, value: Any) -> PublishAccepted | Literal[False] | None:
        """:meth:`receive_event` of a frame the shell has already parsed with the fast
        parser (``orjson.loads``), for a ``publish_success``: the frame is not parsed
        again.

        Returns:
            The :class:`PublishAccepted` of a pending publish; ``None`` when the frame was
            reported ignored; ``False`` when this is not a well-formed ``publish_success``
            on an open connection (nothing was done: pass its text to
            :meth:`receive_event`).
        """
        if self.state is not _O:
            return False
        return self._publish_success_value(value, True)

    def _publish_success_value(
        self, obj: Any, fast: bool
    ) -> PublishAccepted | Literal[False] | None:
        # _receive_publish_success of the parsed frame ``obj``; ``fast``: it is the fast
        # parser's value, used as it is when every value in it is checked here (then it is
        # certainly json's, see codec.loads); other fields cost one more check.
        if type(obj) is not dict or obj.get("type") != "publish_success":
            return False
        frame_id = obj.get("id")
        successful = obj.get("successful")
        failed = obj.get("failed")
        if type(frame_id) is not str or type(successful) is not list:
            return False
        if failed is not None and (type(failed) is not list or failed):
            return False
        checked = len(obj) == 3 + ("failed" in obj)  # type, id, successful (failed): all
        published = []
        for item in successful:
            if type(item) is not dict:
                return False
            identifier = item.get("identifier")
            index = item.get("index")
            if type(identifier) is not str or type(index) is not int:
                return False
            if len(item) != 2:
                checked = False
            published.append(_published_event(identifier, index))
        if not checked and fast and not codec._exact(obj):
            return False
        pending = self._pending.get(frame_id)
        if pending is not None and pending.kind is _PUBLISH and frame_id not in self._internal:
            del self._pending[frame_id]  # what _take does, without the call
        else:  # _take then reports the frame ignored (it returns a pending publish only
            # in the case above)
            self._take(frame_id, _PUBLISH, "publish_success")
            return None
        accepted: PublishAccepted = _publish_accepted(
            frame_id, pending.channel, tuple(published), ()
        )
        return accepted

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
            case Data(id=frame_id, event=event):
                if frame_id in self._active:
                    self._events.append(Message(event, frame_id, self._active[frame_id]))
                else:
                    self._ignore(message.TYPE, frame_id, "data for an unknown subscription")
            case KeepAlive():
                self._events.append(KeepAliveReceived())
            case ConnectionAck(connection_timeout_ms=ms):
                self._on_ack(ms)
            case ConnectionErrorMessage(errors=errors):
                handshake = self.state is ClientState.CONNECTING
                self._fail(connection_error(errors, handshake=handshake))
            case SubscribeSuccess(id=frame_id):
                self._on_subscribe_success(frame_id)
            case UnsubscribeSuccess(id=frame_id):
                pending = self._take(frame_id, Operation.UNSUBSCRIBE, message.TYPE)
                if pending is not None:
                    del self._active[frame_id]
                    self._events.append(UnsubscribeAccepted(id=frame_id, channel=pending.channel))
            case PublishSuccess(id=frame_id, successful=successful, failed=failed):
                pending = self._take(frame_id, Operation.PUBLISH, message.TYPE)
                if pending is not None:
                    self._events.append(
                        PublishAccepted(
                            id=frame_id,
                            channel=pending.channel,
                            successful=successful,
                            failed=failed,
                        )
                    )
            case (
                SubscribeErrorMessage(id=frame_id, errors=errors)
                | UnsubscribeErrorMessage(id=frame_id, errors=errors)
                | PublishErrorMessage(id=frame_id, errors=errors)
            ):
                pending = self._take(frame_id, _KIND_OF_ERROR[message.TYPE], message.TYPE)
                if pending is not None:
                    self._reject(frame_id, pending, errors)
            case BroadcastErrorMessage(id=frame_id, errors=errors):
                self._on_broadcast_error(frame_id, errors, message.TYPE)
            case ErrorMessage(id=frame_id, errors=errors):
                self._on_error(frame_id, errors)
            case _:  # pragma: no cover - exhaustive
                assert_never(message)

    def _on_ack(self, ms: int | None) -> None:
        if self._acked:
            # A second ack is harmless (the service never sends one), so it is ignored.
            self._ignore("connection_ack", None, "unexpected second connection_ack")
            return
        self._acked = True
        # A missing or non-positive timeout is treated as absent: the shell's default applies.
        # One longer than a connection may live is clamped to that (a hostile 1e400 would
        # otherwise overflow the float conversion to seconds).
        self.connection_timeout_ms = (
            min(ms, _MAX_CONNECTION_TIMEOUT_MS) if ms is not None and ms > 0 else None
        )
        self._events.append(ConnectionAccepted(connection_timeout_ms=self.connection_timeout_ms))

    def _on_subscribe_success(self, frame_id: str) -> None:
        channel = self._abandoned.pop(frame_id, None)
        if channel is not None:
            # Nobody reads this subscription: end it at once, without reporting its events.
            self._pending[frame_id] = _Pending(Operation.UNSUBSCRIBE, channel)
            self._internal.add(frame_id)
            self._queue_unsubscribe(frame_id)
            self._ignore("subscribe_success", frame_id, "late answer to an abandoned subscribe")
            return
        pending = self._take(frame_id, Operation.SUBSCRIBE, "subscribe_success")
        if pending is not None:
            self._active[pending.id] = pending.channel
            self._events.append(SubscribeAccepted(id=frame_id, channel=pending.channel))

    def _on_broadcast_error(
        self, frame_id: str, errors: tuple[ErrorDetail, ...], frame_type: str
    ) -> None:
        if frame_id in self._active:
            self._events.append(
                BroadcastFailed(id=frame_id, channel=self._active[frame_id], errors=errors)
            )
        else:
            self._ignore(frame_type, frame_id, "broadcast_error for an unknown subscription")

    def _on_error(self, frame_id: str | None, errors: tuple[ErrorDetail, ...]) -> None:
        if frame_id is None:
            if not self._pending:
                handshake = self.state is ClientState.CONNECTING
                self._fail(connection_error(errors, handshake=handshake))
                return
            frame_id = next(iter(self._pending))  # the oldest pending operation
        pending = self._pending.pop(frame_id, None)
        if pending is not None:
            if frame_id in self._internal:
                self._internal.discard(frame_id)
                self._ignore("error", frame_id, "answer to an internal unsubscribe")
                return
            self._reject(frame_id, pending, errors)
        elif frame_id in self._active:
            self._on_broadcast_error(frame_id, errors, "error")
        else:
            self._ignore("error", frame_id, "error for an unknown operation")

    def _take(self, frame_id: str, kind: Operation, frame_type: str) -> _Pending | None:
        """Pop the pending operation ``frame_id`` of ``kind``; report the frame ignored if none."""
        pending = self._pending.get(frame_id)
        if pending is None or pending.kind is not kind:
            self._ignore(frame_type, frame_id, f"no pending {kind.value} with this id")
            return None
        del self._pending[frame_id]
        if frame_id in self._internal:
            self._internal.discard(frame_id)
            self._ignore(frame_type, frame_id, "answer to an internal unsubscribe")
            return None
        return pending

    def _reject(self, frame_id: str, pending: _Pending, errors: tuple[ErrorDetail, ...]) -> None:
        channel = pending.channel
        match pending.kind:
            case Operation.SUBSCRIBE:
                self._events.append(SubscribeRejected(id=frame_id, channel=channel, errors=errors))
            case Operation.PUBLISH:
                self._events.append(PublishRejected(id=frame_id, channel=channel, errors=errors))
            case Operation.UNSUBSCRIBE:
                # The service does not know the subscription (or refused to end it); either
                # way the client stops routing its events.
                self._active.pop(frame_id, None)
                self._events.append(
                    UnsubscribeRejected(id=frame_id, channel=channel, errors=errors)
                )
            case Operation.CONNECT:  # pragma: no cover - connect is never pending
                raise AssertionError("a connect is never a pending operation")
            case _:  # pragma: no cover - exhaustive
                assert_never(pending.kind)

    def _ignore(self, frame_type: str | None, frame_id: str | None, reason: str) -> None:
        self._events.append(FrameIgnored(frame_type=frame_type, id=frame_id, reason=reason))

    def _fail(self, error: AppSyncEventsError) -> None:
        self.state = ClientState.FAILED
        self.failure = error
        self._events.append(ConnectionFailed(error=error))


_KIND_OF_ERROR: Final[Mapping[str, Operation]] = {
    "subscribe_error": Operation.SUBSCRIBE,
    "unsubscribe_error": Operation.UNSUBSCRIBE,
    "publish_error": Operation.PUBLISH,
}
