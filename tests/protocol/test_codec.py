"""Tests of ``appsync_events.protocol.codec``: frames <-> messages and the HTTP bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, strategies as st

from appsync_events.errors import ErrorDetail, RemoteProtocolError
from appsync_events.protocol import codec
from appsync_events.protocol.codec import (
    decode,
    decode_client,
    decode_error_body,
    decode_errors,
    decode_publish_body,
    decode_publish_result,
    decode_server,
    dumps,
    encode,
    encode_error_body,
    encode_errors,
    encode_publish_body,
    encode_publish_result,
)
from appsync_events.protocol.messages import (
    BroadcastError,
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
    Subscribe,
    SubscribeError,
    SubscribeSuccess,
    Unsubscribe,
    UnsubscribeError,
    UnsubscribeSuccess,
)
from tests.strategies import (
    CLIENT_TYPES,
    MESSAGE_STRATEGIES,
    SERVER_TYPES,
    client_messages,
    frame_like_objects,
    json_values,
    messages,
    server_messages,
    texts_with_lone_surrogates,
)

UUID = "ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69"
HOST = "example1234567890000.appsync-api.us-east-1.amazonaws.com"
API_KEY = "da2-12345678901234567890123456"
UNAUTHORIZED = ErrorDetail(
    error_type="UnauthorizedException",
    message="You are not authorized to make this call.",
    error_code=401,
)


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("wire_type", list(MESSAGE_STRATEGIES))
@given(data=st.data())
def test_codec_round_trips_every_message_type(wire_type: str, data: st.DataObject) -> None:
    """decode(encode(m)) == m for every message type."""
    message = data.draw(MESSAGE_STRATEGIES[wire_type])
    text = encode(message)
    assert json.loads(text)["type"] == wire_type == message.TYPE
    assert decode(text) == message


@given(client_messages)
def test_codec_decode_client_round_trips(message: Frame) -> None:
    """decode_client inverts encode for client messages."""
    assert decode_client(encode(message)) == message


@given(server_messages)
def test_codec_decode_server_round_trips(message: Frame) -> None:
    """decode_server inverts encode for server messages."""
    assert decode_server(encode(message)) == message


@given(messages)
def test_codec_round_trips_utf8_bytes(message: Frame) -> None:
    """A frame given as UTF-8 bytes decodes like the text."""
    assert decode(encode(message).encode("utf-8")) == message


@given(messages)
def test_codec_encode_is_compact_json(message: Frame) -> None:
    """encode writes compact JSON (no spaces between tokens) and keeps non-ASCII."""
    text = encode(message)
    assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


# --- encoding details ---------------------------------------------------------------------


def test_encode_omits_absent_optional_fields() -> None:
    """Absent optional fields are left out of the frame, not sent as null."""
    assert encode(Subscribe(id="1", channel="default/a")) == (
        '{"type":"subscribe","id":"1","channel":"default/a"}'
    )
    assert encode(Publish(id="1", channel="default/a", events=("1",))) == (
        '{"type":"publish","id":"1","channel":"default/a","events":["1"]}'
    )
    assert encode(ConnectionAck()) == '{"type":"connection_ack"}'
    assert encode(ErrorMessage(errors=())) == '{"type":"error","errors":[]}'
    assert encode(PublishSuccess(id="p", failed=(FailedEvent(identifier="u", index=0),))) == (
        '{"type":"publish_success","id":"p","successful":[],"failed":[{"identifier":"u","index":0}]}'
    )


def test_encode_writes_wire_field_names() -> None:
    """encode uses the camelCase wire names and keeps non-ASCII text as is."""
    assert encode(ConnectionAck(connection_timeout_ms=300000)) == (
        '{"type":"connection_ack","connectionTimeoutMs":300000}'
    )
    assert encode(ConnectionErrorMessage(errors=(UNAUTHORIZED,))) == (
        '{"type":"connection_error","errors":[{"errorType":"UnauthorizedException",'
        '"message":"You are not authorized to make this call.","errorCode":401}]}'
    )
    assert encode(ErrorMessage(id="x", errors=())) == '{"type":"error","id":"x","errors":[]}'
    assert encode(Data(id="s", event='"é✓"')) == '{"type":"data","id":"s","event":"\\"é✓\\""}'
    auth = {"host": HOST, "x-api-key": API_KEY}
    assert json.loads(encode(Subscribe(id="1", channel="c", authorization=auth))) == {
        "type": "subscribe",
        "id": "1",
        "channel": "c",
        "authorization": auth,
    }


def test_encode_publish_keeps_events_as_json_text() -> None:
    """Publish events stay strings holding JSON text on the wire."""
    frame = json.loads(encode(Publish(id="1", channel="c", events=('{"a": 1}', "[1,2]"))))
    assert frame["events"] == ['{"a": 1}', "[1,2]"]


def test_dumps_is_compact_and_keeps_unicode() -> None:
    """dumps writes compact JSON with non-ASCII characters kept."""
    assert dumps({"a": [1, "ü"]}) == '{"a":[1,"ü"]}'


def test_encode_errors_includes_error_code_only_when_set() -> None:
    """errorCode appears only for errors that carry one."""
    assert encode_errors([UNAUTHORIZED, ErrorDetail(error_type="X", message="m")]) == [
        {
            "errorType": "UnauthorizedException",
            "message": "You are not authorized to make this call.",
            "errorCode": 401,
        },
        {"errorType": "X", "message": "m"},
    ]


# --- the frame examples of docs: protocol.rst, "Messages", copied literally -----------

SPEC_FRAMES: list[tuple[str, Frame]] = [
    # docs: protocol.rst, "connection_init"
    ('{"type":"connection_init"}', ConnectionInit()),
    # docs: protocol.rst, "subscribe"
    (
        """{
  "type": "subscribe",
  "id": "ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69",
  "channel": "/namespaceA/subB/subC",
  "authorization": {
    "x-api-key": "da2-12345678901234567890123456",
    "host": "example1234567890000.appsync-api.us-east-1.amazonaws.com"
  }
}""",
        Subscribe(
            id=UUID,
            channel="/namespaceA/subB/subC",
            authorization={"x-api-key": API_KEY, "host": HOST},
        ),
    ),
    # docs: protocol.rst, "unsubscribe"
    (
        '{"type":"unsubscribe","id":"ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69"}',
        Unsubscribe(id=UUID),
    ),
    # docs: protocol.rst, "publish"
    (
        """{
  "type": "publish",
  "id": "ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69",
  "channel": "/namespaceA/subB/subC",
  "events": ["{ \\"msg\\": \\"Hello World!\\" }"],
  "authorization": {"x-api-key": "da2-12345678901234567890123456"}
}""",
        Publish(
            id=UUID,
            channel="/namespaceA/subB/subC",
            events=('{ "msg": "Hello World!" }',),
            authorization={"x-api-key": API_KEY},
        ),
    ),
    # docs: protocol.rst, "connection_ack"
    (
        '{"type":"connection_ack","connectionTimeoutMs":300000}',
        ConnectionAck(connection_timeout_ms=300000),
    ),
    # docs: protocol.rst, "Keep-alive"
    ('{"type":"ka"}', KeepAlive()),
    # docs: protocol.rst, "connection_error", "Connection authorization"
    (
        '{"type":"connection_error","errors":[{"errorType":"UnauthorizedException","message":"You are not authorized to make this call.","errorCode":401}]}',  # noqa: E501
        ConnectionErrorMessage(errors=(UNAUTHORIZED,)),
    ),
    # docs: protocol.rst, "subscribe_success"
    (
        '{"type":"subscribe_success","id":"ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69"}',
        SubscribeSuccess(id=UUID),
    ),
    # docs: protocol.rst, "subscribe_error"
    (
        '{"type":"subscribe_error","id":"ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69","errors":[{"errorType":"SubscriptionProcessingError","message":"There was an error processing the operation"}]}',  # noqa: E501
        SubscribeError(
            id=UUID,
            errors=(
                ErrorDetail(
                    error_type="SubscriptionProcessingError",
                    message="There was an error processing the operation",
                ),
            ),
        ),
    ),
    # docs: protocol.rst, "data"
    (
        '{"type":"data","id":"ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69","event":"{\\"msg\\":\\"Hello World!\\"}"}',  # noqa: E501
        Data(id=UUID, event='{"msg":"Hello World!"}'),
    ),
    # docs: protocol.rst, "broadcast_error"
    (
        '{"type":"broadcast_error","id":"ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69","errors":[{"errorType":"MessageProcessingError","message":"There was an error processing the message"}]}',  # noqa: E501
        BroadcastError(
            id=UUID,
            errors=(
                ErrorDetail(
                    error_type="MessageProcessingError",
                    message="There was an error processing the message",
                ),
            ),
        ),
    ),
    # docs: protocol.rst, "unsubscribe_success and unsubscribe_error"
    (
        '{"type":"unsubscribe_success","id":"ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69"}',
        UnsubscribeSuccess(id=UUID),
    ),
    (
        '{"type":"unsubscribe_error","id":"ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69","errors":[{"errorType":"UnknownOperationError","message":"Unknown operation id ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69"}]}',  # noqa: E501
        UnsubscribeError(
            id=UUID,
            errors=(
                ErrorDetail(
                    error_type="UnknownOperationError", message=f"Unknown operation id {UUID}"
                ),
            ),
        ),
    ),
    # docs: protocol.rst, "publish_success"
    (
        """{
  "id": "ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69",
  "type": "publish_success",
  "successful": [{"identifier": "221b6b3f-46fd-4ac1-a327-bd2623b7402e", "index": 0}],
  "failed": []
}""",
        PublishSuccess(
            id=UUID,
            successful=(
                PublishedEvent(identifier="221b6b3f-46fd-4ac1-a327-bd2623b7402e", index=0),
            ),
            failed=(),
        ),
    ),
    # docs: protocol.rst, "publish_error"
    (
        '{"id":"ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69","type":"publish_error","errors":[{"errorType":"An error type","message":"A message"}]}',  # noqa: E501
        PublishError(
            id=UUID, errors=(ErrorDetail(error_type="An error type", message="A message"),)
        ),
    ),
    # docs: protocol.rst, "error"
    (
        '{"type":"error","errors":[{"errorType":"UnsupportedOperation","message":"Operation not supported through the realtime channel"}]}',  # noqa: E501
        ErrorMessage(
            errors=(
                ErrorDetail(
                    error_type="UnsupportedOperation",
                    message="Operation not supported through the realtime channel",
                ),
            )
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), SPEC_FRAMES)
def test_codec_decodes_spec_frame_examples(text: str, expected: Frame) -> None:
    """Every frame example (docs: protocol.rst, "Messages") decodes to the expected message."""
    assert decode(text) == expected
    side = decode_client if expected.TYPE in CLIENT_TYPES else decode_server
    assert side(text) == expected
    assert decode(encode(expected)) == expected


def test_codec_decodes_spec_failed_entry() -> None:
    """The observed failed entry decodes with its code and message.

    The entry is described in docs: protocol.rst, "publish_success".
    """
    frame = (
        '{"id":"p","type":"publish_success","successful":[],"failed":['
        '{"code":"EventTooLargeException","identifier":"<uuid>","index":0,'
        '"message":"Transformed event is larger than 240KB"}]}'
    )
    assert decode_server(frame) == PublishSuccess(
        id="p",
        failed=(
            FailedEvent(
                identifier="<uuid>",
                index=0,
                code="EventTooLargeException",
                message="Transformed event is larger than 240KB",
            ),
        ),
    )


def test_codec_decodes_swift_style_failed_entry() -> None:
    """A failed entry in the Swift client's errorCode/errorMessage form is accepted."""
    frame = (
        '{"type":"publish_success","id":"p","failed":['
        '{"identifier":"u","index":1,"errorCode":"Oops","errorMessage":"bad"},'
        '{"identifier":"v","index":2,"errorCode":7,"errorMessage":null},'
        '{"identifier":"w","index":3,"errorCode":null,"message":""}]}'
    )
    assert decode_server(frame).failed == (  # type: ignore[union-attr]
        FailedEvent(identifier="u", index=1, code="Oops", message="bad"),
        FailedEvent(identifier="v", index=2, code="7", message=None),
        FailedEvent(identifier="w", index=3, code=None, message=""),
    )


