"""Loggers of the emulator, one per component, and the redaction of secrets.

* ``appsync_emulator.server``: start, stop, internal errors;
* ``appsync_emulator.http``: HTTP publish requests;
* ``appsync_emulator.ws``: WebSocket connections, every frame at DEBUG (``<`` received,
  ``>`` sent, ``=`` state);
* ``appsync_emulator.auth``: authorization decisions;
* ``appsync_emulator.faults``: injected faults and what they did.

Nothing secret is ever logged, whole or in part, at any level: ``x-api-key``,
``Authorization``, ``X-Amz-Security-Token`` (and cookies) are redacted wherever they appear
and whatever their type (a list, an object), in any letter case, including inside the
``header-`` subprotocol and an ``authorization`` map at any depth of a frame (where only
the known public headers, ``host``, ``x-amz-date``..., are shown).  Frames that are not JSON
are logged by size only.  Principals are named by :func:`fingerprint`, never by characters
of a key or token.
"""

from __future__ import annotations

import hashlib
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
    "PUBLIC_AUTH_HEADERS",
    "REDACTED",
    "SECRET_HEADERS",
    "fingerprint",
    "redact_auth_map",
    "redact_frame",
    "redact_headers",
    "redact_json",
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

PUBLIC_AUTH_HEADERS: Final = frozenset(
    {
        "host",
        "x-amz-date",
        "x-amz-content-sha256",
        "x-amz-user-agent",
        "user-agent",
        "accept",
        "content-type",
        "content-encoding",
    }
)
"""The only keys of an ``authorization`` map whose values are logged (lower-case)."""

REDACTED: Final = "<redacted>"

MAX_LOGGED_CHARS: Final = 500


def truncate(text: str | bytes, limit: int = MAX_LOGGED_CHARS) -> str:
    """Return ``text`` cut to ``limit`` characters with a note of the full length."""
    if isinstance(text, bytes | bytearray):
        shown = repr(bytes(text[:limit]))
        return shown if len(text) <= limit else f"{shown}… ({len(text)} bytes)"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


def fingerprint(value: str) -> str:
    """A short, non-reversible name for a secret: the first 8 hex digits of its SHA-256.

    Logs name an API key or a Lambda token by this, never by any of its characters.
    """
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def redact_value(value: object) -> str:
    """What a secret value is logged as: nothing of it, whatever its type."""
    return REDACTED


def redact_auth_map(auth: Mapping[str, Any]) -> dict[str, Any]:
    """An ``authorization`` map with only the known non-secret headers shown: anything
    else (a secret under an unexpected spelling included) is hidden."""
    return {
        key: value if key.lower() in PUBLIC_AUTH_HEADERS and isinstance(value, str) else REDACTED
        for key, value in auth.items()
    }


def redact_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a header or auth map with secret values redacted (any type)."""
    out: dict[str, Any] = {}
    for key, value in headers.items():
        lowered = str(key).lower()
        if lowered in SECRET_HEADERS:
            out[key] = REDACTED
        elif lowered == "sec-websocket-protocol" and isinstance(value, str):
            out[key] = ", ".join(redact_subprotocols(v.strip() for v in value.split(",")))
        else:
            out[key] = value
    return out


def redact_subprotocols(offered: Iterable[str]) -> list[str]:
    """Hide the payload of ``header-…`` subprotocols (they carry credentials)."""
    return ["header-<redacted>" if p.startswith("header-") else p for p in offered]


def redact_json(value: Any) -> Any:
    """Walk a decoded frame: an ``authorization`` object (any case, any depth) keeps only
    its public headers; any other secret-named key loses its value."""
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        lowered = key.lower()
        if lowered == "authorization" and isinstance(item, dict):
            out[key] = redact_auth_map(item)
        elif lowered in SECRET_HEADERS:
            out[key] = REDACTED
        else:
            out[key] = redact_json(item)
    return out


def redact_frame(text: str | bytes) -> str:
    """Return a frame for logging: secrets hidden, truncated.

    A frame that is not JSON is never shown (it may hold a credential that cannot be
    found without parsing it): only its size and where parsing failed.  A binary frame is
    shown as its text when it is JSON, else by its size.
    """
    kind = "frame"
    if isinstance(text, bytes | bytearray):
        kind = "binary frame"
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return f"<{kind}: {len(text)} bytes, not UTF-8>"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"<{kind}: {len(text)} chars, not JSON ({exc.msg} at char {exc.pos})>"
    except (ValueError, RecursionError):
        return f"<{kind}: {len(text)} chars, not JSON>"
    shown = json.dumps(redact_json(obj), separators=(",", ":"), ensure_ascii=False)
    return truncate(shown if kind == "frame" else f"binary {shown}")


class ConnectionLogger:
    """A logger that prefixes every line with the connection id, as ``[c3] …``.

    One per connection, so it is small: two slots, no ``LoggerAdapter`` (whose instance
    dictionary and ``extra`` mapping cost more than the rest of an idle connection's
    bookkeeping).  Records name the caller, as the logger's own methods would.

    Args:
        logger: the logger to write to.
        conn: the connection id.
    """

    __slots__ = ("conn", "logger")

    def __init__(self, logger: logging.Logger, conn: str) -> None:
        self.logger = logger
        self.conn = conn

    def isEnabledFor(self, level: int) -> bool:
        """Whether a record of ``level`` would be processed."""
        return self.logger.isEnabledFor(level)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` at DEBUG."""
        self._log(logging.DEBUG, msg, args, kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` at INFO."""
        self._log(logging.INFO, msg, args, kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` at WARNING."""
        self._log(logging.WARNING, msg, args, kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` at ERROR."""
        self._log(logging.ERROR, msg, args, kwargs)

    def _log(
        self, level: int, msg: str, args: tuple[Any, ...], kwargs: MutableMapping[str, Any]
    ) -> None:
        logger = self.logger
        if logger.isEnabledFor(level):
            kwargs.setdefault("stacklevel", 1)
            kwargs["stacklevel"] += 2  # this method and its caller: name the caller's caller
            logger.log(level, f"[{self.conn}] {msg}", *args, **kwargs)
