"""Tests for the token authorizer: Cognito, OIDC and Lambda
(docs: protocol.rst, "Cognito user pools and OpenID Connect", "Lambda authorizers")."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest

from appsync_events.authorizer import AuthorizeRequest, Operation, Token
from appsync_events.errors import ConfigurationError, CredentialsError

from .conftest import HOST, HTTP_ENDPOINT, REALTIME_ENDPOINT

REQUESTS = [
    AuthorizeRequest(operation=Operation.CONNECT),
    AuthorizeRequest(operation=Operation.SUBSCRIBE, channel="default/a"),
    AuthorizeRequest(operation=Operation.PUBLISH, channel="default/a", events=('{"a":1}',)),
    AuthorizeRequest(operation=Operation.UNSUBSCRIBE),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r.operation.value)
async def test_token_map_for_each_operation(request_: AuthorizeRequest) -> None:
    """Every operation gets exactly Authorization and host."""
    result = await Token(auth_token="Bearer eyJ.x.y", endpoint=HTTP_ENDPOINT).authorize(request_)
    assert result.authorization == {"Authorization": "Bearer eyJ.x.y", "host": HOST}


@pytest.mark.asyncio
async def test_token_calls_a_sync_provider_per_operation() -> None:
    """A refreshing callable is consulted for every operation."""
    tokens = iter(["t1", "t2", "t3"])
    authz = Token(auth_token=lambda: next(tokens), endpoint=REALTIME_ENDPOINT)
    seen = [(await authz.authorize(r)).authorization["Authorization"] for r in REQUESTS[:3]]
    assert seen == ["t1", "t2", "t3"]


@pytest.mark.asyncio
async def test_token_awaits_an_async_provider() -> None:
    """An ``async def`` provider is awaited."""
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return f"async-{calls}"

    authz = Token(auth_token=fetch, endpoint=HTTP_ENDPOINT)
    first = await authz.authorize(REQUESTS[0])
    second = await authz.authorize(REQUESTS[1])
    assert (first.authorization["Authorization"], second.authorization["Authorization"]) == (
        "async-1",
        "async-2",
    )


@pytest.mark.asyncio
async def test_token_awaits_an_awaitable_from_a_sync_callable() -> None:
    """A plain callable may return any awaitable, e.g. a future."""
    loop = asyncio.get_running_loop()

    def provider() -> Awaitable[str]:
        future: asyncio.Future[str] = loop.create_future()
        loop.call_soon(future.set_result, "from-future")
        return future

    result = await Token(auth_token=provider, endpoint=HTTP_ENDPOINT).authorize(REQUESTS[0])
    assert result.authorization["Authorization"] == "from-future"


@pytest.mark.asyncio
async def test_token_cancellation_reaches_an_async_provider() -> None:
    """Cancelling authorize cancels the provider's await."""
    started = asyncio.Event()
    cancelled = threading.Event()

    async def slow() -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    task = asyncio.ensure_future(Token(slow, HTTP_ENDPOINT).authorize(REQUESTS[0]))
    async with asyncio.timeout(2):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(2):
            await task
    assert cancelled.is_set()


def test_token_rejects_an_empty_token() -> None:
    """An empty token is a credentials error, raised at construction."""
    with pytest.raises(CredentialsError, match="auth_token must not be empty"):
        Token(auth_token="", endpoint=HTTP_ENDPOINT)


def test_token_rejects_a_non_callable() -> None:
    """Neither a str nor a callable is a configuration error."""
    with pytest.raises(ConfigurationError, match="str or a callable, got int"):
        Token(auth_token=42, endpoint=HTTP_ENDPOINT)  # type: ignore[arg-type]


def test_token_rejects_a_bad_endpoint() -> None:
    """A bad endpoint is a configuration error."""
    with pytest.raises(ConfigurationError, match="path must be /event"):
        Token(auth_token="t", endpoint="https://h/other")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("provider", "message"),
    [
        (lambda: "", "must not be empty"),
        (lambda: None, "must be a str, got NoneType"),
        (lambda: "a\r\nb", "line breaks"),
    ],
)
async def test_token_rejects_bad_provider_results(
    provider: Callable[[], str], message: str
) -> None:
    """A provider returning no usable token raises CredentialsError."""
    with pytest.raises(CredentialsError, match=message):
        await Token(provider, HTTP_ENDPOINT).authorize(REQUESTS[0])


@pytest.mark.asyncio
async def test_token_wraps_provider_failures() -> None:
    """A failing provider surfaces as CredentialsError with the cause chained."""

    def broken() -> str:
        raise RuntimeError("idp down")

    with pytest.raises(CredentialsError, match="idp down") as info:
        await Token(broken, HTTP_ENDPOINT).authorize(REQUESTS[0])
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.asyncio
async def test_token_passes_package_errors_through() -> None:
    """A provider raising one of our errors is not re-wrapped."""
    original = CredentialsError("refresh token expired")

    async def expired() -> str:
        raise original

    with pytest.raises(CredentialsError) as info:
        await Token(expired, HTTP_ENDPOINT).authorize(REQUESTS[0])
    assert info.value is original


def test_token_repr_hides_a_static_token() -> None:
    """A static token never shows in a repr."""
    assert "sekrit" not in repr(Token("sekrit", HTTP_ENDPOINT))
