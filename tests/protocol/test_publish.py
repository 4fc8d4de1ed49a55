"""Publish preparation (prepare_publish, http_publish_body): no loop, no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, strategies as st

from appsync_events import RawJSON
from appsync_events.errors import ConfigurationError, InvalidChannelError
from appsync_events.protocol.limits import MAX_EVENT_BYTES
from appsync_events.protocol.publish import PreparedPublish, http_publish_body, prepare_publish
from appsync_events.protocol.signing import html_escape_json, signing_body
from tests.strategies import channels, json_texts, json_values


def one(value: object, *, html_escape: bool = False) -> str:
    """The event text of one publish argument."""
    [text] = prepare_publish("default/a", [value], html_escape=html_escape).events
    return text


# --- how each kind of argument becomes an event text ---------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("hello", '"hello"'),
        ('{"a":1}', '"{\\"a\\":1}"'),
        ("", '""'),
        ("Grüße", '"Grüße"'),
        ({"message": "hi", "é": "ü"}, '{"message":"hi","é":"ü"}'),
        ([1, None, True, 1.5], "[1,null,true,1.5]"),
        (None, "null"),
        (0, "0"),
        (b'{"raw": 1}', '{"raw": 1}'),
        (bytearray(b" true "), " true "),
        (memoryview(b"[1]"), "[1]"),
        (RawJSON('{"a": 1}'), '{"a": 1}'),
        (RawJSON('"Grüße"'), '"Grüße"'),
    ],
)
def test_prepare_publish_event_kinds(value: object, text: str) -> None:
    """str and other values are JSON-encoded; bytes and RawJSON are sent as they are."""
    assert one(value) == text


def test_prepare_publish_keeps_channel_and_order() -> None:
    """The channel is kept exactly as given, the events in order."""
    prepared = prepare_publish("/default/a/", [1, "2", RawJSON("3")], html_escape=False)
    assert prepared == PreparedPublish("/default/a/", ("1", '"2"', "3"))
    assert (prepared.channel, prepared.events) == ("/default/a/", ("1", '"2"', "3"))


class _Unserialisable:
    pass


def _circular() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


@pytest.mark.parametrize(
    ("events", "match"),
    [
        ([], "a publish needs at least one event"),
        ([1] * 6, "6 events in one publish; at most 5"),
        ([1, _Unserialisable()], "event 1 \\(_Unserialisable\\) cannot be encoded as JSON"),
        ([float("nan")], "event 0 \\(float\\) cannot be encoded as JSON: Out of range float"),
        ([float("inf")], "event 0 \\(float\\) cannot be encoded as JSON"),
        ([_circular()], "event 0 \\(list\\) cannot be encoded as JSON: Circular reference"),
        ([{1j: 1}], "event 0 \\(dict\\) cannot be encoded as JSON: keys must be"),
        (["\ud800"], "event 0 is not valid JSON: lone surrogate U\\+D800 at char 1"),
        ([b"\xff"], "event 0 is not UTF-8: 'utf-8' codec can't decode byte 0xff"),
        ([b'{"broken"'], "event 0 is not valid JSON: Expecting ':' delimiter"),
        ([1, RawJSON("NaN")], "event 1 is not valid JSON: NaN is not a JSON value"),
        ([RawJSON("")], "event 0 is not valid JSON: Expecting value"),
        ([RawJSON("1 2")], "event 0 is not valid JSON: Extra data"),
        ([RawJSON('"\udc80"')], "event 0 is not valid JSON: lone surrogate U\\+DC80 at char 1"),
        (["x" * MAX_EVENT_BYTES], f"event 0 is {MAX_EVENT_BYTES + 2} bytes, over the"),
        ([RawJSON("1" * (MAX_EVENT_BYTES + 1))], f"event 0 is {MAX_EVENT_BYTES + 1} bytes"),
        ([b"1" * (MAX_EVENT_BYTES + 1)], f"event 0 is {MAX_EVENT_BYTES + 1} bytes"),
        ("hello", "events must be a sequence of events, not one str"),
        ({"a": 1}, "events must be a sequence of events, not one dict"),
        (memoryview(b"[1]"), "events must be a sequence of events, not one memoryview"),
        (None, "events must be a sequence of events, not NoneType"),
    ],
)
def test_prepare_publish_refusals_name_the_problem(events: Any, match: str) -> None:
    """Every refusal is a ConfigurationError naming the event and what is wrong with it."""
    with pytest.raises(ConfigurationError, match=match):
        prepare_publish("default/a", events, html_escape=False)


@pytest.mark.parametrize(
    ("channel", "rule"),
    [("default/*", "wildcard"), ("a/b/c/d/e/f", "segments"), ("", "empty")],
)
def test_prepare_publish_refuses_bad_channels(channel: str, rule: str) -> None:
    """A bad channel raises InvalidChannelError naming it, before any event is encoded."""
    with pytest.raises(InvalidChannelError) as info:
        prepare_publish(channel, [_Unserialisable()], html_escape=False)
    assert info.value.channel == channel


def test_rawjson_needs_a_str() -> None:
    """RawJSON takes a str; bytes are refused with a hint."""
    with pytest.raises(ConfigurationError, match="RawJSON takes a str of JSON text, not bytes"):
        RawJSON(b"{}")  # type: ignore[arg-type]


def test_prepare_publish_html_escape() -> None:
    """html_escape escapes < > & = ' in every kind of event, and the size limit counts it."""
    prepared = prepare_publish("default/a", ["<b>", RawJSON('"a=b"'), b'"it\'s"'], html_escape=True)
    assert prepared.events == ('"\\u003cb\\u003e"', '"a\\u003db"', '"it\\u0027s"')
    with pytest.raises(ConfigurationError, match="event 0 is 8 bytes, over the 7-byte limit"):
        prepare_publish("default/a", ["<"], html_escape=True, max_event_bytes=7)


