"""Tests of ``appsync_events.protocol.limits``: the quotas and the operation id rule."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given, strategies as st

from appsync_events.protocol import limits
from appsync_events.protocol.limits import ID_PATTERN, MAX_ID_LENGTH, is_valid_id
from tests.strategies import ids


def test_limits_match_the_spec() -> None:
    """The constants are AWS's values (docs: protocol.rst, "Timing and lifecycle", "Limits").

    KB = 1024 bytes (EMULATOR-CHOICE, docs: emulator-fidelity.rst, "Events and limits").
    """
    assert limits.MAX_EVENTS_PER_PUBLISH == 5
    assert limits.MAX_EVENT_BYTES == 240 * 1024
    assert limits.MAX_REQUEST_BYTES == 1_200 * 1024
    assert limits.MAX_SUBSCRIPTIONS_PER_CONNECTION == 200
    assert limits.MAX_PUBLISH_PER_SECOND == 25
    assert limits.MAX_CHANNEL_SEGMENTS == 5
    assert limits.MAX_SEGMENT_LENGTH == 50
    assert limits.MAX_ID_LENGTH == 128
    assert limits.DEFAULT_CONNECTION_TIMEOUT_MS == 300_000
    assert limits.DEFAULT_KEEPALIVE_INTERVAL == 60.0
    assert limits.DEFAULT_MAX_CONNECTION_LIFETIME == 24 * 3600.0


@pytest.mark.parametrize(
    "value",
    [
        "ee849ef0-cf23-4cb8-9fcb-152ae4fd1e69",
        str(uuid.UUID(int=0x1234_5678_9ABC_4DEF_8123_456789ABCDEF, version=4)),
        "a",
        "A",
        "0",
        "-",
        "_",
        "+",
        "abc-DEF_123+xyz",
        "x" * MAX_ID_LENGTH,
        "mfrggzdfmztwq2lknnwg23tpobyxe43u",  # exanubes-style lowercase base32
    ],
)
def test_is_valid_id_accepts(value: str) -> None:
    """Ids of 1-128 characters of ``[a-zA-Z0-9-_+]`` are valid
    (docs: protocol.rst, "The envelope")."""
    assert is_valid_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x" * (MAX_ID_LENGTH + 1),
        "a b",
        "a/b",
        "a.b",
        "a:b",  # ':' lies between '9' and '_' in ASCII: not a range
        "a=b",
        "é",
        "abc\n",
        "\nabc",
        "a\x00",
        None,
        1,
        b"abc",
        ["abc"],
    ],
)
def test_is_valid_id_rejects(value: object) -> None:
    """Anything else, including non-strings and a trailing newline, is invalid."""
    assert not is_valid_id(value)


@given(ids)
def test_generated_ids_are_valid(value: str) -> None:
    """The ids strategy yields valid ids (sanity check of tests/strategies.py)."""
    assert is_valid_id(value)
    assert 1 <= len(value) <= MAX_ID_LENGTH


@given(st.text(max_size=140))
def test_is_valid_id_agrees_with_spec_character_set(value: str) -> None:
    """is_valid_id is AWS's id rule, spelled out character by character.

    The rule is described in docs: protocol.rst, "The envelope".
    """
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+")
    expected = 1 <= len(value) <= 128 and set(value) <= allowed
    assert is_valid_id(value) is expected
    assert (ID_PATTERN.fullmatch(value) is not None) is expected
    assert isinstance(ID_PATTERN, re.Pattern)
