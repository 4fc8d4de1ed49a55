"""Tests of ``appsync_events.protocol.subprotocol``: the ``header-`` codec.

See docs: protocol.rst, "The header- subprotocol".
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, strategies as st

from appsync_events.errors import RemoteProtocolError
from appsync_events.protocol.subprotocol import (
    HEADER_PREFIX,
    PROTOCOL_EVENTS,
    decode_auth_subprotocol,
    encode_auth_subprotocol,
    find_auth_subprotocol,
    lookup,
    lower_keys,
)
from tests.strategies import authorizations

# AWS's sample values, copied literally (docs: protocol.rst, "The header- subprotocol").
SPEC_JSON = '{"host":"example1234567890000.appsync-api.us-east-1.amazonaws.com","x-api-key":"da2-12345678901234567890123456"}'  # noqa: E501
SPEC_TOKEN = "header-eyJob3N0IjoiZXhhbXBsZTEyMzQ1Njc4OTAwMDAuYXBwc3luYy1hcGkudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20iLCJ4LWFwaS1rZXkiOiJkYTItMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTYifQ"  # noqa: E501
SPEC_MAP = {
    "host": "example1234567890000.appsync-api.us-east-1.amazonaws.com",
    "x-api-key": "da2-12345678901234567890123456",
}


def _token(raw: bytes, *, urlsafe: bool = True, padded: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.standard_b64encode
    text = encode(raw).decode("ascii")
    return HEADER_PREFIX + (text if padded else text.rstrip("="))


def test_constants() -> None:
    """The subprotocol names are the wire strings."""
    assert PROTOCOL_EVENTS == "aws-appsync-event-ws"
    assert HEADER_PREFIX == "header-"


def test_encode_matches_spec_example() -> None:
    """AWS's API-key example encodes to the documented token exactly.

    The example is in docs: protocol.rst, "The header- subprotocol".
    """
    assert json.loads(SPEC_JSON) == SPEC_MAP
    assert encode_auth_subprotocol(SPEC_MAP) == SPEC_TOKEN
    assert _token(SPEC_JSON.encode()) == SPEC_TOKEN


def test_decode_matches_spec_example() -> None:
    """AWS's example token decodes to the documented map.

    The example is in docs: protocol.rst, "The header- subprotocol".
    """
    assert decode_auth_subprotocol(SPEC_TOKEN) == SPEC_MAP


def test_encode_is_unpadded_base64url_of_compact_json() -> None:
    """The token uses ``-``/``_``, has no ``=``, and holds compact JSON."""
    token = encode_auth_subprotocol({"a": "?>?>", "b": "~~~"})
    body = token.removeprefix(HEADER_PREFIX)
    assert not {"=", "+", "/"} & set(body)
    assert {"-", "_"} <= set(body)
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert raw == b'{"a":"?>?>","b":"~~~"}'


@pytest.mark.parametrize("value", ["h", "hh", "hhh", "hhhh"])
def test_decode_accepts_padding_or_not(value: str) -> None:
    """Tokens decode with or without ``=`` padding (EMULATOR-CHOICE,
    docs: emulator-fidelity.rst, "Decoding the header- token")."""
    raw = json.dumps({"host": value}).encode()
    for padded in (False, True):
        assert decode_auth_subprotocol(_token(raw, padded=padded)) == {"host": value}


def test_decode_accepts_standard_alphabet() -> None:
    """``+`` and ``/`` (standard base64) decode like ``-`` and ``_``."""
    raw = b'{"a":"?>?>","b":"~~~","c":"\xc3\xbf\xc3\xbf"}'
    standard = _token(raw, urlsafe=False, padded=True)
    assert {"+", "/"} <= set(standard)
    expected = {"a": "?>?>", "b": "~~~", "c": "ÿÿ"}
    assert decode_auth_subprotocol(standard) == expected
    assert decode_auth_subprotocol(_token(raw, urlsafe=False)) == expected
    assert decode_auth_subprotocol(_token(raw)) == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"host": "h", "x-api-key": "k"}',  # Python json.dumps defaults
        '{"host":"h","x-api-key":"k"}\n',  # the docs' bash sample pipes `echo`
        ' {\n  "host" : "h",\r\n\t"x-api-key":"k"\n}\n',
    ],
)
def test_decode_tolerates_json_whitespace(text: str) -> None:
    """The JSON inside is parsed, not compared, so any whitespace is fine."""
    assert decode_auth_subprotocol(_token(text.encode())) == {"host": "h", "x-api-key": "k"}


def test_decode_ignores_whitespace_in_token() -> None:
    """Whitespace inside the base64 text (a wrapped header value) is ignored."""
    body = SPEC_TOKEN.removeprefix(HEADER_PREFIX)
    wrapped = HEADER_PREFIX + body[:20] + "\n " + body[20:] + " "
    assert decode_auth_subprotocol(wrapped) == SPEC_MAP


def test_decode_keeps_key_case_and_lookup_ignores_it() -> None:
    """Keys keep their case; lookup and lower_keys are case-insensitive."""
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 …",
        "X-Amz-Date": "20200401T001010Z",
        "X-Amz-Security-Token": "tok",
        "host": "h",
    }
    decoded = decode_auth_subprotocol(encode_auth_subprotocol(headers))
    assert decoded == headers
    assert list(decoded) == list(headers)
    assert lookup(decoded, "authorization") == "AWS4-HMAC-SHA256 …"
    assert lookup(decoded, "X-AMZ-DATE") == "20200401T001010Z"
    assert lookup(decoded, "x-amz-security-token") == "tok"
    assert lookup(decoded, "Host") == "h"
    assert lookup(decoded, "x-api-key") is None
    assert lower_keys(decoded) == {
        "authorization": "AWS4-HMAC-SHA256 …",
        "x-amz-date": "20200401T001010Z",
        "x-amz-security-token": "tok",
        "host": "h",
    }


def test_lower_keys_first_spelling_wins() -> None:
    """When two keys differ only in case, the first one's value is kept."""
    assert lower_keys({"Host": "first", "host": "second"}) == {"host": "first"}
    assert lookup({"Host": "first", "host": "second"}, "HOST") == "first"


