"""Small public value types of the client: options, messages, results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, NewType, TypeAlias

from .errors import ConfigurationError
from .protocol.codec import loads as _loads
from .protocol.messages import FailedEvent, PublishedEvent

__all__ = [
    "Backpressure",
    "ChannelPath",
    "JSONValue",
    "Message",
    "PublishResult",
    "RawJSON",
    "SubscriptionId",
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
        value: JSONValue = _loads(self.data)  # json.loads, minus its whitespace scans
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


@dataclass(frozen=True, slots=True)
class RawJSON:
    """A JSON text you already encoded, to publish as it is.

    ``client.publish(channel, RawJSON('{"a":1}'))`` sends the event ``{"a":1}``, whereas
    ``client.publish(channel, '{"a":1}')`` sends the JSON *string* ``"{\\"a\\":1}"``
    (a ``str`` event is JSON-encoded like every other value).  ``bytes`` holding UTF-8
    JSON are the other way to publish pre-encoded JSON.  The text is checked once, when
    the publish is prepared: it must be exactly one JSON value (``NaN`` and infinities
    are refused) and within the event size limit.

    Raises:
        ConfigurationError: ``text`` is not a ``str``.
    """

    text: str
    """The JSON text, sent exactly as given."""

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ConfigurationError(
                f"RawJSON takes a str of JSON text, not {type(self.text).__name__}"
                " (pass bytes to publish directly)"
            )