# The Amplify transcript of docs: protocol.rst, "A complete session".  The lines are copied
# literally; the page's placeholders that are not JSON (H, K, {…same…}, {…}) are filled in by _fill.
TRANSCRIPT = r"""
C→S  {"type":"connection_init"}
S→C  {"type":"connection_ack","connectionTimeoutMs":300000}
S→C  {"type":"ka"}
C→S  {"id":"<uuid1>","channel":"default/chat","authorization":{"host":H,"x-amz-date":"…","x-api-key":K,"x-amz-user-agent":"aws-amplify/…"},"payload":{"channel":"default/chat","extensions":{"authorization":{…same…}}},"type":"subscribe"}
S→C  {"type":"subscribe_success","id":"<uuid1>"}
C→S  {"id":"<uuid2>","channel":"default/chat","events":["{\"text\":\"hi\"}"],"authorization":{…},"payload":{"events":["{\"text\":\"hi\"}"],"channel":"default/chat","extensions":{"authorization":{…}}},"type":"publish"}
S→C  {"id":"<uuid2>","type":"publish_success","successful":[{"identifier":"<uuid3>","index":0}],"failed":[]}
S→C  {"type":"data","id":"<uuid1>","event":"{\"text\":\"hi\"}"}
C→S  {"id":"<uuid1>","type":"unsubscribe"}
S→C  {"type":"unsubscribe_success","id":"<uuid1>"}
"""  # noqa: E501

