"""Frozen protocol records built without their dataclass ``__init__``, for the publish path.

A frozen dataclass sets each field through ``object.__setattr__`` in its ``__init__``,
which costs about as much as the rest of answering one event.  The records built here
have slots and no ``__post_init__``: setting the slots directly makes an object equal to
what the constructor makes, in less than half the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from appsync_events.protocol.messages import PublishedEvent

__all__ = ["published_events"]

_NEW: Final = object.__new__
_SLOTS: Final[Any] = vars(PublishedEvent)
_SET_IDENTIFIER: Final[Any] = _SLOTS["identifier"].__set__
_SET_INDEX: Final[Any] = _SLOTS["index"].__set__


def _published_event(identifier: str, index: int) -> PublishedEvent:
    event = _NEW(PublishedEvent)
    _SET_IDENTIFIER(event, identifier)
    _SET_INDEX(event, index)
    return event


def published_events(identifiers: Sequence[str]) -> tuple[PublishedEvent, ...]:
    """``PublishedEvent(identifier=identifiers[i], index=i)`` for every ``i``, in order."""
    return tuple([_published_event(ident, index) for index, ident in enumerate(identifiers)])
