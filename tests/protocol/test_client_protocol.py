"""Unit tests of the sans-I/O ClientProtocol: no loop, no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appsync_events import RawJSON
from appsync_events.errors import (
    BroadcastError,
    ConfigurationError,
    ConnectionClosedError,
    ErrorDetail,
    HandshakeError,
    InvalidChannelError,
    LocalProtocolError,
    OperationError,
    PublishError,
    RemoteProtocolError,
    SubscribeError,
    UnauthorizedError,
    UnsubscribeError,
)
from appsync_events.protocol.client import (
    BroadcastFailed,
    ClientProtocol,
    ClientState,
    ConnectionAccepted,
    ConnectionFailed,
    EventReceived,
    FrameIgnored,
    KeepAliveReceived,
    PublishAccepted,
    PublishRejected,
    SubscribeAccepted,
    SubscribeRejected,
    UnsubscribeAccepted,
    UnsubscribeRejected,
    connection_error,
    is_unauthorized,
    operation_error,
)
from appsync_events.protocol.limits import is_valid_id
from appsync_events.protocol.messages import FailedEvent, Operation, Outgoing, PublishedEvent
from appsync_events.protocol.publish import PreparedPublish

AUTH = {"x-api-key": "da2-key", "host": "example.com"}
UNAUTHORIZED = {
    "errorType": "UnauthorizedException",
    "message": "You are not authorized to make this call.",
    "errorCode": 401,
}
PROCESSING = {"errorType": "SubscriptionProcessingError", "message": "nope"}
CONNECTION_LOST: type[Exception] = ConnectionClosedError
"""What a connection_error after the ack fails the connection with (ConnectionClosedError,
carrying the service's errors, once the errors module gives it ``errors=``)."""


def frames(p: ClientProtocol) -> list[dict[str, Any]]:
    return [json.loads(f.text) for f in p.data_to_send()]


def publish(
    p: ClientProtocol,
    channel: str,
    events: list[str],
    authorization: dict[str, str] | None = AUTH,
    operation_id: str | None = None,
) -> str:
    """Prepare and send a publish of the JSON texts ``events``."""
    prepared = p.prepare_publish(channel, [RawJSON(e) for e in events], html_escape=False)
    return p.send_publish(prepared, authorization, operation_id)


def feed(p: ClientProtocol, frame: dict[str, Any] | str) -> list[Any]:
    p.receive_text(frame if isinstance(frame, str) else json.dumps(frame))
    return p.events_received()


def opened(ms: int | None = 300000) -> ClientProtocol:
    p = ClientProtocol()
    p.send_connection_init()
    p.data_to_send()
    ack: dict[str, Any] = {"type": "connection_ack"}
    if ms is not None:
        ack["connectionTimeoutMs"] = ms
    feed(p, ack)
    return p


def subscribed(p: ClientProtocol, channel: str = "default/x", sub_id: str = "s1") -> str:
    p.send_subscribe(channel, AUTH, sub_id)
    p.data_to_send()
    feed(p, {"type": "subscribe_success", "id": sub_id})
    return sub_id


# --- handshake ----------------------------------------------------------------------------


def test_client_protocol_starts_connecting() -> None:
    """A new protocol is CONNECTING and has nothing to send."""
    p = ClientProtocol()
    assert p.state is ClientState.CONNECTING
    assert p.data_to_send() == []
    assert p.events_received() == []
    assert p.keepalive_timeout is None
    assert p.failure is None


def test_client_protocol_sends_connection_init_once() -> None:
    """connection_init is queued once; a second one is misuse."""
    p = ClientProtocol()
    p.send_connection_init()
    assert frames(p) == [{"type": "connection_init"}]
    with pytest.raises(LocalProtocolError, match="already sent"):
        p.send_connection_init()
    assert p.data_to_send() == []


def test_client_protocol_ack_opens_with_timeout() -> None:
    """connection_ack opens the connection and exposes connectionTimeoutMs as data."""
    p = ClientProtocol()
    p.send_connection_init()
    events = feed(p, {"type": "connection_ack", "connectionTimeoutMs": 300000})
    assert events == [ConnectionAccepted(connection_timeout_ms=300000)]
    assert events[0].keepalive_timeout == 300.0
    assert p.state is ClientState.OPEN
    assert p.keepalive_timeout == 300.0
    assert p.connection_timeout_ms == 300000


@pytest.mark.parametrize("ms", [None, 0, -5])
def test_client_protocol_ack_without_usable_timeout(ms: int | None) -> None:
    """An ack without a positive connectionTimeoutMs leaves the timeout to the shell."""
    p = ClientProtocol()
    p.send_connection_init()
    frame: dict[str, Any] = {"type": "connection_ack"}
    if ms is not None:
        frame["connectionTimeoutMs"] = ms
    events = feed(p, frame)
    assert events == [ConnectionAccepted(connection_timeout_ms=None)]
    assert events[0].keepalive_timeout is None
    assert p.keepalive_timeout is None
    assert p.state is ClientState.OPEN


def test_client_protocol_second_ack_ignored() -> None:
    """A second connection_ack is ignored and keeps the first timeout."""
    p = opened(300)
    events = feed(p, {"type": "connection_ack", "connectionTimeoutMs": 5})
    assert events == [
        FrameIgnored(
            frame_type="connection_ack", id=None, reason="unexpected second connection_ack"
        )
    ]
    assert p.connection_timeout_ms == 300
    assert p.state is ClientState.OPEN


def test_client_protocol_init_after_open_is_misuse() -> None:
    """connection_init cannot be sent on an open connection."""
    p = opened()
    with pytest.raises(LocalProtocolError, match="connection is open"):
        p.send_connection_init()


def test_client_protocol_keepalive() -> None:
    """ka is reported before and after the ack."""
    p = ClientProtocol()
    assert feed(p, {"type": "ka"}) == [KeepAliveReceived()]
    assert p.state is ClientState.CONNECTING
    p = opened()
    assert feed(p, {"type": "ka"}) == [KeepAliveReceived()]


@pytest.mark.parametrize(
    ("errors", "expected"),
    [([UNAUTHORIZED], UnauthorizedError), ([PROCESSING], HandshakeError)],
)
def test_client_protocol_connection_error_in_handshake(
    errors: list[dict[str, Any]], expected: type[Exception]
) -> None:
    """connection_error fails the connection with the details."""
    p = ClientProtocol()
    p.send_connection_init()
    [event] = feed(p, {"type": "connection_error", "errors": errors})
    assert isinstance(event, ConnectionFailed)
    assert isinstance(event.error, expected)
    assert event.error is p.failure
    assert p.state is ClientState.FAILED
    assert event.error.errors[0].error_type == errors[0]["errorType"]  # type: ignore[attr-defined]
    if expected is UnauthorizedError:
        assert event.error.operation == "connect"  # type: ignore[attr-defined]
        assert event.error.errors[0].error_code == 401  # type: ignore[attr-defined]


def test_client_protocol_connection_error_when_open() -> None:
    """connection_error after the ack fails the connection too."""
    p = opened()
    [event] = feed(p, {"type": "connection_error", "errors": [PROCESSING]})
    assert isinstance(event, ConnectionFailed)
    assert type(event.error) is CONNECTION_LOST
    assert p.state is ClientState.FAILED


# --- subscribe ----------------------------------------------------------------------------


def test_client_protocol_subscribe_frame() -> None:
    """send_subscribe queues the frame with the channel as given and returns a valid id."""
    p = opened()
    id = p.send_subscribe("/default/*", AUTH)
    assert is_valid_id(id)
    assert frames(p) == [
        {"type": "subscribe", "id": id, "channel": "/default/*", "authorization": AUTH}
    ]
    assert p.pending == {id: Operation.SUBSCRIBE}
    assert p.subscriptions == {}


def test_client_protocol_subscribe_without_authorization() -> None:
    """authorization=None leaves the field out."""
    p = opened()
    id = p.send_subscribe("default/x", None, "abc")
    assert id == "abc"
    assert frames(p) == [{"type": "subscribe", "id": "abc", "channel": "default/x"}]


def test_client_protocol_subscribe_ids_are_random() -> None:
    """Generated ids differ."""
    p = opened()
    assert len({p.send_subscribe("default/x", None) for _ in range(20)}) == 20


def test_client_protocol_subscribe_pipelined_before_ack() -> None:
    """Operations may be sent before the ack (init-less or pipelined)."""
    p = ClientProtocol()
    id = p.send_subscribe("default/x", AUTH, "s1")
    assert feed(p, {"type": "subscribe_success", "id": id}) == [
        SubscribeAccepted(id="s1", channel="default/x")
    ]
    assert p.state is ClientState.CONNECTING


@pytest.mark.parametrize("channel", ["", "default/a_b", "a/b/c/d/e/f", "default/*/x", "-a/b"])
def test_client_protocol_subscribe_invalid_channel(channel: str) -> None:
    """An invalid channel is refused before anything is queued."""
    p = opened()
    with pytest.raises(InvalidChannelError):
        p.send_subscribe(channel, AUTH)
    assert p.data_to_send() == []
    assert p.pending == {}


@pytest.mark.parametrize("id", ["", "has space", "x" * 129, "é"])
def test_client_protocol_invalid_id(id: str) -> None:
    """An id outside [a-zA-Z0-9-_+]{1,128} is misuse."""
    p = opened()
    with pytest.raises(LocalProtocolError, match="invalid operation id"):
        p.send_subscribe("default/x", AUTH, id)
    assert p.data_to_send() == []


def test_client_protocol_duplicate_id() -> None:
    """An id in use (pending, active) cannot be reused."""
    p = opened()
    p.send_subscribe("default/x", AUTH, "dup")
    with pytest.raises(LocalProtocolError, match="already in use"):
        publish(p, "default/x", ["1"], operation_id="dup")
    feed(p, {"type": "subscribe_success", "id": "dup"})
    with pytest.raises(LocalProtocolError, match="already in use"):
        p.send_subscribe("default/y", AUTH, "dup")
    assert len(p.data_to_send()) == 1


def test_client_protocol_subscribe_success_and_data() -> None:
    """subscribe_success activates the subscription; its data is reported."""
    p = opened()
    p.send_subscribe("default/x", AUTH, "s1")
    assert feed(p, {"type": "subscribe_success", "id": "s1"}) == [
        SubscribeAccepted(id="s1", channel="default/x")
    ]
    assert p.subscriptions == {"s1": "default/x"}
    assert p.pending == {}
    assert feed(p, {"type": "data", "id": "s1", "event": '{"a":1}'}) == [
        EventReceived(data='{"a":1}', subscription_id="s1", channel="default/x")
    ]


def test_client_protocol_data_for_unknown_id_ignored() -> None:
    """data for an unknown id is ignored, not fatal (unlike the Go client)."""
    p = opened()
    assert feed(p, {"type": "data", "id": "nope", "event": "{}"}) == [
        FrameIgnored(frame_type="data", id="nope", reason="data for an unknown subscription")
    ]
    assert p.state is ClientState.OPEN


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([PROCESSING], SubscribeError),
        ([UNAUTHORIZED], UnauthorizedError),
        ([{"errorType": "Unauthorized", "message": "handler said no"}], UnauthorizedError),
    ],
)
def test_client_protocol_subscribe_error(
    errors: list[dict[str, Any]], expected: type[Exception]
) -> None:
    """subscribe_error rejects the pending subscribe with the right exception."""
    p = opened()
    p.send_subscribe("default/x", AUTH, "s1")
    [event] = feed(p, {"type": "subscribe_error", "id": "s1", "errors": errors})
    assert isinstance(event, SubscribeRejected)
    assert (event.id, event.channel) == ("s1", "default/x")
    assert isinstance(event.error, expected)
    assert event.error.errors == event.errors  # type: ignore[attr-defined]
    if expected is SubscribeError:
        assert event.error.channel == "default/x"  # type: ignore[attr-defined]
        assert event.error.id == "s1"  # type: ignore[attr-defined]
    assert p.pending == {}
    assert p.subscriptions == {}


