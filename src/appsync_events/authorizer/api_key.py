"""API_KEY authorization (PROTOCOL.md §5.3)."""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import ConfigurationError
from .base import AuthorizeRequest, AuthorizeResult, amz_date, check_header_value, endpoint_host

__all__ = ["ApiKey", "api_key_headers"]


def api_key_headers(*, api_key: str, host: str, now: datetime) -> dict[str, str]:
    """Return the API-key header map: ``host``, ``x-amz-date`` and ``x-api-key``.

    The same map serves every operation.  ``x-amz-date`` is not needed by AWS but Amplify
    sends it (``authHeaders.ts`` ``awsRealTimeApiKeyHeader``), so we do too.

    Args:
        api_key: the API key, e.g. ``da2-…``.
        host: the HTTP endpoint's host (see :func:`~appsync_events._endpoints.signing_host`).
        now: the current time (naive means UTC).
    """
    return {"host": host, "x-amz-date": amz_date(now), "x-api-key": api_key}


class ApiKey:
    """Authorize with an API key.

    Example::

        authz = ApiKey(api_key="da2-…", endpoint="https://xxxx.appsync-api.eu-central-1.amazonaws.com/event")

    Args:
        api_key: the API key.
        endpoint: the HTTP endpoint (``https://…/event``); the real-time endpoint is accepted
            too and mapped to its HTTP twin, whose host is what AppSync checks.

    Raises:
        ConfigurationError: the key is empty or not a usable header value, or the endpoint
            is not a valid endpoint URL.
    """

    __slots__ = ("_api_key", "host")

    def __init__(self, api_key: str, endpoint: str) -> None:
        self._api_key = check_header_value("api_key", api_key, error=ConfigurationError)
        self.host: str = endpoint_host(endpoint)
        """The signed ``host``: the HTTP endpoint's host (with a non-default port)."""

    def __repr__(self) -> str:
        return f"ApiKey(host={self.host!r}, api_key=<redacted>)"

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        """Return ``{"host", "x-amz-date", "x-api-key"}`` for any operation.

        Never waits: cancellation and timeouts cannot interrupt it part-way.
        """
        return AuthorizeResult(
            api_key_headers(api_key=self._api_key, host=self.host, now=datetime.now(UTC))
        )
