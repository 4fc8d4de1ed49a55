"""decode_event (behind Subscription.decode_next): pydantic validation, no loop, no sockets."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import pydantic
import pytest
from hypothesis import given

from appsync_events import _decode
from appsync_events._decode import ADAPTER_CACHE_SIZE, decode_event
from appsync_events.errors import ConfigurationError, DecodeError
from tests.strategies import json_texts, json_values


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Lax(pydantic.BaseModel):
    count: int


class StrictModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True)
    count: int


@given(json_values)
def test_decode_event_without_target_is_json(value: Any) -> None:
    """Without a target, the event decodes to its plain JSON value."""
    assert decode_event(json.dumps(value), None) == value


@given(json_texts())
def test_decode_event_any_is_json(text: str) -> None:
    """Any as the target gives the JSON value too (through pydantic)."""
    assert decode_event(text, Any) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        ('{"x":1,"extra":true}', Point, Point(x=1)),
        ('"red"', Color, Color.RED),
        ('"b"', Literal["a", "b"], "b"),
        ('"2024-01-02T03:04:05Z"', datetime, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("1", float, 1.0),
        ('{"count":"3"}', Lax, Lax(count=3)),  # a model keeps its own (lax) configuration
        ("[[1,2]]", list[tuple[int, int]], [(1, 2)]),
        ("5", Annotated[int, ["unhashable metadata"]], 5),
    ],
)
def test_decode_event_targets(text: str, target: Any, expected: Any) -> None:
    """Whatever pydantic validates is a target: dataclasses, enums, Literal, datetime..."""
    assert decode_event(text, target) == expected


@pytest.mark.parametrize(
    ("text", "target", "reason"),
    [
        ('{"count":"3"}', StrictModel, "$.count: Input should be a valid integer"),
        ('"3"', int, "$: Input should be a valid integer"),
        ('{"x":1,"y":"2"}', Point, "$.y: Input should be a valid integer"),
        ('[{"x":1},{"y":2}]', list[Point], "$[1].x: Field required"),
        ('{"a":[1,"x"]}', dict[str, list[int]], "$.a[1]: Input should be a valid integer"),
        ('"green"', Color, "$: Input should be 'red'"),
        ("{", Point, "not valid JSON: "),
    ],
)
def test_decode_event_mismatch_names_the_path(text: str, target: Any, reason: str) -> None:
    """A mismatch raises DecodeError with the failing path, the target's name and the text."""
    with pytest.raises(DecodeError) as info:
        decode_event(text, target)
    assert reason in info.value.reason
    assert info.value.data == text


def test_decode_event_error_names_the_target() -> None:
    """DecodeError.target is the class name, or the type's repr for generic aliases."""
    with pytest.raises(DecodeError) as info:
        decode_event("[1]", Point)
    assert info.value.target == "Point"
    with pytest.raises(DecodeError) as info:
        decode_event('"x"', list[int])
    assert info.value.target == "list[int]"
    with pytest.raises(DecodeError) as info:
        decode_event("{", None)
    assert (info.value.target, info.value.reason[:15]) == ("None", "not valid JSON:")


def test_decode_event_unsupported_target() -> None:
    """A type pydantic cannot validate is a ConfigurationError naming it."""

    class Opaque:
        def __init__(self, value: int) -> None:
            self.value = value

    with pytest.raises(ConfigurationError, match="cannot decode into Opaque"):
        decode_event("1", Opaque)


def test_decode_event_without_pydantic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pydantic, a target asks for the extra; no target still decodes JSON."""
    _decode._cached_adapter.cache_clear()
    monkeypatch.setitem(sys.modules, "pydantic", None)  # import pydantic fails
    try:
        with pytest.raises(ConfigurationError, match=r"install appsync-events\[pydantic\]"):
            decode_event("1", int)
        assert decode_event('{"a":1}', None) == {"a": 1}
    finally:
        _decode._cached_adapter.cache_clear()


def test_decode_event_adapter_cache_is_bounded() -> None:
    """Adapters are built once per target and the cache is bounded."""
    _decode._cached_adapter.cache_clear()
    decode_event("1", int)
    decode_event("2", int)
    assert _decode._cached_adapter.cache_info().hits == 1
    for size in range(ADAPTER_CACHE_SIZE + 10):
        decode_event("[" + ",".join(["1"] * size) + "]", tuple[(int,) * size])  # type: ignore[misc]
    assert _decode._cached_adapter.cache_info().currsize == ADAPTER_CACHE_SIZE
