"""Replaying a recording: the server side of a past session, played back to a client.

Theory of operation
-------------------

A :class:`Replayer` loads a recording (:mod:`appsync_emulator.recording_file`) and serves
``GET /event/realtime`` and ``POST /event`` like the emulator did, from the recording
instead of from an emulator:

* the *n*-th WebSocket upgrade plays the *n*-th recorded connection (a recorded refused
  upgrade is answered with its status and body);
* the client's frames are matched against the recorded client frames of that connection,
  **by type and in order**; the ids the client chose are mapped onto the recorded ones, so
  the server frames sent back carry the client's ids (``subscribe_success``, ``data``...);
* a server frame is sent once every client frame and HTTP request recorded before it (on
  any connection) has arrived, then after its recorded delay divided by ``speed``,
  counted from the later (in recorded time) of the last of those client inputs and the
  previous server frame of its connection;
* a close the server made is made again (its code and reason; an abort drops the TCP
  connection); a silence (dropped keep-alives) is a silence;
* the *n*-th ``POST /event`` is answered with the *n*-th recorded HTTP answer (status and
  body), after its recorded duration divided by ``speed``.

Anything the recording does not expect (a frame of another type, a frame more, a
connection or request more, an expected client frame that does not come within
``input_timeout``) is a *mismatch*: the client gets an ``error`` frame (or an HTTP 400)
whose ``errorType`` is ``ReplayMismatch`` and, on a WebSocket, a close with 1008; the
mismatch is logged on ``appsync_emulator.replay``, kept in :attr:`Replayer.mismatches`
and raised by :meth:`Replayer.check` (and when the ``async with`` block ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import WSMsgType, web

from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS

from .http_publish import CORS_HEADERS
from .recording_file import load_recording
from .ws_connection import CLOSE_TIMEOUT

__all__ = [
    "LOG_REPLAY",
    "MISMATCH_CLOSE_CODE",
    "REPLAY_API_KEY",
    "ReplayMismatchError",
    "Replayer",
]

LOG_REPLAY: Final = logging.getLogger("appsync_emulator.replay")

MISMATCH_CLOSE_CODE: Final = 1008
"""The close code a connection gets after a mismatch (policy violation)."""

REPLAY_API_KEY: Final = "da2-replay00000000000000000000"
""":attr:`Replayer.api_key`: any key works, this one is for code that needs one."""

_ABORT_CODES: Final = frozenset({None, 1006})
"""Recorded server-side close codes that mean the TCP connection was dropped."""


class ReplayMismatchError(AssertionError):
    """The client did not do what the recording expects.

    Attributes:
        mismatches: one line per mismatch, in the order they happened.
    """

    def __init__(self, mismatches: Sequence[str]) -> None:
        self.mismatches = tuple(mismatches)
        lines = "\n".join(f"  - {m}" for m in self.mismatches)
        super().__init__(f"the replay did not match the recording:\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.mismatches,), self.__dict__)


@dataclass(slots=True)
class _Input:
    """A recorded client frame or HTTP request, and when its replay arrived."""

    position: int
    record: dict[str, Any]
    arrived: float | None = None


@dataclass(slots=True)
class _Script:
    """One recorded connection: its records in order."""

    conn: str
    opened: dict[str, Any]
    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    inputs: list[_Input] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Live:
    """One replayed connection."""

    number: int
    script: _Script
    ws: web.WebSocketResponse
    ids: dict[str, str] = field(default_factory=dict)
    """Recorded id -> the id the client chose."""
    next_input: int = 0
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)
    failed: bool = False


def _frame_type(text: str | bytes) -> tuple[str | None, str | None]:
    """``(type, id)`` of a client frame, ``(None, None)`` when it is not a JSON object."""
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(decoded, dict):
        return None, None
    kind, ident = decoded.get("type"), decoded.get("id")
    return (kind if isinstance(kind, str) else None), (ident if isinstance(ident, str) else None)


def _with_id(text: str, recorded: str, actual: str) -> str:
    """``text`` with its ``id`` field changed from ``recorded`` to ``actual``."""
    needle = '"id":' + json.dumps(recorded)
    if needle in text:
        return text.replace(needle, '"id":' + json.dumps(actual), 1)
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(decoded, dict) and decoded.get("id") == recorded:
        decoded["id"] = actual
        return json.dumps(decoded, separators=(",", ":"), ensure_ascii=False)
    return text


def _mismatch_frame(message: str) -> str:
    error = {"errorType": "ReplayMismatch", "message": message}
    return json.dumps({"type": "error", "errors": [error]})


class Replayer:
    """A server that plays a recording back (see the module docstring).

    ``async with Replayer(path) as replayer:`` then connect a client to
    :attr:`realtime_endpoint` (any authorizer: credentials are not checked, the recording
    holds none).

    Args:
        recording: the recording file.
        speed: recorded delays are divided by this (2.0 plays twice as fast); > 0.
        host: the address to bind (``127.0.0.1`` by default).
        port: the port (``0`` picks a free one; read :attr:`port`).
        input_timeout: seconds a recorded client frame may take to arrive once the
            replay waits for it, before it is reported as a mismatch.

    Raises:
        RecordingFormatError: the file cannot be read (raised by the constructor).
        ValueError: ``speed`` or ``input_timeout`` is not a positive number.
    """

    def __init__(
        self,
        recording: str | Path,
        *,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        input_timeout: float = 10.0,
    ) -> None:
        if not (isinstance(speed, int | float) and speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        if not (isinstance(input_timeout, int | float) and input_timeout > 0):
            raise ValueError(f"input_timeout must be a positive number, got {input_timeout!r}")
        self.path = Path(recording)
        """The recording played."""
        self.header, records = load_recording(self.path)
        self.speed = float(speed)
        """Recorded delays are divided by this."""
        self.host = host
        """The address bound."""
        self.input_timeout = float(input_timeout)
        """Seconds an expected client frame may take before it is a mismatch."""
        self.mismatches: list[str] = []
        """Every mismatch so far, one line each."""
        self.frames_sent = 0
        """Server frames sent so far (counted as each is handed to the socket)."""
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._records = records
        self._slots: list[_Script | dict[str, Any]] = []
        self._http: list[_Input] = []
        self._inputs: list[_Input] = []
        self._last_input_before: list[int] = []
        self._input_at: dict[int, _Input] = {}
        self._live: set[_Live] = set()
        self._next_slot = 0
        self._next_http = 0
        self._first_unmatched = 0
        self._played = 0
        self._progress = asyncio.Condition()
        self._done = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._build(records)

    # --- loading ----------------------------------------------------------------------------

    def _build(self, records: list[dict[str, Any]]) -> None:
        scripts: dict[str, _Script] = {}
        last_input = -1
        for position, record in enumerate(records):
            self._last_input_before.append(last_input)
            kind = record["record"]
            if kind == "open":
                script = _Script(conn=record["conn"], opened=record)
                scripts[script.conn] = script
                self._slots.append(script)
            elif kind == "http" and record["path"] == "/event/realtime":
                self._slots.append(record)  # a refused upgrade
            elif kind == "http" and record["method"] == "POST":
                entry = _Input(position, record)
                self._http.append(entry)
                self._inputs.append(entry)
                last_input = position
            elif kind in ("frame", "close") and record["conn"] in scripts:
                script = scripts[record["conn"]]
                script.records.append((position, record))
                if kind == "frame" and record["dir"] == "in":
                    entry = _Input(position, record)
                    script.inputs.append(entry)
                    self._inputs.append(entry)
                    last_input = position
        self._inputs.sort(key=lambda entry: entry.position)
        self._input_at = {entry.position: entry for entry in self._inputs}
        if not self._slots and not self._http:
            self._done.set()

    # --- hosting ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: not started.
        """
        if self._port is None:
            raise RuntimeError("the replayer is not started")
        return self._port

    @property
    def http_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/event``."""
        return f"http://{self._url_host}:{self.port}/event"

    @property
    def realtime_endpoint(self) -> str:
        """``ws://127.0.0.1:PORT/event/realtime``."""
        return f"ws://{self._url_host}:{self.port}/event/realtime"

    @property
    def api_key(self) -> str:
        """A placeholder API key: the replay accepts any credentials (the recording has
        none), this one lets code written for an emulator (``server.api_key``) run as is."""
        return REPLAY_API_KEY

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def done(self) -> bool:
        """Whether every recorded connection and HTTP request has been played."""
        return self._done.is_set()

    async def start(self) -> Self:
        """Bind and serve.

        Cancelling it leaves nothing listening; it has no timeout of its own (binding
        is immediate).

        Raises:
            RuntimeError: already started.
            OSError: the address cannot be bound.
        """
        if self._runner is not None:
            raise RuntimeError("a Replayer can only be started once")
        app = web.Application()
        app.add_routes(
            [
                web.get("/event/realtime", self._realtime),
                web.post("/event", self._publish),
                web.options("/event", self._preflight),
            ]
        )
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        LOG_REPLAY.info(
            "replaying %s (%d connection(s), %d HTTP request(s)) on %s",
            self.path,
            len(self._slots),
            len(self._http),
            self.realtime_endpoint,
        )
        return self

    async def stop(self) -> None:
        """Stop serving (open connections are closed with 1001).  Idempotent.

        Bounded: each close waits at most ``CLOSE_TIMEOUT`` (2 s) for the client's
        answer, and requests still running get one second.
        """
        runner, self._runner = self._runner, None
        for task in list(self._tasks):
            task.cancel()
        for live in list(self._live):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await live.ws.close(code=1001, message=b"replay stopped")
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        if exc_type is None:
            self.check()

    # --- results ----------------------------------------------------------------------------

    async def wait_done(self, timeout: float | None = 10.0) -> None:  # noqa: ASYNC109
        """Wait until every recorded connection and HTTP request has been played.

        Cancel-safe (nothing is consumed by waiting).

        Args:
            timeout: seconds to wait; ``None`` waits as long as it takes.

        Raises:
            TimeoutError: not done within ``timeout`` (the message is :meth:`report`).
        """
        try:
            async with asyncio.timeout(timeout):
                await self._done.wait()
        except TimeoutError:
            raise TimeoutError(
                f"the replay was not done within {timeout} s: {self.report()}"
            ) from None

    async def wait_received(
        self,
        frame_type: str,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``count`` client frames of ``frame_type`` have been matched.

        For a test that must know the replayed client got somewhere (say, the
        ``unsubscribe`` a client sends when a subscription's inbox overflowed) without
        sleeping.  Cancel-safe.

        Raises:
            TimeoutError: fewer within ``timeout`` seconds.
        """

        def enough() -> bool:
            seen = [e for e in self._inputs if e.arrived is not None]
            matching = sum(1 for e in seen if e.record.get("type") == frame_type)
            return matching >= count

        try:
            async with asyncio.timeout(timeout), self._progress:
                await self._progress.wait_for(enough)
        except TimeoutError:
            raise TimeoutError(
                f"fewer than {count} {frame_type} frame(s) from the client within "
                f"{timeout} s: {self.report()}"
            ) from None

    def report(self) -> str:
        """A one-paragraph summary: what was played, and the mismatches."""
        played = f"{self._played} of {sum(isinstance(s, _Script) for s in self._slots)}"
        text = (
            f"replayed {played} connection(s) and {self._next_http} of {len(self._http)} "
            f"HTTP request(s) from {self.path.name}"
        )
        if self.mismatches:
            text += "; mismatches: " + "; ".join(self.mismatches)
        return text

    def check(self) -> None:
        """Raise :class:`ReplayMismatchError` if anything did not match the recording."""
        if self.mismatches:
            raise ReplayMismatchError(self.mismatches)

    def _mismatch(self, message: str) -> None:
        LOG_REPLAY.warning("mismatch: %s", message)
        self.mismatches.append(message)

    def _finished_one(self) -> None:
        self._played += 1
        self._check_done()

    def _check_done(self) -> None:
        scripts = sum(isinstance(s, _Script) for s in self._slots)
        if self._played >= scripts and self._next_http >= len(self._http):
            self._done.set()

    # --- causality and timing ---------------------------------------------------------------

    async def _arrived(self, entry: _Input) -> None:
        entry.arrived = asyncio.get_running_loop().time()
        async with self._progress:
            while (
                self._first_unmatched < len(self._inputs)
                and self._inputs[self._first_unmatched].arrived is not None
            ):
                self._first_unmatched += 1
            self._progress.notify_all()

    def _inputs_before(self, position: int) -> bool:
        first = self._first_unmatched
        return first >= len(self._inputs) or self._inputs[first].position > position

    async def _wait_inputs(self, live: _Live, position: int) -> bool:
        """Wait for every client input recorded before ``position``; False on a timeout."""
        try:
            async with asyncio.timeout(self.input_timeout), self._progress:
                await self._progress.wait_for(lambda: self._inputs_before(position))
        except TimeoutError:
            missing = self._inputs[self._first_unmatched]
            record = missing.record
            what = (
                f"a {record.get('type') or 'non-JSON'} frame on recorded connection "
                f"{record['conn']}"
                if record["record"] == "frame"
                else f"HTTP {record['method']} {record['path']}"
            )
            self._fail(
                live,
                f"connection {live.number}: waited {self.input_timeout:g} s for {what} "
                f"(recorded at t={record['t']:g}), it did not come",
            )
            return False
        return True

    async def _pace(
        self, position: int, record: dict[str, Any], anchor: tuple[float, float]
    ) -> None:
        """Sleep until ``record``'s recorded delay (divided by speed) has passed.

        The delay counts from the latest (in recorded time) of: the connection's previous
        server frame (or its opening), ``anchor``; and the last client input recorded
        before ``record`` on any connection, when it came.  So an answer follows its
        request promptly however long the client took to send it, and ``ka`` frames and
        silences keep their rhythm.
        """
        loop = asyncio.get_running_loop()
        since, real = anchor
        cause = self._last_input_before[position]
        if cause >= 0:
            entry = self._input_at[cause]
            if entry.arrived is not None and entry.record["t"] >= since:
                since, real = entry.record["t"], entry.arrived
        delay = real + (record["t"] - since) / self.speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    # --- WebSocket ----------------------------------------------------------------------------

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        number = self._next_slot + 1
        if self._next_slot >= len(self._slots):
            self._mismatch(
                f"connection {number}: the recording has only {len(self._slots)} connection(s)"
            )
            return web.json_response(
                {"errors": [{"errorType": "ReplayMismatch", "message": "no more connections"}]},
                status=400,
            )
        slot = self._slots[self._next_slot]
        self._next_slot += 1
        if not isinstance(slot, _Script):
            await asyncio.sleep(float(slot["duration"]) / self.speed)
            return web.Response(
                status=slot["status"], text=slot["response"] or "", content_type="application/json"
            )
        offered = [
            p.strip()
            for value in request.headers.getall("Sec-WebSocket-Protocol", ())
            for p in value.split(",")
        ]
        protocols = (PROTOCOL_EVENTS,) if PROTOCOL_EVENTS in offered else ()
        ws = web.WebSocketResponse(
            protocols=protocols, autoping=True, heartbeat=None, timeout=CLOSE_TIMEOUT
        )
        try:
            await ws.prepare(request)
        except (ConnectionError, RuntimeError):
            self._mismatch(f"connection {number}: the client went away during the upgrade")
            self._finished_one()
            return ws
        live = _Live(number=number, script=slot, ws=ws)
        self._live.add(live)
        task = asyncio.get_running_loop().create_task(self._write(live), name=f"replay-{number}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await self._read(live)
        finally:
            if live.failed or ws.closed:
                task.cancel()
            await asyncio.wait([task], timeout=self.input_timeout)
            task.cancel()
            if live.next_input < len(slot.inputs) and not live.failed:
                missing = slot.inputs[live.next_input].record
                self._mismatch(
                    f"connection {number}: the client closed before sending the recorded "
                    f"{missing.get('type') or 'non-JSON'} frame (t={missing['t']:g})"
                )
            self._live.discard(live)
            self._finished_one()
        return ws

    async def _read(self, live: _Live) -> None:
        """Match the client's frames against the recorded ones until it closes."""
        async for msg in live.ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            kind, ident = _frame_type(msg.data)
            inputs = live.script.inputs
            if live.next_input >= len(inputs):
                await self._fail_now(
                    live,
                    f"connection {live.number}: unexpected {kind or 'non-JSON'} frame "
                    "(the recording expects no more client frames)",
                )
                return
            entry = inputs[live.next_input]
            expected = entry.record.get("type")
            if kind != expected:
                await self._fail_now(
                    live,
                    f"connection {live.number}: the client sent a {kind or 'non-JSON'} frame, "
                    f"the recording expects {expected or 'a non-JSON frame'} "
                    f"(t={entry.record['t']:g})",
                )
                return
            recorded_id = entry.record.get("id")
            if isinstance(recorded_id, str) and ident is not None:
                live.ids[recorded_id] = ident
            live.next_input += 1
            await self._arrived(entry)
        live.client_closed.set()

    async def _fail_now(self, live: _Live, message: str) -> None:
        self._fail(live, message)
        if not live.ws.closed:
            try:
                await live.ws.send_str(_mismatch_frame(message))
                await live.ws.close(code=MISMATCH_CLOSE_CODE, message=b"replay mismatch")
            except (ConnectionError, RuntimeError):
                pass

    def _fail(self, live: _Live, message: str) -> None:
        if not live.failed:
            live.failed = True
            self._mismatch(message)

    async def _write(self, live: _Live) -> None:
        """Send the recorded server frames and closes of one connection, paced."""
        loop = asyncio.get_running_loop()
        anchor = (float(live.script.opened["t"]), loop.time())
        for position, record in live.script.records:
            if record["record"] == "frame" and record["dir"] == "in":
                continue
            if record["record"] == "close" and record["by"] != "server":
                await live.client_closed.wait()
                return
            if not await self._wait_inputs(live, position):
                await self._fail_now(live, self.mismatches[-1])
                return
            await self._pace(position, record, anchor)
            anchor = (float(record["t"]), loop.time())
            if live.ws.closed:
                return
            if record["record"] == "close":
                await self._close(live, record)
                return
            text = record["text"] or ""
            recorded_id = record.get("id")
            if isinstance(recorded_id, str) and recorded_id in live.ids:
                text = _with_id(text, recorded_id, live.ids[recorded_id])
            self.frames_sent += 1
            try:
                await live.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _close(self, live: _Live, record: dict[str, Any]) -> None:
        code = record["code"]
        if code in _ABORT_CODES:
            request = live.ws._req  # aiohttp keeps the upgrade request here
            transport = request.transport if request is not None else None
            if transport is not None:
                transport.abort()
            return
        try:
            await live.ws.close(code=code, message=str(record["reason"]).encode())
        except (ConnectionError, RuntimeError):
            pass

    # --- HTTP ----------------------------------------------------------------------------------

    async def _preflight(self, request: web.Request) -> web.StreamResponse:
        # The emulator's answer to a CORS preflight, whatever the recording holds (its
        # ``OPTIONS`` records are not played: browsers send them when they like).
        return web.Response(status=204, headers=CORS_HEADERS)

    async def _publish(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self._next_http >= len(self._http):
            message = (
                f"HTTP request {self._next_http + 1}: the recording has only "
                f"{len(self._http)} HTTP request(s)"
            )
            self._mismatch(message)
            return web.json_response(
                {"errors": [{"errorType": "ReplayMismatch", "message": message}]}, status=400
            )
        entry = self._http[self._next_http]
        self._next_http += 1
        await self._arrived(entry)
        record = entry.record
        await asyncio.sleep(float(record["duration"]) / self.speed)
        self._check_done()
        return web.Response(
            status=record["status"],
            text=record["response"] or "",
            content_type="application/json",
            headers={"Access-Control-Allow-Origin": "*"},
        )
