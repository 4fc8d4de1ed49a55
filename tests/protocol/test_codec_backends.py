"""The codec's two JSON parsers: ``orjson`` when installed, the standard library always.

Every function gives the same value, the same verdict and the same error message with
either; these tests run each check under both (``orjson`` is a test dependency, and the
standard library alone is what an install without it gets).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import example, given, strategies as st

from appsync_events.errors import RemoteProtocolError
from appsync_events.protocol import codec
from tests.strategies import frame_like_objects, json_values, texts_with_lone_surrogates

orjson = pytest.importorskip("orjson")

BACKENDS = ("orjson", "stdlib")


@contextmanager
def backend(name: str) -> Iterator[None]:
    """Parse with ``name`` inside the block."""
    saved = codec._FAST
    codec._FAST = orjson.loads if name == "orjson" else None
    try:
        yield
    finally:
        codec._FAST = saved


def outcome(function: Any, *args: Any) -> tuple[str, str]:
    """What ``function(*args)`` did, comparable across backends (NaN equal to NaN)."""
    try:
        value = function(*args)
    except (ValueError, RecursionError, RemoteProtocolError) as exc:
        return "raised", f"{type(exc).__name__}: {exc}"
    return "returned", repr(value)


def both(function: Any, *args: Any) -> tuple[str, str]:
    """The outcome under both backends, asserting they are the same."""
    results = []
    for name in BACKENDS:
        with backend(name):
            results.append(outcome(function, *args))
    assert results[0] == results[1], args
    return results[0]


def received(text: str) -> object:
    """What a client makes of ``text``: the data fast path, else the general decoder
    (``parse_data_frame`` may leave any frame to the general path)."""
    parsed = codec.parse_data_frame(text)
    if parsed is None:
        return codec.decode_server(text)
    return codec.Data(id=parsed[0], event=parsed[1])


def test_the_fast_parser_is_orjson_when_installed() -> None:
    assert codec.orjson_loads() is orjson.loads


def test_without_orjson_the_standard_library_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson raises ImportError
    assert codec.orjson_loads() is None


# Texts on which orjson and json disagree, or could: each must give json's outcome.
EDGE_TEXTS = [
    "18446744073709551615",  # the largest integer orjson keeps
    "18446744073709551616",  # orjson: a float
    "-9223372036854775808",
    "-9223372036854775809",  # orjson: a float
    '{"a":[1,{"b":[99999999999999999999]}]}',
    '[1.5,{"x":-1e30}]',
    '{"a":1e19}',
    "1e400",  # json: inf, orjson refuses
    "-1e400",
    "NaN",
    "[1,Infinity]",
    '"\\ud800"',  # an escaped lone surrogate: json accepts it, orjson does not
    '{"type":"data","id":"s","event":"\\udfff"}',
    "\ufeff{}",
    ' {"a":1} ',
    '{"a":1}{}',
    '{"a":1,"b":2,"a":3}',
    "[" * 300 + "]" * 300,
    "[" + "1," * 300 + "1]",
    '{"a":"' + "x" * 1000 + '"}',
    "[" * 990 + "]" * 990,  # within orjson's limit, beyond json's recursion
    '{"a":' * 995 + "1" + "}" * 995,
    "[" * 2000 + "]" * 2000,
    "-0",
    "-0.0",
    "1.0000000000000002",
    "2.2250738585072011e-308",
    "4.9e-324",
    '"\\u0000\\/\\b"',
    "[1,]",
    "",
    "\t1\n",
]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_loads_is_json_loads_under_both(text: str) -> None:
    assert both(codec.loads, text) == outcome(json.loads, text)


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_event_json_error_is_the_same_under_both(text: str) -> None:
    both(codec.event_json_error, text)


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_decode_is_the_same_under_both(text: str) -> None:
    both(codec.decode, text)
    both(codec.decode, '{"type":"ka","x":' + text + "}")
    both(received, text)
    both(received, '{"type":"data","id":"s","event":"e","x":' + text + "}")


def _texts() -> st.SearchStrategy[str]:
    numbers = st.integers(-(2**80), 2**80).map(str) | st.floats().map(repr)
    return (
        json_values.map(json.dumps)
        | json_values.map(lambda v: json.dumps(v, ensure_ascii=False))
        | st.text(max_size=30)
        | texts_with_lone_surrogates.map(json.dumps)
        | st.lists(numbers, max_size=5).map(lambda items: "[" + ",".join(items) + "]")
        | frame_like_objects().map(json.dumps)
    )


@given(_texts())
@example("[1e999]")
@example('{"a":[[-1e500]]}')
def test_loads_agrees_with_json_loads(text: str) -> None:
    """Any text: both backends give json.loads's value or json.loads's error."""
    assert both(codec.loads, text) == outcome(json.loads, text)


@given(_texts())
def test_event_json_error_agrees_under_both(text: str) -> None:
    both(codec.event_json_error, text)


@given(_texts())
def test_decoders_agree_under_both(text: str) -> None:
    both(codec.decode, text)
    both(received, text)


@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20) | texts_with_lone_surrogates,
    st.sampled_from(["", " ", "\n"]),
)
def test_data_frames_parse_the_same_under_both(event: str, around: str) -> None:
    for ensure_ascii in (True, False):
        frame = around + json.dumps(
            {"type": "data", "id": "s-1", "event": event}, ensure_ascii=ensure_ascii
        )
        both(received, frame)


def test_floats_that_may_be_big_integers_are_left_to_json() -> None:
    """A float from orjson at or beyond 2**63 may be an integer it could not keep."""
    assert codec._exact({"a": [1, 2.5, {"b": -1e18}], "c": "x"})
    assert not codec._exact({"a": [1, {"b": 2.0**63}]})
    assert not codec._exact([-(2.0**63)])
    assert not codec._exact(1e19)
    assert codec._exact(1.5)
    assert codec._exact("x")
    with backend("orjson"):
        value = codec.loads('{"big":[18446744073709551616]}')
    assert value == {"big": [18446744073709551616]}
    assert type(value["big"][0]) is int


def test_deep_values_are_left_to_json() -> None:
    """A value nested 200 levels or more may be too deep for json: json decides."""
    assert codec._exact(json.loads("[" * 199 + "]" * 199))
    assert not codec._exact(json.loads("[" * 200 + "]" * 200))
    assert not codec._exact(json.loads('{"a":' * 200 + "1" + "}" * 200))
    with backend("orjson"):
        assert codec.event_json_error("[" * 990 + "]" * 990) == "nested too deeply"
        assert codec.event_json_error("[" + "1," * 300 + "1]") is None  # long and shallow
        assert codec.parse_data_frame('{"type":"data","id":"s","event":"e","x":[[1]]}') == (
            "s",
            "e",
        )
        deep = "[" * 300 + "]" * 300
        frame = '{"type":"data","id":"s","event":"e","x":' + deep + "}"
        assert codec.parse_data_frame(frame) is None  # the general path decides
        three = '{"type":"data","id":"s","event":' + deep + "}"  # three members, one deep
        assert codec.parse_data_frame(three) is None


def test_message_json_uses_the_codec() -> None:
    from appsync_events import Message

    for name in BACKENDS:
        with backend(name):
            message = Message('{"n":99999999999999999999,"f":0.5}', "s", "c")
            assert message.json() == {"n": 99999999999999999999, "f": 0.5}
            with pytest.raises(ValueError, match="Expecting value"):
                Message("NaX", "s", "c").json()
            assert math.isnan(Message("NaN", "s", "c").json())  # type: ignore[arg-type]