AMPLIFY_AUTH = {
    "host": "H",
    "x-amz-date": "…",
    "x-api-key": "K",
    "x-amz-user-agent": "aws-amplify/…",
}
TRANSCRIPT_MESSAGES: list[Frame] = [
    ConnectionInit(),
    ConnectionAck(connection_timeout_ms=300000),
    KeepAlive(),
    Subscribe(id="<uuid1>", channel="default/chat", authorization=AMPLIFY_AUTH),
    SubscribeSuccess(id="<uuid1>"),
    Publish(id="<uuid2>", channel="default/chat", events=('{"text":"hi"}',), authorization={}),
    PublishSuccess(
        id="<uuid2>", successful=(PublishedEvent(identifier="<uuid3>", index=0),), failed=()
    ),
    Data(id="<uuid1>", event='{"text":"hi"}'),
    Unsubscribe(id="<uuid1>"),
    UnsubscribeSuccess(id="<uuid1>"),
]


def _fill(line: str) -> str:
    return (
        line.replace(":H,", ':"H",')
        .replace(":K,", ':"K",')
        .replace("{…same…}", "{}")
        .replace("{…}", "{}")
    )


def test_codec_decodes_spec_transcript() -> None:
    """The Amplify transcript decodes frame by frame, legacy ``payload`` ignored.

    The transcript is described in docs: protocol.rst, "A complete session".
    """
    lines = [line for line in TRANSCRIPT.strip().splitlines()]
    assert len(lines) == len(TRANSCRIPT_MESSAGES)
    for line, expected in zip(lines, TRANSCRIPT_MESSAGES, strict=True):
        direction, frame = line.split("  ", 1)
        decoder = decode_client if direction == "C→S" else decode_server
        assert decoder(_fill(frame)) == expected, line


# --- HTTP bodies (docs: protocol.rst, "HTTP publish") ---------------------------------------


