"""The console's live feed: the ``/console/events`` pages, their bounded queues and updates.

One feed task per console waits on the recorder for changes and sends every page one
coalesced update (the state, the new log entries, and the events of watched channels).  Each
page has a bounded queue drained by its own writer task; a page that falls behind is dropped,
never waited for.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from appsync_events.errors import InvalidChannelError
from appsync_events.protocol.channels import (
    Channel,
    matches,
    parse_channel,
    parse_subscribe_channel,
)

from .._logging import LOG_SERVER
from ..config import AuthType
from ..recorder import ErrorRecord, PublishRecord, Recorder, RecorderAssertionError
from ..verify import Identity
from ..verify.api_key import api_key_principal
from .actions import FAULT_KINDS, _fault_json

if TYPE_CHECKING:
    from ..server import Emulator

__all__ = [
    "CLIENT_QUEUE",
    "ConsoleFeed",
    "DROP_CLOSE_TIMEOUT",
    "EVENT_PREVIEW",
    "FEED_IDLE",
    "LOG_BATCH",
    "MAX_CLOSED",
    "MAX_LISTED",
    "MAX_MESSAGE",
    "UPDATE_INTERVAL",
]

CLIENT_QUEUE: Final = 64
"""Messages waiting for one page; a page that falls this far behind is dropped."""
UPDATE_INTERVAL: Final = 0.1
"""Least seconds between two feed updates (bursts are coalesced)."""
FEED_IDLE: Final = 5.0
"""Seconds the feed waits for a change before checking that pages remain."""
DROP_CLOSE_TIMEOUT: Final = 1.0
"""Seconds a dropped page has to take its close frame before its TCP connection is aborted."""
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


def _preview(text: str) -> str:
    return text if len(text) <= EVENT_PREVIEW else text[:EVENT_PREVIEW] + "…"


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


class ConsoleFeed:
    """The feed and messages of :class:`~appsync_emulator.console.Console` (a mixin)."""

    emulator: Emulator
    _pages: set[_Page]
    _feed: asyncio.Task[None] | None
    _last_published: PublishRecord | None
    _last_error: ErrorRecord | None
    _last_state: str
    _own: OrderedDict[str, None]

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

    def _broadcast_state(self) -> None:
        state = self._state_message(force=False)
        if state:
            self._broadcast(state)


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
