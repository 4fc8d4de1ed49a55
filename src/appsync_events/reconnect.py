"""Automatic reconnection: the :class:`Reconnect` policy and the connection states.

Pass ``reconnect=True`` (the default policy) or a :class:`Reconnect` to
:func:`appsync_events.connect`.  When the connection is lost for a retryable reason (see
:func:`is_retryable`), the client keeps every live
:class:`~appsync_events.Subscription`, reconnects with jittered exponential backoff and
re-subscribes each of them with the same id and channel (as Amplify does).
"""

from __future__ import annotations

import enum
import math
import random as random_module
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .errors import (
    AuthorizationError,
    ConfigurationError,
    ConnectionClosedError,
    ErrorDetail,
    HandshakeError,
    HeartbeatTimeoutError,
    OperationError,
)

__all__ = [
    "NON_RETRYABLE_CLOSE_CODES",
    "NON_RETRYABLE_ERROR_CODES",
    "NON_RETRYABLE_ERROR_TYPES",
    "ConnectionState",
    "Reconnect",
    "StateCallback",
    "is_retryable",
]

NON_RETRYABLE_ERROR_TYPES: Final = frozenset({"BadRequestException", "UnauthorizedException"})
"""``errorType`` values that stop reconnection (Amplify's rule)."""
NON_RETRYABLE_ERROR_CODES: Final = frozenset({400, 401, 403})
"""``errorCode`` values that stop reconnection (Amplify's rule)."""
NON_RETRYABLE_CLOSE_CODES: Final = frozenset({4401, 4403})
"""WebSocket close codes that mean "unauthorized"/"forbidden" (the graphql-ws convention;
AppSync documents none): a server close with one of them stops reconnection."""


class ConnectionState(enum.Enum):
    """The state of a :class:`~appsync_events.Client`'s connection."""

    CONNECTED = "connected"
    """The WebSocket is open and acknowledged (after a reconnection: and every live
    subscription was re-subscribed, or failed): operations go through."""
    DISCONNECTED = "disconnected"
    """The connection was lost; the client waits (backoff) before the next attempt."""
    RECONNECTING = "reconnecting"
    """A reconnection attempt is under way (authorizer, upgrade, ``connection_ack``, then
    re-subscribing every live subscription)."""
    CLOSED = "closed"
    """Closed by :meth:`Client.close <appsync_events.Client.close>`, or failed for good;
    see :attr:`Client.failure <appsync_events.Client.failure>`."""


StateCallback = Callable[[ConnectionState], None]
"""``on_state_change``: called synchronously with each new state.  It must not block;
an exception it raises is logged and otherwise ignored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnect:
    """How the client reconnects after losing its connection (jittered exponential backoff).

    The delay before attempt ``n`` (0-based) is ``base * (1 - jitter * random())`` where
    ``base = min(max_delay, initial_delay * factor ** n)``: with the default
    ``jitter=1.0`` ("full jitter") it is uniform in ``[0, base)``.  The attempt counter
    starts again from 0 after every successful reconnection.

    Attributes:
        initial_delay: base delay of the first attempt, in seconds.
        max_delay: upper bound of the base delay, in seconds.
        factor: growth of the base delay per attempt (at least 1).
        jitter: fraction of the base delay that is randomised, from 0 (none) to 1 (full).
        max_attempts: attempts after one loss before giving up (``None``: no limit).
            When they are exhausted, every subscription and later operation raises the
            last attempt's error and the client is closed.
        random: returns a float in ``[0, 1)``; inject a fixed function in tests.

    Raises:
        ConfigurationError: a value out of range (raised by the constructor).
    """

    initial_delay: float = 0.1
    max_delay: float = 10.0
    factor: float = 2.0
    jitter: float = 1.0
    max_attempts: int | None = None
    random: Callable[[], float] = field(default=random_module.random, compare=False)

    def __post_init__(self) -> None:
        for name in ("initial_delay", "max_delay", "factor", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"Reconnect.{name} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"Reconnect.{name} must be finite and >= 0")
        if self.max_delay < self.initial_delay:
            raise ConfigurationError("Reconnect.max_delay must be >= initial_delay")
        if self.factor < 1:
            raise ConfigurationError("Reconnect.factor must be >= 1")
        if self.jitter > 1:
            raise ConfigurationError("Reconnect.jitter must be between 0 and 1")
        attempts = self.max_attempts
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise ConfigurationError("Reconnect.max_attempts must be a positive integer or None")
        if not callable(self.random):
            raise ConfigurationError("Reconnect.random must be a callable returning [0, 1)")

    def delay(self, attempt: int) -> float:
        """Return the delay in seconds before attempt ``attempt`` (0-based)."""
        try:
            base = min(self.max_delay, self.initial_delay * self.factor**attempt)
        except OverflowError:
            base = self.max_delay
        return max(0.0, base * (1.0 - self.jitter * self.random()))


def _refused(errors: tuple[ErrorDetail, ...]) -> bool:
    return any(
        e.error_type in NON_RETRYABLE_ERROR_TYPES or e.error_code in NON_RETRYABLE_ERROR_CODES
        for e in errors
    )


def is_retryable(error: BaseException) -> bool:
    """Return whether reconnecting after ``error`` may help.

    Retryable: the socket dropped or was closed (any close code except
    :data:`NON_RETRYABLE_CLOSE_CODES`), :class:`~appsync_events.errors.HeartbeatTimeoutError`,
    a failed or timed-out handshake, and connection-level service errors, unless the
    service's errors say ``BadRequestException``/``UnauthorizedException`` or carry
    ``errorCode`` 400, 401 or 403 (Amplify's rule).  Never retryable: authorization
    failures (:class:`~appsync_events.errors.UnauthorizedError`,
    :class:`~appsync_events.errors.CredentialsError`), protocol violations by the server,
    and anything that is not an :class:`~appsync_events.errors.AppSyncEventsError`.
    """
    if isinstance(error, HeartbeatTimeoutError):
        return True
    if isinstance(error, ConnectionClosedError):
        return error.code not in NON_RETRYABLE_CLOSE_CODES and not _refused(error.errors)
    if isinstance(error, AuthorizationError):
        return False
    if isinstance(error, HandshakeError | OperationError):
        return not _refused(error.errors)
    return False