def test_client_protocol_answer_for_unknown_id_ignored() -> None:
    """Answers nobody waits for are ignored."""
    p = opened()
    for frame_type in ("subscribe_success", "unsubscribe_success", "publish_success"):
        [event] = feed(p, {"type": frame_type, "id": "zz"})
        assert isinstance(event, FrameIgnored)
        assert (event.frame_type, event.id) == (frame_type, "zz")
    [event] = feed(p, {"type": "subscribe_error", "id": "zz", "errors": [PROCESSING]})
    assert isinstance(event, FrameIgnored)


def test_client_protocol_answer_of_wrong_kind_ignored() -> None:
    """subscribe_success for a pending publish id is ignored; the publish stays pending."""
    p = opened()
    publish(p, "default/x", ["1"], operation_id="p1")
    [event] = feed(p, {"type": "subscribe_success", "id": "p1"})
    assert event == FrameIgnored(
        frame_type="subscribe_success", id="p1", reason="no pending subscribe with this id"
    )
    assert p.pending == {"p1": Operation.PUBLISH}


# --- publish ------------------------------------------------------------------------------


def test_client_protocol_publish_frame() -> None:
    """send_publish queues the prepared events as they are, in order."""
    p = opened()
    operation_id = publish(p, "default/x", ['{"a":1}', "2", '"three"', "null", "[1]"])
    assert frames(p) == [
        {
            "type": "publish",
            "id": operation_id,
            "channel": "default/x",
            "events": ['{"a":1}', "2", '"three"', "null", "[1]"],
            "authorization": AUTH,
        }
    ]
    assert p.pending == {operation_id: Operation.PUBLISH}


