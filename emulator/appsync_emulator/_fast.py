"""Frozen records built without their dataclass ``__init__``, for the publish path.

A frozen dataclass sets each field through ``object.__setattr__`` in its ``__init__``,
which costs as much as much of the rest of answering one event.  The classes built here
have slots and no ``__post_init__``: setting every slot directly makes an object equal
to what the constructor makes, in less than half the time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, Final

from appsync_events.protocol.messages import (
    FailedEvent,
    Outgoing,
    Publish,
    PublishedEvent,
    PublishSuccess,
)

__all__ = ["new_outgoing", "new_publish", "new_publish_success", "published_events", "setters"]

_NEW: Final = object.__new__


def setters(cls: type) -> list[Any]:
    """The slot setters of frozen slotted dataclass ``cls``, in field order (every field
    must be set: a slot left unset has no value, not its default)."""
    assert "__post_init__" not in vars(cls)
    return [vars(cls)[f.name].__set__ for f in fields(cls)]


_SET_IDENTIFIER, _SET_INDEX = setters(PublishedEvent)


def published_events(identifiers: Sequence[str]) -> tuple[PublishedEvent, ...]:
    """``PublishedEvent(identifier=identifiers[i], index=i)`` for every ``i``, in order."""
    out = []
    for index, identifier in enumerate(identifiers):
        event = _NEW(PublishedEvent)
        _SET_IDENTIFIER(event, identifier)
        _SET_INDEX(event, index)
        out.append(event)
    return tuple(out)


_SET_KIND, _SET_ID, _SET_TEXT = setters(Outgoing)


def new_outgoing(kind: str, frame_id: str | None, text: str) -> Outgoing:
    """``Outgoing(kind, frame_id, text)``."""
    frame: Outgoing = _NEW(Outgoing)
    _SET_KIND(frame, kind)
    _SET_ID(frame, frame_id)
    _SET_TEXT(frame, text)
    return frame


_SET_SUCCESS_ID, _SET_SUCCESSFUL, _SET_FAILED = setters(PublishSuccess)


def new_publish_success(
    frame_id: str, successful: tuple[PublishedEvent, ...], failed: tuple[FailedEvent, ...]
) -> PublishSuccess:
    """``PublishSuccess(id=frame_id, successful=successful, failed=failed)``."""
    message: PublishSuccess = _NEW(PublishSuccess)
    _SET_SUCCESS_ID(message, frame_id)
    _SET_SUCCESSFUL(message, successful)
    _SET_FAILED(message, failed)
    return message


_SET_PUBLISH_ID, _SET_CHANNEL, _SET_EVENTS, _SET_AUTHORIZATION = setters(Publish)


def new_publish(
    frame_id: str,
    channel: str,
    events: tuple[str, ...],
    authorization: Mapping[str, str] | None,
) -> Publish:
    """``Publish(id=frame_id, channel=channel, events=events, authorization=authorization)``."""
    message: Publish = _NEW(Publish)
    _SET_PUBLISH_ID(message, frame_id)
    _SET_CHANNEL(message, channel)
    _SET_EVENTS(message, events)
    _SET_AUTHORIZATION(message, authorization)
    return message
