"""Tests for the sans-I/O ServerProtocol (no sockets, no event loop)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from appsync_emulator.catalogue import (
    BINARY_FRAME,
    CONNECTION_UNAUTHORIZED,
    DUPLICATE_SUBSCRIPTION,
    INVALID_ID,
    NO_EVENTS,
    UNSUPPORTED_OPERATION,
    event_too_large,
    invalid_channel,
    invalid_event_json,
    invalid_message,
    request_too_large,
    subscription_limit,
    too_many_events,
    unknown_namespace,
    unknown_operation,
)
from appsync_emulator.server_protocol import (
    ErrorFrame,
    InitReceived,
    PublishRequested,
    Rejected,
    ServerProtocol,
    ServerState,
    SubscribeRequested,
    UnsubscribeRequested,
)
from appsync_emulator.validation import (
    check_events,
    check_publish,
    check_request_size,
    check_subscribe,
    utf8_length,
)
from appsync_events.errors import ErrorDetail, LocalProtocolError
from appsync_events.protocol import codec
from appsync_events.protocol.channels import Channel
from appsync_events.protocol.limits import ID_PATTERN, MAX_REQUEST_BYTES
from appsync_events.protocol.messages import (
    Data,
    ErrorMessage,
    FailedEvent,
    Publish,
    PublishedEvent,
    PublishError,
    Subscribe,
    SubscribeError,
    UnsubscribeError,
)

SUB_ID = "ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69"
PUB_ID = "0f6b7c1e-pub"

UNSUPPORTED_FRAME = (
    '{"type":"error","errors":[{"errorType":"UnsupportedOperation",'
    '"message":"Operation not supported through the realtime channel"}]}'
)
UNAUTHORIZED_FRAME = (
    '{"type":"connection_error","errors":[{"errorType":"UnauthorizedException",'
    '"message":"You are not authorized to make this call.","errorCode":401}]}'
)


def frame(**fields: Any) -> str:
    return json.dumps(fields, ensure_ascii=False)


def subscribe(id: str = SUB_ID, channel: str = "/default/a", **extra: Any) -> str:
    return frame(
        type="subscribe", id=id, channel=channel, authorization={"x-api-key": "k"}, **extra
    )


def publish(
    id: str = PUB_ID, channel: str = "default/a", events: Any = ('{"a":1}',), **extra: Any
) -> str:
    return frame(
        type="publish", id=id, channel=channel, events=list(events), authorization={}, **extra
    )


def unsubscribe(id: str = SUB_ID) -> str:
    return frame(type="unsubscribe", id=id)


INIT = '{"type":"connection_init"}'


def sent(proto: ServerProtocol) -> list[str]:
    return [frame.text for frame in proto.data_to_send()]


def error_frame(frame_type: str, id: str | None, error: ErrorDetail) -> str:
    """The exact wire text of a one-error reply, written out (not via the codec)."""
    detail = f'{{"errorType":{json.dumps(error.error_type, ensure_ascii=False)},'
    detail += f'"message":{json.dumps(error.message, ensure_ascii=False)}'
    if error.error_code is not None:
        detail += f',"errorCode":{error.error_code}'
    detail += "}"
    head = f'{{"type":"{frame_type}"'
    if id is not None:
        head += f',"id":{json.dumps(id, ensure_ascii=False)}'
    return f'{head},"errors":[{detail}]}}'


def state_of(proto: ServerProtocol) -> ServerState:
    """Read the state through a call, so type checkers do not narrow it across calls."""
    return proto.state


def subscribed(proto: ServerProtocol, id: str = SUB_ID, channel: str = "/default/a") -> None:
    """Drive a subscription to active and drain its frames."""
    proto.receive_text(subscribe(id, channel))
    assert [type(e) for e in proto.events_received()] == [SubscribeRequested]
    proto.accept_subscribe(id)
    assert sent(proto) == [f'{{"type":"subscribe_success","id":"{id}"}}']


# --- the error catalogue ------------------------------------------------------------------


def test_catalogue_constants_match_protocol_md() -> None:
    """The documented error constants carry the exact errorType/message/errorCode."""
    assert CONNECTION_UNAUTHORIZED == ErrorDetail(
        error_type="UnauthorizedException",
        message="You are not authorized to make this call.",
        error_code=401,
    )
    assert UNSUPPORTED_OPERATION == ErrorDetail(
        error_type="UnsupportedOperation",
        message="Operation not supported through the realtime channel",
    )
    assert DUPLICATE_SUBSCRIPTION == ErrorDetail(
        error_type="DuplicatedOperationError", message="Duplicate subscription ID"
    )
    assert unknown_operation("x-1") == ErrorDetail(
        error_type="UnknownOperationError", message="Unknown operation id x-1"
    )
    assert BINARY_FRAME.error_type == "BadRequestException"
    assert INVALID_ID.error_type == "BadRequestException"
    assert NO_EVENTS.error_type == "BadRequestException"


def test_catalogue_factories_format_their_messages() -> None:
    """Each factory names the rule, the value and the limit that failed."""
    assert invalid_channel("segment 2 is empty") == ErrorDetail(
        error_type="BadRequestException", message="Invalid Channel Format: segment 2 is empty"
    )
    assert unknown_namespace("new") == ErrorDetail(
        error_type="BadRequestException",
        message="Invalid Channel Format: namespace not found: new",
    )
    assert subscription_limit(200) == ErrorDetail(
        error_type="LimitExceededException",
        message="Subscription limit exceeded: at most 200 subscriptions per connection",
    )
    assert too_many_events(6, 5) == ErrorDetail(
        error_type="LimitExceededException", message="Too many events: 6 in one publish (at most 5)"
    )
    assert invalid_event_json(2, "boom") == ErrorDetail(
        error_type="BadRequestException", message="Invalid event at index 2: not valid JSON: boom"
    )
    assert event_too_large(240 * 1024) == ErrorDetail(
        error_type="EventTooLargeException",
        message="Transformed event is larger than 240KB",
    )
    assert event_too_large(1000).message == "Transformed event is larger than 1000 bytes"
    assert request_too_large(1300, 1000) == ErrorDetail(
        error_type="LimitExceededException",
        message="Request is larger than 1000 bytes (1300 bytes)",
    )
    assert invalid_message("missing field 'id'") == ErrorDetail(
        error_type="BadRequestException", message="Invalid message: missing field 'id'"
    )


# --- handshake ----------------------------------------------------------------------------


def test_server_init_reports_init_received_and_sends_nothing() -> None:
    """connection_init is reported to the shell, which decides on the ack."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    assert proto.events_received() == [InitReceived()]
    assert sent(proto) == []
    assert proto.init_received
    assert not proto.acknowledged


def test_server_ack_has_top_level_timeout_and_ka_follows() -> None:
    """The ack carries connectionTimeoutMs at the top level; ka is queued after it."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    proto.send_connection_ack()
    proto.send_keepalive()
    assert sent(proto) == [
        '{"type":"connection_ack","connectionTimeoutMs":300000}',
        '{"type":"ka"}',
    ]
    assert proto.acknowledged


def test_server_has_output_tells_whether_data_to_send_has_frames() -> None:
    """``has_output`` is true exactly while :meth:`data_to_send` would return frames."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    assert not proto.has_output
    proto.send_connection_ack()
    assert proto.has_output
    assert len(proto.data_to_send()) == 1
    assert not proto.has_output


def test_server_ack_uses_configured_or_explicit_timeout() -> None:
    """The constructor's timeout is the default; the shell may override it per ack."""
    proto = ServerProtocol(connection_timeout_ms=300)
    proto.receive_text(INIT)
    proto.send_connection_ack()
    assert sent(proto) == ['{"type":"connection_ack","connectionTimeoutMs":300}']
    other = ServerProtocol(connection_timeout_ms=300)
    other.receive_text(INIT)
    other.send_connection_ack(connection_timeout_ms=42)
    assert sent(other) == ['{"type":"connection_ack","connectionTimeoutMs":42}']


def test_server_second_init_is_ignored_after_ack() -> None:
    """A second connection_init gets no event and no second ack."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    proto.events_received()
    proto.send_connection_ack()
    sent(proto)
    proto.receive_text(INIT)
    assert proto.events_received() == []
    assert sent(proto) == []


def test_server_second_init_is_ignored_before_ack() -> None:
    """A second connection_init while the ack is pending is ignored too."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    proto.receive_text(INIT)
    assert proto.events_received() == [InitReceived()]
    proto.send_connection_ack()
    assert sent(proto) == ['{"type":"connection_ack","connectionTimeoutMs":300000}']


