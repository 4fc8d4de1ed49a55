"""Text frame <-> message codec (docs: protocol.rst, "Messages").

This is the only module that knows the JSON field names of the wire format.  Decoding is
strict about the fields a message needs and ignores every field it does not know
(docs: protocol.rst, "The envelope"): a bad frame raises
:class:`~appsync_events.errors.RemoteProtocolError` naming what was wrong, and nothing else.

When ``orjson`` is installed, JSON text is parsed with it first (two to three times as fast
as ``json``), and the standard library decides whenever the two could differ: every text
``orjson`` refuses (its error is never shown), a value holding a float that may stand for
an integer ``orjson`` cannot represent, and a value nested deep enough to exhaust
``json``'s recursion.  Values, verdicts and error messages are those of ``json`` either way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, Final, assert_never

from ..errors import ErrorDetail, RemoteProtocolError
from .messages import (
    BroadcastError,
    ClientMessage,
    ConnectionAck,
    ConnectionErrorMessage,
    ConnectionInit,
    Data,
    ErrorMessage,
    FailedEvent,
    Frame,
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
    "DataEvents",
    "decode",
    "decode_client",
    "decode_error_body",
    "decode_errors",
    "decode_publish_body",
    "decode_publish_result",
    "decode_server",
    "dumps",
    "encode",
    "encode_data",
    "encode_data_frames",
    "encode_error_body",
    "encode_errors",
    "encode_publish_body",
    "encode_publish_result",
    "event_json_error",
    "is_frame_text",
    "lone_surrogate",
    "is_json_object",
    "loads",
    "orjson_loads",
    "parse_data_frame",
    "sniff_frame",
]

JSONObject = dict[str, Any]


def orjson_loads() -> Callable[[str], Any] | None:
    """``orjson.loads`` when ``orjson`` is installed, else ``None`` (the emulator uses it
    too)."""
    try:
        import orjson
    except ImportError:
        return None
    loads: Callable[[str], Any] = orjson.loads
    return loads


_FAST: Callable[[str], Any] | None = orjson_loads()
"""The optional fast parser (``orjson.loads``); every use falls back to ``json``."""

_SHALLOW: Final = 200
"""Nesting levels below which ``json`` never runs out of recursion (``orjson`` accepts
nesting up to 1024 levels, ``json`` raises ``RecursionError`` near 1000)."""

_SHORT: Final = 2 * _SHALLOW
"""Text this short is shallow: a value nested n levels deep is at least 2n characters."""

_BIG: Final = 2.0**63
"""``orjson`` turns an integer outside the 64-bit range into a float at least this large."""

_NOT_PLAIN: Final = frozenset((float, dict, list))
"""The value types :func:`_exact` looks into."""


def _exact(value: Any, depth: int = 1) -> bool:
    """Whether ``value`` (from ``orjson``) is certainly what ``json`` returns: it holds no
    float that could be a big integer, and it is nested fewer than :data:`_SHALLOW`
    levels deep (``depth``: the level of ``value`` itself)."""
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    else:
        return kind is not float or -_BIG < value < _BIG
    if depth >= _SHALLOW:
        return False
    for item in items:
        kind = type(item)
        if kind is float:
            if not -_BIG < item < _BIG:
                return False
        elif (kind is dict or kind is list) and not _exact(item, depth + 1):
            return False
    return True


_ENCODE: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ENCODE_ASCII: Final = json.JSONEncoder(separators=(",", ":")).encode


def dumps(value: object) -> str:
    """Serialise compactly, keeping non-ASCII characters (the house wire style).

    A string holding a lone surrogate (say, an error message quoting what a peer sent)
    cannot travel in a UTF-8 text frame: then the whole text is written with ``\\uXXXX``
    escapes instead, which decodes to the same value.
    """
    text = _ENCODE(value)
    return text if is_frame_text(text) else _ENCODE_ASCII(value)


def is_frame_text(text: str) -> bool:
    """Whether ``text`` can travel in a UTF-8 text frame: it holds no lone surrogate."""
    return lone_surrogate(text) is None


def lone_surrogate(text: str) -> str | None:
    """Describe ``text``'s first lone surrogate (``lone surrogate U+D800 at char 3``), the
    one thing a ``str`` can hold that UTF-8 cannot; ``None`` when there is none."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"lone surrogate U+{ord(text[exc.start]):04X} at char {exc.start}"
    return None


