"""A Lambda authorizer for the emulator: a plain Python function (it may be async)."""

from __future__ import annotations

from typing import Any


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    """Accept the token "tok-123" and tell handlers who the caller is."""
    token = event["authorizationToken"]
    return {
        "isAuthorized": token == "tok-123",
        "handlerContext": {"role": "admin"},
        "ttlOverride": 60,
    }