def test_server_ack_without_init_is_misuse() -> None:
    """connection_ack is never unsolicited."""
    proto = ServerProtocol()
    with pytest.raises(LocalProtocolError, match="only sent in reply to connection_init"):
        proto.send_connection_ack()


def test_server_second_ack_is_misuse() -> None:
    """connection_ack is never sent twice."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    proto.send_connection_ack()
    with pytest.raises(LocalProtocolError, match="already sent"):
        proto.send_connection_ack()


def test_server_init_less_operations_are_served() -> None:
    """subscribe and publish work without connection_init; ka may flow without an ack."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.receive_text(publish())
    (event,) = proto.events_received()
    assert isinstance(event, PublishRequested)
    proto.send_keepalive()
    assert sent(proto) == ['{"type":"ka"}']
    assert not proto.init_received


def test_server_pipelined_frames_are_all_processed_in_order() -> None:
    """init, subscribe and publish sent back to back are each reported, in order."""
    proto = ServerProtocol()
    for text in (INIT, subscribe(), publish(), subscribe("other", "default/*")):
        proto.receive_text(text)
    events = proto.events_received()
    assert [type(e) for e in events] == [
        InitReceived,
        SubscribeRequested,
        PublishRequested,
        SubscribeRequested,
    ]
    assert sent(proto) == []


def test_server_frames_queued_before_the_ack_are_held_until_it() -> None:
    """Nothing precedes connection_ack once init arrived: replies wait for it, in order."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    proto.receive_text(subscribe())
    proto.receive_text(unsubscribe("nope"))
    proto.receive_text(publish())
    proto.accept_subscribe(SUB_ID)
    proto.accept_publish(PUB_ID, [PublishedEvent(identifier="u1", index=0)], [])
    assert proto.send_data(SUB_ID, '{"a":1}') is True
    proto.send_keepalive()
    assert sent(proto) == []
    proto.send_connection_ack()
    assert sent(proto) == [
        '{"type":"connection_ack","connectionTimeoutMs":300000}',
        error_frame("unsubscribe_error", "nope", unknown_operation("nope")),
        f'{{"type":"subscribe_success","id":"{SUB_ID}"}}',
        f'{{"type":"publish_success","id":"{PUB_ID}",'
        '"successful":[{"identifier":"u1","index":0}],"failed":[]}',
        f'{{"type":"data","id":"{SUB_ID}","event":"{{\\"a\\":1}}"}}',
        '{"type":"ka"}',
    ]


def test_server_late_init_holds_output_of_an_init_less_connection() -> None:
    """A first connection_init after operations is acked, and output waits for the ack."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.receive_text(INIT)
    assert proto.events_received() == [InitReceived()]
    assert proto.send_data(SUB_ID, "1") is True
    assert sent(proto) == []
    proto.send_connection_ack()
    assert sent(proto) == [
        '{"type":"connection_ack","connectionTimeoutMs":300000}',
        f'{{"type":"data","id":"{SUB_ID}","event":"1"}}',
    ]


# --- unauthorized connections and fail_connection ----------------------------------------


@pytest.mark.parametrize(
    ("text", "frame_type", "id"),
    [
        (INIT, "connection_init", None),
        (subscribe(), "subscribe", SUB_ID),
        (publish(), "publish", PUB_ID),
        (unsubscribe(), "unsubscribe", SUB_ID),
        ("not json", None, None),
        ('{"type":"start","id":"x"}', "start", None),
        ('{"type":"subscribe","id":"s1"}', "subscribe", "s1"),
    ],
)
def test_server_unauthorized_connection_answers_first_frame(
    text: str, frame_type: str | None, id: str | None
) -> None:
    """With failed connection auth, the first frame of any type gets connection_error."""
    proto = ServerProtocol(connection_authorized=False)
    assert state_of(proto) is ServerState.OPEN
    assert proto.close_expected is None
    proto.receive_text(text)
    assert sent(proto) == [UNAUTHORIZED_FRAME]
    assert proto.events_received() == [
        Rejected(frame_type=frame_type, id=id, errors=(CONNECTION_UNAUTHORIZED,))
    ]
    assert proto.state is ServerState.CLOSING
    assert proto.close_expected == (1000, "")
    assert not proto.init_received


def test_server_unauthorized_connection_answers_binary_first_frame() -> None:
    """A binary first frame on an unauthorized connection also gets connection_error."""
    proto = ServerProtocol(connection_authorized=False)
    proto.receive_binary(b"\x00")
    assert sent(proto) == [UNAUTHORIZED_FRAME]
    assert proto.close_expected == (1000, "")


def test_server_unauthorized_connection_answers_oversized_first_frame() -> None:
    """An oversized first frame on an unauthorized connection gets connection_error."""
    proto = ServerProtocol(connection_authorized=False, max_request_bytes=64)
    proto.receive_text(publish(events=['"' + "x" * 100 + '"']))
    assert sent(proto) == [UNAUTHORIZED_FRAME]
    assert proto.events_received() == [
        Rejected(frame_type="publish", id=PUB_ID, errors=(CONNECTION_UNAUTHORIZED,))
    ]


def test_server_frames_after_connection_error_are_ignored() -> None:
    """Once closing, inbound frames of every kind produce nothing."""
    proto = ServerProtocol(connection_authorized=False)
    proto.receive_text(INIT)
    proto.events_received()
    sent(proto)
    for text in (INIT, subscribe(), publish(), unsubscribe(), "garbage"):
        proto.receive_text(text)
    proto.receive_binary(b"x")
    assert proto.events_received() == []
    assert sent(proto) == []
    assert proto.state is ServerState.CLOSING


def test_server_ack_on_unauthorized_connection_is_misuse() -> None:
    """No init was accepted on a refused connection, so an ack is misuse."""
    proto = ServerProtocol(connection_authorized=False)
    proto.receive_text(INIT)
    with pytest.raises(LocalProtocolError):
        proto.send_connection_ack()


def test_server_fail_connection_sends_connection_error_and_expects_close() -> None:
    """fail_connection queues connection_error with the given errors, then close 1000."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    proto.fail_connection([CONNECTION_UNAUTHORIZED])
    assert sent(proto) == [UNAUTHORIZED_FRAME]
    assert proto.state is ServerState.CLOSING
    assert proto.close_expected == (1000, "")


def test_server_fail_connection_drops_frames_held_for_the_ack() -> None:
    """Replies held for a never-sent ack are dropped by connection_error."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    proto.receive_text(unsubscribe("nope"))
    err = ErrorDetail(error_type="BadRequestException", message="bad signature")
    proto.fail_connection([err])
    assert sent(proto) == [error_frame("connection_error", None, err)]


def test_server_fail_connection_twice_is_a_no_op() -> None:
    """A second fail_connection (or one after EOF) sends nothing more."""
    proto = ServerProtocol()
    proto.fail_connection([CONNECTION_UNAUTHORIZED])
    sent(proto)
    proto.fail_connection([CONNECTION_UNAUTHORIZED])
    assert sent(proto) == []
    closed = ServerProtocol()
    closed.receive_eof()
    closed.fail_connection([CONNECTION_UNAUTHORIZED])
    assert sent(closed) == []
    assert closed.close_expected is None


def test_server_decisions_after_connection_error_are_discarded() -> None:
    """Pending operations decided after connection_error send nothing."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    proto.receive_text(subscribe())
    proto.receive_text(publish())
    proto.events_received()
    proto.fail_connection([CONNECTION_UNAUTHORIZED])
    sent(proto)
    proto.accept_subscribe(SUB_ID)
    proto.reject_publish(PUB_ID, [CONNECTION_UNAUTHORIZED])
    proto.send_connection_ack()
    proto.send_keepalive()
    proto.send_error([UNSUPPORTED_OPERATION])
    assert proto.send_data(SUB_ID, "1") is False
    assert sent(proto) == []
    assert proto.acknowledged


# --- EOF --------------------------------------------------------------------------------


def test_server_eof_closes_and_discards_output() -> None:
    """After EOF, queued and later output is dropped and no data can be sent."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.receive_text(subscribe("s2"))
    proto.send_keepalive()
    proto.receive_eof()
    assert proto.state is ServerState.CLOSED
    assert sent(proto) == []
    assert proto.send_data(SUB_ID, "1") is False
    proto.accept_subscribe("s2")
    assert sent(proto) == []
    assert dict(proto.subscriptions) == {
        SUB_ID: Channel(("default", "a")),
        "s2": Channel(("default", "a")),
    }
    proto.receive_eof()
    assert proto.state is ServerState.CLOSED


