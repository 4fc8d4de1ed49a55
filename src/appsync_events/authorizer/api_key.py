"""API_KEY authorization: the ``x-api-key`` header."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..errors import ConfigurationError
from .base import (
    AuthorizeRequest,
    AuthorizeResult,
    amz_date,
    check_header_value,
    endpoint_host,
    request_host,
)

__all__ = ["ApiKey", "api_key_headers"]


def api_key_headers(*, api_key: str, host: str, now: datetime) -> dict[str, str]:
    """Return the API-key header map: ``host``, ``x-amz-date`` and ``x-api-key``.

    The same map serves every operation.  ``x-amz-date`` is not needed by AWS but Amplify
    sends it (``authHeaders.ts`` ``awsRealTimeApiKeyHeader``), so we do too.

    Args:
        api_key: the API key, e.g. ``da2-…``.
        host: the HTTP endpoint's host (see :func:`~appsync_events.endpoints.signing_host`).
        now: the current time (naive means UTC).
    """
    return {"host": host, "x-amz-date": amz_date(now), "x-api-key": api_key}


class ApiKey:
    """Authorize with an API key.

    Example::

        authz = ApiKey("da2-…")

    Args:
        api_key: the API key.
        endpoint: optional: the HTTP endpoint (``https://…/event``; the real-time endpoint
            is accepted too and mapped to its HTTP twin).  Without it the host comes from
            the client (``AuthorizeRequest.host``); with it, a client connected to another
            API fails at connect with :class:`~appsync_events.errors.ConfigurationError`.

    Raises:
        ConfigurationError: the key is empty or not a usable header value, or the endpoint
            is not a valid endpoint URL.
    """

    __slots__ = ("_api_key", "_last", "host")

    def __init__(self, api_key: str, endpoint: str | None = None) -> None:
        self._api_key = check_header_value("api_key", api_key, error=ConfigurationError)
        self.host: str | None = None if endpoint is None else endpoint_host(endpoint)
        """The host of ``endpoint`` (with a non-default port), or ``None`` without one."""
        self._last: tuple[int, str | None, AuthorizeResult] | None = None
        # (second, request host, result): the map changes only with the second

    def __repr__(self) -> str:
        return f"ApiKey(host={self.host!r}, api_key=<redacted>)"

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        """Return ``{"host", "x-amz-date", "x-api-key"}`` for any operation.

        Never waits: cancellation and timeouts cannot interrupt it part-way.  The map is
        the same for every request with the same host within one second (``x-amz-date``
        has a resolution of one second): it is made once and shared, read-only
        (:class:`~appsync_events.authorizer.base.SharedHeaders`).

        Raises:
            ConfigurationError: see :func:`~appsync_events.authorizer.base.request_host`.
        """
        return self._authorize_now(request)

    def _authorize_now(self, request: AuthorizeRequest) -> AuthorizeResult:
        """:meth:`authorize` without its coroutine (the client calls it on every publish
        when ``authorize`` is this class's own)."""
        cached = self._cached(request.host)
        if cached is not None:
            return cached
        second = int(time.time())
        host = request_host(request, self.host)
        now = datetime.fromtimestamp(second, UTC)
        result = AuthorizeResult(api_key_headers(api_key=self._api_key, host=host, now=now))
        result = result.shared()
        self._last = (second, request.host, result)
        return result

    def _cached(self, host: str | None) -> AuthorizeResult | None:
        """What :meth:`_authorize_now` returns for a request to ``host`` when it made that
        result already in the current second, else ``None`` (the client asks first, to
        skip building the request)."""
        last = self._last
        if last is not None and last[0] == int(time.time()) and last[1] == host:
            return last[2]
        return None
