"""The authorizer contract: what the client asks for and what an authorizer answers.

The client calls :meth:`Authorizer.authorize` once per operation (connect, subscribe,
publish, unsubscribe) and uses the returned header map in three places:
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

Every request also carries ``host``: the API's HTTP host as the client knows it from its
endpoint, which is what AppSync checks in the ``host`` entry of every authorization map.
So authorizers need no endpoint of their own (``ApiKey("da2-...")``); one given anyway must
agree with the client's (see :func:`request_host`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol, runtime_checkable

from ..endpoints import http_endpoint_from_realtime, http_host_from_realtime, signing_host
from ..errors import ConfigurationError
from ..protocol.client import SharedHeaders
from ..protocol.messages import Operation

__all__ = [
    "AMZ_DATE_FORMAT",
    "AuthorizeRequest",
    "AuthorizeResult",
    "Authorizer",
    "Operation",
    "SharedHeaders",
    "amz_date",
    "check_header_value",
    "endpoint_host",
    "request_host",
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
    """The API's HTTP host, with the port when it is not the scheme's default
    (``xxxx.appsync-api.us-east-1.amazonaws.com``, ``127.0.0.1:8080``), as
    :func:`endpoint_host` derives it from the client's endpoint.  The client always fills
    it in; ``None`` only in requests built by hand."""

    def __post_init__(self) -> None:
        host = self.host
        if host is not None and host is not _checked_host[0]:
            if (
                not isinstance(host, str)
                or not host
                or "/" in host
                or (
                    # Printable and no space: no whitespace or control character (fast check).
                    (not host.isprintable() or " " in host)
                    and any(ch.isspace() or ord(ch) < 0x20 for ch in host)
                )
            ):
                raise ConfigurationError(
                    f"host must be a host name with an optional port, such as "
                    f"'xxxx.appsync-api.us-east-1.amazonaws.com' or '127.0.0.1:8080', "
                    f"got {host!r}"
                )
            if type(host) is str:
                _checked_host[0] = host  # the same object is known to be good next time
        op = self.operation
        if type(op) is not Operation:
            try:
                op = Operation(op)
            except ValueError:
                raise ConfigurationError(f"unknown operation {self.operation!r}") from None
            object.__setattr__(self, "operation", op)
        events = self.events
        if events is not None:
            if type(events) is not tuple:
                events = tuple(events)
                object.__setattr__(self, "events", events)
            for index, event in enumerate(events):
                if not isinstance(event, str):
                    raise ConfigurationError(
                        f"events[{index}] must be a JSON text (str), got {type(event).__name__}"
                    )
        channel = self.channel
        if channel is not None and not isinstance(channel, str):
            raise ConfigurationError(f"channel must be a str, got {type(channel).__name__}")
        if op is _PUBLISH:
            if channel is None:
                raise ConfigurationError(f"a {op} authorization needs the channel")
            if events is None:
                raise ConfigurationError("a publish authorization needs the events")
            return
        if op is Operation.SUBSCRIBE and channel is None:
            raise ConfigurationError(f"a {op} authorization needs the channel")
        if op is Operation.CONNECT and channel is not None:
            raise ConfigurationError("a connect authorization has no channel")
        if events is not None:
            raise ConfigurationError(f"a {op} authorization has no events")


_PUBLISH: Final = Operation.PUBLISH
_checked_host: list[str | None] = [None]
"""The last host an :class:`AuthorizeRequest` accepted (a client sends the same object)."""
_set_operation: Final = vars(AuthorizeRequest)["operation"].__set__
_set_channel: Final = vars(AuthorizeRequest)["channel"].__set__
_set_events: Final = vars(AuthorizeRequest)["events"].__set__
_set_host: Final = vars(AuthorizeRequest)["host"].__set__


def publish_request(channel: str, events: tuple[str, ...], host: str | None) -> AuthorizeRequest:
    """``AuthorizeRequest(operation=PUBLISH, channel=..., events=..., host=...)`` for a
    prepared publish, whose channel is a ``str`` and events a tuple of ``str`` already.

    The same request, made without the frozen dataclass's per-field detour; a host not
    accepted just before (the client's, every time) is checked as usual.
    """
    if host is not _checked_host[0] or type(channel) is not str or type(events) is not tuple:
        return AuthorizeRequest(operation=_PUBLISH, channel=channel, events=events, host=host)
    request: AuthorizeRequest = object.__new__(AuthorizeRequest)
    _set_operation(request, _PUBLISH)
    _set_channel(request, channel)
    _set_events(request, events)
    _set_host(request, host)
    return request


_SECRET_HEADERS: Final = frozenset({"authorization", "x-api-key", "x-amz-security-token"})


@dataclass(frozen=True, slots=True, repr=False)
class AuthorizeResult:
    """An authorizer's answer: the header map AppSync expects.

    The client sends the map as the ``header-`` subprotocol of the WebSocket upgrade, as the
    ``authorization`` object of a ``subscribe``/``publish`` message, and as the HTTP headers
    of an HTTP publish.

    Raises:
        ConfigurationError: a key or value is not a string, or a value holds a line break
            or NUL (it could not travel as an HTTP header).
    """

    authorization: Mapping[str, str]
    """Header name -> value, e.g. ``{"host": …, "x-api-key": …}``.  A private copy."""

    def __post_init__(self) -> None:
        # A copy, so that the caller's dict can change without affecting the result; a plain
        # dict (not a proxy) so that ``json.dumps(result.authorization)`` keeps working.
        copy = dict(self.authorization)
        for key, value in copy.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ConfigurationError(
                    f"authorization header {key!r} must map a str to a str, "
                    f"got {type(key).__name__} -> {type(value).__name__}"
                )
            if (
                not key
                or "\r" in key
                or "\n" in key
                or "\0" in key
                or ":" in key
                or key != key.strip()
            ):
                raise ConfigurationError(f"{key!r} is not a valid header name")
            if "\r" in value or "\n" in value or "\0" in value:
                raise ConfigurationError(f"the value of header {key!r} holds a line break or NUL")
        object.__setattr__(self, "authorization", copy)

    def shared(self) -> AuthorizeResult:
        """This result with its map made read-only (:class:`SharedHeaders`), to hand to
        several callers: none of them can change what the others send."""
        if type(self.authorization) is SharedHeaders:
            return self
        result = object.__new__(AuthorizeResult)
        object.__setattr__(result, "authorization", SharedHeaders(self.authorization))
        return result

    def __repr__(self) -> str:
        # Secrets never reach logs or tracebacks through a repr.
        shown = {
            key: "<redacted>" if key.lower() in _SECRET_HEADERS else value
            for key, value in self.authorization.items()
        }
        return f"AuthorizeResult(authorization={shown!r})"


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
    # strftime's text (its %Y does not pad either), without strftime's temporary objects
    return f"{now.year}{now.month:02d}{now.day:02d}T{now.hour:02d}{now.minute:02d}{now.second:02d}Z"


def endpoint_host(endpoint: str) -> str:
    """Return the signing ``host`` for an endpoint given in either form.

    Authorizers are configured with the HTTP endpoint (its host is what AppSync
    validates).  A real-time endpoint (``wss://``/``ws://``) is accepted too and turned
    into its HTTP twin first, so the ``appsync-realtime-api`` host is never signed.

    Raises:
        ConfigurationError: ``endpoint`` is not a valid endpoint URL.
    """
    return signing_host(http_endpoint_from_realtime(endpoint))


def request_host(request: AuthorizeRequest, configured: str | None = None) -> str:
    """Return the host to authorize ``request`` for: the request's, or the configured one.

    Built-in authorizers call this with the host of the ``endpoint=`` they were given, if
    any; a custom authorizer can call it too.

    Args:
        request: what to authorize; its ``host`` is the client's HTTP host.
        configured: the host of the authorizer's own endpoint (:func:`endpoint_host`), or
            ``None`` when it was given none.

    Raises:
        ConfigurationError: both hosts are known and differ (the authorizer was configured
            for another API than the client connects to, or with the real-time host), neither
            is known, or the host is an AppSync real-time host (AppSync checks the HTTP host).
    """
    given = request.host.lower() if request.host is not None else None
    if configured is not None and given is not None and configured != given:
        hint = ""
        if http_host_from_realtime(given) == configured:
            hint = f" ({given!r} is the real-time host; authorizations carry the HTTP host)"
        raise ConfigurationError(
            f"the authorizer's endpoint host {configured!r} differs from the client's host "
            f"{given!r}{hint}: give the authorizer the client's HTTP endpoint, or no endpoint"
        )
    host = configured if configured is not None else given
    if host is None:
        raise ConfigurationError(
            f"no host to authorize the {request.operation} for: the request has no host and "
            "the authorizer no endpoint (the client fills in AuthorizeRequest.host; pass "
            "host= when calling authorize() yourself, or give the authorizer endpoint=)"
        )
    twin = http_host_from_realtime(host)
    if twin != host:
        raise ConfigurationError(
            f"{host!r} is the real-time host; AppSync checks the HTTP host {twin!r} in every "
            "authorization: use the HTTP endpoint's host"
        )
    return host


def check_header_value(name: str, value: object, *, error: type[Exception]) -> str:
    """Return ``value`` if it is a non-empty str usable as a header value, else raise ``error``."""
    if not isinstance(value, str):
        raise error(f"{name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise error(f"{name} must not be empty")
    if any(ch in value for ch in "\r\n\0"):
        raise error(f"{name} must not contain line breaks or NUL characters")
    return value
