"""Channel and namespace rules, and wildcard matching.

The rules are described in docs: protocol.rst, "Channels and namespaces".

A channel path has 1 to 5 segments separated by ``/`` (an optional leading and trailing
``/``), the first segment naming the namespace.  A segment is 1 to 50 characters of
``[A-Za-z0-9-]`` that neither starts nor ends with ``-``.  Matching is case-sensitive.
A subscription pattern may end in the segment ``*``, which matches every channel below
that prefix at any depth, but not the prefix itself
(EMULATOR-CHOICE, docs: emulator-fidelity.rst, "Channels"); the ``*``
counts toward the five segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidChannelError
from .limits import MAX_CHANNEL_SEGMENTS, MAX_SEGMENT_LENGTH

__all__ = [
    "Channel",
    "WILDCARD",
    "channel_matches",
    "matches",
    "parse_channel",
    "parse_subscribe_channel",
    "validate_namespace",
]

WILDCARD = "*"
_SEGMENT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_CHARS = re.compile(r"[A-Za-z0-9-]+")
_VALID_SEGMENT = rf"[A-Za-z0-9](?:[A-Za-z0-9-]{{0,{MAX_SEGMENT_LENGTH - 2}}}[A-Za-z0-9])?"
_VALID_CHANNEL = re.compile(
    rf"/?({_VALID_SEGMENT}(?:/{_VALID_SEGMENT}){{0,{MAX_CHANNEL_SEGMENTS - 1}}})/?"
)
"""Every valid concrete channel, whole: one match instead of the rule-by-rule checks."""


@dataclass(frozen=True, slots=True)
class Channel:
    """A validated channel path or subscription pattern."""

    segments: tuple[str, ...]
    """The concrete segments, namespace first, without the wildcard."""
    wildcard: bool = False
    """``True`` for a pattern ending in ``/*``."""

    @property
    def namespace(self) -> str:
        """The first segment."""
        return self.segments[0]

    @property
    def path(self) -> str:
        """Canonical form: leading ``/``, no trailing ``/`` (``/default/*`` for patterns)."""
        tail = "/*" if self.wildcard else ""
        return "/" + "/".join(self.segments) + tail

    def __str__(self) -> str:
        return self.path


def _check_segment(channel: str, position: int, segment: str) -> None:
    if not segment:
        raise InvalidChannelError(channel, f"segment {position} is empty")
    if len(segment) > MAX_SEGMENT_LENGTH:
        raise InvalidChannelError(
            channel,
            f"segment {position} is {len(segment)} characters (at most {MAX_SEGMENT_LENGTH})",
        )
    if segment == WILDCARD or WILDCARD in segment:
        raise InvalidChannelError(
            channel,
            f"segment {position}: '*' is only allowed as the whole last segment of a subscription",
        )
    if not _CHARS.fullmatch(segment):
        raise InvalidChannelError(
            channel, f"segment {position} {segment!r} has characters outside [A-Za-z0-9-]"
        )
    if not _SEGMENT.fullmatch(segment):
        raise InvalidChannelError(
            channel, f"segment {position} {segment!r} starts or ends with '-'"
        )


def _split(channel: object) -> tuple[str, list[str]]:
    if not isinstance(channel, str):
        raise InvalidChannelError(
            repr(channel), f"channel must be a string, not {type(channel).__name__}"
        )
    body = channel[1:] if channel.startswith("/") else channel
    if body.endswith("/"):
        body = body[:-1]
    if not body:
        raise InvalidChannelError(channel, "channel has no segments (a namespace is required)")
    return channel, body.split("/")


def parse_channel(channel: str) -> Channel:
    """Validate a concrete channel (publish target, no wildcard).

    Raises:
        InvalidChannelError: naming the rule that failed.
    """
    valid = _VALID_CHANNEL.fullmatch(channel) if isinstance(channel, str) else None
    if valid is not None:  # the fast path of every publish
        return Channel(tuple(valid.group(1).split("/")))
    text, parts = _split(channel)  # find the rule that failed
    if len(parts) > MAX_CHANNEL_SEGMENTS:
        raise InvalidChannelError(text, f"{len(parts)} segments (at most {MAX_CHANNEL_SEGMENTS})")
    for i, segment in enumerate(parts, 1):
        if segment == WILDCARD and i == len(parts):
            raise InvalidChannelError(text, "wildcards are only allowed when subscribing")
        _check_segment(text, i, segment)
    # A channel breaking no rule matches _VALID_CHANNEL (a property test holds them together).
    raise AssertionError(f"{text!r} breaks no rule but fails the pattern")  # pragma: no cover


def parse_subscribe_channel(channel: str) -> Channel:
    """Validate a subscription pattern: a channel, optionally ending in ``/*``.

    Raises:
        InvalidChannelError: naming the rule that failed.
    """
    text, parts = _split(channel)
    if len(parts) > MAX_CHANNEL_SEGMENTS:
        raise InvalidChannelError(
            text, f"{len(parts)} segments (at most {MAX_CHANNEL_SEGMENTS}, '*' included)"
        )
    wildcard = parts[-1] == WILDCARD
    if wildcard:
        parts = parts[:-1]
        if not parts:
            raise InvalidChannelError(text, "'/*' needs a namespace before it")
    for i, segment in enumerate(parts, 1):
        _check_segment(text, i, segment)
    return Channel(tuple(parts), wildcard)


def validate_namespace(name: str) -> str:
    """Validate a namespace name (one segment) and return it.

    Raises:
        InvalidChannelError: naming the rule that failed.
    """
    if not isinstance(name, str):
        raise InvalidChannelError(repr(name), "namespace must be a string")
    _check_segment(name, 1, name)
    return name


def matches(pattern: Channel, channel: Channel) -> bool:
    """Return whether a published ``channel`` is delivered to subscription ``pattern``."""
    if not pattern.wildcard:
        return pattern.segments == channel.segments
    n = len(pattern.segments)
    return len(channel.segments) > n and channel.segments[:n] == pattern.segments


def channel_matches(pattern: str, channel: str) -> bool:
    """String form of :func:`matches`; both arguments are validated first.

    Raises:
        InvalidChannelError: either argument is invalid.
    """
    return matches(parse_subscribe_channel(pattern), parse_channel(channel))
