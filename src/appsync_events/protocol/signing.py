"""The virtual request that IAM (SigV4) signs for WebSocket operations.

See docs: protocol.rst, "IAM (SigV4)".

Pure data and string building, shared by the client's IAM authorizer (which signs it with
botocore) and the emulator's IAM verifier (which rebuilds it), so that the two cannot
drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = [
    "HTML_ESCAPES",
    "SIGNING_HEADERS",
    "SIGNING_METHOD",
    "SIGNING_PATH",
    "SIGNING_SERVICE",
    "html_escape_json",
    "json_string",
    "signing_body",
]

SIGNING_METHOD: Final = "POST"
SIGNING_PATH: Final = "/event"
SIGNING_SERVICE: Final = "appsync"
SIGNING_HEADERS: Final[Mapping[str, str]] = {
    "accept": "application/json, text/javascript",
    "content-encoding": "amz-1.0",
    "content-type": "application/json; charset=UTF-8",
}
"""Headers of the virtual request besides ``host`` (the signer adds ``x-amz-*``)."""

HTML_ESCAPES: Final[Mapping[str, str]] = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "=": "\\u003d",
    "'": "\\u0027",
}
"""Gson-style HTML-safe escapes that the service is believed to apply to signed bodies.

A WebSocket publish whose events contain ``<`` or ``>`` fails the service's signature check
unless the client signed the escaped text (docs: protocol.rst, "What the verifier checks").
"""


def json_string(value: str) -> str:
    """Return ``value`` as a JSON string literal the way ``JSON.stringify`` writes it.

    ``"`` and ``\\`` and control characters are escaped; ``/`` and non-ASCII are kept.
    """
    return json.dumps(value, ensure_ascii=False)


def html_escape_json(text: str) -> str:
    """Replace ``< > & = '`` by their ``\\uXXXX`` escapes.

    Applied to JSON text this keeps it valid JSON with the same value, since those
    characters can only occur inside strings.
    """
    for char, escape in HTML_ESCAPES.items():
        text = text.replace(char, escape)
    return text


def signing_body(
    channel: str | None = None, events: Sequence[str] | None = None, *, html_escape: bool = False
) -> str:
    """Return the body that is signed for one WebSocket operation.

    Args:
        channel: ``None`` for connect; the channel **exactly as sent** otherwise.
        events: the JSON texts of a publish, exactly as sent; ``None`` for subscribe.
        html_escape: apply :func:`html_escape_json` to the result (the server-side form).

    Returns:
        ``{}``, ``{"channel":…}`` or ``{"channel":…,"events":[…]}``, compact.
    """
    if channel is None:
        body = "{}"
    elif events is None:
        body = '{"channel":' + json_string(channel) + "}"
    else:
        items = ",".join(json_string(e) for e in events)
        body = '{"channel":' + json_string(channel) + ',"events":[' + items + "]}"
    return html_escape_json(body) if html_escape else body
