"""Exceptions raised by :mod:`appsync_events`.

The tree::

    AppSyncEventsError
    ├── ConfigurationError(ValueError)          bad endpoint / region / channel / too many events
    │   └── InvalidChannelError                 a channel path breaks a channel naming rule
    ├── AuthorizationError
    │   ├── CredentialsError                    nothing to sign with, credential refresh failed
    │   └── UnauthorizedError                   401/403, UnauthorizedException from the service
    │       ├── PublishUnauthorizedError        ... for a publish (also a PublishError)
    │       ├── SubscribeUnauthorizedError      ... for a subscribe (also a SubscribeError)
    │       └── UnsubscribeUnauthorizedError    ... for an unsubscribe (also an UnsubscribeError)
    ├── ProtocolError
    │   ├── LocalProtocolError                  we (the caller) broke the protocol; raised at once
    │   └── RemoteProtocolError                 the peer broke it; raised at the next await
    ├── ConnectionLostError(ConnectionError)    the connection is gone
    │   ├── ConnectionClosedError               socket closed or connection_error; .code, .reason,
    │   │                                       .errors
    │   └── HeartbeatTimeoutError(TimeoutError) no "ka" within connectionTimeoutMs
    ├── HandshakeError                          connection_error during the handshake; .errors
    │   └── HandshakeTimeoutError(TimeoutError)  no connection_ack in time
    ├── OperationTimeoutError(TimeoutError)     no ack for subscribe/publish/unsubscribe in time
    ├── SubscriptionInboxFullError              this subscription's inbox overflowed
    ├── SubscriptionClosedError                 read on a closed subscription
    ├── DecodeError(ValueError)                 an event does not fit the requested type
    └── OperationError                          the service answered an operation with errors
        ├── SubscribeError                      subscribe_error
        │   └── SubscribeUnauthorizedError      (also an UnauthorizedError)
        ├── PublishError                        publish_error / HTTP 4xx-5xx
        │   └── PublishUnauthorizedError        (also an UnauthorizedError)
        ├── UnsubscribeError                    unsubscribe_error
        │   └── UnsubscribeUnauthorizedError    (also an UnauthorizedError)
        └── BroadcastError                      broadcast_error for a subscription

``ConnectionLostError`` is also the builtin :class:`ConnectionError`, so
``except ConnectionError`` catches every way the connection can go away.

Service errors carry ``.errors``, a tuple of :class:`ErrorDetail` (``error_type``,
``message``, ``error_code``).  When the service says ``UnauthorizedException`` or
``Unauthorized`` for an operation, the error raised is both an :class:`UnauthorizedError`
and that operation's :class:`OperationError` (see :func:`unauthorized_error`): ``except
PublishError`` catches an unauthorized publish, and ``except UnauthorizedError`` catches
every refusal, connect included.

Every exception survives a :mod:`pickle` round trip (pytest-xdist, multiprocessing, task
queues) with its message and attributes.
"""

from __future__ import annotations

import copyreg
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "AppSyncEventsError",
    "AuthorizationError",
    "BroadcastError",
    "ConfigurationError",
    "ConnectionClosedError",
    "ConnectionLostError",
    "CredentialsError",
    "DecodeError",
    "ErrorDetail",
    "HandshakeError",
    "HandshakeTimeoutError",
    "HeartbeatTimeoutError",
    "InvalidChannelError",
    "LocalProtocolError",
    "OperationError",
    "OperationTimeoutError",
    "ProtocolError",
    "PublishError",
    "PublishUnauthorizedError",
    "RemoteProtocolError",
    "SubscribeError",
    "SubscribeUnauthorizedError",
    "SubscriptionClosedError",
    "SubscriptionInboxFullError",
    "UnauthorizedError",
    "UnsubscribeError",
    "UnsubscribeUnauthorizedError",
    "unauthorized_error",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorDetail:
    """One entry of an AppSync ``errors`` array."""

    error_type: str
    """``errorType`` on the wire, e.g. ``UnauthorizedException``."""
    message: str
    """``message`` on the wire."""
    error_code: int | None = None
    """``errorCode`` on the wire, present for auth failures (e.g. 401)."""

    def __str__(self) -> str:
        code = f" {self.error_code}" if self.error_code is not None else ""
        return f"{self.error_type}{code}: {self.message}"


