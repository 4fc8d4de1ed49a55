"""The pluggable auth check: one :class:`Verifier` per AppSync auth mode.

The server shell builds an :class:`AuthRequest` for every connect, subscribe, publish (WS
and HTTP) and asks :class:`AuthPolicy` to authorize it against the modes allowed for that
operation (docs: protocol.rst, "Auth modes and where they apply",
"Per-operation authorization on the WebSocket").  Modes are tried in the listed order and the
first success wins (EMULATOR-CHOICE, docs: emulator-fidelity.rst,
"A map that matches several modes").  A new mode only needs a new :class:`Verifier`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from appsync_events.errors import ErrorDetail
from appsync_events.protocol.messages import Operation
from appsync_events.protocol.subprotocol import lookup

from ..catalogue import UNAUTHORIZED_MESSAGE, Rejection, unauthorized_detail
from ..config import AuthType

__all__ = [
    "UNAUTHORIZED_MESSAGE",
    "AuthFailure",
    "AuthPolicy",
    "AuthRequest",
    "Identity",
    "Operation",
    "Transport",
    "Verifier",
    "lambda_operation",
    "unauthorized",
    "websocket_request",
]


def lambda_operation(operation: Operation) -> str:
    """The operation's name in a Lambda authorizer request (``EVENT_CONNECT``...)."""
    return f"EVENT_{operation.name}"


class Transport(enum.StrEnum):
    WEBSOCKET = "websocket"
    HTTP = "http"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthRequest:
    """Everything a verifier may look at.  Treat every field as hostile input."""

    operation: Operation
    transport: Transport
    auth: Mapping[str, str]
    """The auth map: ``header-`` subprotocol / upgrade headers (connect), the message's
    ``authorization`` (WS subscribe/publish), or the real request headers (HTTP)."""
    channel: str | None = None
    """The channel exactly as the client sent it (never normalised: IAM signs it)."""
    events: tuple[str, ...] | None = None
    """The publish events exactly as sent (JSON texts)."""
    http_method: str = "POST"
    http_path: str = "/event"
    http_query: str = ""
    http_body: bytes | None = None
    """The raw HTTP body (HTTP publish only)."""
    request_headers: Mapping[str, str] = field(default_factory=dict)
    """Upgrade-request or HTTP headers, for handlers and the Lambda authorizer."""
    source_ip: str | None = None
    connection_id: str | None = None

    def header(self, name: str) -> str | None:
        """Case-insensitive lookup in :attr:`auth`."""
        return lookup(self.auth, name)


_NEW: Final = object.__new__
_SETTERS: Final[list[Any]] = [
    vars(AuthRequest)[name].__set__ for name in AuthRequest.__dataclass_fields__
]
(
    _SET_OPERATION,
    _SET_TRANSPORT,
    _SET_AUTH,
    _SET_CHANNEL,
    _SET_EVENTS,
    _SET_HTTP_METHOD,
    _SET_HTTP_PATH,
    _SET_HTTP_QUERY,
    _SET_HTTP_BODY,
    _SET_REQUEST_HEADERS,
    _SET_SOURCE_IP,
    _SET_CONNECTION_ID,
) = _SETTERS


def websocket_request(
    operation: Operation,
    auth: Mapping[str, str],
    channel: str,
    events: tuple[str, ...] | None,
    request_headers: Mapping[str, str],
    source_ip: str | None,
    connection_id: str,
) -> AuthRequest:
    """``AuthRequest(transport=Transport.WEBSOCKET, ...)`` for a subscribe or publish frame.

    Made once per publish: the slots are set directly, which the frozen ``__init__`` does
    field by field through ``object.__setattr__`` at twice the cost.  Equal to what the
    constructor makes, the HTTP fields at their defaults.
    """
    request: AuthRequest = _NEW(AuthRequest)
    _SET_OPERATION(request, operation)
    _SET_TRANSPORT(request, Transport.WEBSOCKET)
    _SET_AUTH(request, auth)
    _SET_CHANNEL(request, channel)
    _SET_EVENTS(request, events)
    _SET_HTTP_METHOD(request, "POST")
    _SET_HTTP_PATH(request, "/event")
    _SET_HTTP_QUERY(request, "")
    _SET_HTTP_BODY(request, None)
    _SET_REQUEST_HEADERS(request, request_headers)
    _SET_SOURCE_IP(request, source_ip)
    _SET_CONNECTION_ID(request, connection_id)
    return request


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who was authorized, and how; ``ctx`` is the APPSYNC_JS ``ctx.identity``
    (docs: protocol.rst, "The identity handlers see")."""

    mode: AuthType
    ctx: Mapping[str, Any] | None = None
    principal: str | None = None
    """A short label for logs and the recorder (key id, sub, ...); never a secret."""


class AuthFailure(Rejection):
    """A verifier's rejection, carrying the exact AppSync error to answer with (HTTP status
    401 unless said otherwise)."""

    def __init__(self, errors: Sequence[ErrorDetail], *, status: int = 401) -> None:
        super().__init__(errors, status=status)


def unauthorized(message: str = UNAUTHORIZED_MESSAGE, *, status: int = 401) -> AuthFailure:
    """The generic ``UnauthorizedException`` failure (401)."""
    return AuthFailure(
        [unauthorized_detail(message)],
        status=status,
    )


class Verifier(Protocol):
    """Checks one auth mode."""

    mode: AuthType

    def applies(self, request: AuthRequest) -> bool:
        """Whether the auth map looks like this mode.

        How modes are told apart: docs: protocol.rst, "Auth modes and where they apply".
        """
        ...

    async def verify(self, request: AuthRequest, now: datetime) -> Identity:
        """Return the identity, or raise :class:`AuthFailure`.  ``now`` is UTC wall time."""
        ...


class AuthPolicy:
    """Authorizes requests against an ordered list of allowed modes."""

    def __init__(self, verifiers: Mapping[AuthType, Verifier]) -> None:
        self.verifiers = dict(verifiers)

    def quick(
        self, auth: Mapping[str, str], allowed: Sequence[AuthType], now: Callable[[], datetime]
    ) -> Identity | None:
        """What :meth:`authorize` returns for a request with auth map ``auth``, when the
        first allowed mode with a verifier decides it at once (a verifier with a ``quick``
        method, such as the API key's for a key it accepted before); ``None`` when
        :meth:`authorize` must run.  ``now`` gives the time, if it is needed.
        """
        for mode in allowed:
            verifier = self.verifiers.get(mode)
            if verifier is not None:
                quick = getattr(verifier, "quick", None)
                return None if quick is None else quick(auth, now)
        return None

    async def authorize(
        self, request: AuthRequest, allowed: Sequence[AuthType], now: datetime
    ) -> Identity:
        """Return the identity of the first allowed mode that accepts ``request``.

        A failure from a verifier that recognised the map (e.g. the IAM canonical-string
        error) is preferred over the generic ``UnauthorizedException``.

        Raises:
            AuthFailure: no allowed mode accepts the request.
        """
        specific: AuthFailure | None = None
        for mode in allowed:
            verifier = self.verifiers.get(mode)
            if verifier is None or not verifier.applies(request):
                continue
            try:
                return await verifier.verify(request, now)
            except AuthFailure as exc:
                specific = specific or exc
        raise specific or unauthorized()