def test_client_protocol_outgoing_carries_kind_and_id() -> None:
    """Every queued frame says its wire type and operation id; its text is the frame."""
    p = ClientProtocol()
    p.send_connection_init()
    p.send_subscribe("default/x", AUTH, "s1")
    publish(p, "default/x", ["1"], operation_id="p1")
    out = p.data_to_send()
    assert [(o.kind, o.id) for o in out] == [
        ("connection_init", None),
        ("subscribe", "s1"),
        ("publish", "p1"),
    ]
    assert all(isinstance(o, Outgoing) and json.loads(o.text)["type"] == o.kind for o in out)
    feed(p, {"type": "connection_ack"})
    feed(p, {"type": "subscribe_success", "id": "s1"})
    p.send_unsubscribe("s1")
    assert p.data_to_send() == [Outgoing("unsubscribe", "s1", '{"type":"unsubscribe","id":"s1"}')]


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([], "at least one event"),
        (["1"] * 6, "6 events in one publish; at most 5"),
        (["{"], "event 0 is not valid JSON"),
        (["1", "nope"], "event 1 is not valid JSON"),
        (['"' + "x" * (240 * 1024) + '"'], "event 0 is 245762 bytes"),
        (['"' + "\ud800" * (80 * 1024) + '"'], "event 0 is 245762 bytes"),
        (["1", "NaN"], "event 1 is not valid JSON: NaN is not a JSON value"),
        (['"\udc80"'], "event 0 is not valid JSON: lone surrogate U\\+DC80 at char 1"),
    ],
)
def test_client_protocol_publish_refused_locally(events: Any, match: str) -> None:
    """Bad events raise ConfigurationError before anything is queued."""
    p = opened()
    with pytest.raises(ConfigurationError, match=match):
        publish(p, "default/x", events)
    assert p.data_to_send() == []
    assert p.pending == {}


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ("{}", "not one str"),
        (b"{}", "not one bytes"),
        (RawJSON("{}"), "not one RawJSON"),
        (42, "not int"),
    ],
)
def test_client_protocol_prepare_refuses_a_lone_event(events: Any, match: str) -> None:
    """events must be a sequence of events, not one event."""
    p = opened()
    with pytest.raises(ConfigurationError, match=f"events must be a sequence of events, {match}"):
        p.prepare_publish("default/x", events, html_escape=False)


