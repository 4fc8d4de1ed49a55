"""Token authorization: Cognito user pools, OpenID Connect and Lambda authorizers."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ..errors import AppSyncEventsError, ConfigurationError, CredentialsError
from .base import (
    AuthorizeRequest,
    AuthorizeResult,
    check_header_value,
    endpoint_host,
    request_host,
)

__all__ = ["Token", "TokenProvider", "token_headers"]

TokenProvider = Callable[[], str | Awaitable[str]]
"""A zero-argument callable returning the current token, or an awaitable of it."""


def token_headers(*, token: str, host: str) -> dict[str, str]:
    """Return the token header map ``{"Authorization": token, "host": host}``."""
    return {"Authorization": token, "host": host}


class Token:
    """Authorize with a bearer-style token (a Cognito or OIDC JWT, or a Lambda token).

    AppSync does not mint tokens: authenticate with your identity provider first and pass
    the token here.  For tokens that expire, pass a callable: it is called for **every**
    operation, so a connection that lives longer than one token keeps working::

        Token("eyJ…")
        Token(lambda: cache.current_token)
        Token(fetch_token_async)   # async def -> str

    A plain (sync) callable runs on the event loop and must not block; wrap a blocking
    fetch in ``asyncio.to_thread`` inside an ``async def``.

    Args:
        auth_token: the token (``"Bearer "`` prefix allowed), or a provider of it.
        endpoint: optional: the HTTP endpoint (``https://…/event``; the real-time endpoint
            is accepted too and mapped to its HTTP twin).  Without it the host comes from
            the client (``AuthorizeRequest.host``); with it, a client connected to another
            API fails at connect with :class:`~appsync_events.errors.ConfigurationError`.

    Raises:
        CredentialsError: ``auth_token`` is an empty string.
        ConfigurationError: ``auth_token`` is neither a str nor callable, or the endpoint is
            not a valid endpoint URL.
    """

    __slots__ = ("_provider", "_token", "host")

    def __init__(self, auth_token: str | TokenProvider, endpoint: str | None = None) -> None:
        self._token: str | None = None
        self._provider: TokenProvider | None = None
        if isinstance(auth_token, str):
            self._token = check_header_value("auth_token", auth_token, error=CredentialsError)
        elif callable(auth_token):
            self._provider = auth_token
        else:
            raise ConfigurationError(
                f"auth_token must be a str or a callable, got {type(auth_token).__name__}"
            )
        self.host: str | None = None if endpoint is None else endpoint_host(endpoint)
        """The host of ``endpoint`` (with a non-default port), or ``None`` without one."""

    def __repr__(self) -> str:
        kind = "<redacted>" if self._provider is None else repr(self._provider)
        return f"Token(host={self.host!r}, auth_token={kind})"

    async def _current_token(self) -> str:
        if self._provider is None:
            assert self._token is not None
            return self._token
        try:
            value = self._provider()
            if inspect.isawaitable(value):
                value = await value
        except AppSyncEventsError:
            raise
        except Exception as exc:
            raise CredentialsError(f"the auth_token provider failed: {exc!r}") from exc
        return check_header_value("the token from auth_token", value, error=CredentialsError)

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        """Return ``{"Authorization": token, "host": host}`` for any operation.

        With a token provider, it is called (and awaited) once per call.  Cancellation
        propagates into an async provider; there is no timeout of its own (the client's
        operation timeout bounds it).

        Raises:
            CredentialsError: the provider raised, or returned something other than a
                non-empty str.
            ConfigurationError: see :func:`~appsync_events.authorizer.base.request_host`.
        """
        host = request_host(request, self.host)
        token = await self._current_token()
        return AuthorizeResult(token_headers(token=token, host=host))