def test_server_eof_discards_frames_held_for_the_ack() -> None:
    """Held frames are dropped at EOF, and a late ack sends nothing."""
    proto = ServerProtocol()
    proto.receive_text(INIT)
    proto.send_keepalive()
    proto.receive_eof()
    proto.send_connection_ack()
    assert sent(proto) == []


def test_server_receive_after_eof_is_misuse() -> None:
    """The shell must not feed frames after receive_eof()."""
    proto = ServerProtocol()
    proto.receive_eof()
    with pytest.raises(LocalProtocolError, match="EOF"):
        proto.receive_text(INIT)
    with pytest.raises(LocalProtocolError, match="EOF"):
        proto.receive_binary(b"")


# --- undecodable frames -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        ("", "invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        ("[1]", "frame must be a JSON object, not an array"),
        ('"subscribe"', "frame must be a JSON object, not a string"),
        ("[" * 100_000, None),
    ],
)
def test_server_bad_json_gets_bad_request_error(text: str, reason: str | None) -> None:
    """Unparseable JSON or a non-object gets a generic error BadRequestException."""
    proto = ServerProtocol()
    proto.receive_text(text)
    (reply,) = sent(proto)
    (event,) = proto.events_received()
    assert isinstance(event, Rejected)
    assert event.frame_type is None
    assert event.id is None
    (error,) = event.errors
    assert error.error_type == "BadRequestException"
    assert error.message.startswith("Invalid message: ")
    if reason is not None:
        assert error == invalid_message(reason)
    assert reply == error_frame("error", None, error)


@pytest.mark.parametrize(
    ("text", "frame_type"),
    [
        ("{}", None),
        ('{"id":"x"}', None),
        ('{"type":5}', None),
        ('{"type":null,"id":"a"}', None),
        ('{"type":"start","id":"abc"}', "start"),
        ('{"type":"ka"}', "ka"),
        ('{"type":"data","id":"a","event":"1"}', "data"),
        ('{"type":"Subscribe","id":"a","channel":"default/a"}', "Subscribe"),
    ],
)
def test_server_unknown_or_missing_type_gets_unsupported_operation(
    text: str, frame_type: str | None
) -> None:
    """An unknown or missing type gets exactly the UnsupportedOperation frame, without id."""
    proto = ServerProtocol()
    proto.receive_text(text)
    assert sent(proto) == [UNSUPPORTED_FRAME]
    assert proto.events_received() == [
        Rejected(frame_type=frame_type, id=None, errors=(UNSUPPORTED_OPERATION,))
    ]


@pytest.mark.parametrize(
    ("text", "reply_type", "id", "reason"),
    [
        ('{"type":"subscribe","id":"s1"}', "subscribe_error", "s1", "missing field 'channel'"),
        (
            '{"type":"subscribe","id":"s1","channel":7}',
            "subscribe_error",
            "s1",
            "field 'channel' must be a string, not a number",
        ),
        (
            '{"type":"subscribe","id":"s1","channel":"default/a","authorization":{"k":1}}',
            "subscribe_error",
            "s1",
            "field authorization.k must be a string, not a number",
        ),
        (
            '{"type":"subscribe","id":"s1","channel":"default/a","authorization":[]}',
            "subscribe_error",
            "s1",
            "field 'authorization' must be an object, not an array",
        ),
        ('{"type":"subscribe","channel":"default/a"}', "error", None, "missing field 'id'"),
        (
            '{"type":"subscribe","id":5,"channel":"default/a"}',
            "error",
            None,
            "field 'id' must be a string, not a number",
        ),
        (
            '{"type":"publish","id":"p1","channel":"default/a"}',
            "publish_error",
            "p1",
            "missing field 'events'",
        ),
        (
            '{"type":"publish","id":"p1","channel":"default/a","events":"{}"}',
            "publish_error",
            "p1",
            "field 'events' must be an array, not a string",
        ),
        (
            '{"type":"publish","id":"p1","channel":"default/a","events":[{"a":1}]}',
            "publish_error",
            "p1",
            "field events[0] must be a string, not an object",
        ),
        ('{"type":"publish","channel":"d","events":["1"]}', "error", None, "missing field 'id'"),
        ('{"type":"unsubscribe"}', "error", None, "missing field 'id'"),
        (
            '{"type":"unsubscribe","id":null}',
            "error",
            None,
            "field 'id' must be a string, not null",
        ),
    ],
)
def test_server_malformed_operation_gets_its_error_frame(
    text: str, reply_type: str, id: str | None, reason: str
) -> None:
    """A malformed subscribe/publish is answered with its own error frame when the id is
    readable, and with the generic error otherwise."""
    proto = ServerProtocol()
    proto.receive_text(text)
    error = invalid_message(reason)
    assert sent(proto) == [error_frame(reply_type, id, error)]
    frame_type = json.loads(text)["type"]
    assert proto.events_received() == [Rejected(frame_type=frame_type, id=id, errors=(error,))]


def test_server_binary_frame_gets_error() -> None:
    """A binary frame is answered with a generic error naming the problem."""
    proto = ServerProtocol()
    proto.receive_binary(b'{"type":"connection_init"}')
    assert sent(proto) == [
        '{"type":"error","errors":[{"errorType":"BadRequestException",'
        '"message":"Binary frames are not supported: send each message as one JSON text frame"}]}'
    ]
    assert proto.events_received() == [Rejected(frame_type=None, id=None, errors=(BINARY_FRAME,))]


def test_server_unknown_fields_are_ignored() -> None:
    """Amplify's legacy payload and other extra fields do not disturb a subscribe."""
    proto = ServerProtocol()
    proto.receive_text(subscribe(payload={"channel": "default/a", "extensions": {}}, extra=1))
    (event,) = proto.events_received()
    assert isinstance(event, SubscribeRequested)
    assert event.message.authorization == {"x-api-key": "k"}


# --- subscribe ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "path", "wildcard"),
    [
        ("default/a", "/default/a", False),
        ("/default/a/", "/default/a", False),
        ("default", "/default", False),
        ("default/*", "/default/*", True),
        ("/default/a/b/c/*", "/default/a/b/c/*", True),
    ],
)
def test_server_subscribe_reports_the_parsed_pattern(
    channel: str, path: str, wildcard: bool
) -> None:
    """A valid subscribe is reported with its canonical pattern and the original message."""
    proto = ServerProtocol()
    proto.receive_text(subscribe(channel=channel))
    (event,) = proto.events_received()
    assert isinstance(event, SubscribeRequested)
    assert event.id == SUB_ID
    assert event.channel.path == path
    assert event.channel.wildcard is wildcard
    assert event.message == Subscribe(id=SUB_ID, channel=channel, authorization={"x-api-key": "k"})
    assert sent(proto) == []
    assert dict(proto.pending_subscriptions) == {SUB_ID: event.channel}
    assert dict(proto.subscriptions) == {}


def test_server_accept_subscribe_activates() -> None:
    """accept_subscribe sends subscribe_success and makes the subscription active."""
    proto = ServerProtocol()
    subscribed(proto)
    assert dict(proto.subscriptions) == {SUB_ID: Channel(("default", "a"))}
    assert dict(proto.pending_subscriptions) == {}


def test_server_reject_subscribe_sends_errors_and_frees_the_id() -> None:
    """reject_subscribe sends subscribe_error; the id may be used again."""
    proto = ServerProtocol()
    proto.receive_text(subscribe())
    proto.events_received()
    err = ErrorDetail(error_type="Unauthorized", message="denied by onSubscribe")
    proto.reject_subscribe(SUB_ID, [err])
    assert sent(proto) == [error_frame("subscribe_error", SUB_ID, err)]
    assert proto.events_received() == [Rejected(frame_type="subscribe", id=SUB_ID, errors=(err,))]
    assert dict(proto.subscriptions) == {}
    subscribed(proto)