def test_http_publish_body_matches_spec() -> None:
    """encode_publish_body writes the publish body and decode_publish_body reads it back.

    The body is described in docs: protocol.rst, "The request".
    """
    body = '{"channel":"default/channel","events":["{\\"event_1\\":\\"data_1\\"}","{\\"event_2\\":\\"data_2\\"}"]}'  # noqa: E501
    events = ('{"event_1":"data_1"}', '{"event_2":"data_2"}')
    assert encode_publish_body("default/channel", events) == body
    assert decode_publish_body(body) == ("default/channel", events)
    assert decode_publish_body(body.encode()) == ("default/channel", events)


def test_http_publish_body_ignores_extra_fields() -> None:
    """Extra body fields (OB-REQUEST sends ``id``) are ignored."""
    assert decode_publish_body('{"id":"x","channel":"c","events":[]}') == ("c", ())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{", "invalid JSON in publish body"),
        ("[]", "publish body must be a JSON object, not an array"),
        ('{"events":[]}', "missing field 'channel'"),
        ('{"channel":1,"events":[]}', "field 'channel' must be a string, not a number"),
        ('{"channel":"c"}', "missing field 'events'"),
        ('{"channel":"c","events":"x"}', "field 'events' must be an array, not a string"),
        ('{"channel":"c","events":[{}]}', "field events[0] must be a string, not an object"),
    ],
)
def test_http_publish_body_rejects_bad_shapes(body: str, reason: str) -> None:
    """A malformed publish body raises RemoteProtocolError naming the problem."""
    with pytest.raises(RemoteProtocolError) as info:
        decode_publish_body(body)
    assert info.value.reason.startswith(reason)


def test_http_publish_result_matches_spec() -> None:
    """The success body decodes, and encode_publish_result writes ``failed`` first.

    The body is described in docs: protocol.rst, "Success: successful and failed".
    """
    body = '{"failed":[],"successful":[{"identifier":"53287bee-ae0d-42e7-8a90-e9d2a49e4bd7","index":0}]}'  # noqa: E501
    ok = (PublishedEvent(identifier="53287bee-ae0d-42e7-8a90-e9d2a49e4bd7", index=0),)
    assert decode_publish_result(body) == (ok, ())
    assert encode_publish_result(ok, ()) == body


def test_http_publish_result_with_failed_entry() -> None:
    """The observed failed entry decodes and re-encodes.

    The entry is described in docs: protocol.rst, "Success: successful and failed".
    """
    body = (
        '{"failed":[{"identifier":"u","index":0,"code":"EventTooLargeException",'
        '"message":"Transformed event is larger than 240KB"}],"successful":[]}'
    )
    failed = (
        FailedEvent(
            identifier="u",
            index=0,
            code="EventTooLargeException",
            message="Transformed event is larger than 240KB",
        ),
    )
    assert decode_publish_result(body.encode()) == ((), failed)
    assert encode_publish_result((), failed) == body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("nope", "invalid JSON in publish response"),
        ("1", "publish response must be a JSON object, not a number"),
        ('{"successful":{}}', "field 'successful' must be an array, not an object"),
        ('{"successful":[1]}', "field successful[0] must be an object, not a number"),
        ('{"successful":[{"index":0}]}', "successful[0]: missing field 'identifier'"),
        ('{"successful":[{"identifier":"u"}]}', "successful[0]: missing field 'index'"),
        (
            '{"successful":[{"identifier":"u","index":"0"}]}',
            "successful[0]: field 'index' must be an integer, not a string",
        ),
        ('{"failed":[{"identifier":"u"}]}', "failed[0]: missing field 'index'"),
        (
            '{"failed":[{"identifier":"u","index":0,"code":5}]}',
            "failed[0]: field 'code' must be a string, not a number",
        ),
    ],
)
def test_http_publish_result_rejects_bad_shapes(body: str, reason: str) -> None:
    """A malformed publish response raises RemoteProtocolError naming the problem."""
    with pytest.raises(RemoteProtocolError) as info:
        decode_publish_result(body)
    assert info.value.reason.startswith(reason)


def test_http_publish_result_accepts_missing_arrays() -> None:
    """Absent or null ``successful``/``failed`` arrays read as empty."""
    assert decode_publish_result('{"successful":null}') == ((), ())


def test_http_error_body_round_trips() -> None:
    """The error body decodes, and encode_error_body writes it.

    The body is described in docs: protocol.rst, "Errors".
    """
    body = '{"errors":[{"errorType":"UnauthorizedException","message":"You are not authorized to make this call."}]}'  # noqa: E501
    detail = ErrorDetail(
        error_type="UnauthorizedException", message="You are not authorized to make this call."
    )
    assert decode_error_body(body) == (detail,)
    assert encode_error_body([detail]) == body
    assert decode_error_body(encode_error_body([UNAUTHORIZED]).encode()) == (UNAUTHORIZED,)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html>", "invalid JSON in error body"),
        ('"x"', "error body must be a JSON object, not a string"),
        ("{}", "missing field 'errors'"),
        ('{"errors":{}}', "field 'errors' must be an array, not an object"),
        ('{"errors":[{"message":"m"}]}', "errors[0]: missing field 'errorType'"),
        ('{"errors":[{"errorType":null}]}', "errors[0]: field 'errorType' must be a string"),
    ],
)
def test_http_error_body_rejects_bad_shapes(body: str, reason: str) -> None:
    """A malformed error body raises RemoteProtocolError naming the problem."""
    with pytest.raises(RemoteProtocolError) as info:
        decode_error_body(body)
    assert info.value.reason.startswith(reason)