def test_client_protocol_prepare_uses_its_limits() -> None:
    """prepare_publish applies the protocol's event count and size limits."""
    p = ClientProtocol(max_events_per_publish=2, max_event_bytes=4)
    with pytest.raises(ConfigurationError, match="3 events in one publish; at most 2"):
        p.prepare_publish("default/x", [1, 2, 3], html_escape=False)
    with pytest.raises(ConfigurationError, match="event 1 is 5 bytes, over the 4-byte limit"):
        p.prepare_publish("default/x", [1, 12345], html_escape=False)


def test_client_protocol_send_publish_takes_prepared_only() -> None:
    """send_publish refuses anything but a PreparedPublish (nothing is queued)."""
    p = opened()
    with pytest.raises(LocalProtocolError, match="takes the PreparedPublish"):
        p.send_publish(("default/x", ("1",)), AUTH)  # type: ignore[arg-type]
    assert p.data_to_send() == []
    assert p.pending == {}


def test_client_protocol_prepared_publish_sent_as_prepared() -> None:
    """The prepared channel and texts are sent unchanged (not checked again)."""
    p = opened()
    prepared = p.prepare_publish("/default/x/", ["<b>", {"k": "é"}], html_escape=True)
    assert prepared == PreparedPublish("/default/x/", ('"\\u003cb\\u003e"', '{"k":"é"}'))
    operation_id = p.send_publish(prepared, None)
    [frame] = frames(p)
    assert frame == {
        "type": "publish",
        "id": operation_id,
        "channel": "/default/x/",
        "events": list(prepared.events),
    }