@pytest.mark.parametrize("method", ["accept_subscribe", "reject_subscribe"])
def test_server_subscribe_decision_for_unknown_id_is_misuse(method: str) -> None:
    """Deciding on a subscription that is not pending raises at once."""
    proto = ServerProtocol()
    subscribed(proto)
    args: tuple[Any, ...] = ("nope",) if method == "accept_subscribe" else ("nope", [])
    with pytest.raises(LocalProtocolError, match="no such pending subscription"):
        getattr(proto, method)(*args)
    with pytest.raises(LocalProtocolError):
        getattr(proto, method)(SUB_ID, *args[1:])


@pytest.mark.parametrize("bad_id", ["", "has space", "x" * 129, "é", "a/b", "a.b", "a=b"])
def test_server_subscribe_with_invalid_id_is_rejected(bad_id: str) -> None:
    """An id outside ^[a-zA-Z0-9-_+]{1,128}$ gets subscribe_error with that id."""
    proto = ServerProtocol()
    proto.receive_text(subscribe(id=bad_id))
    assert sent(proto) == [error_frame("subscribe_error", bad_id, INVALID_ID)]
    assert proto.events_received() == [
        Rejected(frame_type="subscribe", id=bad_id, errors=(INVALID_ID,))
    ]


@pytest.mark.parametrize("good_id", ["a", "x" * 128, "A-z_0+9", SUB_ID])
def test_server_subscribe_accepts_every_valid_id(good_id: str) -> None:
    """Every id matching the pattern is accepted."""
    proto = ServerProtocol()
    proto.receive_text(subscribe(id=good_id))
    (event,) = proto.events_received()
    assert isinstance(event, SubscribeRequested)


def test_server_duplicate_subscription_id_is_rejected_while_pending() -> None:
    """A second subscribe with a pending id gets DuplicatedOperationError."""
    proto = ServerProtocol()
    proto.receive_text(subscribe())
    proto.receive_text(subscribe(channel="default/b"))
    assert sent(proto) == [
        '{"type":"subscribe_error","id":"' + SUB_ID + '","errors":[{"errorType":'
        '"DuplicatedOperationError","message":"Duplicate subscription ID"}]}'
    ]
    events = proto.events_received()
    assert events[1] == Rejected(
        frame_type="subscribe", id=SUB_ID, errors=(DUPLICATE_SUBSCRIPTION,)
    )
    # The original subscription is untouched.
    assert proto.pending_subscriptions[SUB_ID].path == "/default/a"


def test_server_duplicate_subscription_id_is_rejected_while_active() -> None:
    """A subscribe reusing an active id gets DuplicatedOperationError."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.receive_text(subscribe())
    assert sent(proto) == [error_frame("subscribe_error", SUB_ID, DUPLICATE_SUBSCRIPTION)]
    assert dict(proto.subscriptions) == {SUB_ID: Channel(("default", "a"))}


@pytest.mark.parametrize(
    ("channel", "rule"),
    [
        ("", "channel has no segments (a namespace is required)"),
        ("/", "channel has no segments (a namespace is required)"),
        ("default//a", "segment 2 is empty"),
        ("default/" + "x" * 51, "segment 2 is 51 characters (at most 50)"),
        ("default/1/2/3/4/5", "6 segments (at most 5, '*' included)"),
        ("default/1/2/3/4/*", "6 segments (at most 5, '*' included)"),
        ("default/a_b", "segment 2 'a_b' has characters outside [A-Za-z0-9-]"),
        ("default/-a", "segment 2 '-a' starts or ends with '-'"),
        (
            "default/*/a",
            "segment 2: '*' is only allowed as the whole last segment of a subscription",
        ),
        (
            "default/ab*",
            "segment 2: '*' is only allowed as the whole last segment of a subscription",
        ),
        (
            "default/**",
            "segment 2: '*' is only allowed as the whole last segment of a subscription",
        ),
        ("/*", "'/*' needs a namespace before it"),
    ],
)
def test_server_subscribe_to_invalid_channel_is_rejected(channel: str, rule: str) -> None:
    """A channel that breaks a channel rule gets subscribe_error Invalid Channel Format + the rule.

    The rules are described in docs: protocol.rst, "Channels and namespaces".
    """
    proto = ServerProtocol()
    proto.receive_text(subscribe(channel=channel))
    assert sent(proto) == [error_frame("subscribe_error", SUB_ID, invalid_channel(rule))]
    assert proto.events_received() == [
        Rejected(frame_type="subscribe", id=SUB_ID, errors=(invalid_channel(rule),))
    ]


def test_server_subscribe_to_unknown_namespace_is_rejected() -> None:
    """A namespace the shell does not know gets subscribe_error; known ones pass."""
    seen: list[str] = []

    def exists(name: str) -> bool:
        seen.append(name)
        return name == "default"

    proto = ServerProtocol(namespace_exists=exists)
    proto.receive_text(subscribe(channel="/new/channel"))
    assert sent(proto) == [error_frame("subscribe_error", SUB_ID, unknown_namespace("new"))]
    proto.events_received()
    proto.receive_text(subscribe(channel="default/*"))
    assert isinstance(proto.events_received()[0], SubscribeRequested)
    assert seen == ["new", "default"]


def test_server_namespace_is_case_sensitive() -> None:
    """Default is not default (channels are case-sensitive)."""
    proto = ServerProtocol(namespace_exists={"default"}.__contains__)
    proto.receive_text(subscribe(channel="Default/a"))
    assert sent(proto) == [error_frame("subscribe_error", SUB_ID, unknown_namespace("Default"))]


def test_server_subscription_limit_is_200_by_default() -> None:
    """The 201st subscription on one connection gets LimitExceededException."""
    proto = ServerProtocol()
    for i in range(200):
        proto.receive_text(subscribe(id=f"s{i}", channel=f"default/c{i}"))
        if i % 2:
            proto.accept_subscribe(f"s{i}")  # active and pending both count
    assert len(proto.events_received()) == 200
    sent(proto)
    proto.receive_text(subscribe(id="s200"))
    assert sent(proto) == [
        '{"type":"subscribe_error","id":"s200","errors":[{"errorType":"LimitExceededException",'
        '"message":"Subscription limit exceeded: at most 200 subscriptions per connection"}]}'
    ]
    assert proto.events_received() == [
        Rejected(frame_type="subscribe", id="s200", errors=(subscription_limit(200),))
    ]


def test_server_subscription_slots_are_freed_by_unsubscribe_and_reject() -> None:
    """Unsubscribing or rejecting frees a slot under the subscription limit."""
    proto = ServerProtocol(max_subscriptions=2)
    subscribed(proto, "a")
    proto.receive_text(subscribe("b"))
    proto.receive_text(subscribe("c"))
    assert sent(proto) == [error_frame("subscribe_error", "c", subscription_limit(2))]
    proto.reject_subscribe("b", [])
    proto.receive_text(subscribe("c"))
    proto.receive_text(unsubscribe("a"))
    proto.accept_unsubscribe("a")
    proto.receive_text(subscribe("d"))
    events = proto.events_received()
    assert [type(e) for e in events][-3:] == [
        SubscribeRequested,
        UnsubscribeRequested,
        SubscribeRequested,
    ]


def test_server_subscribe_checks_run_in_order() -> None:
    """id, then duplicate, then channel syntax, then namespace, then the quota."""
    proto = ServerProtocol(max_subscriptions=1, namespace_exists=lambda ns: ns == "default")
    subscribed(proto, "a")
    proto.receive_text(subscribe("bad id", "x/*/y"))
    proto.receive_text(subscribe("a", "x/*/y"))
    proto.receive_text(subscribe("b", "nope/*/y"))
    proto.receive_text(subscribe("b", "nope/y"))
    proto.receive_text(subscribe("b", "default/y"))
    errors = [e.errors[0] for e in proto.events_received() if isinstance(e, Rejected)]
    assert errors == [
        INVALID_ID,
        DUPLICATE_SUBSCRIPTION,
        invalid_channel(
            "segment 2: '*' is only allowed as the whole last segment of a subscription"
        ),
        unknown_namespace("nope"),
        subscription_limit(1),
    ]


# --- unsubscribe --------------------------------------------------------------------------


def test_server_unsubscribe_active_sends_success_and_reports() -> None:
    """Unsubscribing an active id reports UnsubscribeRequested; accepting it sends
    unsubscribe_success and ends the subscription."""
    proto = ServerProtocol()
    subscribed(proto, channel="default/*")
    proto.receive_text(unsubscribe())
    assert proto.events_received() == [
        UnsubscribeRequested(id=SUB_ID, channel=Channel(("default",), wildcard=True))
    ]
    assert sent(proto) == []
    assert SUB_ID in proto.subscriptions  # data may still flow until the decision
    proto.accept_unsubscribe(SUB_ID)
    assert sent(proto) == [f'{{"type":"unsubscribe_success","id":"{SUB_ID}"}}']
    assert dict(proto.subscriptions) == {}


@pytest.mark.parametrize("id", ["never-subscribed", "", "bad id", "é" * 3])
def test_server_unsubscribe_unknown_id_gets_unknown_operation(id: str) -> None:
    """Unsubscribing an id that is not subscribed gets UnknownOperationError."""
    proto = ServerProtocol()
    proto.receive_text(unsubscribe(id))
    assert sent(proto) == [
        '{"type":"unsubscribe_error","id":' + json.dumps(id, ensure_ascii=False) + ","
        '"errors":[{"errorType":"UnknownOperationError","message":"Unknown operation id '
        + id
        + '"}]}'
    ]
    assert proto.events_received() == [
        Rejected(frame_type="unsubscribe", id=id, errors=(unknown_operation(id),))
    ]


def test_server_unsubscribe_twice_gets_unknown_operation() -> None:
    """The second unsubscribe of the same id is an unknown operation."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.receive_text(unsubscribe())
    proto.accept_unsubscribe(SUB_ID)
    proto.receive_text(unsubscribe())
    assert sent(proto)[1] == error_frame("unsubscribe_error", SUB_ID, unknown_operation(SUB_ID))


