"""The emulator's web console: ``/console`` on the emulator's own listener.

Theory of operation
-------------------

The page (``static/``: plain HTML, CSS and JavaScript, no build step, nothing fetched from
elsewhere) opens one WebSocket of its own, ``/console/events``, and acts through small JSON
endpoints under ``/console/api/``.  None of it is AppSync traffic: these routes are matched
before the emulator's catch-all, so the recorder never sees a console request, and a console
WebSocket is not an AppSync connection (no fault, no fan-out, no record).

The data comes from the :class:`~appsync_emulator.recorder.Recorder` through one *feed* task
per console, started with the first page and ended with the last:

* it waits (on the recorder's own waits, no polling) until the recorder changes, builds one
  update (the open connections and their subscriptions, the subscriptions per channel, the
  publishes and error answers since the last update), and sends it to every page; updates are
  coalesced to at most ten a second, so a busy emulator costs the console, not the reverse;
* each page has a bounded queue (:data:`CLIENT_QUEUE` messages) drained by its own writer
  task; a page whose queue is full is dropped (closed with 1008, or aborted if it does not
  read its close), never waited for;
* a page may *watch* a channel pattern: the events each publish broadcast to matching
  channels are sent to it as a subscriber to that pattern would receive them.

Publishes from the page are real publishes: they go through authorization (with credentials
the emulator holds for the chosen mode), the fault plan, the handlers and the fan-out, and
are recorded like any HTTP publish (the console labels them as its own in the log).

Security: the console is served only on the emulator's listener, so it is reachable where
the emulator is (``127.0.0.1`` by default).  When the emulator binds any non-loopback
address, every console request needs an API key: ``?key=API_KEY`` on ``/console`` once
(answered with a session cookie and a redirect that drops the key from the address), or an
``x-api-key`` header.  Requests that change something must be ``application/json`` and
same-origin; every field is validated and a bad one gets a 400 with a specific message.

Layout: this module holds :class:`Console` and its routes; :mod:`.access` the access checks,
:mod:`.feed` the live feed and its pages, :mod:`.actions` the publish and fault inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from importlib import resources
from typing import TYPE_CHECKING, Final

from aiohttp import WSMsgType, web

from appsync_events.protocol import codec

from .._http import error_response, request_headers
from ..catalogue import Rejection
from ..recorder import ErrorRecord, PublishRecord
from ..verify import AuthRequest, Operation, Transport

# The ``NAME as NAME`` imports are settings this module defined before the split: they stay
# importable from here.
from .access import (
    _SECURITY_HEADERS,
    COOKIE,
    MAX_BODY as MAX_BODY,
    MAX_SESSIONS as MAX_SESSIONS,
    ConsoleAccess,
    _BadInput,
    _json_error,
    is_loopback,
)
from .actions import (
    FAULT_KINDS as FAULT_KINDS,
    MAX_DELAY as MAX_DELAY,
    MAX_TOKEN as MAX_TOKEN,
    ConsoleActions,
    _fault_json,
)
from .feed import (
    CLIENT_QUEUE,
    DROP_CLOSE_TIMEOUT,
    EVENT_PREVIEW as EVENT_PREVIEW,
    FEED_IDLE as FEED_IDLE,
    LOG_BATCH,
    MAX_CLOSED as MAX_CLOSED,
    MAX_LISTED,
    MAX_MESSAGE,
    UPDATE_INTERVAL as UPDATE_INTERVAL,
    ConsoleFeed,
    _Page,
)

if TYPE_CHECKING:
    from ..server import Emulator

__all__ = [
    "CLIENT_QUEUE",
    "CONSOLE_PATH",
    "Console",
    "MAX_CLIENTS",
    "is_loopback",
]

CONSOLE_PATH: Final = "/console"
MAX_CLIENTS: Final = 16
"""Console pages served at once; one more is answered 503."""
STATIC_FILES: Final = {
    "console.js": "text/javascript",
    "console.css": "text/css",
}


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text("utf-8")


class Console(ConsoleAccess, ConsoleFeed, ConsoleActions):
    """The web console of one :class:`~appsync_emulator.server.Emulator`.

    Runs on the emulator's event loop.  :attr:`enabled` and :attr:`bind_host` are set by the
    host before the application is built.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.enabled = True
        """Whether :meth:`routes` serves the console (``--no-console`` turns it off)."""
        self.bind_host = "127.0.0.1"
        """Where the emulator listens; a non-loopback address makes the console ask for a key."""
        self._pages: set[_Page] = set()
        self._feed: asyncio.Task[None] | None = None
        self._sessions: OrderedDict[str, None] = OrderedDict()
        self._last_published: PublishRecord | None = None
        self._last_error: ErrorRecord | None = None
        self._last_state = ""
        self._own: OrderedDict[str, None] = OrderedDict()
        """First event identifiers of the publishes made from the console (bounded)."""

    # --- routes -----------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The console's routes (none when disabled); each handles its own methods."""
        if not self.enabled:
            return []
        return [
            web.route("*", CONSOLE_PATH, self._index),
            web.route("*", CONSOLE_PATH + "/", self._index),
            web.route("*", CONSOLE_PATH + "/static/{name}", self._static),
            web.route("*", CONSOLE_PATH + "/events", self._events),
            web.route("*", CONSOLE_PATH + "/api/publish", self._publish),
            web.route("*", CONSOLE_PATH + "/api/faults", self._faults),
            web.route("*", CONSOLE_PATH + "/{tail:.*}", self._unknown),
        ]

    async def shutdown(self, app: web.Application) -> None:
        """Close every page and stop the feed (the application's ``on_shutdown`` hook)."""
        for page in list(self._pages):
            page.drop(1001, "server shutdown")
        closers = [p.closer for p in self._pages if p.closer is not None]
        if closers:
            await asyncio.wait(closers, timeout=DROP_CLOSE_TIMEOUT * 2)
        if self._feed is not None:
            self._feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed

    # --- page and static files --------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _json_error(405, f"{request.method} is not allowed here; use GET")
        key = request.query.get("key")
        if key is not None and self.needs_key:
            if not self._key_ok(key):
                return _json_error(401, "that is not a valid API key of this emulator")
            response = web.Response(
                status=303, headers={**_SECURITY_HEADERS, "Location": CONSOLE_PATH}
            )
            response.set_cookie(
                COOKIE,
                self._new_session(),
                path=CONSOLE_PATH,
                httponly=True,
                samesite="Strict",
                secure=request.secure,
            )
            return response
        refused = self._refuse(request, json_body=False)
        if refused is not None:
            return refused
        return web.Response(
            text=_static("index.html"), content_type="text/html", headers=_SECURITY_HEADERS
        )

    async def _static(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _json_error(405, f"{request.method} is not allowed here; use GET")
        refused = self._refuse(request, json_body=False)
        if refused is not None:
            return refused
        name = request.match_info["name"]
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            return _json_error(404, "no such console file")
        return web.Response(
            text=_static(name), content_type=content_type, headers=_SECURITY_HEADERS
        )

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        return _json_error(404, f"the console has no {request.path}")

    # --- the feed -----------------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if request.method != "GET":
            return _json_error(405, f"{request.method} is not allowed here; use GET")
        refused = self._refuse(request, json_body=False)
        if refused is not None:
            return refused
        if len(self._pages) >= MAX_CLIENTS:
            return _json_error(503, f"at most {MAX_CLIENTS} console pages at once")
        if self.emulator.closing.is_set():
            return _json_error(503, "the emulator is shutting down")
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        page = _Page(request, ws)
        self._pages.add(page)
        page.send(self._hello())
        page.send(self._state_message(force=True))
        page.send(self._message("log", entries=self._recent_log()))
        page.writer = asyncio.create_task(page.write(), name="console-writer")
        if self._feed is None or self._feed.done():
            self._feed = asyncio.create_task(self._run_feed(), name="console-feed")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_page_message(page, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
                else:
                    page.send(self._message("error", message="send JSON text messages"))
        finally:
            self._pages.discard(page)
            if page.writer is not None:
                page.writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await page.writer
            if page.closer is not None:
                await page.closer
        return ws

    # --- publish ------------------------------------------------------------------------------

    async def _publish(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _json_error(405, f"{request.method} is not allowed here; use POST")
        refused = self._refuse(request, json_body=True)
        if refused is not None:
            return refused
        try:
            data = await self._read_json(request)
            channel, events, body, auth = self._publish_request(request, data)
        except _BadInput as exc:
            return _json_error(400, str(exc))
        operations = self.emulator.operations
        headers = request_headers(request)
        auth_request = AuthRequest(
            operation=Operation.PUBLISH,
            transport=Transport.HTTP,
            auth=auth,
            channel=channel.path,
            events=events,
            http_body=body,
            request_headers=headers,
            source_ip=request.remote,
        )
        try:
            published = await operations.publish(
                channel, events, auth_request, headers, transport="http"
            )
        except Rejection as exc:
            # Recorded like any refused publish: the log shows it as an error answer.
            answer = error_response(operations.recorder, exc.status, exc.errors)
            return web.Response(
                status=200,
                text=json.dumps({"status": exc.status, "answer": json.loads(answer.text or "{}")}),
                content_type="application/json",
                headers=_SECURITY_HEADERS,
            )
        if published.identifiers:
            self._own[published.identifiers[0]] = None
            while len(self._own) > LOG_BATCH * 5:
                self._own.popitem(last=False)
        operations.deliver(channel, events, published, transport="http")
        outcome = published.outcome
        answer_text = codec.encode_publish_result(outcome.successful, outcome.failed)
        return web.Response(
            text=json.dumps({"status": 200, "answer": json.loads(answer_text)}),
            content_type="application/json",
            headers=_SECURITY_HEADERS,
        )

    # --- faults -------------------------------------------------------------------------------

    async def _faults(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            refused = self._refuse(request, json_body=False)
            if refused is not None:
                return refused
            return self._faults_answer()
        if request.method != "POST":
            return _json_error(405, f"{request.method} is not allowed here; use GET or POST")
        refused = self._refuse(request, json_body=True)
        if refused is not None:
            return refused
        try:
            data = await self._read_json(request)
            message = self._fault_action(data)
        except _BadInput as exc:
            return _json_error(400, str(exc))
        self._broadcast_state()
        return self._faults_answer(message)

    def _faults_answer(self, message: str | None = None) -> web.Response:
        faults = [_fault_json(*f) for f in self.emulator.plan.faults()][:MAX_LISTED]
        return web.json_response({"faults": faults, "message": message}, headers=_SECURITY_HEADERS)