def test_client_protocol_publish_event_at_size_limit() -> None:
    """An event of exactly 240 KB is allowed."""
    p = opened()
    event = '"' + "x" * (240 * 1024 - 2) + '"'
    publish(p, "default/x", [event], None)
    assert len(p.data_to_send()) == 1


def test_client_protocol_publish_frame_too_large() -> None:
    """A frame over the request limit is refused."""
    p = ClientProtocol(max_request_bytes=100)
    with pytest.raises(ConfigurationError, match="request limit"):
        publish(p, "default/x", ['"' + "x" * 80 + '"'])
    assert p.data_to_send() == []
    assert p.pending == {}


@pytest.mark.parametrize("channel", ["default/*", "a/b/c/d/e/f", "de_fault/x"])
def test_client_protocol_publish_invalid_channel(channel: str) -> None:
    """Wildcards and invalid channels cannot be published to."""
    p = opened()
    with pytest.raises(InvalidChannelError):
        publish(p, channel, ["1"])
    assert p.data_to_send() == []


def test_client_protocol_publish_success() -> None:
    """publish_success reports per-event results."""
    p = opened()
    publish(p, "default/x", ["1", "2"], operation_id="p1")
    [event] = feed(
        p,
        {
            "type": "publish_success",
            "id": "p1",
            "successful": [{"identifier": "a", "index": 0}],
            "failed": [{"identifier": "b", "index": 1, "code": "E", "message": "too big"}],
        },
    )
    assert event == PublishAccepted(
        id="p1",
        channel="default/x",
        successful=(PublishedEvent(identifier="a", index=0),),
        failed=(FailedEvent(identifier="b", index=1, code="E", message="too big"),),
    )
    assert p.pending == {}


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([{"errorType": "BadRequestException", "message": "sig"}], PublishError),
        ([UNAUTHORIZED], UnauthorizedError),
    ],
)
def test_client_protocol_publish_error(
    errors: list[dict[str, Any]], expected: type[Exception]
) -> None:
    """publish_error rejects the pending publish."""
    p = opened()
    publish(p, "default/x", ["1"], operation_id="p1")
    [event] = feed(p, {"type": "publish_error", "id": "p1", "errors": errors})
    assert isinstance(event, PublishRejected)
    assert isinstance(event.error, expected)
    assert event.channel == "default/x"


# --- unsubscribe --------------------------------------------------------------------------


def test_client_protocol_unsubscribe() -> None:
    """unsubscribe keeps routing data until unsubscribe_success, then forgets the id."""
    p = opened()
    subscribed(p)
    p.send_unsubscribe("s1")
    assert frames(p) == [{"type": "unsubscribe", "id": "s1"}]
    assert p.pending == {"s1": Operation.UNSUBSCRIBE}
    assert feed(p, {"type": "data", "id": "s1", "event": "1"}) == [
        EventReceived(data="1", subscription_id="s1", channel="default/x")
    ]
    assert feed(p, {"type": "unsubscribe_success", "id": "s1"}) == [
        UnsubscribeAccepted(id="s1", channel="default/x")
    ]
    assert p.subscriptions == {}
    [ignored] = feed(p, {"type": "data", "id": "s1", "event": "1"})
    assert isinstance(ignored, FrameIgnored)


def test_client_protocol_unsubscribe_unknown_is_misuse() -> None:
    """Unsubscribing an id that is not an active subscription is misuse."""
    p = opened()
    with pytest.raises(LocalProtocolError, match="not an active subscription"):
        p.send_unsubscribe("nope")
    p.send_subscribe("default/x", AUTH, "pending")
    with pytest.raises(LocalProtocolError, match="not an active subscription"):
        p.send_unsubscribe("pending")
    p.data_to_send()
    subscribed(p, sub_id="s1")
    p.send_unsubscribe("s1")
    with pytest.raises(LocalProtocolError, match="already pending"):
        p.send_unsubscribe("s1")
    assert len(p.data_to_send()) == 1


