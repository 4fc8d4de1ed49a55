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
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import math
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from botocore.credentials import Credentials

from appsync_events.authorizer.iam import sign_request
from appsync_events.errors import InvalidChannelError
from appsync_events.protocol import codec
from appsync_events.protocol.channels import (
    Channel,
    matches,
    parse_channel,
    parse_subscribe_channel,
)

from .._http import error_response, request_headers
from .._logging import LOG_SERVER
from ..catalogue import Rejection
from ..config import AuthType
from ..faults import CloseConnection, DelayAck, DropKeepAlives, Fault, Stall, Target
from ..recorder import ErrorRecord, PublishRecord, Recorder, RecorderAssertionError
from ..validation import check_publish
from ..verify import AuthRequest, Identity, Operation, Transport
from ..verify.api_key import api_key_principal

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
CLIENT_QUEUE: Final = 64
"""Messages waiting for one page; a page that falls this far behind is dropped."""
UPDATE_INTERVAL: Final = 0.1
"""Least seconds between two feed updates (bursts are coalesced)."""
FEED_IDLE: Final = 5.0
"""Seconds the feed waits for a change before checking that pages remain."""
DROP_CLOSE_TIMEOUT: Final = 1.0
"""Seconds a dropped page has to take its close frame before its TCP connection is aborted."""
MAX_BODY: Final = 64 * 1024
"""Largest JSON body a console endpoint reads."""
MAX_MESSAGE: Final = 4096
"""Largest message a page may send on the feed WebSocket."""
MAX_LISTED: Final = 500
"""Open connections (and subscriptions) listed in one update; the count is always exact."""
MAX_CLOSED: Final = 25
"""Recently closed connections listed."""
LOG_BATCH: Final = 200
"""Log entries sent in one update (the newest, when more happened)."""
EVENT_PREVIEW: Final = 2000
"""Characters of one event shown in the log."""
MAX_TOKEN: Final = 8192
"""Longest authorization token accepted from the publish form."""
MAX_DELAY: Final = 300.0
"""Longest ``DelayAck`` the page may ask for, in seconds."""
MAX_SESSIONS: Final = 64
"""Console sessions remembered (oldest forgotten first)."""
COOKIE: Final = "appsync_console"
STATIC_FILES: Final = {
    "console.js": "text/javascript",
    "console.css": "text/css",
}
_CONN_ID: Final = re.compile(r"c[0-9]{1,12}")
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
FAULT_KINDS: Final = {
    "drop_keepalives": "DropKeepAlives: no ka frames",
    "delay_acks": "DelayAck: connection_ack sent late",
    "stall": "Stall: the connection neither reads nor sends",
    "close": "CloseConnection: close with a code (one-shot)",
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


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text("utf-8")


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=_SECURITY_HEADERS)


def _preview(text: str) -> str:
    return text if len(text) <= EVENT_PREVIEW else text[:EVENT_PREVIEW] + "…"


def _describe_target(target: Target) -> str:
    if target is None:
        return "all"
    return target if isinstance(target, str) else "a predicate"


def _fault_json(key: int, fault: Fault, target: Target) -> dict[str, Any]:
    return {"key": key, "fault": repr(fault), "target": _describe_target(target)}


