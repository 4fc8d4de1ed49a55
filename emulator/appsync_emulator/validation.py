"""Pure validation of subscribe and publish requests, shared by the WebSocket core and the
HTTP publish endpoint (and the handler runtime's size check)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from appsync_events.errors import ErrorDetail, InvalidChannelError
from appsync_events.protocol import codec
from appsync_events.protocol.channels import Channel, parse_channel, parse_subscribe_channel
from appsync_events.protocol.codec import orjson_loads
from appsync_events.protocol.limits import MAX_EVENT_BYTES, MAX_EVENTS_PER_PUBLISH

from .catalogue import (
    NO_EVENTS,
    event_too_large,
    invalid_channel,
    invalid_event_json,
    request_too_large,
    too_many_events,
    unknown_namespace,
)

__all__ = [
    "check_events",
    "check_publish",
    "check_request_size",
    "check_subscribe",
    "orjson_loads",
    "size_over",
    "utf8_length",
]


def utf8_length(text: str) -> int:
    """Return the length of ``text`` in UTF-8 bytes (a lone surrogate counts 3)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def size_over(text: str, limit: int) -> int | None:
    """Return ``text``'s UTF-8 size when it is over ``limit`` bytes, else ``None``."""
    # A string of n code points takes n to 4n bytes: short strings need no encoding.
    if 4 * len(text) <= limit:
        return None
    size = utf8_length(text)
    return size if size > limit else None


def check_request_size(text: str, limit: int) -> ErrorDetail | None:
    """Return the ``request_too_large`` error if ``text`` is over ``limit`` UTF-8 bytes."""
    size = size_over(text, limit)
    return None if size is None else request_too_large(size, limit)


_FAST_LOADS: Callable[[str], Any] | None = orjson_loads()

_SHORT_EVENT: Final = 400
"""An event this short is nested fewer than 200 levels deep (each level takes two
characters), which ``json`` reads without running out of recursion."""


def check_events(
    events: Sequence[str],
    *,
    max_events: int = MAX_EVENTS_PER_PUBLISH,
    max_event_bytes: int | None = MAX_EVENT_BYTES,
) -> ErrorDetail | None:
    """Validate a publish's ``events``; ``None`` when they are fine.

    Checks, in order: the count (1..``max_events``), then for each event in index order
    its UTF-8 size (skipped when ``max_event_bytes`` is ``None``) and that it parses as
    JSON.  An oversized event is never parsed.
    """
    if not events:
        return NO_EVENTS
    if len(events) > max_events:
        return too_many_events(len(events), max_events)
    fast = _FAST_LOADS
    if fast is not None:
        # The usual publish: every event short, ASCII and within the size limit, so the
        # loop below would accept each at once if orjson reads it; one pass, and the
        # loop (which names the first bad event) only when one does not parse.
        longest = max(map(len, events))
        if (
            longest <= _SHORT_EVENT
            and (max_event_bytes is None or 4 * longest <= max_event_bytes)
            and all(map(str.isascii, events))
        ):
            try:
                for event in events:
                    fast(event)
            except ValueError:
                pass
            else:
                return None
    for index, event in enumerate(events):
        if max_event_bytes is not None and size_over(event, max_event_bytes):
            return event_too_large(max_event_bytes)
        if fast is not None and len(event) <= _SHORT_EVENT and event.isascii():
            # What event_json_error accepts at once: ASCII text holds no lone surrogate
            # and no BOM, and short text orjson reads, json reads alike.
            try:
                fast(event)
            except ValueError:
                pass  # json explains it
            else:
                continue
        reason = codec.event_json_error(event)
        if reason is not None:
            return invalid_event_json(index, reason)
    return None


def _check_namespace(
    channel: Channel, namespace_exists: Callable[[str], bool] | None
) -> ErrorDetail | None:
    if namespace_exists is not None and not namespace_exists(channel.namespace):
        return unknown_namespace(channel.namespace)
    return None


def check_subscribe(
    channel: str, *, namespace_exists: Callable[[str], bool] | None = None
) -> Channel | ErrorDetail:
    """Parse a subscription pattern and check its namespace.

    Returns:
        The parsed pattern, or the error to answer with.
    """
    try:
        parsed = parse_subscribe_channel(channel)
    except InvalidChannelError as exc:
        return invalid_channel(exc.rule)
    return _check_namespace(parsed, namespace_exists) or parsed


_CHANNELS_KEPT: Final = 1024
_channels: dict[str, Channel] = {}
"""Channels parsed for publishes, by their text: a client publishes to the same few
channels over and over.  A :class:`Channel` is immutable, so one is shared by every
publish to it; only valid channels get in, and at most :data:`_CHANNELS_KEPT` (the dict
starts over when full)."""


def _parse_publish_channel(channel: str) -> Channel:
    if type(channel) is not str:  # the caller's type check is the parser's (not hashable)
        return parse_channel(channel)
    parsed = _channels.get(channel)
    if parsed is None:
        parsed = parse_channel(channel)
        if len(_channels) >= _CHANNELS_KEPT:
            _channels.clear()
        _channels[channel] = parsed
    return parsed


def check_publish(
    channel: str,
    events: Sequence[str],
    *,
    namespace_exists: Callable[[str], bool] | None = None,
    max_events: int = MAX_EVENTS_PER_PUBLISH,
    max_event_bytes: int | None = MAX_EVENT_BYTES,
) -> Channel | ErrorDetail:
    """Validate a publish target and its events: channel syntax, namespace, events.

    Returns:
        The parsed channel, or the first error found (see :func:`check_events`).
    """
    try:
        parsed = _parse_publish_channel(channel)
    except InvalidChannelError as exc:
        return invalid_channel(exc.rule)
    return (
        _check_namespace(parsed, namespace_exists)
        or check_events(events, max_events=max_events, max_event_bytes=max_event_bytes)
        or parsed
    )