def test_decode_errors_reads_a_bare_array() -> None:
    """decode_errors reads an errors array on its own; a missing message reads as empty."""
    assert decode_errors([{"errorType": "X", "errorCode": 403.0}]) == (
        ErrorDetail(error_type="X", message="", error_code=403),
    )
    with pytest.raises(RemoteProtocolError, match="must be an array, not null"):
        decode_errors(None)


# --- decoding rules -----------------------------------------------------------------------


def test_decode_ignores_unknown_fields() -> None:
    """Unknown top-level and nested fields are ignored (docs: protocol.rst, "The envelope")."""
    frame = (
        '{"type":"subscribe","id":"1","channel":"c","authorization":{"x":"y"},'
        '"payload":{"deep":[1,2,{"z":null}]},"extra":true}'
    )
    assert decode_client(frame) == Subscribe(id="1", channel="c", authorization={"x": "y"})
    err = '{"type":"error","errors":[{"errorType":"T","message":"m","more":1}],"x":{}}'
    assert decode_server(err) == ErrorMessage(errors=(ErrorDetail(error_type="T", message="m"),))
    # exanubes sends authorization on unsubscribe
    assert decode_client('{"type":"unsubscribe","id":"u","authorization":{}}') == Unsubscribe(
        id="u"
    )


def test_decode_accepts_null_optional_fields() -> None:
    """null for an optional field reads as absent."""
    assert decode_client(
        '{"type":"publish","id":"1","channel":"c","events":[],"authorization":null}'
    ) == Publish(id="1", channel="c", events=())
    assert decode_server('{"type":"connection_ack","connectionTimeoutMs":null}') == (
        ConnectionAck()
    )
    assert decode_server('{"type":"error","id":null,"errors":[]}') == ErrorMessage()


def test_decode_accepts_integral_floats() -> None:
    """An integral number written as a float (300000.0, 4.01e2) reads as an int."""
    ack = decode_server('{"type":"connection_ack","connectionTimeoutMs":300000.0}')
    assert ack == ConnectionAck(connection_timeout_ms=300000)
    assert isinstance(ack.connection_timeout_ms, int)  # type: ignore[union-attr]
    err = decode_server('{"type":"error","errors":[{"errorType":"T","errorCode":4.01e2}]}')
    assert err.errors[0].error_code == 401  # type: ignore[union-attr]


def test_connection_ack_exposes_timeout_in_seconds() -> None:
    """ConnectionAck.connection_timeout is the timeout in seconds, or None."""
    assert ConnectionAck(connection_timeout_ms=300000).connection_timeout == 300.0
    assert ConnectionAck(connection_timeout_ms=250).connection_timeout == 0.25
    assert ConnectionAck().connection_timeout is None


def test_decode_either_direction() -> None:
    """decode reads a frame of either direction."""
    assert decode('{"type":"publish","id":"1","channel":"c","events":["1"]}') == Publish(
        id="1", channel="c", events=("1",)
    )
    assert decode('{"type":"ka"}') == KeepAlive()