class _Page:
    """One console page: its WebSocket, bounded queue, writer task and watched pattern."""

    __slots__ = ("closer", "dropped", "queue", "request", "watch", "writer", "ws")

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(CLIENT_QUEUE)
        self.writer: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None
        self.watch: Channel | None = None
        self.dropped = False

    def send(self, message: str) -> bool:
        """Queue ``message``; ``False`` if the page is too far behind (then drop it)."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    async def write(self) -> None:
        while True:
            message = await self.queue.get()
            await self.ws.send_str(message)

    def drop(self, code: int, reason: str) -> None:
        """Stop writing and close the page's socket (aborted if the close cannot go out)."""
        if self.dropped:
            return
        self.dropped = True
        if self.writer is not None:
            self.writer.cancel()
        self.closer = asyncio.create_task(self._close(code, reason), name="console-close")

    async def _close(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(DROP_CLOSE_TIMEOUT):
                await self.ws.close(code=code, message=reason.encode())
        except (TimeoutError, ConnectionError):
            transport = self.request.transport
            if transport is not None:
                transport.abort()


class Console:
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

    # --- access -----------------------------------------------------------------------------

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

    def _on_page_message(self, page: _Page, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            page.send(self._message("error", message="a message must be JSON"))
            return
        if not isinstance(data, dict) or data.get("type") != "watch":
            page.send(self._message("error", message='the only message is {"type": "watch"}'))
            return
        pattern = data.get("pattern")
        if pattern is None or pattern == "":
            page.watch = None
            page.send(self._message("watching", pattern=None))
            return
        if not isinstance(pattern, str) or len(pattern) > 1024:
            page.send(self._message("error", message="pattern must be a channel pattern"))
            return
        try:
            channel = parse_subscribe_channel(pattern)
        except InvalidChannelError as exc:
            page.send(self._message("error", message=f"pattern: {exc}"))
            return
        if self.emulator.config.namespace(channel.namespace) is None:
            page.send(self._message("error", message=f"no namespace {channel.namespace!r}"))
            return
        page.watch = channel
        page.send(self._message("watching", pattern=channel.path))

    async def _run_feed(self) -> None:
        recorder = self.emulator.recorder
        seen = -1
        while self._pages:
            try:
                seen = await recorder.wait_for(_changed_since(seen), timeout=FEED_IDLE)
            except RecorderAssertionError:
                continue  # idle: look again whether any page remains
            try:
                self._update()
            except Exception as exc:  # a console bug must not end the feed silently
                LOG_SERVER.error("the console feed failed", exc_info=exc)
                self.emulator.record_exception(exc)
            await asyncio.sleep(UPDATE_INTERVAL)  # coalesce bursts

    def _broadcast(self, message: str) -> None:
        for page in list(self._pages):
            if not page.send(message):
                LOG_SERVER.warning("dropping a console page that does not keep up")
                page.drop(1008, "console page too slow")

    def _update(self) -> None:
        state = self._state_message(force=False)
        if state:
            self._broadcast(state)
        publishes, errors = self._new_records()
        if publishes or errors:
            entries = [self._publish_entry(p) for p in publishes]
            entries += [self._error_entry(e) for e in errors]
            entries.sort(key=lambda e: e["time"])
            self._broadcast(self._message("log", entries=entries[-LOG_BATCH:]))
        watching = [p for p in self._pages if p.watch is not None]
        if watching and publishes:
            self._deliver(watching, publishes)

    def _deliver(self, pages: list[_Page], publishes: list[PublishRecord]) -> None:
        for record in publishes:
            if not record.broadcast:
                continue
            try:
                channel = parse_channel(record.channel)
            except InvalidChannelError:
                continue
            for page in pages:
                assert page.watch is not None
                if matches(page.watch, channel):
                    message = self._message(
                        "data",
                        pattern=page.watch.path,
                        channel=record.channel,
                        events=[_preview(t) for t in record.broadcast],
                        time=record.time,
                    )
                    if not page.send(message):
                        page.drop(1008, "console page too slow")

    def _new_records(self) -> tuple[list[PublishRecord], list[ErrorRecord]]:
        recorder = self.emulator.recorder
        published = _after(recorder.published, self._last_published)
        errors = _after(recorder.errors, self._last_error)
        if published:
            self._last_published = published[-1]
        if errors:
            self._last_error = errors[-1]
        return published[-LOG_BATCH:], errors[-LOG_BATCH:]

    def _recent_log(self) -> list[dict[str, Any]]:
        recorder = self.emulator.recorder
        entries = [self._publish_entry(p) for p in recorder.published[-LOG_BATCH:]]
        entries += [self._error_entry(e) for e in recorder.errors[-LOG_BATCH:]]
        entries.sort(key=lambda e: e["time"])
        return entries[-LOG_BATCH:]

    # --- messages -----------------------------------------------------------------------------

    @staticmethod
    def _message(kind: str, **fields: Any) -> str:
        return json.dumps({"type": kind, **fields}, ensure_ascii=False)

    def _hello(self) -> str:
        config = self.emulator.config
        return self._message(
            "hello",
            auth_modes=[str(m) for m in config.auth_providers],
            namespaces=[ns.name for ns in config.namespaces],
            fault_kinds=FAULT_KINDS,
            max_events=config.limits.max_events_per_publish,
        )

    def _state_message(self, *, force: bool) -> str:
        """The connections, channels and faults; ``""`` when unchanged since the last one."""
        recorder = self.emulator.recorder
        subs_by_conn: dict[str, list[dict[str, str]]] = {}
        channels: dict[str, list[dict[str, str]]] = {}
        active = recorder.active_subscriptions
        for sub in active[:MAX_LISTED]:
            item = {"connection": sub.connection_id, "id": sub.id, "pattern": sub.pattern}
            subs_by_conn.setdefault(sub.connection_id, []).append(item)
            channels.setdefault(sub.pattern, []).append(item)
        connections = recorder.connections
        open_conns = [c for c in connections if c.open]
        closed = [c for c in connections if not c.open][-MAX_CLOSED:]
        listed = []
        for info in [*open_conns[-MAX_LISTED:], *closed]:
            listed.append(
                {
                    "id": info.id,
                    "open": info.open,
                    "auth_mode": str(info.auth_mode) if info.auth_mode else None,
                    "identity": self._who(info.identity),
                    "remote": info.remote,
                    "opened_at": info.opened_at,
                    "closed_at": info.closed_at,
                    "close_code": info.close_code,
                    "subscriptions": subs_by_conn.get(info.id, []),
                }
            )
        faults = [_fault_json(*f) for f in self.emulator.plan.faults()][:MAX_LISTED]
        text = self._message(
            "state",
            open_count=len(open_conns),
            subscription_count=len(active),
            connections=listed,
            channels=[{"pattern": k, "subscriptions": v} for k, v in sorted(channels.items())],
            faults=faults,
        )
        if not force and text == self._last_state:
            return ""
        self._last_state = text
        return text

    def _publish_entry(self, record: PublishRecord) -> dict[str, Any]:
        own = bool(record.identifiers) and record.identifiers[0] in self._own
        if own:
            publisher = "console"
        elif record.connection_id is not None:
            publisher = record.connection_id
        else:
            publisher = "http"
        return {
            "kind": "publish",
            "time": record.time,
            "channel": record.channel,
            "events": [_preview(e) for e in record.events],
            "publisher": publisher,
            "principal": self._who(record.identity),
            "auth_mode": str(record.auth_mode) if record.auth_mode else None,
            "transport": record.transport,
            "accepted": len(record.accepted_events),
            "failed": [
                {"index": f.index, "code": f.code, "message": f.message} for f in record.failed
            ],
            "deliveries": record.deliveries,
        }

    def _who(self, identity: Identity | None) -> str | None:
        """A label for ``identity`` that holds no part of a credential.

        API keys are named by their position in the configuration, Lambda tokens not at all;
        IAM ARNs and JWT subjects are not secrets and are shown as they are.
        """
        if identity is None:
            return None
        if identity.mode is AuthType.API_KEY:
            for index, key in enumerate(self.emulator.config.api_keys, 1):
                if identity.principal == api_key_principal(key.key):
                    return f"API key #{index}"
            return "an API key"
        if identity.mode is AuthType.AWS_LAMBDA:
            return "Lambda authorizer"
        return identity.principal

    @staticmethod
    def _error_entry(record: ErrorRecord) -> dict[str, Any]:
        return {
            "kind": "error",
            "time": record.time,
            "transport": record.transport,
            "frame_type": record.frame_type,
            "status": record.status,
            "connection": record.connection_id,
            "id": record.id,
            "errors": [{"errorType": e.error_type, "message": e.message} for e in record.errors],
        }

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

    def _publish_request(
        self, request: web.Request, data: Mapping[str, Any]
    ) -> tuple[Channel, tuple[str, ...], bytes, dict[str, str]]:
        config = self.emulator.config
        unknown = set(data) - {"channel", "events", "auth_mode", "token"}
        if unknown:
            raise _BadInput(f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
        channel_text = data.get("channel")
        if not isinstance(channel_text, str) or not channel_text or len(channel_text) > 1024:
            raise _BadInput("channel must be a channel path such as /default/chat")
        events = data.get("events")
        limit = config.limits.max_events_per_publish
        if not isinstance(events, list) or not 1 <= len(events) <= limit:
            raise _BadInput(f"events must be a list of 1 to {limit} JSON texts")
        if not all(isinstance(e, str) for e in events):
            raise _BadInput("each event must be a JSON text (a string)")
        checked = check_publish(
            channel_text,
            events,
            namespace_exists=lambda ns: config.namespace(ns) is not None,
            max_events=limit,
            max_event_bytes=None,
        )
        if not isinstance(checked, Channel):
            raise _BadInput(f"{checked.error_type}: {checked.message}")
        mode_text = data.get("auth_mode", str(config.auth_providers[0]))
        try:
            mode = AuthType(mode_text) if isinstance(mode_text, str) else None
        except ValueError:
            mode = None
        if mode is None or mode not in config.auth_providers:
            modes = ", ".join(str(m) for m in config.auth_providers)
            raise _BadInput(f"auth_mode must be one of the configured modes: {modes}")
        token = data.get("token")
        if token is not None and (
            not isinstance(token, str) or len(token) > MAX_TOKEN or not token.isprintable()
        ):
            raise _BadInput(f"token must be printable text of at most {MAX_TOKEN} characters")
        body_text = json.dumps({"channel": channel_text, "events": events})
        auth = self._credentials(mode, token or None, request.host, body_text)
        return checked, tuple(events), body_text.encode(), auth

    def _credentials(
        self, mode: AuthType, token: str | None, host: str, body: str
    ) -> dict[str, str]:
        """The headers a client of ``mode`` would send, from what the emulator holds."""
        config = self.emulator.config
        if mode is AuthType.API_KEY:
            if config.api_key is None:
                raise _BadInput("API_KEY: the emulator has no API key configured")
            return {"host": host, "x-api-key": config.api_key}
        if mode is AuthType.AWS_IAM:
            if not config.iam_credentials:
                raise _BadInput("AWS_IAM: the emulator has no IAM credentials configured")
            creds = config.iam_credentials[0]
            return sign_request(
                credentials=Credentials(
                    creds.access_key_id, creds.secret_access_key, creds.session_token
                ),
                region=config.region,
                host=host,
                body=body,
                now=self.emulator.now(),
            )
        if token is None and mode in (AuthType.AMAZON_COGNITO_USER_POOLS, AuthType.OPENID_CONNECT):
            token = self.emulator.issuer.mint("console")  # the local issuer's token
        if token is None:
            raise _BadInput(f"{mode}: give a token")
        return {"host": host, "authorization": token}

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

    def _broadcast_state(self) -> None:
        state = self._state_message(force=False)
        if state:
            self._broadcast(state)

    def _faults_answer(self, message: str | None = None) -> web.Response:
        faults = [_fault_json(*f) for f in self.emulator.plan.faults()][:MAX_LISTED]
        return web.json_response({"faults": faults, "message": message}, headers=_SECURITY_HEADERS)

    def _fault_action(self, data: Mapping[str, Any]) -> str:
        action = data.get("action")
        if action == "remove":
            key = data.get("key")
            if isinstance(key, bool) or not isinstance(key, int):
                raise _BadInput("key must be the integer key of an installed fault")
            if not any(k == key for k, _, _ in self.emulator.plan.faults()):
                raise _BadInput(f"no installed fault has key {key}")
            self.emulator.remove_fault(key)
            return f"removed fault #{key}"
        if action == "clear":
            self.emulator.clear_faults()
            return "removed every fault"
        if action != "add":
            raise _BadInput('action must be "add", "remove" or "clear"')
        target = self._fault_target(data.get("target"))
        fault = self._fault(data)
        key = self.emulator.add_fault(fault, target)
        if fault.one_shot:
            self.emulator.remove_fault(key)  # it acted at once; nothing stays installed
            return f"{fault!r} sent to {_describe_target(target)}"
        return f"installed fault #{key} {fault!r} for {_describe_target(target)}"

    def _fault_target(self, target: object) -> str | None:
        if target is None or target == "all":
            return None
        if not isinstance(target, str) or not _CONN_ID.fullmatch(target):
            raise _BadInput('target must be "all" or a connection id such as "c1"')
        if target not in self.emulator.connections:
            raise _BadInput(f"no open connection {target!r}")
        return target

    @staticmethod
    def _fault(data: Mapping[str, Any]) -> Fault:
        kind = data.get("kind")
        if kind == "drop_keepalives":
            return DropKeepAlives()
        if kind == "stall":
            return Stall()
        if kind == "delay_acks":
            seconds = data.get("seconds")
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not math.isfinite(seconds)
                or not 0 <= seconds <= MAX_DELAY
            ):
                raise _BadInput(f"seconds must be a number from 0 to {MAX_DELAY:g}")
            return DelayAck(float(seconds))
        if kind == "close":
            code = data.get("code", 1000)
            reason = data.get("reason", "")
            if isinstance(code, bool) or not isinstance(code, int):
                raise _BadInput("code must be an integer WebSocket close code")
            if not isinstance(reason, str):
                raise _BadInput("reason must be text")
            try:
                return CloseConnection(code, reason)
            except ValueError as exc:
                raise _BadInput(str(exc)) from None
        kinds = ", ".join(FAULT_KINDS)
        raise _BadInput(f"kind must be one of {kinds}")


def _changed_since(seen: int) -> Callable[[Recorder], int | None]:
    """A wait predicate: the recorder's version once it differs from ``seen``."""

    def changed(recorder: Recorder) -> int | None:
        return recorder.version if recorder.version != seen else None

    return changed


def _after(records: list[Any], last: Any) -> list[Any]:
    """The records after ``last`` (by identity); all of them when ``last`` is gone."""
    if last is None:
        return records
    for index in range(len(records) - 1, -1, -1):
        if records[index] is last:
            return records[index + 1 :]
    return records
