"""AWS_LAMBDA mode: a Python callable stands in for the authorizer Lambda.

See docs: protocol.rst, "Lambda authorizers".

The callable (a function object, or ``"package.module:function"``) may be sync or async.
It receives the Lambda authorizer request::

    {"authorizationToken": "<token>",
     "requestContext": {"apiId", "accountId", "requestId", "operation",
                        "channelNamespaceName", "channel"},      # channel fields None on connect
     "requestHeaders": {...}}

and returns ``{"isAuthorized": bool, "handlerContext"?: {...}, "ttlOverride"?: seconds}``.
``identityValidationExpression`` is searched in the token before the call; results are cached per
(token, operation, channel) for ``authorizerResultTtlInSeconds`` or ``ttlOverride``.  A
deny, a malformed answer or an exception (logged with its traceback, never fatal) is an
``UnauthorizedException``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from appsync_events.errors import InvalidChannelError
from appsync_events.protocol.channels import parse_channel, parse_subscribe_channel

from .._logging import fingerprint
from ..config import AuthType, LambdaAuthorizerConfig, resolve_callable
from .base import AuthRequest, Identity, Operation, lambda_operation, unauthorized

__all__ = ["CACHE_SIZE", "LambdaVerifier", "resolve_callable"]

log = logging.getLogger("appsync_emulator.verify")

CACHE_SIZE: Final = 10_000
"""Cached authorizer results kept (least recently stored dropped first)."""


@dataclass(frozen=True, slots=True)
class _Cached:
    expires: float
    authorized: bool
    handler_context: Mapping[str, Any] | None


def _channel_path(request: AuthRequest) -> str | None:
    if request.operation is Operation.CONNECT or request.channel is None:
        return None
    parse = parse_subscribe_channel if request.operation is Operation.SUBSCRIBE else parse_channel
    try:
        return parse(request.channel).path
    except InvalidChannelError:
        return request.channel


class LambdaVerifier:
    """Calls the configured authorizer; identity is ``{"handlerContext": ...}``
    (docs: protocol.rst, "The identity handlers see").

    Args:
        config: the ``lambdaAuthorizerConfig``.
        api_id, account_id: for the request context.
        timeout: seconds an async authorizer may take before it counts as failed.
        on_error: receives an authorizer's exception (the shell collects it for
            ``server.check()``), besides the log.
    """

    mode = AuthType.AWS_LAMBDA

    def __init__(
        self,
        config: LambdaAuthorizerConfig,
        *,
        api_id: str,
        account_id: str,
        timeout: float = 10.0,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.config = config
        self.api_id = api_id
        self.account_id = account_id
        self.timeout = timeout
        self.on_error = on_error
        self.calls = 0
        """How many times the authorizer was actually invoked (cache misses)."""
        self._validation = (
            re.compile(config.identity_validation_expression)
            if config.identity_validation_expression
            else None
        )
        self._cache: OrderedDict[tuple[str, str, str | None], _Cached] = OrderedDict()

    def applies(self, request: AuthRequest) -> bool:
        value = request.header("authorization")
        # Any authorization that is not a SigV4 signature may be a Lambda token
        # (docs: protocol.rst, "Auth modes and where they apply").
        return isinstance(value, str) and bool(value.strip()) and not value.startswith("AWS4-")

    async def verify(self, request: AuthRequest, now: datetime) -> Identity:
        token = request.header("authorization") or ""
        # AWS documents identityValidationExpression only as "a regular expression for
        # validation of tokens before the Lambda function is called" (AppSync API
        # Reference, LambdaAuthorizerConfig), without saying whether it must match the
        # whole token.  DIVERGENCE (docs/topics/emulator-fidelity.rst, "The Lambda
        # authorizer's request"): the emulator searches the token (re.search, as
        # JavaScript's RegExp.test does), so "^tok-" accepts "tok-123"; anchor the
        # expression with ^ and $ to require a full match.
        if self._validation is not None and self._validation.search(token) is None:
            log.info("AWS_LAMBDA token rejected by identityValidationExpression")
            raise unauthorized()
        channel = _channel_path(request)
        key = (token, lambda_operation(request.operation), channel)
        t = now.timestamp()
        cached = self._cache.get(key)
        if cached is None or cached.expires <= t:
            cached = await self._invoke(request, token, channel, t)
            if cached.expires > t:
                self._store(key, cached)
        if not cached.authorized:
            raise unauthorized()
        ctx = {"handlerContext": dict(cached.handler_context or {})}
        return Identity(mode=self.mode, ctx=ctx, principal="lambda:" + fingerprint(token))

    def _store(self, key: tuple[str, str, str | None], value: _Cached) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def _event(self, request: AuthRequest, token: str, channel: str | None) -> dict[str, Any]:
        namespace = None if channel is None else channel.strip("/").split("/")[0]
        return {
            "authorizationToken": token,
            "requestContext": {
                "apiId": self.api_id,
                "accountId": self.account_id,
                "requestId": str(uuid.uuid4()),
                "operation": lambda_operation(request.operation),
                "channelNamespaceName": namespace,
                "channel": channel,
            },
            "requestHeaders": dict(request.request_headers),
        }

    async def _invoke(
        self, request: AuthRequest, token: str, channel: str | None, t: float
    ) -> _Cached:
        event = self._event(request, token, channel)
        self.calls += 1
        try:
            func = resolve_callable(self.config.authorizer, what="Lambda authorizer")
            result = func(event)
            if inspect.isawaitable(result):
                async with asyncio.timeout(self.timeout):
                    result = await result
            return self._parse(result, t)
        except Exception as exc:
            log.error("Lambda authorizer failed for %s", request.operation, exc_info=exc)
            if self.on_error is not None:
                try:
                    self.on_error(exc)
                except Exception:
                    log.exception("on_error hook failed")
            raise unauthorized() from None

    def _parse(self, result: Any, t: float) -> _Cached:
        # The messages describe the result by type and keys, never by value: a buggy
        # authorizer often returns (part of) its event, which holds the token.
        if not isinstance(result, Mapping) or not isinstance(result.get("isAuthorized"), bool):
            raise TypeError(
                "Lambda authorizer must return {'isAuthorized': bool, ...}, got "
                + _describe(result)
            )
        ttl: Any = result.get("ttlOverride", self.config.result_ttl_seconds)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 <= ttl <= 3600:
            shown = repr(ttl) if isinstance(ttl, int | float) else type(ttl).__name__
            raise TypeError(f"ttlOverride must be 0..3600 seconds, got {shown}")
        context = result.get("handlerContext")
        if context is not None and not isinstance(context, Mapping):
            raise TypeError(f"handlerContext must be an object, got {type(context).__name__}")
        return _Cached(expires=t + ttl, authorized=result["isAuthorized"], handler_context=context)


def _describe(value: Any) -> str:
    """A value's type (and a mapping's keys), without its contents."""
    if isinstance(value, Mapping):
        keys = ", ".join(repr(str(k)[:40]) for k in list(value)[:10])
        return f"{type(value).__name__} with keys [{keys}]"
    return type(value).__name__
