"""Small public value types of the client: options, messages, results."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, NewType, TypeAlias

from .errors import ConfigurationError
from .protocol.messages import FailedEvent, PublishedEvent

__all__ = [
    "Backpressure",
    "ChannelPath",
    "JSONValue",
    "Message",
    "PublishResult",
    "SubscriptionId",
    "encode_events",
]

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"
"""A decoded JSON value."""
ChannelPath = NewType("ChannelPath", str)
"""A channel path as sent, e.g. ``default/notifications`` or ``/default/*``."""
SubscriptionId = NewType("SubscriptionId", str)
"""The id of a subscription on its connection."""

_DEFAULT_BUFFER = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Backpressure:
    """Buffer sizes of one connection (the Go client's defaults: 100 each).

    Raises:
        ConfigurationError: a size is not a positive integer.
    """

    connection_inbound: int = _DEFAULT_BUFFER
    """Frames read from the socket but not yet dispatched (the WebSocket receive queue).
    When it is full the client stops reading the socket and TCP slows the service down."""
    connection_outbound: int = _DEFAULT_BUFFER
    """Frames queued for sending.  When it is full, operations wait (within their
    ``operation_timeout``) for room."""
    subscription_events: int = _DEFAULT_BUFFER
    """Events buffered per subscription.  When a subscription's inbox overflows, that
    subscription alone fails with :class:`~appsync_events.errors.SubscriptionInboxFullError`
    (after its buffered events are read) and is unsubscribed from the service; the
    connection and every other subscription keep working."""

    def __post_init__(self) -> None:
        for name in ("connection_inbound", "connection_outbound", "subscription_events"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(
                    f"Backpressure.{name} must be a positive integer, not {value!r}"
                )


class Message(NamedTuple):
    """One event received on a subscription.

    An immutable named tuple: cheap to create, and one is built per received event.
    """

    data: str
    """The event's JSON text, exactly as the service sent it."""
    subscription_id: str
    """The id of the subscription that received it."""
    channel: str
    """The subscription's channel as subscribed (a wildcard pattern stays a pattern:
    AppSync does not say which concrete channel an event was published to)."""

    def json(self) -> JSONValue:
        """Return the decoded event.

        Raises:
            ValueError: the service sent text that is not JSON.
        """
        value: JSONValue = json.loads(self.data)
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishResult:
    """What the service reported for one publish, event by event."""

    successful: tuple[PublishedEvent, ...] = ()
    """Events accepted for broadcast: ``identifier`` (server-side id) and ``index``."""
    failed: tuple[FailedEvent, ...] = ()
    """Events the service refused: ``identifier``, ``index``, ``code``, ``message``."""

    @property
    def ok(self) -> bool:
        """``True`` when no event failed."""
        return not self.failed


def encode_events(values: Iterable[object]) -> tuple[str, ...]:
    """Turn publish arguments into event JSON texts.

    ``bytes``/``bytearray``/``memoryview`` are already-encoded JSON: they must be UTF-8 and
    valid JSON and are sent as they are.  Every other value (``str`` included) is
    JSON-encoded compactly, keeping non-ASCII characters (``NaN`` and infinities, which are
    not JSON, are refused).

    Raises:
        ConfigurationError: naming the event that is not UTF-8, not valid JSON or not
            JSON-serialisable.
    """
    texts: list[str] = []
    for index, value in enumerate(values):
        if isinstance(value, bytes | bytearray | memoryview):
            try:
                text = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigurationError(f"event {index} is not UTF-8: {exc}") from None
            try:
                json.loads(text)
            except ValueError as exc:
                raise ConfigurationError(f"event {index} is not valid JSON: {exc}") from None
        else:
            try:
                text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(
                    f"event {index} ({type(value).__name__}) cannot be encoded as JSON: {exc}"
                ) from None
        texts.append(text)
    return tuple(texts)