# --- encoding ---------------------------------------------------------------------------


def encode_errors(errors: Sequence[ErrorDetail]) -> list[JSONObject]:
    """Return the wire form of an ``errors`` array."""
    out: list[JSONObject] = []
    for e in errors:
        item: JSONObject = {"errorType": e.error_type, "message": e.message}
        if e.error_code is not None:
            item["errorCode"] = e.error_code
        out.append(item)
    return out


def _encode_result(
    successful: Sequence[PublishedEvent], failed: Sequence[FailedEvent]
) -> tuple[list[JSONObject], list[JSONObject]]:
    ok = [{"identifier": s.identifier, "index": s.index} for s in successful]
    bad: list[JSONObject] = []
    for f in failed:
        item: JSONObject = {"identifier": f.identifier, "index": f.index}
        if f.code is not None:
            item["code"] = f.code
        if f.message is not None:
            item["message"] = f.message
        bad.append(item)
    return ok, bad


def _to_wire(message: Frame) -> JSONObject:
    match message:
        case ConnectionInit() | KeepAlive():
            return {"type": message.TYPE}
        case Subscribe(id=id, channel=channel, authorization=auth):
            obj: JSONObject = {"type": message.TYPE, "id": id, "channel": channel}
            if auth is not None:
                obj["authorization"] = dict(auth)
            return obj
        case Unsubscribe(id=id) | SubscribeSuccess(id=id) | UnsubscribeSuccess(id=id):
            return {"type": message.TYPE, "id": id}
        case Publish(id=id, channel=channel, events=events, authorization=auth):
            obj = {"type": message.TYPE, "id": id, "channel": channel, "events": list(events)}
            if auth is not None:
                obj["authorization"] = dict(auth)
            return obj
        case ConnectionAck(connection_timeout_ms=ms):
            obj = {"type": message.TYPE}
            if ms is not None:
                obj["connectionTimeoutMs"] = ms
            return obj
        case ConnectionErrorMessage(errors=errors):
            return {"type": message.TYPE, "errors": encode_errors(errors)}
        case (
            SubscribeError(id=id, errors=errors)
            | BroadcastError(id=id, errors=errors)
            | UnsubscribeError(id=id, errors=errors)
            | PublishError(id=id, errors=errors)
        ):
            return {"type": message.TYPE, "id": id, "errors": encode_errors(errors)}
        case Data(id=id, event=event):
            return {"type": message.TYPE, "id": id, "event": event}
        case PublishSuccess(id=id, successful=successful, failed=failed):
            ok, bad = _encode_result(successful, failed)
            return {"type": message.TYPE, "id": id, "successful": ok, "failed": bad}
        case ErrorMessage(id=id, errors=errors):
            obj = {"type": message.TYPE}
            if id is not None:
                obj["id"] = id
            obj["errors"] = encode_errors(errors)
            return obj
        case _:  # pragma: no cover - exhaustive
            assert_never(message)


def encode(message: Frame) -> str:
    """Return the text frame for ``message`` (compact JSON, UTF-8 kept)."""
    if type(message) is PublishSuccess and not message.failed:
        text = _encode_publish_success(message)
        if text.isascii():  # as it always is for server-made identifiers
            return text
    return dumps(_to_wire(message))


def _encode_publish_success(message: PublishSuccess) -> str:
    # Every publish is answered with one: built as text, equal to the general path.
    ok = ",".join(
        [
            f'{{"identifier":{encode_basestring(s.identifier)},"index":{s.index:d}}}'
            for s in message.successful
        ]
    )
    return (
        '{"type":"publish_success","id":'
        + encode_basestring(message.id)
        + ',"successful":['
        + ok
        + '],"failed":[]}'
    )


def _string_literal(text: str) -> str:
    # ``encode_basestring`` is what ``json.dumps(text, ensure_ascii=False)`` calls; a
    # lone surrogate is escaped, as :func:`dumps` does.
    literal = encode_basestring(text)
    return literal if is_frame_text(literal) else encode_basestring_ascii(text)