def test_client_protocol_unsubscribe_error() -> None:
    """unsubscribe_error rejects the unsubscribe and drops the subscription."""
    p = opened()
    subscribed(p)
    p.send_unsubscribe("s1")
    errors = [{"errorType": "UnknownOperationError", "message": "Unknown operation id s1"}]
    [event] = feed(p, {"type": "unsubscribe_error", "id": "s1", "errors": errors})
    assert isinstance(event, UnsubscribeRejected)
    assert type(event.error) is UnsubscribeError
    assert p.subscriptions == {}


# --- broadcast_error and generic error ---------------------------------------------------------


def test_client_protocol_broadcast_error() -> None:
    """broadcast_error goes to its subscription, always as BroadcastError."""
    p = opened()
    subscribed(p)
    [event] = feed(p, {"type": "broadcast_error", "id": "s1", "errors": [UNAUTHORIZED]})
    assert isinstance(event, BroadcastFailed)
    assert type(event.error) is BroadcastError
    assert p.subscriptions == {"s1": "default/x"}
    [event] = feed(p, {"type": "broadcast_error", "id": "zz", "errors": [PROCESSING]})
    assert isinstance(event, FrameIgnored)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("subscribe", SubscribeRejected),
        ("publish", PublishRejected),
        ("unsubscribe", UnsubscribeRejected),
    ],
)
def test_client_protocol_error_with_id_routed(kind: str, expected: type[Any]) -> None:
    """An error frame with an id rejects the pending operation with that id."""
    p = opened()
    if kind == "subscribe":
        p.send_subscribe("default/x", AUTH, "op")
    elif kind == "publish":
        publish(p, "default/x", ["1"], operation_id="op")
    else:
        subscribed(p, sub_id="op")
        p.send_unsubscribe("op")
    [event] = feed(p, {"type": "error", "id": "op", "errors": [PROCESSING]})
    assert type(event) is expected
    assert p.pending == {}


def test_client_protocol_error_for_active_subscription() -> None:
    """An error frame with the id of an active subscription is delivered to it."""
    p = opened()
    subscribed(p)
    [event] = feed(p, {"type": "error", "id": "s1", "errors": [PROCESSING]})
    assert isinstance(event, BroadcastFailed)


def test_client_protocol_error_for_unknown_id_ignored() -> None:
    """An error frame with an unknown id is ignored."""
    p = opened()
    [event] = feed(p, {"type": "error", "id": "zz", "errors": [PROCESSING]})
    assert event == FrameIgnored(
        frame_type="error", id="zz", reason="error for an unknown operation"
    )
    assert p.state is ClientState.OPEN


def test_client_protocol_error_without_id_goes_to_oldest_pending() -> None:
    """An error frame without id rejects the oldest pending operation."""
    p = opened()
    publish(p, "default/x", ["1"], operation_id="first")
    p.send_subscribe("default/x", AUTH, "second")
    [event] = feed(p, {"type": "error", "errors": [PROCESSING]})
    assert isinstance(event, PublishRejected)
    assert event.id == "first"
    assert p.pending == {"second": Operation.SUBSCRIBE}


@pytest.mark.parametrize(
    ("opened_first", "errors", "expected"),
    [
        (True, [PROCESSING], CONNECTION_LOST),
        (True, [UNAUTHORIZED], UnauthorizedError),
        (False, [PROCESSING], HandshakeError),
    ],
)
def test_client_protocol_error_without_id_nothing_pending(
    opened_first: bool, errors: list[dict[str, Any]], expected: type[Exception]
) -> None:
    """An error frame without id and nothing pending fails the connection."""
    p = opened() if opened_first else ClientProtocol()
    [event] = feed(p, {"type": "error", "errors": errors})
    assert isinstance(event, ConnectionFailed)
    assert isinstance(event.error, expected)
    assert p.state is ClientState.FAILED


# --- bad peer input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid JSON"),
        ("[1]", "frame must be a JSON object"),
        ('{"id":"x"}', "missing field 'type'"),
        ('{"type":"data","id":"x"}', "missing field 'event'"),
        ('{"type":"subscribe_error","id":"x","errors":[{"message":"m"}]}', "errorType"),
    ],
)
def test_client_protocol_bad_frame_fails(text: str, reason: str) -> None:
    """A bad frame never raises: the protocol fails and stores a RemoteProtocolError."""
    p = opened()
    [event] = feed(p, text)
    assert isinstance(event, ConnectionFailed)
    assert isinstance(event.error, RemoteProtocolError)
    assert reason in str(event.error)
    assert p.state is ClientState.FAILED
    assert p.failure is event.error


