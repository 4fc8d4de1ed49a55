"""The handler context and the reading of returned event lists (no engine needed)."""

from __future__ import annotations

import pytest

from appsync_emulator.handler_contract import (
    Broadcast,
    Crash,
    CrashKind,
    EventFailure,
    OutgoingEvent,
    build_context,
    interpret_publish_result,
)
from appsync_events._types import JSONValue


def test_contract_subscribe_context_keeps_the_wildcard() -> None:
    """A subscribe to `/ns/*` has `*` as its last segment and the namespace first."""
    ctx = build_context(operation="SUBSCRIBE", channel="ns/a/*")
    assert ctx["info"] == {
        "channel": {"path": "/ns/a/*", "segments": ["ns", "a", "*"]},
        "channelNamespace": {"name": "ns"},
        "operation": "SUBSCRIBE",
    }
    assert ctx["events"] == []
    assert ctx["identity"] is None


def test_contract_headers_are_lower_cased_merged_and_cookie_free() -> None:
    """Header names are lower-cased, repeats become arrays, cookie is dropped."""
    ctx = build_context(
        operation="PUBLISH",
        channel="/d/c",
        headers={"Animal": "duck", "animal": ["goose", "swan"], "COOKIE": "x", "Host": "h"},
        domain_name="api.example.com",
    )
    assert ctx["request"] == {
        "headers": {"animal": ["duck", "goose", "swan"], "host": "h"},
        "domainName": "api.example.com",
    }


def test_contract_repeated_header_arrays_keep_growing() -> None:
    """A third spelling of a repeated header adds to its array."""
    ctx = build_context(operation="PUBLISH", channel="/d/c", headers={"A": ["1", "2"], "a": "3"})
    assert ctx["request"] == {"headers": {"a": ["1", "2", "3"]}, "domainName": None}


def test_contract_object_errors_are_reported_as_json() -> None:
    """A non-string `error` is reported as its JSON text."""
    result: JSONValue = [{"id": "a", "error": {"code": 1}}]
    assert interpret_publish_result(result, ["a"]) == Broadcast(
        events=(), failed=(EventFailure(id="a", index=0, message='{"code":1}'),)
    )


def test_contract_failed_events_are_sorted_by_index() -> None:
    """failed[] is in request order whatever order the handler returned."""
    result: JSONValue = [
        {"id": "b", "error": "2"},
        {"id": "c", "payload": True},
        {"id": "a", "error": "1"},
    ]
    outcome = interpret_publish_result(result, ["a", "b", "c"])
    assert outcome == Broadcast(
        events=(OutgoingEvent(id="c", index=2, payload=True),),
        failed=(
            EventFailure(id="a", index=0, message="1"),
            EventFailure(id="b", index=1, message="2"),
        ),
    )


@pytest.mark.parametrize(
    ("result", "word"), [(True, "boolean"), ("x", "string"), ({}, "object"), (1.5, "number")]
)
def test_contract_non_list_result_is_malformed(result: JSONValue, word: str) -> None:
    """A result that is not an array or null is MALFORMED, named with its JS type."""
    outcome = interpret_publish_result(result, ["a"])
    assert isinstance(outcome, Crash)
    assert outcome.kind is CrashKind.MALFORMED
    assert f"not {word}" in outcome.detail


def test_contract_outgoing_event_text_is_compact_utf8() -> None:
    """OutgoingEvent.text() is compact JSON keeping non-ASCII characters."""
    assert OutgoingEvent(id="a", index=0, payload={"t": "café", "n": [1]}).text() == (
        '{"t":"café","n":[1]}'
    )
