"""protocol._make.maker: the same objects as the dataclasses' own constructors."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from appsync_events._types import PublishResult
from appsync_events.protocol._make import maker
from appsync_events.protocol.client import PublishAccepted
from appsync_events.protocol.messages import Outgoing, PublishedEvent
from appsync_events.protocol.publish import PreparedPublish


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (PublishedEvent, {"identifier": "x0", "index": 0}),
        (PreparedPublish, {"channel": "default/a", "events": ("1",)}),
        (Outgoing, {"kind": "publish", "id": "op", "text": "{}"}),
        (PublishResult, {"successful": (PublishedEvent(identifier="a", index=0),), "failed": ()}),
        (
            PublishAccepted,
            {"id": "op", "channel": "default/a", "successful": (), "failed": ()},
        ),
    ],
)
def test_made_objects_are_those_of_the_dataclass(cls: type, values: dict[str, object]) -> None:
    make = maker(cls, *values)
    made = make(*values.values())
    expected = cls(**values)
    assert type(made) is cls
    assert made == expected
    assert hash(made) == hash(expected)
    assert repr(made) == repr(expected)
    assert dataclasses.asdict(made) == dataclasses.asdict(expected)
    assert pickle.loads(pickle.dumps(made)) == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, next(iter(values)), None)


@dataclasses.dataclass(frozen=True, slots=True)
class _Checked:
    a: int
    b: int

    def __post_init__(self) -> None:
        pass  # pragma: no cover - never called


@dataclasses.dataclass(frozen=True)
class _NoSlots:
    a: int
    b: int


@dataclasses.dataclass(frozen=True, slots=True)
class _One:
    a: int


def test_maker_refuses_what_it_cannot_make_faithfully() -> None:
    for cls, names in (
        (PublishedEvent, ("index", "identifier")),  # not in declaration order
        (PublishedEvent, ("identifier",)),  # a field left out
        (_Checked, ("a", "b")),  # __post_init__ would be skipped
        (_NoSlots, ("a", "b")),
        (_One, ("a",)),
    ):
        with pytest.raises(TypeError, match="cannot make a fast constructor"):
            maker(cls, *names)