def _format_errors(errors: Iterable[ErrorDetail]) -> str:
    return "; ".join(str(e) for e in errors) or "no error details"


class AppSyncEventsError(Exception):
    """Base class of every exception raised by this package."""

    def __reduce__(self) -> tuple[Any, ...]:
        # The default pickles as ``cls(*self.args)``, but ``args`` holds the formatted
        # message, not the constructor's arguments.  Rebuild without calling ``__init__``
        # and restore ``args`` and every attribute instead; this also covers the
        # ``OSError`` subclasses (``TimeoutError``, ``ConnectionError``), whose ``__new__``
        # leaves ``args`` empty when ``__init__`` is overridden.
        newobj = copyreg.__newobj__  # type: ignore[attr-defined]
        return (newobj, (type(self),), {**self.__dict__, "args": self.args})


class ConfigurationError(AppSyncEventsError, ValueError):
    """The caller passed something unusable (endpoint, region, channel, events)."""


class InvalidChannelError(ConfigurationError):
    """A channel path breaks a channel naming rule.

    Attributes:
        channel: the offending channel string.
        rule: a short description of the rule that failed.
    """

    def __init__(self, channel: str, rule: str) -> None:
        self.channel = channel
        self.rule = rule
        super().__init__(f"invalid channel {channel!r}: {rule}")


class AuthorizationError(AppSyncEventsError):
    """Base class of authorization failures."""


class CredentialsError(AuthorizationError):
    """No credentials could be found or refreshed to sign a request."""


class UnauthorizedError(AuthorizationError):
    """The service refused the credentials (401/403 or ``UnauthorizedException``).

    A refused publish, subscribe or unsubscribe raises the subclass that is also that
    operation's :class:`OperationError` (:func:`unauthorized_error` picks it); a refused
    connection raises this class itself, with ``operation="connect"``.

    Attributes:
        errors: the service's error details.
        status: the HTTP status for HTTP publish and refused upgrades, else ``None``.
        operation: ``"connect"``, ``"subscribe"``, ``"publish"`` or ``"unsubscribe"``.
    """

    operation: str | None

    def __init__(
        self,
        errors: Iterable[ErrorDetail] = (),
        *,
        status: int | None = None,
        operation: str | None = None,
    ) -> None:
        self.errors: tuple[ErrorDetail, ...] = tuple(errors)
        self.status = status
        self.operation = operation
        super().__init__(_unauthorized_message(operation, None, status, self.errors))


def _unauthorized_message(
    operation: str | None, channel: str | None, status: int | None, errors: tuple[ErrorDetail, ...]
) -> str:
    where = f"{operation} " if operation else ""
    on = f" on {channel!r}" if channel else ""
    st = f" (HTTP {status})" if status is not None else ""
    return f"{where}unauthorized{on}{st}: {_format_errors(errors)}"


class ProtocolError(AppSyncEventsError):
    """Base class of protocol violations."""


class LocalProtocolError(ProtocolError):
    """The caller tried something the protocol forbids in the current state."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something that breaks the protocol.

    Attributes:
        reason: what was wrong, e.g. ``"invalid JSON"``.
        frame_type: the frame's ``type`` when it could be read, else ``None``.
        id: the frame's ``id`` when it could be read as a string, else ``None``.
    """

    def __init__(
        self, reason: str, *, frame_type: str | None = None, id: str | None = None
    ) -> None:
        self.reason = reason
        self.frame_type = frame_type
        self.id = id
        where = f" in {frame_type!r} frame" if frame_type else ""
        super().__init__(f"{reason}{where}")


class ConnectionLostError(AppSyncEventsError, ConnectionError):
    """The connection is gone: closed by either side, or silent for too long.

    Also the builtin :class:`ConnectionError`.  Operations still waiting fail with it, and
    so does every later call on the client.
    """