def test_server_unsubscribe_while_one_waits_gets_unknown_operation() -> None:
    """A second unsubscribe before the shell decided on the first is an unknown operation."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.receive_text(unsubscribe())
    proto.receive_text(unsubscribe())
    assert sent(proto) == [error_frame("unsubscribe_error", SUB_ID, unknown_operation(SUB_ID))]
    assert [type(e) for e in proto.events_received()] == [UnsubscribeRequested, Rejected]


def test_server_reject_unsubscribe_keeps_the_subscription() -> None:
    """reject_unsubscribe sends unsubscribe_error, reports Rejected; data still flows."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.receive_text(unsubscribe())
    proto.events_received()
    err = ErrorDetail(error_type="UnknownOperationError", message="no")
    proto.reject_unsubscribe(SUB_ID, [err])
    assert sent(proto) == [error_frame("unsubscribe_error", SUB_ID, err)]
    assert proto.events_received() == [Rejected(frame_type="unsubscribe", id=SUB_ID, errors=(err,))]
    assert proto.send_data(SUB_ID, "1") is True


@pytest.mark.parametrize("method", ["accept_unsubscribe", "reject_unsubscribe"])
def test_server_unsubscribe_decision_without_request_is_misuse(method: str) -> None:
    """Deciding on an unsubscribe nobody asked for raises at once."""
    proto = ServerProtocol()
    subscribed(proto)
    decide = (
        proto.accept_unsubscribe
        if method == "accept_unsubscribe"
        else lambda subscription_id: proto.reject_unsubscribe(subscription_id, [])
    )
    with pytest.raises(LocalProtocolError, match="no such unsubscribe waiting"):
        decide(SUB_ID)


def test_server_refuse_connection_answers_the_first_frame_with_its_errors() -> None:
    """refuse_connection: the next frame gets connection_error with the given errors."""
    proto = ServerProtocol()
    err = ErrorDetail(error_type="BadRequestException", message="bad signature", error_code=400)
    proto.refuse_connection([err])
    assert proto.receive_text(INIT) == "connection_init"
    assert proto.events_received() == [
        Rejected(frame_type="connection_init", id=None, errors=(err,))
    ]
    (frame,) = proto.data_to_send()
    assert isinstance(frame, ErrorFrame)
    assert (frame.kind, frame.id, frame.errors) == ("connection_error", None, (err,))
    assert proto.close_expected == (1000, "")
    proto.refuse_connection()  # too late: a no-op
    assert proto.state is ServerState.CLOSING


def test_server_receive_text_returns_the_frame_type() -> None:
    """receive_text reports the type it read, for the shell's frame log."""
    proto = ServerProtocol(max_request_bytes=200)
    assert proto.receive_text(subscribe()) == "subscribe"
    assert proto.receive_text('{"type":"nope"}') == "nope"
    assert proto.receive_text("[1]") is None
    big = '{"type":"publish","id":"p1","x":"' + "a" * 300 + '"}'
    assert proto.receive_text(big) == "publish"


def test_server_output_carries_kind_and_id() -> None:
    """data_to_send gives each frame's kind and id; error frames carry their errors."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.send_data(SUB_ID, "1")
    proto.receive_text(subscribe())
    (data, error) = proto.data_to_send()
    assert (data.kind, data.id) == ("data", SUB_ID)
    assert not isinstance(data, ErrorFrame)
    assert isinstance(error, ErrorFrame)
    assert (error.kind, error.id, error.errors) == (
        "subscribe_error",
        SUB_ID,
        (DUPLICATE_SUBSCRIPTION,),
    )


def test_server_unsubscribe_while_pending_is_dropped_and_subscribe_completes() -> None:
    """An unsubscribe before subscribe_success is silently ignored
    (docs: protocol.rst, "unsubscribe")."""
    proto = ServerProtocol()
    proto.receive_text(subscribe())
    proto.receive_text(unsubscribe())
    assert [type(e) for e in proto.events_received()] == [SubscribeRequested]
    assert sent(proto) == []
    proto.accept_subscribe(SUB_ID)
    assert sent(proto) == [f'{{"type":"subscribe_success","id":"{SUB_ID}"}}']
    assert SUB_ID in proto.subscriptions
    assert proto.send_data(SUB_ID, "1") is True


def test_server_id_can_be_reused_after_unsubscribe() -> None:
    """A subscription id is free again once unsubscribed."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.receive_text(unsubscribe())
    proto.accept_unsubscribe(SUB_ID)
    sent(proto)
    proto.events_received()
    subscribed(proto, channel="default/b")
    assert proto.subscriptions[SUB_ID].path == "/default/b"


# --- data and broadcast errors ------------------------------------------------------------


def test_server_send_data_to_active_subscription() -> None:
    """data carries the subscription id and the event as a JSON string, verbatim."""
    proto = ServerProtocol()
    subscribed(proto)
    event = '{ "msg" : "Hello World!", "n": 1.0, "u": "é\\u00e9" }'
    assert proto.send_data(SUB_ID, event) is True
    (text,) = sent(proto)
    assert json.loads(text) == {"type": "data", "id": SUB_ID, "event": event}
    assert (
        text
        == '{"type":"data","id":"'
        + SUB_ID
        + '","event":'
        + json.dumps(event, ensure_ascii=False)
        + "}"
    )


def test_server_send_events_queues_one_data_frame_per_event_in_order() -> None:
    """send_events is send_data for a batch: one frame each, held until the ack."""
    proto = ServerProtocol()
    subscribed(proto)
    assert proto.send_events(SUB_ID, ["1", '"two"']) is True
    assert proto.send_events("other", ["1"]) is False
    assert sent(proto) == [codec.encode(Data(id=SUB_ID, event=e)) for e in ("1", '"two"')]
    proto.receive_text(INIT)  # a late init: output waits for the ack
    assert proto.send_events(SUB_ID, ["3", "4"]) is True
    assert sent(proto) == []
    proto.send_connection_ack()
    assert sent(proto)[1:] == [codec.encode(Data(id=SUB_ID, event=e)) for e in ("3", "4")]


def test_server_send_data_to_pending_or_unknown_subscription_sends_nothing() -> None:
    """No data before subscribe_success, and none for an id never subscribed."""
    proto = ServerProtocol()
    proto.receive_text(subscribe())
    assert proto.send_data(SUB_ID, "1") is False
    assert proto.send_data("other", "1") is False
    assert sent(proto) == []


def test_server_no_data_after_unsubscribe_success() -> None:
    """Data for an id after its unsubscribe_success is never sent."""
    proto = ServerProtocol()
    subscribed(proto)
    proto.receive_text(unsubscribe())
    proto.accept_unsubscribe(SUB_ID)
    assert proto.send_data(SUB_ID, '{"late":true}') is False
    assert sent(proto) == [f'{{"type":"unsubscribe_success","id":"{SUB_ID}"}}']