@pytest.mark.parametrize(
    ("frame", "reason", "frame_type", "id"),
    [
        ("", "invalid JSON", None, None),
        ("{'type':'ka'}", "invalid JSON", None, None),
        ('{"type":"ka"} x', "invalid JSON", None, None),
        ("[]", "frame must be a JSON object, not an array", None, None),
        ("null", "frame must be a JSON object, not null", None, None),
        ("true", "frame must be a JSON object, not a boolean", None, None),
        ("1.5", "frame must be a JSON object, not a number", None, None),
        ('"ka"', "frame must be a JSON object, not a string", None, None),
        ("{}", "missing field 'type'", None, None),
        ('{"type":null,"id":"i"}', "missing field 'type'", None, "i"),
        ('{"type":5,"id":"i"}', "field 'type' must be a string, not a number", None, "i"),
        ('{"type":"start","id":"i"}', "unknown server message type 'start'", "start", "i"),
        ('{"type":"subscribe"}', "missing field 'id'", "subscribe", None),
        (
            '{"type":"subscribe","id":1}',
            "field 'id' must be a string, not a number",
            "subscribe",
            None,
        ),
        (
            '{"type":"subscribe","id":"i","channel":null}',
            "field 'channel' must be a string, not null",
            "subscribe",
            "i",
        ),
        (
            '{"type":"subscribe","id":"i","channel":"c","authorization":[]}',
            "field 'authorization' must be an object, not an array",
            "subscribe",
            "i",
        ),
        (
            '{"type":"subscribe","id":"i","channel":"c","authorization":{"k":1}}',
            "field authorization.k must be a string, not a number",
            "subscribe",
            "i",
        ),
        ('{"type":"publish","id":"i","channel":"c"}', "missing field 'events'", "publish", "i"),
        (
            '{"type":"publish","id":"i","channel":"c","events":null}',
            "field 'events' must be an array, not null",
            "publish",
            "i",
        ),
        (
            '{"type":"publish","id":"i","channel":"c","events":[{"a":1}]}',
            "field events[0] must be a string, not an object",
            "publish",
            "i",
        ),
        (
            '{"type":"connection_ack","connectionTimeoutMs":"300000"}',
            "field 'connectionTimeoutMs' must be an integer, not a string",
            "connection_ack",
            None,
        ),
        (
            '{"type":"connection_ack","connectionTimeoutMs":true}',
            "field 'connectionTimeoutMs' must be an integer, not a boolean",
            "connection_ack",
            None,
        ),
        (
            '{"type":"connection_ack","connectionTimeoutMs":1.5}',
            "field 'connectionTimeoutMs' must be an integer, not a number",
            "connection_ack",
            None,
        ),
        (
            '{"type":"connection_ack","connectionTimeoutMs":1e400}',
            "field 'connectionTimeoutMs' must be an integer",
            "connection_ack",
            None,
        ),
        (
            '{"type":"connection_ack","connectionTimeoutMs":NaN}',
            "field 'connectionTimeoutMs' must be an integer",
            "connection_ack",
            None,
        ),
        ('{"type":"connection_error"}', "missing field 'errors'", "connection_error", None),
        (
            '{"type":"connection_error","errors":null}',
            "field 'errors' must be an array, not null",
            "connection_error",
            None,
        ),
        (
            '{"type":"subscribe_error","id":"i","errors":[[]]}',
            "field errors[0] must be an object, not an array",
            "subscribe_error",
            "i",
        ),
        (
            '{"type":"publish_error","id":"i","errors":[{"errorType":"T","message":3}]}',
            "errors[0]: field 'message' must be a string, not a number",
            "publish_error",
            "i",
        ),
        (
            '{"type":"publish_error","id":"i","errors":[{"errorType":"T","errorCode":"401"}]}',
            "errors[0]: field 'errorCode' must be an integer, not a string",
            "publish_error",
            "i",
        ),
        (
            '{"type":"data","id":"i","event":{"a":1}}',
            "field 'event' must be a string, not an object",
            "data",
            "i",
        ),
        ('{"type":"data","id":"i"}', "missing field 'event'", "data", "i"),
        (
            '{"type":"error","id":7,"errors":[]}',
            "field 'id' must be a string, not a number",
            "error",
            None,
        ),
        (
            '{"type":"publish_success","id":"i","successful":[{"identifier":1,"index":0}]}',
            "successful[0]: field 'identifier' must be a string",
            "publish_success",
            "i",
        ),
        (
            '{"type":"publish_success","id":"i","failed":[{"identifier":"u","index":0,"errorMessage":1}]}',
            "failed[0]: field 'errorMessage' must be a string",
            "publish_success",
            "i",
        ),
    ],
)
def test_decode_rejects_bad_frames(
    frame: str, reason: str, frame_type: str | None, id: str | None
) -> None:
    """A bad frame raises RemoteProtocolError with the reason, type and id it could read."""
    with pytest.raises(RemoteProtocolError) as info:
        decode(frame)
    assert info.value.reason.startswith(reason), info.value.reason
    assert info.value.frame_type == frame_type
    assert info.value.id == id


def test_decode_client_rejects_server_types() -> None:
    """decode_client refuses a server frame, naming the side and keeping the id."""
    with pytest.raises(RemoteProtocolError) as info:
        decode_client('{"type":"subscribe_success","id":"s"}')
    assert info.value.reason == "unknown client message type 'subscribe_success'"
    assert (info.value.frame_type, info.value.id) == ("subscribe_success", "s")
    assert str(info.value) == (
        "unknown client message type 'subscribe_success' in 'subscribe_success' frame"
    )


def test_decode_server_rejects_client_types() -> None:
    """decode_server refuses a client frame."""
    with pytest.raises(RemoteProtocolError, match="unknown server message type 'publish'"):
        decode_server('{"type":"publish","id":"p","channel":"c","events":[]}')


def test_decode_rejects_invalid_utf8_bytes() -> None:
    """Bytes that are not UTF-8 (including an encoded lone surrogate) are refused."""
    for data in (b"\xff", b'{"type":"ka","x":"\xed\xa0\x80"}', bytearray(b"\xc3")):
        with pytest.raises(RemoteProtocolError, match="not valid UTF-8"):
            decode(data)
    assert decode(bytearray(b'{"type":"ka"}')) == KeepAlive()


def test_decode_handles_lone_surrogates() -> None:
    """Lone surrogates, raw or escaped, never crash the decoder."""
    assert decode('{"type":"data","id":"\\ud800","event":"\\udfff"}') == Data(
        id="\ud800", event="\udfff"
    )
    assert decode('{"type":"data","id":"\ud800","event":"x"}') == Data(id="\ud800", event="x")
    with pytest.raises(RemoteProtocolError):
        decode('{"type":"\ud800"}')


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_decode_survives_deep_nesting(depth: int) -> None:
    """Deeply nested JSON decodes or raises RemoteProtocolError, never RecursionError."""
    nested = "[" * depth + "]" * depth
    for text in (nested, '{"type":"ka","x":' + nested + "}", '{"a":' * depth + "1" + "}" * depth):
        _only_remote_protocol_errors(text)
    with pytest.raises(RemoteProtocolError):
        decode(nested)
    for body_decoder in _BODY_DECODERS:
        with pytest.raises(RemoteProtocolError):
            body_decoder(nested)


