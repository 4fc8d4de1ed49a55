"""Who may use the console: the loopback rule, the API key, the session cookie and the origin.

On a loopback address every request may go on.  On any other address a request needs an API
key of the emulator (the ``x-api-key`` header) or a session cookie the console handed out in
exchange for ``?key=API_KEY`` on ``/console``.  Requests that change something must be
same-origin ``application/json``; their bodies are read with a size limit.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from aiohttp import web

if TYPE_CHECKING:
    from ..server import Emulator

__all__ = [
    "COOKIE",
    "ConsoleAccess",
    "MAX_BODY",
    "MAX_SESSIONS",
    "is_loopback",
]

MAX_BODY: Final = 64 * 1024
"""Largest JSON body a console endpoint reads."""
MAX_SESSIONS: Final = 64
"""Console sessions remembered (oldest forgotten first)."""
COOKIE: Final = "appsync_console"
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _BadInput(ValueError):
    """A console request's field is invalid (answered 400 with this message)."""


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the emulator on this machine (``127.0.0.1``, ``::1``,
    ``localhost``); ``0.0.0.0``, ``::``, ``""`` and any other address are not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=_SECURITY_HEADERS)


class ConsoleAccess:
    """The console's access checks (a mixin of :class:`~appsync_emulator.console.Console`)."""

    emulator: Emulator
    bind_host: str
    _sessions: OrderedDict[str, None]

    @property
    def needs_key(self) -> bool:
        return not is_loopback(self.bind_host)

    def _key_ok(self, given: str | None) -> bool:
        if not given or len(given) > 512:
            return False
        now = datetime.now(UTC)
        found = False
        for key in self.emulator.config.api_keys:
            # Compare every key, in constant time, so the answer's timing tells nothing.
            given_bytes = given.encode("utf-8", "replace")
            if hmac.compare_digest(key.key.encode(), given_bytes) and key.valid_at(now):
                found = True
        return found

    def _allowed(self, request: web.Request) -> bool:
        if not self.needs_key:
            return True
        if self._key_ok(request.headers.get("x-api-key")):
            return True
        session = request.cookies.get(COOKIE)
        return session is not None and session in self._sessions

    def _new_session(self) -> str:
        token = secrets.token_urlsafe(32)
        self._sessions[token] = None
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return token

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser's cross-site request (browsers always send it)
        return urlsplit(origin).netloc.lower() == request.host.lower()

    def _refuse(self, request: web.Request, *, json_body: bool) -> web.Response | None:
        """The answer that refuses ``request``, or ``None`` when it may go on."""
        if not self._allowed(request):
            return _json_error(
                401,
                "the console needs the API key on this address: open /console?key=API_KEY "
                "once, or send an x-api-key header",
            )
        if not self._same_origin(request):
            return _json_error(403, "cross-origin requests to the console are refused")
        if json_body and request.content_type != "application/json":
            return _json_error(415, "send the request body as application/json")
        return None

    async def _read_json(self, request: web.Request) -> dict[str, Any]:
        size = request.content_length
        if size is not None and size > MAX_BODY:
            raise _BadInput(f"the body is larger than {MAX_BODY} bytes")
        chunks: list[bytes] = []
        total = 0
        while chunk := await request.content.read(MAX_BODY + 1 - total):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_BODY:
                raise _BadInput(f"the body is larger than {MAX_BODY} bytes")
        body = b"".join(chunks)
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _BadInput("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _BadInput("the body must be a JSON object")
        return data
