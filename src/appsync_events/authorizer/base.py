"""The authorizer contract: what the client asks for and what an authorizer answers.

The client calls :meth:`Authorizer.authorize` once per operation (connect, subscribe,
publish, unsubscribe) and uses the returned header map in three places (PROTOCOL.md §5.2):
the ``header-`` subprotocol of the WebSocket upgrade, the ``authorization`` object of a
``subscribe``/``publish`` message, and the real HTTP headers of an HTTP publish.

This mirrors the Go client's ``Authorizer`` interface (exanubes/appsync): the request
says which operation is happening, and for which channel and events:

=============  ======================  ================================
operation      channel                 events
=============  ======================  ================================
CONNECT        ``None``                ``None``
SUBSCRIBE      channel as sent         ``None``
PUBLISH        channel as sent         the event JSON texts as sent
UNSUBSCRIBE    ``None`` (or as sent)   ``None``
=============  ======================  ================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol, runtime_checkable

from .._endpoints import http_endpoint_from_realtime, signing_host
from ..errors import ConfigurationError
from ..protocol.messages import Operation

__all__ = [
    "AMZ_DATE_FORMAT",
    "AuthorizeRequest",
    "AuthorizeResult",
    "Authorizer",
    "Operation",
    "amz_date",
    "check_header_value",
    "endpoint_host",
]

AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
"""``x-amz-date`` format (SigV4 basic ISO 8601, UTC), e.g. ``20200401T001010Z``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizeRequest:
    """What the client needs authorization for.

    ``channel`` and ``events`` are exactly what goes on the wire: IAM signs them
    byte-for-byte, so the client must not change them after authorizing.

    Raises:
        ConfigurationError: the fields do not fit the operation (see the module table),
            or ``events`` holds something other than strings.
    """

    operation: Operation
    """Which operation is happening."""
    channel: str | None = None
    """The channel as sent (subscribe, publish; optionally unsubscribe), else ``None``."""
    events: tuple[str, ...] | None = None
    """The event JSON texts as sent (publish only), else ``None``."""
    host: str | None = None
    """The API's HTTP host as the client knows it (with the port when not the default)."""

    def __post_init__(self) -> None:
        try:
            op = Operation(self.operation)
        except ValueError:
            raise ConfigurationError(f"unknown operation {self.operation!r}") from None
        object.__setattr__(self, "operation", op)
        if self.events is not None:
            events = tuple(self.events)
            for index, event in enumerate(events):
                if not isinstance(event, str):
                    raise ConfigurationError(
                        f"events[{index}] must be a JSON text (str), got {type(event).__name__}"
                    )
            object.__setattr__(self, "events", events)
        if self.channel is not None and not isinstance(self.channel, str):
            raise ConfigurationError(f"channel must be a str, got {type(self.channel).__name__}")
        needs_channel = op in (Operation.SUBSCRIBE, Operation.PUBLISH)
        if needs_channel and self.channel is None:
            raise ConfigurationError(f"a {op} authorization needs the channel")
        if op is Operation.CONNECT and self.channel is not None:
            raise ConfigurationError("a connect authorization has no channel")
        if op is Operation.PUBLISH and self.events is None:
            raise ConfigurationError("a publish authorization needs the events")
        if op is not Operation.PUBLISH and self.events is not None:
            raise ConfigurationError(f"a {op} authorization has no events")


_SECRET_HEADERS: Final = frozenset({"authorization", "x-api-key", "x-amz-security-token"})


@dataclass(frozen=True, slots=True, repr=False)
class AuthorizeResult:
    """An authorizer's answer: the header map AppSync expects (PROTOCOL.md §5.2).

    Raises:
        ConfigurationError: a key or value is not a string, or a value holds a line break
            or NUL (it could not travel as an HTTP header).
    """

    signature: Mapping[str, str]
    """Header name -> value, e.g. ``{"host": …, "x-api-key": …}``.  A private copy."""

    def __post_init__(self) -> None:
        # A copy, so that the caller's dict can change without affecting the result; a plain
        # dict (not a proxy) so that ``json.dumps(result.signature)`` keeps working.
        copy = dict(self.signature)
        for key, value in copy.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ConfigurationError(
                    f"authorization header {key!r} must map a str to a str, "
                    f"got {type(key).__name__} -> {type(value).__name__}"
                )
            if not key or any(ch in key for ch in "\r\n\0:") or key != key.strip():
                raise ConfigurationError(f"{key!r} is not a valid header name")
            if any(ch in value for ch in "\r\n\0"):
                raise ConfigurationError(f"the value of header {key!r} holds a line break or NUL")
        object.__setattr__(self, "signature", copy)

    def __repr__(self) -> str:
        # Secrets never reach logs or tracebacks through a repr (STYLE.md §6, Logging).
        shown = {
            key: "<redacted>" if key.lower() in _SECRET_HEADERS else value
            for key, value in self.signature.items()
        }
        return f"AuthorizeResult(signature={shown!r})"


@runtime_checkable
class Authorizer(Protocol):
    """Anything that can authorize an operation.

    Implement this for token refresh, per-operation schemes or anything the built-in
    :class:`~appsync_events.authorizer.ApiKey`, :class:`~appsync_events.authorizer.Token`
    and :class:`~appsync_events.authorizer.IAM` do not cover.  ``isinstance(x, Authorizer)``
    checks only that ``authorize`` exists.
    """

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        """Return the header map for ``request``.

        The client calls this once per operation, right before sending it, and applies its
        own operation timeout around the call.

        Raises:
            CredentialsError: there is nothing to sign with.
        """
        ...


def amz_date(now: datetime) -> str:
    """Format ``now`` as ``x-amz-date`` (``%Y%m%dT%H%M%SZ``, UTC).

    A naive ``now`` is taken to be UTC already; an aware one is converted to UTC.
    """
    if now.tzinfo is not None:
        now = now.astimezone(UTC)
    return now.strftime(AMZ_DATE_FORMAT)


def endpoint_host(endpoint: str) -> str:
    """Return the signing ``host`` for an endpoint given in either form.

    Authorizers are configured with the HTTP endpoint (its host is what AppSync
    validates).  A real-time endpoint (``wss://``/``ws://``) is accepted too and turned
    into its HTTP twin first, so the ``appsync-realtime-api`` host is never signed.

    Raises:
        ConfigurationError: ``endpoint`` is not a valid endpoint URL.
    """
    return signing_host(http_endpoint_from_realtime(endpoint))


def check_header_value(name: str, value: object, *, error: type[Exception]) -> str:
    """Return ``value`` if it is a non-empty str usable as a header value, else raise ``error``."""
    if not isinstance(value, str):
        raise error(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise error(f"{name} must not be empty")
    if any(ch in value for ch in "\r\n\0"):
        raise error(f"{name} must not contain line breaks or NUL characters")
    return value
