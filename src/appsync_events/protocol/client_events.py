"""What the client core reports to its shell, and how service errors become exceptions.

:class:`~appsync_events.protocol.client.ClientProtocol` reports each thing that happened
as one of the frozen values below (``events_received()``); rejections carry the service's
``errors`` and build the exception to raise with their ``error`` property.  The error
mapping is pure and shared with the HTTP publisher, so that a WebSocket answer and an
HTTP status mean the same exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from .._types import Message
from ..errors import (
    AppSyncEventsError,
    BroadcastError,
    ConnectionClosedError,
    ErrorDetail,
    HandshakeError,
    OperationError,
    PublishError,
    SubscribeError,
    UnsubscribeError,
    unauthorized_error,
)
from .messages import FailedEvent, Operation, PublishedEvent

__all__ = [
    "UNAUTHORIZED_ERROR_TYPES",
    "BroadcastFailed",
    "ClientEvent",
    "ConnectionAccepted",
    "ConnectionFailed",
    "EventReceived",
    "FrameIgnored",
    "KeepAliveReceived",
    "PublishAccepted",
    "PublishRejected",
    "SubscribeAccepted",
    "SubscribeRejected",
    "UnsubscribeAccepted",
    "UnsubscribeRejected",
    "connection_error",
    "is_unauthorized",
    "operation_error",
]

UNAUTHORIZED_ERROR_TYPES: Final = frozenset(
    {"UnauthorizedException", "Unauthorized", "NotAuthorizedException"}
)
"""errorTypes that mean "not authorized" (Amplify treats these three so)."""


# --- error mapping (pure; shared with the HTTP publisher) --------------------------------


def is_unauthorized(errors: Sequence[ErrorDetail]) -> bool:
    """Return whether the service's ``errors`` say "not authorized" (type or 401/403 code)."""
    return any(
        e.error_type in UNAUTHORIZED_ERROR_TYPES or e.error_code in (401, 403) for e in errors
    )


_OPERATION_ERRORS: Final[Mapping[str, type[OperationError]]] = {
    "subscribe": SubscribeError,
    "publish": PublishError,
    "unsubscribe": UnsubscribeError,
    "broadcast": BroadcastError,
}


def operation_error(
    operation: str,
    errors: Sequence[ErrorDetail],
    *,
    operation_id: str | None = None,
    channel: str | None = None,
    status: int | None = None,
) -> AppSyncEventsError:
    """Return the exception for an operation the service answered with ``errors``.

    The one mapping of the WebSocket answers and the HTTP publish statuses: an
    unauthorized error when the errors say so or the HTTP status is 401 (except for
    ``broadcast``, which is always a :class:`~appsync_events.errors.BroadcastError`),
    else the operation's :class:`~appsync_events.errors.OperationError` subclass.

    Args:
        operation: ``"subscribe"``, ``"publish"``, ``"unsubscribe"`` or ``"broadcast"``.
        errors: the service's errors.
        operation_id: the operation (or subscription) id, when known.
        channel: the operation's channel, when known.
        status: the HTTP status of an HTTP publish, else ``None``.
    """
    if operation != "broadcast" and (status == 401 or is_unauthorized(errors)):
        return unauthorized_error(
            errors, operation=operation, status=status, id=operation_id, channel=channel
        )
    cls = _OPERATION_ERRORS.get(operation, OperationError)
    return cls(errors, id=operation_id, channel=channel, status=status)


def connection_error(errors: Sequence[ErrorDetail], *, handshake: bool) -> AppSyncEventsError:
    """Return the exception for a connection-level error from the service.

    ``connection_error`` frames and unroutable ``error`` frames give an unauthorized
    error (operation ``"connect"``) when the errors say "not authorized"; otherwise
    :class:`~appsync_events.errors.HandshakeError` before the ack, and after it the
    error of a lost connection carrying the service's ``errors``.
    """
    if is_unauthorized(errors):
        return unauthorized_error(errors, operation=Operation.CONNECT)
    if handshake:
        return HandshakeError("the service refused the connection", errors)
    # After the ack the connection is gone: a lost connection carrying the service's errors.
    return ConnectionClosedError(message=_CONNECTION_ERROR, errors=errors)


_CONNECTION_ERROR: Final = "the service reported a connection error"


# --- events reported to the shell ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionAccepted:
    """``connection_ack``: the connection is open."""

    connection_timeout_ms: int | None
    """``connectionTimeoutMs`` as sent, or ``None`` when absent."""

    @property
    def keepalive_timeout(self) -> float | None:
        """The keep-alive timeout in seconds, or ``None`` when the ack has none."""
        ms = self.connection_timeout_ms
        return None if ms is None else ms / 1000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepAliveReceived:
    """A ``ka`` frame."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFailed:
    """The connection failed: ``connection_error``, an unroutable ``error``, a bad frame."""

    error: AppSyncEventsError
    """What to raise from every pending and future call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeAccepted:
    """``subscribe_success`` for a pending subscribe; the subscription is now active."""

    id: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeRejected:
    """``subscribe_error`` (or a routed ``error``) for a pending subscribe."""

    id: str
    channel: str
    errors: tuple[ErrorDetail, ...]

    @property
    def error(self) -> AppSyncEventsError:
        """The exception to raise from the subscribe call."""
        return operation_error("subscribe", self.errors, operation_id=self.id, channel=self.channel)


EventReceived = Message
"""``data``: one event for an active subscription, reported as the public
:class:`~appsync_events.Message` named tuple (``data``: the event's JSON text,
``subscription_id``, ``channel`` as subscribed).  One is built per received event, so the
very object the protocol reports is what ``Subscription.next()`` returns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastFailed:
    """``broadcast_error`` (or an ``error`` carrying its id) for an active subscription."""

    id: str
    channel: str
    errors: tuple[ErrorDetail, ...]

    @property
    def error(self) -> AppSyncEventsError:
        """The exception the subscription's reader gets."""
        return operation_error("broadcast", self.errors, operation_id=self.id, channel=self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeAccepted:
    """``unsubscribe_success``; the subscription is no longer active."""

    id: str
    channel: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeRejected:
    """``unsubscribe_error`` (or a routed ``error``); the subscription is dropped anyway."""

    id: str
    channel: str
    errors: tuple[ErrorDetail, ...]

    @property
    def error(self) -> AppSyncEventsError:
        """The exception to raise from the unsubscribe call."""
        return operation_error(
            "unsubscribe", self.errors, operation_id=self.id, channel=self.channel
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishAccepted:
    """``publish_success`` with the per-event results."""

    id: str
    channel: str
    successful: tuple[PublishedEvent, ...]
    failed: tuple[FailedEvent, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishRejected:
    """``publish_error`` (or a routed ``error``) for a pending publish."""

    id: str
    channel: str
    errors: tuple[ErrorDetail, ...]

    @property
    def error(self) -> AppSyncEventsError:
        """The exception to raise from the publish call."""
        return operation_error("publish", self.errors, operation_id=self.id, channel=self.channel)


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameIgnored:
    """A frame that concerned nothing known; worth a DEBUG log line, nothing more."""

    frame_type: str | None
    id: str | None
    reason: str


ClientEvent = (
    ConnectionAccepted
    | KeepAliveReceived
    | ConnectionFailed
    | SubscribeAccepted
    | SubscribeRejected
    | EventReceived
    | BroadcastFailed
    | UnsubscribeAccepted
    | UnsubscribeRejected
    | PublishAccepted
    | PublishRejected
    | FrameIgnored
)
