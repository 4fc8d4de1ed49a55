"""AWS_LAMBDA verifier: a Python callable as the authorizer, caching, failures."""

from __future__ import annotations

import asyncio
import logging
import sys
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appsync_emulator.config import ConfigError, LambdaAuthorizerConfig
from appsync_emulator.verify import AuthFailure, AuthRequest, Operation
from appsync_emulator.verify.base import UNAUTHORIZED_MESSAGE
from appsync_emulator.verify.lambda_ import LambdaVerifier, resolve_callable
from appsync_events.errors import ErrorDetail

from .auth_helpers import ws_request

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DENIED = (
    ErrorDetail(error_type="UnauthorizedException", message=UNAUTHORIZED_MESSAGE, error_code=401),
)


class Recorder:
    """An authorizer that records its events and answers from a table."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer = answer if answer is not None else {"isAuthorized": True}

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return self.answer


def make(authorizer: Any, errors: list[BaseException] | None = None, **kw: Any) -> LambdaVerifier:
    config = LambdaAuthorizerConfig(authorizer=authorizer, **kw)
    hook = errors.append if errors is not None else None
    return LambdaVerifier(
        config, api_id="api123", account_id="111122223333", timeout=0.5, on_error=hook
    )


def request(
    token: str = "tok-1", operation: Operation = Operation.SUBSCRIBE, channel: str | None = "d/a"
) -> AuthRequest:
    req = ws_request(operation, {"Authorization": token, "host": "h"}, channel=channel)
    return AuthRequest(
        operation=req.operation,
        transport=req.transport,
        auth=req.auth,
        channel=channel,
        request_headers={"user-agent": "test", "host": "h"},
        source_ip="127.0.0.1",
    )


@pytest.mark.asyncio
async def test_allow_passes_the_lambda_request_shape_and_handler_context() -> None:
    auth = Recorder({"isAuthorized": True, "handlerContext": {"role": "admin"}})
    identity = await make(auth).verify(request(), NOW)
    assert identity.ctx == {"handlerContext": {"role": "admin"}}
    (event,) = auth.events
    assert event["authorizationToken"] == "tok-1"
    context = event["requestContext"]
    assert context["apiId"] == "api123"
    assert context["accountId"] == "111122223333"
    assert context["operation"] == "EVENT_SUBSCRIBE"
    assert context["channelNamespaceName"] == "d"
    assert context["channel"] == "/d/a"
    assert isinstance(context["requestId"], str)
    assert context["requestId"]
    assert event["requestHeaders"] == {"user-agent": "test", "host": "h"}


@pytest.mark.asyncio
async def test_connect_has_no_channel_fields() -> None:
    auth = Recorder()
    await make(auth).verify(request(operation=Operation.CONNECT, channel=None), NOW)
    context = auth.events[0]["requestContext"]
    assert context["operation"] == "EVENT_CONNECT"
    assert context["channel"] is None
    assert context["channelNamespaceName"] is None


@pytest.mark.asyncio
async def test_async_authorizer_is_awaited() -> None:
    async def authorizer(event: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"isAuthorized": event["authorizationToken"] == "good"}

    v = make(authorizer)
    await v.verify(request("good"), NOW)
    with pytest.raises(AuthFailure) as info:
        await v.verify(request("bad"), NOW)
    assert info.value.errors == DENIED


@pytest.mark.asyncio
async def test_deny_is_unauthorized() -> None:
    with pytest.raises(AuthFailure) as info:
        await make(Recorder({"isAuthorized": False})).verify(request(), NOW)
    assert info.value.errors == DENIED
    assert info.value.status == 401


@pytest.mark.asyncio
async def test_raising_authorizer_is_logged_collected_and_unauthorized(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def authorizer(event: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("database down")

    errors: list[BaseException] = []
    with caplog.at_level(logging.ERROR, logger="appsync_emulator.verify"):
        with pytest.raises(AuthFailure) as info:
            await make(authorizer, errors).verify(request(), NOW)
    assert info.value.errors == DENIED
    assert [str(e) for e in errors] == ["database down"]
    assert "Lambda authorizer failed" in caplog.text
    assert "RuntimeError: database down" in caplog.text  # the traceback is logged


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "answer",
    [
        None,
        {"isAuthorized": "yes"},
        {},
        {"isAuthorized": True, "ttlOverride": -1},
        {"isAuthorized": True, "handlerContext": "nope"},
    ],
)
async def test_malformed_answers_are_unauthorized(answer: Any) -> None:
    errors: list[BaseException] = []
    with pytest.raises(AuthFailure):
        await make(lambda event: answer, errors).verify(request(), NOW)
    assert len(errors) == 1
    assert isinstance(errors[0], TypeError)


@pytest.mark.asyncio
async def test_slow_async_authorizer_times_out() -> None:
    async def authorizer(event: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    errors: list[BaseException] = []
    with pytest.raises(AuthFailure):
        await make(authorizer, errors).verify(request(), NOW)
    assert isinstance(errors[0], TimeoutError)


@pytest.mark.asyncio
async def test_identity_validation_expression_is_checked_before_the_call() -> None:
    auth = Recorder()
    v = make(auth, identity_validation_expression=r"tok-\d+")
    with pytest.raises(AuthFailure) as info:
        await v.verify(request("other"), NOW)
    assert info.value.errors == DENIED
    assert auth.events == []
    await v.verify(request("tok-42"), NOW)
    assert len(auth.events) == 1


@pytest.mark.asyncio
async def test_results_are_cached_per_token_operation_and_channel() -> None:
    auth = Recorder()
    v = make(auth, result_ttl_seconds=60)
    await v.verify(request(), NOW)
    await v.verify(request(), NOW + timedelta(seconds=59))
    assert v.calls == 1
    await v.verify(request(channel="d/b"), NOW)
    await v.verify(request(operation=Operation.PUBLISH), NOW)
    await v.verify(request("tok-2"), NOW)
    assert v.calls == 4
    await v.verify(request(), NOW + timedelta(seconds=60))  # expired entry
    assert v.calls == 5


@pytest.mark.asyncio
async def test_no_caching_by_default_and_deny_is_cached_too() -> None:
    auth = Recorder()
    v = make(auth)
    await v.verify(request(), NOW)
    await v.verify(request(), NOW)
    assert v.calls == 2
    deny = make(Recorder({"isAuthorized": False, "ttlOverride": 30}))
    for _ in range(2):
        with pytest.raises(AuthFailure):
            await deny.verify(request(), NOW)
    assert deny.calls == 1


@pytest.mark.asyncio
async def test_ttl_override_replaces_the_configured_ttl() -> None:
    v = make(Recorder({"isAuthorized": True, "ttlOverride": 5}), result_ttl_seconds=600)
    await v.verify(request(), NOW)
    await v.verify(request(), NOW + timedelta(seconds=4))
    await v.verify(request(), NOW + timedelta(seconds=5))
    assert v.calls == 2


@pytest.fixture
def authorizer_module() -> Iterator[str]:
    module = types.ModuleType("emulator_test_authorizers")
    module.allow_admins = lambda event: {  # type: ignore[attr-defined]
        "isAuthorized": event["authorizationToken"] == "admin"
    }
    sys.modules[module.__name__] = module
    yield module.__name__
    del sys.modules[module.__name__]


@pytest.mark.asyncio
async def test_module_function_reference(authorizer_module: str) -> None:
    v = make(f"{authorizer_module}:allow_admins")
    await v.verify(request("admin"), NOW)
    with pytest.raises(AuthFailure):
        await v.verify(request("guest"), NOW)


@pytest.mark.asyncio
async def test_unimportable_reference_is_reported_and_unauthorized() -> None:
    errors: list[BaseException] = []
    with pytest.raises(AuthFailure):
        await make("no_such_module_xyz:f", errors).verify(request(), NOW)
    assert isinstance(errors[0], ConfigError)


def test_resolve_callable_errors(authorizer_module: str) -> None:
    with pytest.raises(ConfigError, match=r"expected 'package\.module:function'"):
        resolve_callable("nocolon")
    with pytest.raises(ConfigError, match="has no 'missing'"):
        resolve_callable(f"{authorizer_module}:missing")
    with pytest.raises(ConfigError, match="cannot import"):
        resolve_callable("no_such_module_xyz:f")


def test_applies_to_non_sigv4_authorization() -> None:
    v = make(Recorder())
    assert v.applies(request("opaque"))
    assert v.applies(request("eyJ.a.b"))
    assert not v.applies(request("AWS4-HMAC-SHA256 Credential=x"))
    assert not v.applies(ws_request(Operation.CONNECT, {"x-api-key": "k"}))
