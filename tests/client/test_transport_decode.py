"""The decode hot path: ``codec.loads`` is ``json.loads``, value for value, error for error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, strategies as st

from appsync_events import Message
from appsync_events.protocol.codec import loads

from ..strategies import json_texts

_SPACE = st.sampled_from(["", " ", "\n", "\t ", "\r\n"])


def _outcome(decode: Any, text: str) -> tuple[str, Any]:
    try:
        value = decode(text)
    except ValueError as exc:
        return "error", (type(exc), str(exc))
    return "value", json.dumps(value)  # NaN-safe comparison of the decoded value


@given(json_texts(), _SPACE, _SPACE)
def test_loads_matches_json_loads_on_json(text: str, before: str, after: str) -> None:
    """Valid JSON, with or without surrounding whitespace, decodes to the same value."""
    framed = f"{before}{text}{after}"
    assert _outcome(loads, framed) == _outcome(json.loads, framed)


@given(st.text(max_size=40))
def test_loads_matches_json_loads_on_any_text(text: str) -> None:
    """Any text: the same value, or the same error with the same message."""
    assert _outcome(loads, text) == _outcome(json.loads, text)


def test_loads_edge_cases() -> None:
    """Trailing data, empty text and non-finite numbers behave as in json.loads."""
    for text in ["[1] x", "", "  ", "1 2", "NaN", "-Infinity", '"\\ud800"', "{}  "]:
        assert _outcome(loads, text) == _outcome(json.loads, text)


def test_message_json_uses_it() -> None:
    """Message.json() decodes the event; bad JSON raises ValueError as before."""
    assert Message('{"a":[1,2.5,null]}', "s1", "d/a").json() == {"a": [1, 2.5, None]}
    assert Message(' "x" ', "s1", "d/a").json() == "x"
    with pytest.raises(ValueError, match="Expecting property name"):
        Message("{", "s1", "d/a").json()