def test_non_latin1_values_round_trip() -> None:
    """Values outside Latin-1 are UTF-8 encoded and decoded
    (docs: protocol.rst, "The header- subprotocol"; Amplify's btoa cannot)."""
    headers = {"Authorization": "Bearer ✓ 日本語 🎉", "host": "h"}
    token = encode_auth_subprotocol(headers)
    assert token.isascii()
    assert decode_auth_subprotocol(token) == headers
    raw = json.dumps(headers, ensure_ascii=False).encode("utf-8")
    assert decode_auth_subprotocol(_token(raw)) == headers
    escaped = json.dumps(headers, ensure_ascii=True).encode("ascii")
    assert decode_auth_subprotocol(_token(escaped)) == headers


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("aws-appsync-event-ws", "does not start with 'header-'"),
        ("Header-abc", "does not start with 'header-'"),
        ("header-a", "not base64url"),
        ("header-abcde", "not base64url"),
        ("header-éé", "not base64url"),
        (_token(b"\xff\xfe{}"), "not UTF-8"),
        (_token(b'{"a":"\xed\xa0\x80"}'), "not UTF-8"),
        (_token(b"not json"), "not JSON"),
        (_token(b""), "not JSON"),
        ("header-", "not JSON"),
        ("header-!!!!", "not JSON"),
        (_token(b'{"a":"b"'), "not JSON"),
        (_token(b"[" * 100_000 + b"]" * 100_000), "not JSON"),
        (_token(b'{"a":' * 100_000 + b"1" + b"}" * 100_000), "not JSON"),
        (_token(b"9" * 5000), "not JSON"),
        (_token(b'["host","h"]'), "must hold a JSON object"),
        (_token(b'"x"'), "must hold a JSON object"),
        (_token(b"null"), "must hold a JSON object"),
        (_token(b'{"host":1}'), "value 'host' must be a string"),
        (_token(b'{"host":null}'), "value 'host' must be a string"),
        (_token(b'{"host":{"a":"b"}}'), "value 'host' must be a string"),
        (_token(b'{"host":["h"]}'), "value 'host' must be a string"),
    ],
)
def test_decode_rejects_bad_tokens(value: str, reason: str) -> None:
    """Bad tokens raise RemoteProtocolError naming the problem."""
    with pytest.raises(RemoteProtocolError) as info:
        decode_auth_subprotocol(value)
    assert reason in info.value.reason


@given(authorizations)
def test_round_trip(headers: dict[str, str]) -> None:
    """decode(encode(m)) == m for any map of strings."""
    token = encode_auth_subprotocol(headers)
    assert token.startswith(HEADER_PREFIX)
    assert "=" not in token
    assert decode_auth_subprotocol(token) == headers


@given(st.text())
def test_decode_raises_only_remote_protocol_error(text: str) -> None:
    """Arbitrary ``header-`` text decodes to a map of strings or raises RemoteProtocolError."""
    try:
        result = decode_auth_subprotocol(HEADER_PREFIX + text)
    except RemoteProtocolError as exc:
        result = {"__error__": exc.reason}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())


@given(st.binary())
def test_decode_arbitrary_payload_raises_only_remote_protocol_error(raw: bytes) -> None:
    """Any bytes behind a well-formed base64url token decode or raise RemoteProtocolError."""
    try:
        result = decode_auth_subprotocol(_token(raw))
    except RemoteProtocolError as exc:
        result = {"__error__": exc.reason}
    assert isinstance(result, dict)


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        (["aws-appsync-event-ws", SPEC_TOKEN], SPEC_TOKEN),
        ([SPEC_TOKEN, "aws-appsync-event-ws"], SPEC_TOKEN),
        (["x", "header-a", "header-b"], "header-a"),
        (["aws-appsync-event-ws"], None),
        ([], None),
    ],
)
def test_find_auth_subprotocol_in_any_position(offered: list[str], expected: str | None) -> None:
    """The first ``header-`` entry is found wherever it is offered
    (docs: protocol.rst, "The upgrade request")."""
    assert find_auth_subprotocol(offered) == expected
    assert find_auth_subprotocol(iter(offered)) == expected
