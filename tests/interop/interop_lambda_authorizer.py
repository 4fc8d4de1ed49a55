"""The AWS_LAMBDA authorizer the interop tests give the emulator subprocess.

Loaded by the emulator as ``interop_lambda_authorizer:authorize`` (its ``authorizerUri``), with
this directory on ``PYTHONPATH``. It accepts exactly one token and answers in the Lambda
authorizer response shape (docs: protocol.rst, "Lambda authorizers").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ALLOW_TOKEN", "authorize"]

ALLOW_TOKEN = "interop-allow-token"


def _token(request: Any) -> str | None:
    if isinstance(request, Mapping):
        value = request.get("authorizationToken")
    else:
        value = getattr(request, "authorization_token", None) or getattr(
            request, "authorizationToken", None
        )
    return value if isinstance(value, str) else None


def authorize(request: Any, context: object = None) -> dict[str, Any]:
    """Authorize ``ALLOW_TOKEN`` only; ``context`` mirrors a Lambda handler's second argument."""
    allowed = _token(request) == ALLOW_TOKEN
    return {
        "isAuthorized": allowed,
        "handlerContext": {"who": "interop"} if allowed else {},
        "ttlOverride": 0,
    }
