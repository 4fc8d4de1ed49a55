"""Unit tests of the client's pure helpers (no loop, no sockets)."""

from __future__ import annotations

import dataclasses
from typing import Any, Required

import pytest
from typing_extensions import TypedDict  # pydantic needs it on Python 3.11

from appsync_events._decode import decode_event
from appsync_events.connection import redact
from appsync_events.errors import DecodeError


def test_redact_hides_secret_values() -> None:
    """Authorization, x-api-key and X-Amz-Security-Token values are masked, any case."""
    text = (
        '{"authorization":{"Authorization":"AWS4-HMAC-SHA256 Credential=AK/x, Signature=abc",'
        '"x-api-key":"da2-secret","X-Amz-Security-Token":"tok\\"en","host":"h"},'
        '"X-API-KEY" : "other"}'
    )
    out = redact(text)
    for secret in ("Signature=abc", "da2-secret", 'tok\\"en', "other"):
        assert secret not in out
    assert '"host":"h"' in out
    assert out.count("<redacted>") == 4
    assert redact('{"type":"ka"}') == '{"type":"ka"}'


# --- decoding corners ----------------------------------------------------------------------


@dataclasses.dataclass
class WithDerived:
    a: int
    derived: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("a must be >= 0")
        self.derived = self.a * 2


class Strict(TypedDict, total=False):
    must: Required[int]
    may: str


def test_decode_event_corners() -> None:
    """Containers, non-init fields, validation in __post_init__, Required keys, unions."""
    assert decode_event("[1,2]", set[int]) == {1, 2}
    assert decode_event("[1,2]", tuple[int, ...]) == (1, 2)
    assert decode_event('{"a":[1]}', dict[str, list[int]]) == {"a": [1]}
    assert decode_event("null", int | None) is None
    assert decode_event("1", Any) == 1
    assert decode_event('{"a":2,"derived":99}', WithDerived).derived == 4
    with pytest.raises(DecodeError, match="a must be >= 0"):
        decode_event('{"a":-1}', WithDerived)
    assert decode_event('{"must":1}', Strict) == {"must": 1}
    with pytest.raises(DecodeError, match=r"\$\.must: Field required"):
        decode_event('{"may":"x"}', Strict)
    with pytest.raises(DecodeError, match="Input should be null"):
        decode_event('"x"', type(None))
    with pytest.raises(DecodeError, match=r"\$: Input should be a valid integer"):
        decode_event('"x"', int | None)