def test_decode_survives_huge_numbers() -> None:
    """Numbers beyond int/float range raise RemoteProtocolError or decode sanely."""
    big = "9" * 5000
    with pytest.raises(RemoteProtocolError):
        decode('{"type":"connection_ack","connectionTimeoutMs":' + big + "}")
    with pytest.raises(RemoteProtocolError):
        decode(big)
    with pytest.raises(RemoteProtocolError):
        decode_error_body('{"errors":[{"errorType":"T","errorCode":' + big + "}]}")
    with pytest.raises(RemoteProtocolError):
        decode_publish_result('{"successful":[{"identifier":"u","index":' + big + "}]}")
    with pytest.raises(RemoteProtocolError):
        decode_publish_body('{"channel":"c","events":[],"x":' + big + "}")
    huge = "1" + "0" * 400
    ack = decode('{"type":"connection_ack","connectionTimeoutMs":' + huge + "}")
    assert ack == ConnectionAck(connection_timeout_ms=10**400)
    assert decode('{"type":"connection_ack","connectionTimeoutMs":1e300}') == ConnectionAck(
        connection_timeout_ms=int(1e300)
    )


_DECODERS = [decode, decode_client, decode_server]
_BODY_DECODERS = [decode_error_body, decode_publish_result, decode_publish_body]


def _attempt(decoder: Any, text: str | bytes) -> Any:
    """Return what ``decoder`` returns or the RemoteProtocolError it raises."""
    try:
        return decoder(text)
    except RemoteProtocolError as exc:
        return exc


def _only_remote_protocol_errors(text: str | bytes) -> None:
    for decoder in _DECODERS:
        result = _attempt(decoder, text)
        if isinstance(result, RemoteProtocolError):
            assert result.reason
            assert result.frame_type is None or isinstance(result.frame_type, str)
            assert result.id is None or isinstance(result.id, str)
        else:
            assert decode(encode(result)) == result
    for body_decoder in _BODY_DECODERS:
        result = _attempt(body_decoder, text)
        assert not isinstance(result, RemoteProtocolError) or result.reason


@given(st.text())
@example("")
@example("\ud800")
@example('{"type":"ka"}')
@example("NaN")
@example("-Infinity")
def test_decode_raises_only_remote_protocol_error_on_text(text: str) -> None:
    """Arbitrary text either decodes or raises RemoteProtocolError."""
    _only_remote_protocol_errors(text)


@given(st.binary())
@example(b"\xef\xbb\xbf{}")
@example(b"\x00\x00\x00{")
def test_decode_raises_only_remote_protocol_error_on_bytes(data: bytes) -> None:
    """Arbitrary bytes either decode or raise RemoteProtocolError."""
    _only_remote_protocol_errors(data)


@given(json_values)
def test_decode_raises_only_remote_protocol_error_on_json(value: Any) -> None:
    """Arbitrary JSON values either decode or raise RemoteProtocolError."""
    _only_remote_protocol_errors(json.dumps(value))


@given(frame_like_objects())
def test_decode_raises_only_remote_protocol_error_on_frame_like_objects(
    obj: dict[str, Any],
) -> None:
    """Objects with frame types and mistyped fields decode or raise RemoteProtocolError."""
    _only_remote_protocol_errors(json.dumps(obj))
    _only_remote_protocol_errors(json.dumps(obj).encode())
    try:
        decode_errors(obj.get("errors"))
    except RemoteProtocolError:
        pass


@given(frame_like_objects())
def test_decode_names_frame_type_when_readable(obj: dict[str, Any]) -> None:
    """Every error for an object with a string type and id carries that type and id."""
    result = _attempt(decode, json.dumps(obj))
    if isinstance(result, RemoteProtocolError):
        if isinstance(obj.get("type"), str):
            assert result.frame_type == obj["type"]
        if isinstance(obj.get("id"), str):
            assert result.id == obj["id"]


_MISTYPED_FIELDS = {
    "id": "abc",
    "channel": 1,
    "events": 1,
    "errors": 1,
    "event": 1,
    "connectionTimeoutMs": "x",
    "successful": 1,
}


@pytest.mark.parametrize(
    "wire_type",
    sorted(
        set(SERVER_TYPES + CLIENT_TYPES)
        - {"connection_init", "ka", "subscribe_success", "unsubscribe", "unsubscribe_success"}
    ),
)
def test_decode_error_names_type_and_id(wire_type: str) -> None:
    """A field error in any frame type that has fields keeps the frame's type and id."""
    with pytest.raises(RemoteProtocolError) as info:
        decode(json.dumps({"type": wire_type, **_MISTYPED_FIELDS}))
    assert (info.value.frame_type, info.value.id) == (wire_type, "abc")


@pytest.mark.parametrize(
    "wire_type",
    ["connection_init", "ka", "subscribe_success", "unsubscribe", "unsubscribe_success"],
)
def test_decode_ignores_fields_a_type_does_not_have(wire_type: str) -> None:
    """Fields a frame type does not define are ignored, whatever their JSON type."""
    assert decode(json.dumps({"type": wire_type, **_MISTYPED_FIELDS})).TYPE == wire_type


def test_codec_module_exports() -> None:
    """codec's __all__ names its public helpers."""
    for name in codec.__all__:
        assert callable(getattr(codec, name))