def test_server_broadcast_error_for_active_subscription() -> None:
    """broadcast_error goes to an active subscription with the given errors."""
    proto = ServerProtocol()
    subscribed(proto)
    err = ErrorDetail(
        error_type="MessageProcessingError", message="There was an error processing the message"
    )
    proto.send_broadcast_error(SUB_ID, [err])
    assert sent(proto) == [error_frame("broadcast_error", SUB_ID, err)]


def test_server_broadcast_error_for_inactive_subscription_is_misuse() -> None:
    """broadcast_error is only for active subscriptions."""
    proto = ServerProtocol()
    proto.receive_text(subscribe())
    with pytest.raises(LocalProtocolError, match="no such subscription"):
        proto.send_broadcast_error(SUB_ID, [])


def test_server_send_error_with_and_without_id() -> None:
    """The generic error frame carries an id only when given."""
    proto = ServerProtocol()
    err = ErrorDetail(error_type="X", message="y", error_code=500)
    proto.send_error([err])
    proto.send_error([err], operation_id="op-1")
    assert sent(proto) == [error_frame("error", None, err), error_frame("error", "op-1", err)]


# --- publish ------------------------------------------------------------------------------


def test_server_publish_is_reported_with_canonical_channel() -> None:
    """A valid publish is reported with the parsed channel and the original message."""
    proto = ServerProtocol()
    events = ('{"a":1}', "[1, 2]", '"s"', "3", "true", "null")[:5]
    proto.receive_text(publish(channel="default/a/b/", events=events))
    (event,) = proto.events_received()
    assert event == PublishRequested(
        id=PUB_ID,
        channel=Channel(("default", "a", "b")),
        message=Publish(id=PUB_ID, channel="default/a/b/", events=events, authorization={}),
    )
    assert sent(proto) == []


def test_server_accept_publish_sends_success_with_both_lists() -> None:
    """publish_success lists successful and failed events."""
    proto = ServerProtocol()
    proto.receive_text(publish(events=["1", "2"]))
    proto.accept_publish(
        PUB_ID,
        [PublishedEvent(identifier="u0", index=0)],
        [
            FailedEvent(
                identifier="u1",
                index=1,
                code="EventTooLargeException",
                message="Transformed event is larger than 240KB",
            )
        ],
    )
    assert sent(proto) == [
        '{"type":"publish_success","id":"' + PUB_ID + '","successful":[{"identifier":"u0",'
        '"index":0}],"failed":[{"identifier":"u1","index":1,"code":"EventTooLargeException",'
        '"message":"Transformed event is larger than 240KB"}]}'
    ]


def test_server_reject_publish_sends_publish_error() -> None:
    """reject_publish sends publish_error with the given errors."""
    proto = ServerProtocol()
    proto.receive_text(publish())
    err = ErrorDetail(error_type="UnauthorizedException", message="no", error_code=401)
    proto.reject_publish(PUB_ID, [err])
    assert sent(proto) == [error_frame("publish_error", PUB_ID, err)]


@pytest.mark.parametrize("method", ["accept_publish", "reject_publish"])
def test_server_publish_decision_for_unknown_id_is_misuse(method: str) -> None:
    """Deciding on a publish that is not pending raises at once."""
    proto = ServerProtocol()
    args: tuple[Any, ...] = ([], []) if method == "accept_publish" else ([],)
    with pytest.raises(LocalProtocolError, match="no such pending publish"):
        getattr(proto, method)(PUB_ID, *args)


def test_server_reused_publish_id_is_answered_once_per_publish() -> None:
    """Two pending publishes with one id each get one answer; a third decision is misuse."""
    proto = ServerProtocol()
    proto.receive_text(publish())
    proto.receive_text(publish())
    assert len(proto.events_received()) == 2
    proto.accept_publish(PUB_ID, [], [])
    proto.reject_publish(PUB_ID, [])
    assert len(sent(proto)) == 2
    with pytest.raises(LocalProtocolError):
        proto.accept_publish(PUB_ID, [], [])


@pytest.mark.parametrize("bad_id", ["", "a b", "x" * 129, "ü"])
def test_server_publish_with_invalid_id_is_rejected(bad_id: str) -> None:
    """A publish id outside the pattern gets publish_error with that id."""
    proto = ServerProtocol()
    proto.receive_text(publish(id=bad_id))
    assert sent(proto) == [error_frame("publish_error", bad_id, INVALID_ID)]


@pytest.mark.parametrize(
    ("channel", "rule"),
    [
        ("default/*", "wildcards are only allowed when subscribing"),
        ("default/a/*", "wildcards are only allowed when subscribing"),
        ("default/1/2/3/4/5", "6 segments (at most 5)"),
        ("default/" + "y" * 51, "segment 2 is 51 characters (at most 50)"),
        ("default/a b", "segment 2 'a b' has characters outside [A-Za-z0-9-]"),
        ("", "channel has no segments (a namespace is required)"),
    ],
)
def test_server_publish_to_invalid_channel_is_rejected(channel: str, rule: str) -> None:
    """A publish to a bad or wildcard channel gets publish_error Invalid Channel Format."""
    proto = ServerProtocol()
    proto.receive_text(publish(channel=channel))
    assert sent(proto) == [error_frame("publish_error", PUB_ID, invalid_channel(rule))]
    assert proto.events_received() == [
        Rejected(frame_type="publish", id=PUB_ID, errors=(invalid_channel(rule),))
    ]


def test_server_publish_to_unknown_namespace_is_rejected() -> None:
    """A publish outside the defined namespaces gets publish_error."""
    proto = ServerProtocol(namespace_exists=lambda ns: ns == "default")
    proto.receive_text(publish(channel="new/channel"))
    assert sent(proto) == [error_frame("publish_error", PUB_ID, unknown_namespace("new"))]


def test_server_publish_without_events_is_rejected() -> None:
    """An empty events array gets publish_error BadRequestException."""
    proto = ServerProtocol()
    proto.receive_text(publish(events=[]))
    assert sent(proto) == [
        '{"type":"publish_error","id":"' + PUB_ID + '","errors":[{"errorType":'
        '"BadRequestException","message":"Invalid publish: \'events\' must hold at least 1 '
        'event"}]}'
    ]


def test_server_publish_with_too_many_events_is_rejected() -> None:
    """Six events get publish_error LimitExceededException; five pass."""
    proto = ServerProtocol()
    proto.receive_text(publish(events=["1"] * 6))
    assert sent(proto) == [
        '{"type":"publish_error","id":"' + PUB_ID + '","errors":[{"errorType":'
        '"LimitExceededException","message":"Too many events: 6 in one publish (at most 5)"}]}'
    ]
    proto.events_received()
    proto.receive_text(publish(events=["1"] * 5))
    assert isinstance(proto.events_received()[0], PublishRequested)


def test_server_publish_event_limit_is_configurable() -> None:
    """max_events_per_publish changes the count limit."""
    proto = ServerProtocol(max_events_per_publish=2)
    proto.receive_text(publish(events=["1"] * 3))
    assert sent(proto) == [error_frame("publish_error", PUB_ID, too_many_events(3, 2))]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("", "Expecting value: line 1 column 1 (char 0)"),
        ("{", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("hello", "Expecting value: line 1 column 1 (char 0)"),
        ("'a'", "Expecting value: line 1 column 1 (char 0)"),
        ("{} {}", "Extra data: line 1 column 4 (char 3)"),
        ("NaN", "NaN is not a JSON value"),
        ("Infinity", "Infinity is not a JSON value"),
        ('{"a":-Infinity}', "-Infinity is not a JSON value"),
        ("\ufeff1", "Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"),
        ('"\ud800"', "lone surrogate U+D800 at char 1 (not UTF-8 text)"),
        ('["é", "\udfff"]', "lone surrogate U+DFFF at char 7 (not UTF-8 text)"),
    ],
)
def test_server_publish_with_invalid_json_event_is_rejected(event: str, reason: str) -> None:
    """An event that is not JSON text gets publish_error BadRequestException."""
    proto = ServerProtocol()
    proto.receive_text(publish(events=["1", event]))
    assert sent(proto) == [error_frame("publish_error", PUB_ID, invalid_event_json(1, reason))]


def test_server_publish_with_deeply_nested_event_is_rejected() -> None:
    """JSON nested beyond the parser's depth is rejected, not a crash."""
    proto = ServerProtocol()
    proto.receive_text(publish(events=["[" * 100_000 + "]" * 100_000]))
    assert sent(proto) == [
        error_frame("publish_error", PUB_ID, invalid_event_json(0, "nested too deeply"))
    ]