def test_prepare_publish_event_at_the_limit() -> None:
    """An event of exactly the limit passes, counting UTF-8 bytes."""
    text = '"' + "é" * ((MAX_EVENT_BYTES - 2) // 2) + '"'
    assert one(RawJSON(text)) == text


# --- properties ---------------------------------------------------------------------------


@given(json_values)
def test_prepare_publish_encodes_any_json_value(value: Any) -> None:
    """Any JSON value (a str included) is encoded as a text that decodes to it."""
    assert json.loads(one(value)) == value


@given(json_texts())
def test_prepare_publish_sends_raw_texts_unchanged(text: str) -> None:
    """A JSON text given as RawJSON or as UTF-8 bytes is sent unchanged."""
    assert one(RawJSON(text)) == text
    assert one(text.encode("utf-8")) == text
    assert json.loads(one(text)) == text  # a str is data: a JSON string holding it


@given(json_values)
def test_prepare_publish_escaped_keeps_the_value(value: Any) -> None:
    """html_escape changes the text, never the value."""
    escaped = one(value, html_escape=True)
    assert json.loads(escaped) == value
    assert escaped == html_escape_json(one(value))


@given(channels(), st.lists(json_values, min_size=1, max_size=5))
def test_http_publish_body_is_the_signed_body(channel: str, values: list[Any]) -> None:
    """The HTTP body is exactly the body IAM signs for the prepared channel and events."""
    prepared = prepare_publish(channel, values, html_escape=False)
    body = http_publish_body(prepared)
    assert body == signing_body(prepared.channel, prepared.events)
    assert json.loads(body) == {"channel": channel, "events": list(prepared.events)}


def test_http_publish_body_size_limit() -> None:
    """A body over the request limit is refused, naming its size."""
    prepared = prepare_publish("default/a", ["x" * 40], html_escape=False)
    with pytest.raises(ConfigurationError, match="the publish request is 81 bytes, over the 80"):
        http_publish_body(prepared, max_request_bytes=80)
    assert len(http_publish_body(prepared, max_request_bytes=81)) == 81
