"""Small public value types of the client: options, messages, results."""

from __future__ import annotations

import enum
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
    "Overflow",
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


class Overflow(enum.StrEnum):
    """What a subscription does when an event arrives and its inbox is full.

    Set it for every subscription of a connection with ``Backpressure(overflow=...)``, or
    for one subscription with ``client.subscribe(channel, overflow=...)``.  The plain
    strings (``"fail"``, ``"drop_oldest"``, ``"pause"``) are accepted too.
    """

    FAIL = "fail"
    """The default: the subscription fails with
    :class:`~appsync_events.errors.SubscriptionInboxFullError` (after its buffered events
    are read) and is unsubscribed; the connection and the other subscriptions go on."""
    DROP_OLDEST = "drop_oldest"
    """The oldest buffered entry is dropped to make room: the inbox keeps the newest
    events.  :attr:`Subscription.dropped <appsync_events.Subscription.dropped>` counts the
    dropped entries, and a WARNING is logged on the first drop and then at most once every
    :data:`~appsync_events.subscription.DROP_LOG_INTERVAL` seconds."""
    PAUSE = "pause"
    """The client stops reading the connection until the consumer has emptied the inbox
    to half its size: nothing is lost and the service is slowed down by TCP flow control.
    This holds back *every* subscription of the connection, and the answers to its
    publishes, subscribes and unsubscribes; the keep-alive deadline does not run while
    reading is paused (see the how-to guide, "Choose what happens when a consumer falls
    behind")."""

    @classmethod
    def parse(cls, value: object, *, name: str = "overflow") -> Overflow:
        """Return ``value`` as an :class:`Overflow` (a member or its string value).

        Raises:
            ConfigurationError: ``value`` is neither; the message names it and the allowed
                values.
        """
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        allowed = ", ".join(repr(member.value) for member in cls)
        raise ConfigurationError(
            f"{name} must be an appsync_events.Overflow or one of {allowed}, not {value!r}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Backpressure:
    """Buffer sizes of one connection (the Go client's defaults: 100 each) and what a full
    subscription inbox does.

    Raises:
        ConfigurationError: a size is not a positive integer, or ``overflow`` is not an
            :class:`Overflow` (or its string value).
    """

    connection_inbound: int = _DEFAULT_BUFFER
    """Deprecated, and without effect since the client reads with aiohttp: its receive
    queue is bounded in bytes (a few hundred KiB of frames read from the socket but not
    yet dispatched), after which it stops reading the socket and TCP slows the service
    down.  Still checked (a positive integer), so existing code keeps working."""
    connection_outbound: int = _DEFAULT_BUFFER
    """Frames queued for sending.  When it is full, operations wait (within their
    ``operation_timeout``) for room."""
    subscription_events: int = _DEFAULT_BUFFER
    """Events buffered per subscription (``client.subscribe(..., capacity=...)`` overrides
    it for one subscription).  What happens when an event arrives at a full inbox is
    ``overflow``."""
    overflow: Overflow = Overflow.FAIL
    """The default overflow policy of the connection's subscriptions
    (``client.subscribe(..., overflow=...)`` overrides it for one subscription).  The
    default, :attr:`Overflow.FAIL`, fails that subscription alone with
    :class:`~appsync_events.errors.SubscriptionInboxFullError` (after its buffered events
    are read) and unsubscribes it from the service; the connection and every other
    subscription keep working."""

    def __post_init__(self) -> None:
        for name in ("connection_inbound", "connection_outbound", "subscription_events"):
            check_size(f"Backpressure.{name}", getattr(self, name))
        object.__setattr__(
            self, "overflow", Overflow.parse(self.overflow, name="Backpressure.overflow")
        )


def check_size(name: str, value: object) -> int:
    """Return ``value`` if it is a positive ``int`` (not a ``bool``).

    Raises:
        ConfigurationError: it is not; the message names ``name`` and ``value``.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, not {value!r}")
    return value


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