@pytest.mark.parametrize(
    "event", ['"x"', " 1 ", "-0.5e10", '{"a":[true,false,null]}', '"\\ud800"', '"é😀"']
)
def test_server_publish_accepts_any_json_value(event: str) -> None:
    """Events may hold any JSON value, with whitespace and escapes."""
    proto = ServerProtocol()
    proto.receive_text(publish(events=[event]))
    (reported,) = proto.events_received()
    assert isinstance(reported, PublishRequested)
    assert reported.message.events == (event,)


def test_server_publish_event_size_boundary_in_utf8_bytes() -> None:
    """An event of exactly max_event_bytes UTF-8 bytes passes; one byte more fails."""
    limit = 240 * 1024
    exact = '"' + "é" * ((limit - 2) // 2) + '"'
    assert len(exact.encode()) == limit
    over = '"' + "é" * ((limit - 2) // 2) + 'x"'
    proto = ServerProtocol()
    proto.receive_text(publish(events=[exact]))
    assert isinstance(proto.events_received()[0], PublishRequested)
    proto.receive_text(publish(events=["1", over]))
    assert sent(proto) == [
        '{"type":"publish_error","id":"' + PUB_ID + '","errors":[{"errorType":'
        '"EventTooLargeException","message":"Transformed event is larger than 240KB"}]}'
    ]


def test_server_oversized_event_is_not_parsed() -> None:
    """An event over the size limit is rejected for its size even if it is not JSON."""
    proto = ServerProtocol(max_event_bytes=10)
    proto.receive_text(publish(events=["not json at all"]))
    assert sent(proto) == [error_frame("publish_error", PUB_ID, event_too_large(10))]


def test_server_event_size_check_can_be_disabled() -> None:
    """max_event_bytes=None leaves oversized events to the shell (failed[] entries)."""
    proto = ServerProtocol(max_event_bytes=None)
    proto.receive_text(publish(events=['"' + "x" * 300_000 + '"']))
    assert isinstance(proto.events_received()[0], PublishRequested)


def test_server_publish_checks_run_in_order() -> None:
    """id, channel syntax, namespace, count, then each event by index (size before JSON)."""
    proto = ServerProtocol(namespace_exists=lambda ns: ns == "default", max_event_bytes=8)
    proto.receive_text(publish(id="bad id", channel="default/*", events=[]))
    proto.receive_text(publish(channel="nope/*", events=[]))
    proto.receive_text(publish(channel="nope/a", events=[]))
    proto.receive_text(publish(events=["x"] * 6))
    proto.receive_text(publish(events=["1", "{", "123456789"]))
    proto.receive_text(publish(events=["1", "123456789", "{"]))
    errors = [e.errors[0] for e in proto.events_received() if isinstance(e, Rejected)]
    assert errors == [
        INVALID_ID,
        invalid_channel("wildcards are only allowed when subscribing"),
        unknown_namespace("nope"),
        too_many_events(6, 5),
        invalid_event_json(
            1, "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
        ),
        event_too_large(8),
    ]


# --- frame size ---------------------------------------------------------------------------


def test_server_frame_size_boundary_in_utf8_bytes() -> None:
    """A frame of exactly max_request_bytes passes; one byte more is refused unparsed."""
    base = publish(events=['"' + "" + '"'])
    pad = 200 - len(base.encode())
    ok = publish(events=['"' + "x" * pad + '"'])
    assert len(ok.encode()) == 200
    proto = ServerProtocol(max_request_bytes=200)
    proto.receive_text(ok)
    assert isinstance(proto.events_received()[0], PublishRequested)
    over = publish(events=['"' + "x" * (pad - 1) + 'é"'])
    assert len(over.encode()) == 201
    proto.receive_text(over)
    assert sent(proto) == [
        '{"type":"publish_error","id":"' + PUB_ID + '","errors":[{"errorType":'
        '"LimitExceededException","message":"Request is larger than 200 bytes (201 bytes)"}]}'
    ]
    assert proto.events_received() == [
        Rejected(frame_type="publish", id=PUB_ID, errors=(request_too_large(201, 200),))
    ]


def test_server_oversized_frame_is_never_json_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An oversized frame is answered from a sniff of its type and id, without parsing."""

    def fail(*args: object, **kwargs: object) -> object:
        raise AssertionError("oversized frame was parsed")

    monkeypatch.setattr(codec, "decode_client", fail)
    monkeypatch.setattr(json, "loads", fail)
    proto = ServerProtocol(max_request_bytes=1024)
    # Truncated JSON: parsing would fail, yet the answer is the size error for this id.
    text = '{"id":"p-1","channel":"default/a","events":["' + "a" * 2000 + '"],"type":"publish"'
    proto.receive_text(text)
    assert sent(proto) == [error_frame("publish_error", "p-1", request_too_large(len(text), 1024))]


def test_server_default_frame_limit_is_1200_kb() -> None:
    """The default frame limit is the 1.2 MB publish payload quota."""
    proto = ServerProtocol()
    text = publish(events=['"' + "x" * MAX_REQUEST_BYTES + '"'])
    proto.receive_text(text)
    assert sent(proto) == [
        error_frame("publish_error", PUB_ID, request_too_large(len(text), MAX_REQUEST_BYTES))
    ]
    assert request_too_large(1, MAX_REQUEST_BYTES).message.startswith(
        "Request is larger than 1200KB"
    )


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        (
            '{"type":"subscribe","id":"s-1","channel":"' + "a" * 300 + '"}',
            ("subscribe_error", "s-1"),
        ),
        (
            '{"type":"unsubscribe","id":"s-1","pad":"' + "a" * 300 + '"}',
            ("unsubscribe_error", "s-1"),
        ),
        ('{"type":"publish","events":["' + "a" * 300 + '"]}', ("error", None)),
        ('{"id":"p-1","events":["' + "a" * 300 + '"]}', ("error", None)),
        ('{"type":"start","id":"p-1","x":"' + "a" * 300 + '"}', ("error", None)),
        ('{"type":"publish","id":"bad id!","x":"' + "a" * 300 + '"}', ("error", None)),
        ('{"type":"publish","events":["{\\"id\\":\\"x\\"}' + "a" * 300 + '"]}', ("error", None)),
    ],
)
def test_server_oversized_frame_reply_uses_sniffed_type_and_id(
    text: str, reply: tuple[str, str | None]
) -> None:
    """The size error goes to the operation's own frame only when type and id are sniffed."""
    proto = ServerProtocol(max_request_bytes=256)
    proto.receive_text(text)
    assert sent(proto) == [error_frame(reply[0], reply[1], request_too_large(len(text), 256))]


# --- pure helpers -------------------------------------------------------------------------


def test_utf8_length_counts_bytes() -> None:
    """ASCII, multi-byte and lone surrogates are counted in UTF-8 bytes."""
    assert utf8_length("abc") == 3
    assert utf8_length("é😀") == 6
    assert utf8_length("\ud800") == 3


def test_check_request_size() -> None:
    """None within the limit, a LimitExceededException detail beyond it."""
    assert check_request_size("é" * 4, 8) is None
    assert check_request_size("é" * 5, 8) == request_too_large(10, 8)
    assert check_request_size("x" * 9, 8) == request_too_large(9, 8)


def test_check_helpers_serve_the_http_path() -> None:
    """check_publish/check_subscribe/check_events return a Channel or the error."""
    assert check_publish("/default/a", ["1"]) == Channel(("default", "a"))
    assert check_publish("default/a", []) == NO_EVENTS
    assert check_publish("x/a", ["1"], namespace_exists=lambda ns: False) == unknown_namespace("x")
    assert check_subscribe("default/*") == Channel(("default",), wildcard=True)
    assert check_subscribe("default/a*") == invalid_channel(
        "segment 2: '*' is only allowed as the whole last segment of a subscription"
    )
    assert check_events(["1"] * 3, max_events=2) == too_many_events(3, 2)
    assert check_events(['"abc"'], max_event_bytes=None) is None


# --- property tests -----------------------------------------------------------------------

_ids = st.from_regex(ID_PATTERN, fullmatch=True)
_segment = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True)
_channels = st.lists(_segment, min_size=1, max_size=6).map("/".join) | st.text(max_size=20)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3)
    ),
    max_leaves=6,
)
_field_value = (
    _json_values
    | _ids
    | _channels
    | st.lists(_json_values.map(json.dumps) | st.text(max_size=8) | _json_values, max_size=7)
)


