"""Tests of ``appsync_events.protocol.signing``: the virtual request IAM signs
(docs: protocol.rst, "IAM (SigV4)")."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from appsync_events.protocol.codec import encode_publish_body
from appsync_events.protocol.signing import (
    HTML_ESCAPES,
    SIGNING_HEADERS,
    SIGNING_METHOD,
    SIGNING_PATH,
    SIGNING_SERVICE,
    html_escape_json,
    json_string,
    signing_body,
)
from tests.strategies import json_texts


def test_virtual_request_constants() -> None:
    """Method, path, service and headers are AWS's (the path is /event, not /connect).

    See docs: protocol.rst, "IAM (SigV4)".
    """
    assert SIGNING_METHOD == "POST"
    assert SIGNING_PATH == "/event"
    assert SIGNING_SERVICE == "appsync"
    assert dict(SIGNING_HEADERS) == {
        "accept": "application/json, text/javascript",
        "content-encoding": "amz-1.0",
        "content-type": "application/json; charset=UTF-8",
    }


def test_signing_body_connect() -> None:
    """The connect body is ``{}``."""
    assert signing_body() == "{}"
    assert signing_body(html_escape=True) == "{}"


@pytest.mark.parametrize(
    ("channel", "body"),
    [
        ("default/channel", '{"channel":"default/channel"}'),
        ("/default/channel", '{"channel":"/default/channel"}'),
        ("/default/*", '{"channel":"/default/*"}'),
        ("default/channel/", '{"channel":"default/channel/"}'),
    ],
)
def test_signing_body_subscribe_keeps_channel_as_sent(channel: str, body: str) -> None:
    """The subscribe body holds the channel exactly as sent, not normalised
    (docs: protocol.rst, "What the verifier checks")."""
    assert signing_body(channel) == body


def test_signing_body_publish() -> None:
    """The publish body is compact, channel first, events as JSON strings."""
    events = ['{"event_1":"data_1"}', '{"event_2":"data_2"}']
    assert signing_body("default/channel", events) == (
        '{"channel":"default/channel","events":'
        '["{\\"event_1\\":\\"data_1\\"}","{\\"event_2\\":\\"data_2\\"}"]}'
    )
    assert signing_body("c", []) == '{"channel":"c","events":[]}'
    assert signing_body("c", ("1",)) == '{"channel":"c","events":["1"]}'


def test_json_string_matches_json_stringify() -> None:
    """json_string escapes like JavaScript's JSON.stringify: ``/`` and non-ASCII are kept."""
    # node -e 'console.log(JSON.stringify("a\"b\\c\n\x01é/\x7f\u2028"))'
    assert json_string('a"b\\c\n\x01é/\x7f\u2028') == '"a\\"b\\\\c\\n\\u0001é/\x7f\u2028"'
    assert json_string("\b\f\r\t") == '"\\b\\f\\r\\t"'


@pytest.mark.parametrize(
    ("events", "escaped"),
    [
        (
            ['{"html":"<b>&amp;</b>"}'],
            '["{\\"html\\":\\"\\u003cb\\u003e\\u0026amp;\\u003c/b\\u003e\\"}"]',
        ),
        (["\"a='b'\""], '["\\"a\\u003d\\u0027b\\u0027\\""]'),
    ],
)
def test_signing_body_html_escape(events: list[str], escaped: str) -> None:
    """``html_escape=True`` writes ``< > & = '`` as ``\\uXXXX`` (the server's form)."""
    body = signing_body("default/x", events, html_escape=True)
    assert body == '{"channel":"default/x","events":' + escaped + "}"
    assert json.loads(body) == json.loads(signing_body("default/x", events))


def test_html_escapes_table() -> None:
    """The escape table is Gson's HTML-safe set."""
    assert dict(HTML_ESCAPES) == {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "=": "\\u003d",
        "'": "\\u0027",
    }
    assert html_escape_json("<>&='x") == "\\u003c\\u003e\\u0026\\u003d\\u0027x"
    assert html_escape_json("plain/text") == "plain/text"


@given(st.text(), st.lists(st.one_of(json_texts(), st.text()), max_size=5))
def test_signing_body_is_the_http_publish_body(channel: str, events: list[str]) -> None:
    """The signed publish body equals the HTTP body byte for byte, so one map serves both."""
    assert signing_body(channel, events) == encode_publish_body(channel, events)


@given(st.text(), st.lists(st.text(), max_size=5))
def test_signing_body_is_json_of_channel_and_events(channel: str, events: list[str]) -> None:
    """The body parses back to the channel and events, escaped or not."""
    for html_escape in (False, True):
        assert json.loads(signing_body(channel, events, html_escape=html_escape)) == {
            "channel": channel,
            "events": events,
        }
        assert json.loads(signing_body(channel, html_escape=html_escape)) == {"channel": channel}


@given(json_texts())
def test_html_escape_keeps_json_value(text: str) -> None:
    """Escaping valid JSON text keeps it valid JSON with the same value, without raw ``<>&='``."""
    escaped = html_escape_json(text)
    assert json.loads(escaped) == json.loads(text)
    assert not set("<>&='") & set(escaped)