def test_client_protocol_unknown_frame_type_ignored() -> None:
    """A frame type this client does not know is ignored (forward compatibility)."""
    p = opened()
    assert feed(p, {"type": "brand_new", "id": "x"}) == [
        FrameIgnored(frame_type="brand_new", id="x", reason="unknown frame type")
    ]
    assert p.state is ClientState.OPEN


def test_client_protocol_binary_frame_fails() -> None:
    """A binary frame fails the connection."""
    p = opened()
    p.receive_binary(b"\x00\x01")
    [event] = p.events_received()
    assert isinstance(event, ConnectionFailed)
    assert "binary frame of 2 bytes" in str(event.error)


def test_client_protocol_after_failure() -> None:
    """After a failure, frames are ignored and sends are misuse."""
    p = opened()
    feed(p, "garbage")
    failure = p.failure
    [event] = feed(p, {"type": "ka"})
    assert event == FrameIgnored(frame_type=None, id=None, reason="connection is failed")
    p.receive_binary(b"x")
    assert isinstance(p.events_received()[0], FrameIgnored)
    for send in (
        lambda: p.send_subscribe("default/x", AUTH),
        lambda: publish(p, "default/x", ["1"]),
        lambda: p.send_unsubscribe("s1"),
    ):
        with pytest.raises(LocalProtocolError, match="connection is failed"):
            send()
    p.receive_eof()
    assert p.state is ClientState.FAILED
    assert p.failure is failure


def test_client_protocol_eof_closes() -> None:
    """The end of the stream closes the protocol; nothing can be sent after it."""
    p = opened()
    p.receive_eof()
    assert p.state is ClientState.CLOSED
    assert feed(p, {"type": "ka"}) == [
        FrameIgnored(frame_type=None, id=None, reason="connection is closed")
    ]
    with pytest.raises(LocalProtocolError, match="connection is closed"):
        p.send_subscribe("default/x", AUTH)


# --- abandoned operations ----------------------------------------------------------------------


def test_client_protocol_abandoned_subscribe_is_unsubscribed_when_accepted() -> None:
    """A subscribe abandoned by the shell is unsubscribed if the service accepts it late."""
    p = opened()
    p.send_subscribe("default/x", AUTH, "s1")
    p.data_to_send()
    p.abandon("s1")
    assert p.pending == {}
    with pytest.raises(LocalProtocolError, match="already in use"):
        p.send_subscribe("default/x", AUTH, "s1")
    [event] = feed(p, {"type": "subscribe_success", "id": "s1"})
    assert isinstance(event, FrameIgnored)
    assert frames(p) == [{"type": "unsubscribe", "id": "s1"}]
    assert p.subscriptions == {}
    [event] = feed(p, {"type": "data", "id": "s1", "event": "1"})
    assert isinstance(event, FrameIgnored)
    [event] = feed(p, {"type": "unsubscribe_success", "id": "s1"})
    assert event == FrameIgnored(
        frame_type="unsubscribe_success", id="s1", reason="answer to an internal unsubscribe"
    )
    assert p.pending == {}
    p.send_subscribe("default/x", AUTH, "s1")  # the id is free again


@pytest.mark.parametrize("with_id", [True, False])
def test_client_protocol_internal_unsubscribe_error_ignored(with_id: bool) -> None:
    """An error answering an internal unsubscribe is ignored."""
    p = opened()
    p.send_subscribe("default/x", AUTH, "s1")
    p.abandon("s1")
    feed(p, {"type": "subscribe_success", "id": "s1"})
    frame: dict[str, Any] = {"type": "error", "errors": [PROCESSING]}
    if with_id:
        frame["id"] = "s1"
    [event] = feed(p, frame)
    assert event == FrameIgnored(
        frame_type="error", id="s1", reason="answer to an internal unsubscribe"
    )
    assert p.pending == {}
    assert p.state is ClientState.OPEN


def test_client_protocol_abandoned_subscribe_rejected_late() -> None:
    """A late subscribe_error for an abandoned subscribe is ignored (and stays abandoned)."""
    p = opened()
    p.send_subscribe("default/x", AUTH, "s1")
    p.abandon("s1")
    [event] = feed(p, {"type": "subscribe_error", "id": "s1", "errors": [PROCESSING]})
    assert isinstance(event, FrameIgnored)