# --- the data-frame fast path ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type":"data","id":"s","event":"{\\"a\\":1}"}', ("s", '{"a":1}')),
        ('{"id":"s","event":"1","type":"data","extra":[1]}', ("s", "1")),
        (' {"type":"data","id":"s","event":"1"}', None),  # whitespace: general path
        ('{"type":"data","id":"s","event":"1"} ', None),
        ('{"type":"data","id":"s","event":"1"}{}', None),
        ('{"type":"ka"}', None),
        ('{"type":"data","id":1,"event":"1"}', None),
        ('{"type":"data","id":"s","event":{"a":1}}', None),
        ('{"type":"data","id":"s"}', None),
        ('["data"]', None),
        ("not json", None),
        ("", None),
        ("[" * 100_000, None),
    ],
)
def test_parse_data_frame(text: str, expected: tuple[str, str] | None) -> None:
    """parse_data_frame returns (id, event) for a bare well-formed data frame, else None."""
    assert codec.parse_data_frame(text) == expected


@given(st.one_of(MESSAGE_STRATEGIES["data"], server_messages))
def test_parse_data_frame_agrees_with_decode(message: Frame) -> None:
    """On encoded frames the fast path agrees with decode_server."""
    parsed = codec.parse_data_frame(encode(message))
    if isinstance(message, Data):
        assert parsed == (message.id, message.event)
    else:
        assert parsed is None


@given(st.text() | frame_like_objects().map(json.dumps))
def test_parse_data_frame_never_raises(text: str) -> None:
    """Whatever the text, the fast path returns None or what decode_server would give."""
    parsed = codec.parse_data_frame(text)
    if parsed is not None:
        assert decode_server(text) == Data(id=parsed[0], event=parsed[1])


@given(
    id=st.from_regex(r"[a-zA-Z0-9\-_+]{1,128}", fullmatch=True),
    event=texts_with_lone_surrogates,
)
@example(id="s", event='"\ud800é"')
def test_encode_data_equals_generic_encoding(id: str, event: str) -> None:
    """The fan-out fast path writes exactly the frame the generic encoder writes."""
    assert codec.encode_data(id, event) == codec.encode(Data(id=id, event=event))
    frames = codec.encode_data_frames(id, [event, "1", event])
    assert frames == [codec.encode(Data(id=id, event=e)) for e in (event, "1", event)]
    assert codec.encode_data_frames(id, codec.DataEvents([event, "1", event])) == frames


def test_sniff_frame_reads_type_and_valid_id_without_parsing() -> None:
    """sniff_frame finds the type and a valid id in text that is not even JSON."""
    assert codec.sniff_frame('{"type" : "publish", "id":"p-1", "x": [') == ("publish", "p-1")
    assert codec.sniff_frame('{"id":"bad id","type":"subscribe"') == ("subscribe", None)
    assert codec.sniff_frame("nothing") == (None, None)


@pytest.mark.parametrize(
    ("text", "expected"), [("{}", True), ('{"a":[1]}', True), ("[1]", False), ("{", False)]
)
def test_is_json_object(text: str, expected: bool) -> None:
    """is_json_object is true for exactly one JSON object."""
    assert codec.is_json_object(text) is expected


@given(MESSAGE_STRATEGIES["publish_success"])
@example(PublishSuccess(id="p1", successful=(PublishedEvent(identifier=UUID, index=0),)))
@example(PublishSuccess(id='é"\\', successful=(PublishedEvent(identifier="\x00✓", index=4),)))
def test_publish_success_fast_path_equals_generic_encoding(message: PublishSuccess) -> None:
    """publish_success (sent for every publish) is built as text, equal to the dict path."""
    assert encode(message) == dumps(codec._to_wire(message))
    assert decode_server(encode(message)) == message


@given(texts_with_lone_surrogates)
@example("lone \ud800 surrogate, é kept")
def test_frames_are_always_utf8_text(text: str) -> None:
    """A lone surrogate (from an escape a peer sent) is written escaped, never raw.

    A text frame must be UTF-8; the escaped form decodes to what JSON makes of the text
    (two surrogates that form a pair come back as one character).
    """
    makers: list[Callable[[str], Frame]] = [
        lambda t: ErrorMessage(errors=(ErrorDetail(error_type="BadRequestException", message=t),)),
        lambda t: Data(id="s1", event=t),
        lambda t: PublishSuccess(id="p1", successful=(PublishedEvent(identifier=t, index=0),)),
    ]
    as_json = json.loads(json.dumps(text))
    for make in makers:
        frame = encode(make(text))
        frame.encode("utf-8")
        assert decode_server(frame) == make(as_json)
    assert codec.encode_data("s1", text) == encode(Data(id="s1", event=text))
    assert json.loads(dumps({"m": text})) == {"m": as_json}


def _json_loads_verdict(text: str) -> str | None:
    def reject(name: str) -> object:
        raise ValueError(f"{name} is not a JSON value")

    try:
        json.loads(text, parse_constant=reject)
    except ValueError as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply"
    return None


@given(
    st.text(max_size=30)
    | json_values.map(json.dumps)
    | st.tuples(
        st.sampled_from(["", " ", "\n", "\ufeff"]),
        json_values.map(json.dumps) | st.sampled_from(["NaN", "-Infinity", "[1,NaN]"]),
        st.sampled_from(["", " ", " 1", "}", "\t"]),
    ).map("".join)
)
def test_event_json_error_is_json_loads_without_nan(text: str) -> None:
    """The fast scan and the full decode give json.loads's verdict and message exactly
    (with NaN/Infinity refused), for any text a frame can carry."""
    assert codec.event_json_error(text) == _json_loads_verdict(text)