class ConnectionClosedError(ConnectionLostError):
    """The WebSocket is closed; no further operation is possible.

    Also raised when the service sends a ``connection_error`` after the connection was
    acknowledged: ``.errors`` then holds its details.

    Example::

        ConnectionClosedError(1006, "abnormal closure")
        ConnectionClosedError(message="the service reported a connection error", errors=details)

    Args:
        code: the close code, if known.
        reason: the close reason, if known.
        message: the message, instead of one built from ``code`` and ``reason``.
        errors: the service's error details (``connection_error``), else empty.

    Attributes:
        code: the close code, if known.
        reason: the close reason, if known.
        errors: the service's error details, a tuple (empty for a plain close).
    """

    def __init__(
        self,
        code: int | None = None,
        reason: str = "",
        *,
        message: str | None = None,
        errors: Iterable[ErrorDetail] = (),
    ) -> None:
        self.code = code
        self.reason = reason
        self.errors: tuple[ErrorDetail, ...] = tuple(errors)
        text = message or f"connection closed (code={code}, reason={reason!r})"
        detail = f": {_format_errors(self.errors)}" if self.errors else ""
        super().__init__(f"{text}{detail}")


class HandshakeError(AppSyncEventsError):
    """The service answered the handshake with ``connection_error`` or refused it.

    Attributes:
        errors: the service's error details (may be empty for transport failures).
    """

    def __init__(self, message: str, errors: Iterable[ErrorDetail] = ()) -> None:
        self.errors: tuple[ErrorDetail, ...] = tuple(errors)
        detail = f": {_format_errors(self.errors)}" if self.errors else ""
        super().__init__(f"{message}{detail}")


class HandshakeTimeoutError(HandshakeError, TimeoutError):
    """No ``connection_ack`` arrived within the handshake timeout (Go: ``ErrHandshakeTimeout``)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"timed out after {timeout:g}s waiting for connection_ack")


class HeartbeatTimeoutError(ConnectionLostError, TimeoutError):
    """No ``ka`` (or other frame) within the keep-alive timeout (Go: ``ErrHeartbeatTimeout``)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"no keep-alive from the service within {timeout:g}s")


class OperationTimeoutError(AppSyncEventsError, TimeoutError):
    """No acknowledgement for an operation within ``operation_timeout``."""

    def __init__(self, operation: str, id: str, timeout: float) -> None:
        self.operation = operation
        self.id = id
        self.timeout = timeout
        super().__init__(f"timed out after {timeout:g}s waiting for the {operation} ack of {id!r}")


class SubscriptionInboxFullError(AppSyncEventsError):
    """The subscription's inbox overflowed (Go: ``ErrSubscriptionInboxFull``).

    The subscription is closed; events buffered before the overflow are still readable.
    """

    def __init__(self, subscription_id: str, channel: str, capacity: int) -> None:
        self.subscription_id = subscription_id
        self.channel = channel
        self.capacity = capacity
        super().__init__(
            f"inbox of subscription {subscription_id!r} on {channel!r} is full "
            f"({capacity} events); the consumer is too slow"
        )


class SubscriptionClosedError(AppSyncEventsError):
    """A read on a closed subscription (Go: ``ErrSubscriptionClosed``)."""

    def __init__(self, subscription_id: str, channel: str, reason: str = "closed") -> None:
        self.subscription_id = subscription_id
        self.channel = channel
        self.reason = reason
        super().__init__(f"subscription {subscription_id!r} on {channel!r} is {reason}")


class DecodeError(AppSyncEventsError, ValueError):
    """An event could not be decoded into the requested type (``Subscription.decode_next``).

    The event is not lost: it is in ``.data``.

    Attributes:
        data: the event's JSON text.
        target: the name of the requested type.
        reason: what did not fit.
    """

    def __init__(self, data: str, target: str, reason: str) -> None:
        self.data = data
        self.target = target
        self.reason = reason
        super().__init__(f"cannot decode event as {target}: {reason}")


