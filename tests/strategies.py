"""Hypothesis strategies for the wire protocol: ids, channels, JSON, and every message type."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from appsync_events.errors import ErrorDetail
from appsync_events.protocol.limits import ID_PATTERN
from appsync_events.protocol.messages import (
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
    "CLIENT_TYPES",
    "FIELD_NAMES",
    "MESSAGE_STRATEGIES",
    "SERVER_TYPES",
    "authorizations",
    "channel_segments",
    "channels",
    "client_messages",
    "error_details",
    "frame_like_objects",
    "ids",
    "json_texts",
    "json_values",
    "messages",
    "texts_with_lone_surrogates",
    "namespaces",
    "server_messages",
    "wire_ints",
]

CLIENT_TYPES = ("connection_init", "subscribe", "unsubscribe", "publish")
SERVER_TYPES = (
    "connection_ack",
    "ka",
    "connection_error",
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
FIELD_NAMES = (
    "type",
    "id",
    "channel",
    "events",
    "authorization",
    "connectionTimeoutMs",
    "errors",
    "errorType",
    "message",
    "errorCode",
    "event",
    "successful",
    "failed",
    "identifier",
    "index",
    "code",
    "errorMessage",
    "payload",
)
"""Every field name the codec reads (docs: protocol.rst, "The envelope"), plus a legacy extra."""

_SEGMENT_RE = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?"

ids = st.from_regex(ID_PATTERN, fullmatch=True)
"""Valid operation ids (docs: protocol.rst, "The envelope")."""

wire_ints = st.integers(min_value=-(2**63), max_value=2**63)
"""Integers as JSON carries them (kept well below Python's int-string conversion limit)."""

channel_segments = st.from_regex(_SEGMENT_RE, fullmatch=True)
"""One valid channel segment: 1-50 of ``[A-Za-z0-9-]``, no leading or trailing ``-``."""

namespaces = channel_segments


@st.composite
def channels(
    draw: st.DrawFn, *, min_segments: int = 1, max_segments: int = 5, slashes: bool = True
) -> str:
    """A valid concrete channel, with an optional leading and trailing ``/``."""
    segments = draw(st.lists(channel_segments, min_size=min_segments, max_size=max_segments))
    text = "/".join(segments)
    if slashes:
        if draw(st.booleans()):
            text = "/" + text
        if draw(st.booleans()):
            text += "/"
    return text


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | wire_ints
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value."""


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    """JSON text of any value, compact or spaced, ASCII-escaped or not."""
    value = draw(json_values)
    if draw(st.booleans()):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=draw(st.booleans()))
    return json.dumps(value, indent=draw(st.sampled_from([None, 1, 2])))


texts_with_lone_surrogates = st.lists(
    st.sampled_from(["\ud800", "\udbff", "\udc80", "\udfff"]) | st.text(max_size=6), max_size=4
).map("".join)
"""Text in which lone surrogates are common (a JSON ``\\udXXX`` escape decodes to one)."""

authorizations = st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5)
"""An authorization header map (any strings)."""

error_details = st.builds(
    ErrorDetail,
    error_type=st.text(max_size=30),
    message=st.text(max_size=60),
    error_code=st.none() | wire_ints,
)
_errors = st.lists(error_details, max_size=3).map(tuple)

# The codec carries ids and channels as opaque strings: arbitrary text (not only valid ids)
# must survive a round trip.
_opaque = ids | st.text()

published_events = st.builds(PublishedEvent, identifier=st.text(), index=wire_ints)
failed_events = st.builds(
    FailedEvent,
    identifier=st.text(),
    index=wire_ints,
    code=st.none() | st.text(),
    message=st.none() | st.text(),
)

_client: dict[str, st.SearchStrategy[ClientMessage]] = {
    "connection_init": st.just(ConnectionInit()),
    "subscribe": st.builds(
        Subscribe, id=_opaque, channel=_opaque, authorization=st.none() | authorizations
    ),
    "unsubscribe": st.builds(Unsubscribe, id=_opaque),
    "publish": st.builds(
        Publish,
        id=_opaque,
        channel=_opaque,
        events=st.lists(json_texts() | st.text(), max_size=6).map(tuple),
        authorization=st.none() | authorizations,
    ),
}

_server: dict[str, st.SearchStrategy[ServerMessage]] = {
    "connection_ack": st.builds(ConnectionAck, connection_timeout_ms=st.none() | wire_ints),
    "ka": st.just(KeepAlive()),
    "connection_error": st.builds(ConnectionErrorMessage, errors=_errors),
    "subscribe_success": st.builds(SubscribeSuccess, id=_opaque),
    "subscribe_error": st.builds(SubscribeError, id=_opaque, errors=_errors),
    "data": st.builds(Data, id=_opaque, event=json_texts() | st.text()),
    "broadcast_error": st.builds(BroadcastError, id=_opaque, errors=_errors),
    "unsubscribe_success": st.builds(UnsubscribeSuccess, id=_opaque),
    "unsubscribe_error": st.builds(UnsubscribeError, id=_opaque, errors=_errors),
    "publish_success": st.builds(
        PublishSuccess,
        id=_opaque,
        successful=st.lists(published_events, max_size=5).map(tuple),
        failed=st.lists(failed_events, max_size=5).map(tuple),
    ),
    "publish_error": st.builds(PublishError, id=_opaque, errors=_errors),
    "error": st.builds(ErrorMessage, id=st.none() | _opaque, errors=_errors),
}

assert tuple(_client) == CLIENT_TYPES
assert tuple(_server) == SERVER_TYPES

MESSAGE_STRATEGIES: dict[str, st.SearchStrategy[Frame]] = {**_client, **_server}
"""One strategy per wire ``type``."""

client_messages: st.SearchStrategy[ClientMessage] = st.one_of(*_client.values())
server_messages: st.SearchStrategy[ServerMessage] = st.one_of(*_server.values())
messages: st.SearchStrategy[Frame] = st.one_of(client_messages, server_messages)


def _field_values() -> st.SearchStrategy[Any]:
    # Values that are each "right" for some field and "wrong" for others.
    return (
        json_values
        | st.sampled_from(CLIENT_TYPES + SERVER_TYPES)
        | st.lists(st.text(max_size=5), max_size=3)
        | st.lists(
            st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=5), max_size=3
        )
        | st.dictionaries(st.text(max_size=5), st.text(max_size=5) | json_values, max_size=3)
    )


@st.composite
def frame_like_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object that looks like a frame: a known (or odd) type and random fields."""
    obj: dict[str, Any] = draw(
        st.dictionaries(st.sampled_from(FIELD_NAMES), _field_values(), max_size=6)
    )
    choice = draw(st.integers(0, 9))
    if choice < 8:
        obj["type"] = draw(st.sampled_from(CLIENT_TYPES + SERVER_TYPES))
    elif choice == 8:
        obj["type"] = draw(json_values)
    return obj