def test_client_protocol_abandoned_publish_answer_ignored() -> None:
    """A late publish_success after abandon is ignored."""
    p = opened()
    publish(p, "default/x", ["1"], operation_id="p1")
    p.abandon("p1")
    [event] = feed(p, {"type": "publish_success", "id": "p1", "successful": [], "failed": []})
    assert isinstance(event, FrameIgnored)
    publish(p, "default/x", ["1"], operation_id="p1")  # publish ids are free again


def test_client_protocol_abandoned_unsubscribe_drops_subscription() -> None:
    """An abandoned unsubscribe drops the subscription locally."""
    p = opened()
    subscribed(p)
    p.send_unsubscribe("s1")
    p.abandon("s1")
    assert p.subscriptions == {}
    assert p.pending == {}
    [event] = feed(p, {"type": "unsubscribe_success", "id": "s1"})
    assert isinstance(event, FrameIgnored)


def test_client_protocol_abandon_unknown_is_noop() -> None:
    """Abandoning an unknown id does nothing."""
    p = opened()
    p.abandon("nothing")
    assert p.pending == {}
    assert p.events_received() == []


# --- error mapping -------------------------------------------------------------------------------


def test_error_mapping_helpers() -> None:
    """is_unauthorized / operation_error / connection_error classify service errors."""
    auth = (ErrorDetail(error_type="X", message="m", error_code=403),)
    plain = (ErrorDetail(error_type="X", message="m"),)
    assert is_unauthorized(auth)
    assert not is_unauthorized(plain)
    assert not is_unauthorized(())
    error = operation_error("publish", plain, status=403)
    assert type(error) is PublishError
    assert error.status == 403  # type: ignore[attr-defined]
    assert type(operation_error("weird", plain)) is OperationError
    unauthorized = operation_error("publish", auth, status=401)
    assert isinstance(unauthorized, UnauthorizedError)
    assert unauthorized.status == 401
    assert type(operation_error("broadcast", auth)) is BroadcastError
    assert type(connection_error(plain, handshake=True)) is HandshakeError
    assert type(connection_error(plain, handshake=False)) is CONNECTION_LOST
    assert isinstance(connection_error(auth, handshake=False), UnauthorizedError)


def test_client_protocol_data_before_ack_takes_general_path() -> None:
    """data for a pipelined subscription before the ack is routed like on the fast path."""
    p = ClientProtocol()
    p.send_subscribe("default/x", AUTH, "s1")
    feed(p, {"type": "subscribe_success", "id": "s1"})
    assert feed(p, {"type": "data", "id": "s1", "event": "7"}) == [
        EventReceived(data="7", subscription_id="s1", channel="default/x")
    ]
    assert feed(p, {"type": "data", "id": "zz", "event": "7"}) == [
        FrameIgnored(frame_type="data", id="zz", reason="data for an unknown subscription")
    ]


def test_client_protocol_malformed_data_on_open_connection_fails() -> None:
    """A data frame the fast path rejects still fails the connection with a clear reason."""
    p = opened()
    subscribed(p)
    [event] = feed(p, {"type": "data", "id": "s1", "event": {"not": "a string"}})
    assert isinstance(event, ConnectionFailed)
    assert "field 'event' must be a string" in str(event.error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type":"data","id":"a","event":"{}"}', ("a", "{}")),
        ('{"event":"1","id":"a","type":"data","extra":[1]}', ("a", "1")),
        (' {"type":"data","id":"a","event":"1"}', None),  # whitespace: general path
        ('{"type":"data","id":"a","event":"1"} x', None),
        ('{"type":"ka"}', None),
        ('{"type":"data","id":1,"event":"1"}', None),
        ('{"type":"data","id":"a","event":{}}', None),
        ("[1]", None),
        ("not json", None),
        ("[" * 100_000, None),
    ],
)
def test_parse_data_frame(text: str, expected: tuple[str, str] | None) -> None:
    """codec.parse_data_frame accepts exactly well-formed data frames; the rest is None."""
    from appsync_events.protocol.codec import parse_data_frame

    assert parse_data_frame(text) == expected


def test_client_protocol_data_with_whitespace_still_routed() -> None:
    """A data frame the fast path declines (surrounding whitespace) is routed all the same."""
    p = opened()
    subscribed(p)
    p.receive_text(' {"type":"data","id":"s1","event":"1"}\n')
    assert p.events_received() == [
        EventReceived(data="1", subscription_id="s1", channel="default/x")
    ]