@st.composite
def _frames(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.text(max_size=60))
    if kind == 1:
        return json.dumps(draw(_json_values))
    obj: dict[str, Any] = draw(
        st.dictionaries(
            st.sampled_from(["id", "channel", "events", "authorization", "payload"]),
            _field_value,
            max_size=5,
        )
    )
    if draw(st.integers(0, 9)):
        obj["type"] = draw(
            st.sampled_from(["connection_init", "subscribe", "unsubscribe", "publish", "ka"])
            | st.text(max_size=8)
            | _json_values
        )
    if kind == 3:
        obj.setdefault("id", draw(_ids))
    return json.dumps(obj, ensure_ascii=draw(st.booleans()))


_LEGIT = (InitReceived, SubscribeRequested, PublishRequested)
_ERROR_REPLIES = (ErrorMessage, SubscribeError, PublishError, UnsubscribeError)


@settings(max_examples=400, deadline=None)
@given(text=_frames())
def test_server_any_text_gets_an_event_or_an_error_frame(text: str) -> None:
    """Arbitrary text never raises: it yields a legitimate event, or one error reply whose
    errors are reported as Rejected."""
    proto = ServerProtocol(max_request_bytes=400, namespace_exists=lambda ns: ns != "nope")
    proto.receive_text(text)
    events = proto.events_received()
    output = [frame.text for frame in proto.data_to_send()]
    assert len(events) == 1
    (event,) = events
    if isinstance(event, _LEGIT):
        assert output == []
        return
    assert isinstance(event, Rejected)
    (reply_text,) = output
    reply = codec.decode_server(reply_text)
    assert isinstance(reply, _ERROR_REPLIES)
    assert reply.errors == event.errors
    assert len(reply.errors) == 1
    if not isinstance(reply, ErrorMessage):
        assert reply.id == event.id


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(_frames() | st.just(INIT), max_size=12), authorized=st.booleans())
def test_server_any_frame_sequence_never_raises(texts: list[str], authorized: bool) -> None:
    """Sequences of arbitrary frames never raise, and every output frame is valid."""
    proto = ServerProtocol(connection_authorized=authorized, max_request_bytes=400)
    for text in texts:
        proto.receive_text(text)
        for event in proto.events_received():
            if isinstance(event, InitReceived):
                proto.send_connection_ack()
        for out in proto.data_to_send():
            codec.decode_server(out.text)
    if not authorized and texts:
        assert proto.close_expected == (1000, "")


class ServerMachine(RuleBasedStateMachine):
    """Subscribe/unsubscribe/accept/reject/send_data against a model of the id sets."""

    pending_ids = Bundle("pending_ids")

    def __init__(self) -> None:
        super().__init__()
        self.protocol = ServerProtocol(max_subscriptions=4)
        self.pending: set[str] = set()
        self.active: set[str] = set()

    def _drain(self) -> tuple[list[Any], list[dict[str, Any]]]:
        frames = [json.loads(t.text) for t in self.protocol.data_to_send()]
        for f in frames:
            if f["type"] == "data":
                assert f["id"] in self.active
        return self.protocol.events_received(), frames

    @rule(target=pending_ids, id=st.sampled_from(["a", "b", "c", "d", "e", "f"]))
    def subscribe(self, id: str) -> str:
        self.protocol.receive_text(subscribe(id, "default/x"))
        events, frames = self._drain()
        if id in self.pending or id in self.active:
            assert frames == [
                json.loads(error_frame("subscribe_error", id, DUPLICATE_SUBSCRIPTION))
            ]
        elif len(self.pending) + len(self.active) >= 4:
            assert frames[0]["errors"][0]["errorType"] == "LimitExceededException"
        else:
            assert [type(e) for e in events] == [SubscribeRequested]
            assert frames == []
            self.pending.add(id)
        return id

    @rule(id=st.sampled_from(["a", "b", "c", "d", "e", "f"]))
    def unsubscribe(self, id: str) -> None:
        self.protocol.receive_text(unsubscribe(id))
        events, frames = self._drain()
        if id in self.pending:
            assert (events, frames) == ([], [])
        elif id in self.active:
            assert [type(e) for e in events] == [UnsubscribeRequested]
            assert frames == []
            self.protocol.accept_unsubscribe(id)
            self.active.discard(id)
            _, frames = self._drain()
            assert frames == [{"type": "unsubscribe_success", "id": id}]
        else:
            assert frames[0]["type"] == "unsubscribe_error"

    @precondition(lambda self: bool(self.pending))
    @rule(id=consumes(pending_ids), accept=st.booleans())
    def decide(self, id: str, accept: bool) -> None:
        if id not in self.pending:
            with pytest.raises(LocalProtocolError):
                self.protocol.accept_subscribe(id)
            return
        self.pending.discard(id)
        if accept:
            self.protocol.accept_subscribe(id)
            self.active.add(id)
            assert self._drain()[1] == [{"type": "subscribe_success", "id": id}]
        else:
            self.protocol.reject_subscribe(id, [UNSUPPORTED_OPERATION])
            assert self._drain()[1][0]["type"] == "subscribe_error"

    @rule(id=st.sampled_from(["a", "b", "c", "d", "e", "f", "zz"]))
    def send_data(self, id: str) -> None:
        assert self.protocol.send_data(id, '{"n":1}') is (id in self.active)
        _, frames = self._drain()
        assert frames == (
            [{"type": "data", "id": id, "event": '{"n":1}'}] if id in self.active else []
        )

    @invariant()
    def ids_match_model(self) -> None:
        assert set(self.protocol.subscriptions) == self.active
        assert set(self.protocol.pending_subscriptions) == self.pending
        assert self.protocol.state is ServerState.OPEN


TestServerMachine = ServerMachine.TestCase
TestServerMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_server_data_frames_is_send_events_returning_the_texts() -> None:
    """data_frames gives the data frames directly, holds them before the ack, and sends
    nothing for an id that is not active."""
    proto = ServerProtocol()
    subscribed(proto)
    events = codec.DataEvents(["1", '"two"'])
    assert proto.data_frames(SUB_ID, events) == [
        codec.encode(Data(id=SUB_ID, event=e)) for e in ("1", '"two"')
    ]
    assert proto.data_frames("other", events) is None
    assert sent(proto) == []
    proto.receive_text(INIT)  # a late init: output waits for the ack
    assert proto.data_frames(SUB_ID, events) == []
    proto.send_connection_ack()
    assert sent(proto)[1:] == [codec.encode(Data(id=SUB_ID, event=e)) for e in ("1", '"two"')]


def test_server_data_ready_says_how_a_fan_out_may_be_written() -> None:
    """data_ready: ``True`` when the frames may be written as they are, ``False`` while
    they are held for the ack, ``None`` for an id that is not active (nothing is sent)."""
    proto = ServerProtocol()
    subscribed(proto)
    assert proto.data_ready(SUB_ID) is True
    assert proto.data_ready("other") is None
    proto.receive_text(INIT)  # a late init: output waits for the ack
    assert proto.data_ready(SUB_ID) is False
    proto.send_connection_ack()
    assert proto.data_ready(SUB_ID) is True
    refused = ServerProtocol()
    subscribed(refused)
    refused.refuse_connection()  # still open until its next frame
    assert refused.data_ready(SUB_ID) is False
    proto.fail_connection([CONNECTION_UNAUTHORIZED])
    assert proto.data_ready(SUB_ID) is None  # closing
    proto.receive_eof()
    assert proto.data_ready(SUB_ID) is None


def test_check_publish_shares_parsed_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel text parsed once is reused (a Channel is immutable); invalid texts and
    non-strings are never kept, and the cache starts over when full."""
    from appsync_emulator import validation

    monkeypatch.setattr(validation, "_channels", {})
    monkeypatch.setattr(validation, "_CHANNELS_KEPT", 2)
    first = check_publish("default/kept", ['"e"'])
    assert first == Channel(("default", "kept"))
    assert check_publish("default/kept", ['"e"']) is first
    assert isinstance(check_publish("default/bad channel", ['"e"']), ErrorDetail)
    assert isinstance(check_publish(7, ['"e"']), ErrorDetail)  # type: ignore[arg-type]
    assert list(validation._channels) == ["default/kept"]
    check_publish("/default/b", ['"e"'])
    check_publish("default/c", ['"e"'])  # full: starts over
    assert list(validation._channels) == ["default/c"]
    assert check_publish("default/kept", ['"e"']) == first