class OperationError(AppSyncEventsError):
    """The service answered an operation with errors.

    Attributes:
        errors: the service's error details.
        id: the operation id, when known.
        channel: the channel, when known.
        status: the HTTP status for HTTP publish, else ``None``.
    """

    operation: str | None = "operation"

    def __init__(
        self,
        errors: Iterable[ErrorDetail],
        *,
        id: str | None = None,
        channel: str | None = None,
        status: int | None = None,
    ) -> None:
        self.errors: tuple[ErrorDetail, ...] = tuple(errors)
        self.id = id
        self.channel = channel
        self.status = status
        on = f" on {channel!r}" if channel else ""
        st = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{self.operation} failed{on}{st}: {_format_errors(self.errors)}")


class SubscribeError(OperationError):
    """``subscribe_error`` from the service."""

    operation = "subscribe"


class PublishError(OperationError):
    """``publish_error`` from the service, or an HTTP publish error response."""

    operation = "publish"


class UnsubscribeError(OperationError):
    """``unsubscribe_error`` from the service."""

    operation = "unsubscribe"


class BroadcastError(OperationError):
    """``broadcast_error`` for a subscription."""

    operation = "broadcast"


class _OperationUnauthorized(UnauthorizedError, OperationError):
    """What the three ``*UnauthorizedError`` classes share: both constructors in one."""

    operation: str | None = None

    def __init__(
        self,
        errors: Iterable[ErrorDetail] = (),
        *,
        id: str | None = None,
        channel: str | None = None,
        status: int | None = None,
    ) -> None:
        self.errors = tuple(errors)
        self.id = id
        self.channel = channel
        self.status = status
        # Both bases build their own message; skip them for the unauthorized wording.
        AppSyncEventsError.__init__(
            self, _unauthorized_message(self.operation, channel, status, self.errors)
        )


class PublishUnauthorizedError(_OperationUnauthorized, PublishError):
    """The service refused a publish as unauthorized.

    Both an :class:`UnauthorizedError` and a :class:`PublishError`; carries the attributes
    of both (``errors``, ``status``, ``operation``, ``id``, ``channel``).
    """

    operation = "publish"


class SubscribeUnauthorizedError(_OperationUnauthorized, SubscribeError):
    """The service refused a subscribe as unauthorized.

    Both an :class:`UnauthorizedError` and a :class:`SubscribeError`; carries the
    attributes of both (``errors``, ``status``, ``operation``, ``id``, ``channel``).
    """

    operation = "subscribe"


class UnsubscribeUnauthorizedError(_OperationUnauthorized, UnsubscribeError):
    """The service refused an unsubscribe as unauthorized.

    Both an :class:`UnauthorizedError` and an :class:`UnsubscribeError`; carries the
    attributes of both (``errors``, ``status``, ``operation``, ``id``, ``channel``).
    """

    operation = "unsubscribe"


_UNAUTHORIZED: Final[dict[str, type[_OperationUnauthorized]]] = {
    cls.operation: cls
    for cls in (PublishUnauthorizedError, SubscribeUnauthorizedError, UnsubscribeUnauthorizedError)
    if cls.operation is not None
}


def unauthorized_error(
    errors: Iterable[ErrorDetail],
    *,
    operation: str,
    status: int | None = None,
    id: str | None = None,
    channel: str | None = None,
) -> UnauthorizedError:
    """Return the exception for an operation the service refused as unauthorized.

    ``"publish"``, ``"subscribe"`` and ``"unsubscribe"`` give the class that is also that
    operation's :class:`OperationError` (:class:`PublishUnauthorizedError`, ...); any other
    operation (``"connect"``) gives a plain :class:`UnauthorizedError`.

    Args:
        errors: the service's error details.
        operation: the refused operation (an ``Operation`` or its value).
        status: the HTTP status, for HTTP publish and refused upgrades.
        id: the operation id, when known (not kept for ``connect``).
        channel: the channel, when known (not kept for ``connect``).
    """
    cls = _UNAUTHORIZED.get(str(operation))
    if cls is None:
        return UnauthorizedError(errors, status=status, operation=str(operation))
    return cls(errors, id=id, channel=channel, status=status)