class DataEvents:
    """The events of one publish, each encoded once as a JSON string literal.

    The fan-out sends the same events to every matching subscription: build one
    ``DataEvents`` per publish and pass it to :func:`encode_data_frames` for each
    subscription, so an event is encoded once however many subscribers get it.
    """

    __slots__ = ("events", "literals")

    def __init__(self, events: Sequence[str]) -> None:
        self.events: tuple[str, ...] = tuple(events)
        """The event texts."""
        self.literals: tuple[str, ...] = tuple(_string_literal(e) for e in self.events)
        """Their JSON string literals, in order."""


def encode_data(subscription_id: str, event: str) -> str:
    """Return the ``data`` frame for ``subscription_id``; equal to ``encode(Data(...))``."""
    return encode_data_frames(subscription_id, (event,))[0]


def encode_data_frames(subscription_id: str, events: Sequence[str] | DataEvents) -> list[str]:
    """Return one ``data`` frame per event for ``subscription_id`` (the fan-out fast path).

    Each frame equals ``encode(Data(id=id, event=event))``.  Pass the publish's
    :class:`DataEvents` to encode each event once across many subscriptions.
    """
    literals = events.literals if isinstance(events, DataEvents) else map(_string_literal, events)
    prefix = '{"type":"data","id":' + _string_literal(subscription_id) + ',"event":'
    return [f"{prefix}{literal}}}" for literal in literals]


def encode_publish_body(channel: str, events: Sequence[str]) -> str:
    """Return the HTTP ``POST /event`` body for JSON-text ``events``.

    See docs: protocol.rst, "The request".
    """
    return dumps({"channel": channel, "events": list(events)})


def encode_publish_result(
    successful: Sequence[PublishedEvent], failed: Sequence[FailedEvent]
) -> str:
    """Return the HTTP 200 publish body, ``failed`` first as AWS does.

    See docs: protocol.rst, "Success: successful and failed".
    """
    ok, bad = _encode_result(successful, failed)
    return dumps({"failed": bad, "successful": ok})


def encode_error_body(errors: Sequence[ErrorDetail]) -> str:
    """Return an HTTP error body ``{"errors":[...]}``.

    See docs: protocol.rst, "Errors".
    """
    return dumps({"errors": encode_errors(errors)})


# --- event texts ------------------------------------------------------------------------


def _reject_constant(name: str) -> object:
    # json accepts NaN/Infinity/-Infinity, which are not JSON (RFC 8259 §6).
    raise ValueError(f"{name} is not a JSON value")


_EVENT_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
# One decoder for every event: ``json.loads`` with arguments builds a new one per call.


def event_json_error(text: str) -> str | None:
    """Return why ``text`` is not one JSON value as UTF-8 text, or ``None`` when it is.

    Stricter than ``json.loads``: ``NaN``/``Infinity`` (not JSON, RFC 8259 §6) and lone
    surrogates (no UTF-8 text frame can carry them; docs: protocol.rst, "The envelope") are
    refused.  The reasons for malformed JSON are ``json``'s own messages.  Never raises.
    """
    if not text.isascii():
        surrogate = lone_surrogate(text)
        if surrogate is not None:
            return f"{surrogate} (not UTF-8 text)"
        if text.startswith("\ufeff"):  # as json.loads says it
            return "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"
    if _FAST is not None:
        # What orjson accepts json accepts too (NaN and Infinity are refused by both)
        # unless it is nested too deeply for json; a refusal is explained by json, in its
        # words.
        try:
            value = _FAST(text)
        except ValueError:
            pass
        else:
            if len(text) <= _SHORT or _exact(value):
                return None
    try:
        _EVENT_DECODER.decode(text)
    except ValueError as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply"
    return None


# --- decoding ---------------------------------------------------------------------------


