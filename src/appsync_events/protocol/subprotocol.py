"""The ``header-<base64url(JSON)>`` WebSocket subprotocol.

See docs: protocol.rst, "The header- subprotocol".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Final

from ..errors import RemoteProtocolError

__all__ = [
    "HEADER_PREFIX",
    "PROTOCOL_EVENTS",
    "decode_auth_subprotocol",
    "encode_auth_subprotocol",
    "find_auth_subprotocol",
    "lookup",
    "lower_keys",
]

PROTOCOL_EVENTS: Final = "aws-appsync-event-ws"
"""The subprotocol every client offers and the server selects."""
HEADER_PREFIX: Final = "header-"


def encode_auth_subprotocol(authorization: Mapping[str, str]) -> str:
    """Return ``header-`` + unpadded base64url of the compact JSON map (UTF-8)."""
    raw = json.dumps(dict(authorization), separators=(",", ":"), ensure_ascii=False)
    token = base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").replace("=", "")
    return HEADER_PREFIX + token


def decode_auth_subprotocol(value: str) -> dict[str, str]:
    """Decode a ``header-`` subprotocol into its authorization map.

    Tolerant, as docs: protocol.rst, "The header- subprotocol" asks: padding present or not,
    the standard or URL-safe alphabet, any JSON whitespace.  Keys keep their case; look them
    up with :func:`lookup`.

    Raises:
        RemoteProtocolError: not a ``header-`` value, bad base64, bad UTF-8, not a JSON
            object of strings.
    """
    if not value.startswith(HEADER_PREFIX):
        raise RemoteProtocolError(f"subprotocol does not start with {HEADER_PREFIX!r}")
    token = "".join(value[len(HEADER_PREFIX) :].split()).rstrip("=")
    token = token.replace("+", "-").replace("/", "_")
    token += "=" * (-len(token) % 4)
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise RemoteProtocolError(f"header subprotocol is not base64url: {exc}") from None
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RemoteProtocolError("header subprotocol is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"header subprotocol is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError("header subprotocol must hold a JSON object")
    for key, item in obj.items():
        if not isinstance(item, str):
            raise RemoteProtocolError(f"header subprotocol value {key!r} must be a string")
    return obj


def find_auth_subprotocol(offered: Iterable[str]) -> str | None:
    """Return the first offered ``header-`` subprotocol, in any position, or ``None``."""
    for item in offered:
        if item.startswith(HEADER_PREFIX):
            return item
    return None


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """Return ``headers`` with lower-case keys (the first spelling of a key wins)."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        out.setdefault(key.lower(), value)
    return out


def lookup(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup of ``name`` in an authorization map."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
