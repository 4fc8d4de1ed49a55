"""Loggers of the emulator, one per component, and the redaction of secrets.

* ``appsync_emulator.server``: start, stop, internal errors;
* ``appsync_emulator.http``: HTTP publish requests;
* ``appsync_emulator.ws``: WebSocket connections, every frame at DEBUG (``<`` received,
  ``>`` sent, ``=`` state);
* ``appsync_emulator.auth``: authorization decisions;
* ``appsync_emulator.faults``: injected faults and what they did.

Nothing secret is ever logged: ``x-api-key``, ``Authorization``, ``X-Amz-Security-Token``
(and cookies) are redacted wherever they appear, including inside the ``header-``
subprotocol and the ``authorization`` map of a frame.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Final

__all__ = [
    "LOG_AUTH",
    "LOG_FAULTS",
    "LOG_HTTP",
    "LOG_SERVER",
    "LOG_WS",
    "ConnectionLogger",
    "SECRET_HEADERS",
    "redact_frame",
    "redact_headers",
    "redact_subprotocols",
    "redact_value",
    "truncate",
]

LOG_SERVER: Final = logging.getLogger("appsync_emulator.server")
LOG_HTTP: Final = logging.getLogger("appsync_emulator.http")
LOG_WS: Final = logging.getLogger("appsync_emulator.ws")
LOG_AUTH: Final = logging.getLogger("appsync_emulator.auth")
LOG_FAULTS: Final = logging.getLogger("appsync_emulator.faults")

SECRET_HEADERS: Final = frozenset({"x-api-key", "authorization", "x-amz-security-token", "cookie"})
"""Header / auth-map keys whose values are never logged (compared lower-case)."""

MAX_LOGGED_CHARS: Final = 500


def truncate(text: str | bytes, limit: int = MAX_LOGGED_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters with a note of the full length."""
    if isinstance(text, bytes | bytearray):
        shown = repr(bytes(text[:limit]))
        return shown if len(text) <= limit else f"{shown}… ({len(text)} bytes)"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


def redact_value(value: str) -> str:
    """Keep a short prefix so keys stay distinguishable in logs; hide the rest."""
    return f"{value[:4]}…<redacted>" if len(value) > 8 else "<redacted>"


def redact_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a header or auth map with secret values redacted."""
    out: dict[str, Any] = {}
    for key, value in headers.items():
        if key.lower() in SECRET_HEADERS and isinstance(value, str):
            out[key] = redact_value(value)
        elif key.lower() == "sec-websocket-protocol" and isinstance(value, str):
            out[key] = ", ".join(redact_subprotocols(v.strip() for v in value.split(",")))
        else:
            out[key] = value
    return out


def redact_subprotocols(offered: Iterable[str]) -> list[str]:
    """Hide the payload of ``header-…`` subprotocols (they carry credentials)."""
    return ["header-<redacted>" if p.startswith("header-") else p for p in offered]


def redact_frame(text: str | bytes) -> str:
    """Return a frame for logging: secrets in its ``authorization`` map hidden, truncated."""
    if isinstance(text, bytes | bytearray):
        return truncate(text)
    if '"authorization"' not in text:
        return truncate(text)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return truncate(text)
    if isinstance(obj, dict) and isinstance(obj.get("authorization"), dict):
        obj["authorization"] = redact_headers(obj["authorization"])
        payload = obj.get("payload")
        if isinstance(payload, dict):
            obj["payload"] = "<redacted>"
        return truncate(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
    return truncate(text)


class ConnectionLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the connection id, as ``[c3] …``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = self.extra or {}
        return f"[{extra.get('conn', '?')}] {msg}", kwargs