class _Fields:
    """Typed accessors over one decoded frame, raising :class:`RemoteProtocolError`."""

    __slots__ = ("id", "obj", "type")

    def __init__(self, obj: JSONObject, frame_type: str | None) -> None:
        self.obj = obj
        self.type = frame_type
        raw_id = obj.get("id")
        self.id = raw_id if isinstance(raw_id, str) else None

    def fail(self, reason: str) -> RemoteProtocolError:
        return RemoteProtocolError(reason, frame_type=self.type, id=self.id)

    def string(self, name: str) -> str:
        value = self.obj.get(name)
        if value is None and name not in self.obj:
            raise self.fail(f"missing field {name!r}")
        if not isinstance(value, str):
            raise self.fail(f"field {name!r} must be a string, not {_kind(value)}")
        return value

    def optional_string(self, name: str) -> str | None:
        if self.obj.get(name) is None:
            return None
        return self.string(name)

    def string_map(self, name: str) -> dict[str, str] | None:
        value = self.obj.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"field {name!r} must be an object, not {_kind(value)}")
        for key, item in value.items():
            if not isinstance(item, str):
                raise self.fail(f"field {name}.{key} must be a string, not {_kind(item)}")
        return dict(value)

    def string_list(self, name: str) -> tuple[str, ...]:
        value = self.obj.get(name)
        if not isinstance(value, list):
            if name not in self.obj:
                raise self.fail(f"missing field {name!r}")
            raise self.fail(f"field {name!r} must be an array, not {_kind(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"field {name}[{i}] must be a string, not {_kind(item)}")
        return tuple(value)

    def optional_int(self, name: str) -> int | None:
        value = self.obj.get(name)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(f"field {name!r} must be an integer, not {_kind(value)}")
        return value

    def objects(self, name: str, *, required: bool) -> list[JSONObject]:
        value = self.obj.get(name)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            if name not in self.obj:
                raise self.fail(f"missing field {name!r}")
            raise self.fail(f"field {name!r} must be an array, not {_kind(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.fail(f"field {name}[{i}] must be an object, not {_kind(item)}")
        return value

    def errors(self) -> tuple[ErrorDetail, ...]:
        return tuple(self._error(i, e) for i, e in enumerate(self.objects("errors", required=True)))

    def _error(self, i: int, obj: JSONObject) -> ErrorDetail:
        sub = _Fields(obj, self.type)
        sub.id = self.id
        try:
            return ErrorDetail(
                error_type=sub.string("errorType"),
                message=sub.optional_string("message") or "",
                error_code=sub.optional_int("errorCode"),
            )
        except RemoteProtocolError as exc:
            raise self.fail(f"errors[{i}]: {exc.reason}") from None

    def published(self) -> tuple[PublishedEvent, ...]:
        out = []
        for i, obj in enumerate(self.objects("successful", required=False)):
            sub = self._sub(obj)
            try:
                out.append(PublishedEvent(identifier=sub.string("identifier"), index=_index(sub)))
            except RemoteProtocolError as exc:
                raise self.fail(f"successful[{i}]: {exc.reason}") from None
        return tuple(out)

    def failed(self) -> tuple[FailedEvent, ...]:
        out = []
        for i, obj in enumerate(self.objects("failed", required=False)):
            sub = self._sub(obj)
            try:
                # The Swift client models errorCode/errorMessage
                # (docs: protocol.rst, "publish_success"); accept both forms.
                code = sub.optional_string("code")
                if code is None and obj.get("errorCode") is not None:
                    code = str(obj["errorCode"])
                message = sub.optional_string("message")
                if message is None:
                    message = sub.optional_string("errorMessage")
                out.append(
                    FailedEvent(
                        identifier=sub.string("identifier"),
                        index=_index(sub),
                        code=code,
                        message=message,
                    )
                )
            except RemoteProtocolError as exc:
                raise self.fail(f"failed[{i}]: {exc.reason}") from None
        return tuple(out)

    def _sub(self, obj: JSONObject) -> _Fields:
        sub = _Fields(obj, self.type)
        sub.id = self.id
        return sub


def _index(sub: _Fields) -> int:
    index = sub.optional_int("index")
    if index is None:
        raise sub.fail("missing field 'index'")
    return index


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _load(text: str | bytes) -> _Fields:
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError("frame is not valid UTF-8") from None
    try:
        obj = loads(text)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"frame must be a JSON object, not {_kind(obj)}")
    frame_type = obj.get("type")
    fields = _Fields(obj, frame_type if isinstance(frame_type, str) else None)
    if frame_type is None:
        raise fields.fail("missing field 'type'")
    if not isinstance(frame_type, str):
        raise fields.fail(f"field 'type' must be a string, not {_kind(frame_type)}")
    return fields


def _subscribe(f: _Fields) -> Subscribe:
    return Subscribe(
        id=f.string("id"), channel=f.string("channel"), authorization=f.string_map("authorization")
    )


def _publish(f: _Fields) -> Publish:
    return Publish(
        id=f.string("id"),
        channel=f.string("channel"),
        events=f.string_list("events"),
        authorization=f.string_map("authorization"),
    )


_CLIENT: dict[str, Callable[[_Fields], ClientMessage]] = {
    "connection_init": lambda f: ConnectionInit(),
    "subscribe": _subscribe,
    "unsubscribe": lambda f: Unsubscribe(id=f.string("id")),
    "publish": _publish,
}

_SERVER: dict[str, Callable[[_Fields], ServerMessage]] = {
    "connection_ack": lambda f: ConnectionAck(
        connection_timeout_ms=f.optional_int("connectionTimeoutMs")
    ),
    "ka": lambda f: KeepAlive(),
    "connection_error": lambda f: ConnectionErrorMessage(errors=f.errors()),
    "subscribe_success": lambda f: SubscribeSuccess(id=f.string("id")),
    "subscribe_error": lambda f: SubscribeError(id=f.string("id"), errors=f.errors()),
    "data": lambda f: Data(id=f.string("id"), event=f.string("event")),
    "broadcast_error": lambda f: BroadcastError(id=f.string("id"), errors=f.errors()),
    "unsubscribe_success": lambda f: UnsubscribeSuccess(id=f.string("id")),
    "unsubscribe_error": lambda f: UnsubscribeError(id=f.string("id"), errors=f.errors()),
    "publish_success": lambda f: PublishSuccess(
        id=f.string("id"), successful=f.published(), failed=f.failed()
    ),
    "publish_error": lambda f: PublishError(id=f.string("id"), errors=f.errors()),
    "error": lambda f: ErrorMessage(id=f.optional_string("id"), errors=f.errors()),
}


def _decode(text: str | bytes, table: Mapping[str, Callable[[_Fields], Any]], side: str) -> Any:
    fields = _load(text)
    assert fields.type is not None
    build = table.get(fields.type)
    if build is None:
        raise fields.fail(f"unknown {side} message type {fields.type!r}")
    return build(fields)


def decode_client(text: str | bytes) -> ClientMessage:
    """Decode a client -> server frame.

    Raises:
        RemoteProtocolError: the frame is not valid JSON, not an object, has a missing or
            unknown ``type``, or a field of the wrong type.  ``frame_type`` and ``id`` are
            set when they could be read, so a server can answer with the right error frame.
    """
    result: ClientMessage = _decode(text, _CLIENT, "client")
    return result


def decode_server(text: str | bytes) -> ServerMessage:
    """Decode a server -> client frame.

    Raises:
        RemoteProtocolError: as :func:`decode_client`.
    """
    result: ServerMessage = _decode(text, _SERVER, "server")
    return result


_RAW_DECODE: Final = json.JSONDecoder().raw_decode


def loads(text: str) -> Any:
    """``json.loads(text)``, faster: the same value, or the same error.

    With ``orjson`` installed, its value is returned when it is certainly ``json``'s (see
    the module docstring); anything else goes to ``json``.  ``json.loads`` scans for
    whitespace before and after the value with a regular expression each time; a received
    event almost never has any.  ``raw_decode`` parses
    the value alone, and only text it does not consume entirely (whitespace, trailing
    data, or an error) goes through ``json.loads``, which then returns the same value or
    raises the same error as it always would.

    Raises:
        ValueError: ``text`` is not one JSON value (``json.JSONDecodeError``).
    """
    fast = _FAST
    if fast is not None:
        try:
            value = fast(text)
        except ValueError:
            pass
        else:
            if type(value) is dict:  # the common event: an object of plain values
                for item in value.values():
                    if type(item) in _NOT_PLAIN:
                        break
                else:
                    return value
            if _exact(value):
                return value
    try:
        value, end = _RAW_DECODE(text)
    except ValueError:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def parse_data_frame(text: str) -> tuple[str, str] | None:
    """Fast path for the hottest frame: ``(id, event)`` of a well-formed ``data`` frame.

    Returns ``None`` for anything else (another type, a malformed frame, invalid JSON):
    decode those with :func:`decode_server`, which names the problem.  A client receiving
    a flood of events parses each frame once here instead of building a ``Data``.
    """
    fast = _FAST
    if fast is not None:
        # A text orjson refuses, or one json might not read as orjson did (see _exact),
        # is the general path's to judge.
        try:
            obj = fast(text)
        except ValueError:
            return None
        # A frame with whitespace around it takes the general path, as below (an object
        # is never empty text).
        if type(obj) is not dict or text[0] != "{" or text[-1] != "}":
            return None
        # Three members that pass the checks below are three strings: exact.  Only a
        # frame with more (or fewer) members has values to check.
        if len(obj) != 3:
            for item in obj.values():
                if type(item) in _NOT_PLAIN:
                    if not _exact(obj):
                        return None
                    break
    else:
        try:
            # raw_decode skips json.loads' two whitespace regex scans; a frame with
            # whitespace around it (or anything after it) takes the general path instead.
            obj, end = _RAW_DECODE(text)
        except (ValueError, RecursionError):
            return None
        if end != len(text) or type(obj) is not dict:
            return None
    if obj.get("type") != "data":
        return None
    id = obj.get("id")
    event = obj.get("event")
    if type(id) is not str or type(event) is not str:
        return None
    return id, event


# EMULATOR-CHOICE: an over-limit frame is never JSON-parsed, yet the useful answer to a
# big publish is publish_error for its id.  These bounded patterns read the type and id
# from the raw text; an escaped quote inside a JSON string never matches.
_SNIFF_TYPE: Final = re.compile(r'"type"\s*:\s*"([a-z_]{1,32})"')
_SNIFF_ID: Final = re.compile(r'"id"\s*:\s*"([A-Za-z0-9_+\-]{1,128})"')


def sniff_frame(text: str) -> tuple[str | None, str | None]:
    """Return the ``type`` and ``id`` a frame seems to carry, without parsing it.

    For frames too large to parse: the first ``"type"`` and ``"id"`` string members found
    (an id only if it is a valid operation id), ``None`` for what is not found.
    """
    type_match = _SNIFF_TYPE.search(text)
    id_match = _SNIFF_ID.search(text)
    return (
        type_match.group(1) if type_match else None,
        id_match.group(1) if id_match else None,
    )


def is_json_object(text: str) -> bool:
    """Whether ``text`` is one JSON object (of any content)."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict)


def decode(text: str | bytes) -> Frame:
    """Decode a frame of either direction."""
    fields = _load(text)
    assert fields.type is not None
    if fields.type in _CLIENT:
        return _CLIENT[fields.type](fields)
    return decode_server(text)


def decode_errors(value: object) -> tuple[ErrorDetail, ...]:
    """Decode a bare ``errors`` array (e.g. from an HTTP error body)."""
    return _Fields({"errors": value}, None).errors()


def decode_error_body(text: str | bytes) -> tuple[ErrorDetail, ...]:
    """Decode an HTTP error body ``{"errors":[...]}``.

    Raises:
        RemoteProtocolError: the body is not such an object.
    """
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"invalid JSON in error body: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"error body must be a JSON object, not {_kind(obj)}")
    return _Fields(obj, None).errors()


def decode_publish_body(text: str | bytes) -> tuple[str, tuple[str, ...]]:
    """Decode an HTTP ``POST /event`` body into ``(channel, events)``.

    The body is described in docs: protocol.rst, "The request".

    Only the shape is checked (unknown fields are ignored); the channel syntax and the
    event count and contents are the caller's to validate.

    Raises:
        RemoteProtocolError: the body is not a JSON object with a string ``channel`` and an
            array of strings ``events``.
    """
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"invalid JSON in publish body: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"publish body must be a JSON object, not {_kind(obj)}")
    fields = _Fields(obj, None)
    return fields.string("channel"), fields.string_list("events")


def decode_publish_result(
    text: str | bytes,
) -> tuple[tuple[PublishedEvent, ...], tuple[FailedEvent, ...]]:
    """Decode an HTTP 200 publish body into ``(successful, failed)``.

    Raises:
        RemoteProtocolError: the body is malformed.
    """
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"invalid JSON in publish response: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(f"publish response must be a JSON object, not {_kind(obj)}")
    fields = _Fields(obj, None)
    return fields.published(), fields.failed()
