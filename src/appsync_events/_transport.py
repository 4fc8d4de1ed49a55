"""The client's WebSocket transport: aiohttp's client, whose frame reader is compiled.

:class:`~appsync_events.connection.Connection` needs five things from a WebSocket: the
subprotocol the server selected, ``recv()`` of one text frame, ``send()`` of one text
frame, ``close(code)`` with the closing handshake, and the close code and reason once it
is closed.  :func:`open_websocket` opens one with aiohttp (already a client dependency
for HTTP publish) and wraps it in a :class:`WebSocket` offering exactly those.

Why aiohttp and not ``websockets``: most of the client's receive time went into the
frame parser, and aiohttp's (Cython) reads the same frames about twice as fast;
``benchmarks/client_receive.py`` measures both.

On the receive side, :meth:`WebSocket.feed` goes one step further when the installed
aiohttp allows it: it wraps aiohttp's frame parser so that the connection takes each
text frame as soon as it is parsed, in the socket's callback, without the per-frame
``receive()`` coroutines and without waking the reader task per chunk of bytes.

Every failure of the upgrade maps to the client's exceptions here, so the dialer never
sees an aiohttp exception: an HTTP status instead of ``101`` (with the service's JSON
error body, read up to :data:`MAX_REFUSAL_BODY` bytes), a failed TLS or TCP connection,
a broken upgrade response.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import os
import random
import ssl as ssl_module
import struct
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

from .errors import (
    AppSyncEventsError,
    ErrorDetail,
    HandshakeError,
    RemoteProtocolError,
    UnauthorizedError,
)
from .protocol.codec import decode_error_body

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MAX_REFUSAL_BODY", "USER_AGENT", "TransportClosed", "WebSocket", "open_websocket"]

USER_AGENT: Final = "appsync-events-python"
"""The ``User-Agent`` of the upgrade request."""

MAX_REFUSAL_BODY: Final = 64 * 1024
"""Bytes of an upgrade refusal's body read for its error details."""

ABNORMAL_CLOSURE: Final = 1006
"""The close code of a connection that ended without a closing handshake (RFC 6455)."""

PLAIN_READ_ENV: Final = "APPSYNC_EVENTS_PLAIN_READ"
"""Set to a non-empty value other than ``0``, this environment variable turns
:meth:`WebSocket.feed` off: every frame goes through the reader task's ``receive()``."""

DIRECT_MIN_CHUNK: Final = 1024
"""Bytes a chunk from the socket must have for :meth:`WebSocket.feed`'s ``direct`` hooks
to take its frames as they are parsed.  Handing the parser over costs a little per
chunk, which a chunk of one or two frames does not win back: a lone event's latency
(publish to ``next()``) measured about 3% higher with every chunk taken so, and a flood
(chunks of many frames) gains as much either way."""

RELEASE_TIMEOUT: Final = 2.0
"""Seconds :meth:`WebSocket.close` waits for the TCP connection to go once released (a
TLS shutdown waits for the server's answer), before aborting it."""


Direct = tuple[Callable[[], bool], Callable[[Any, int], None], Callable[[], None]]
"""What :meth:`WebSocket.feed` may take frames with as they are parsed: ``(start,
on_frame, end)``."""


class TransportClosed(Exception):
    """The WebSocket is closed: :meth:`WebSocket.recv` and :meth:`WebSocket.send` raise it.

    The close code and reason are on the :class:`WebSocket` (``close_code``,
    ``close_reason``).  Internal: the connection turns it into
    :class:`~appsync_events.errors.ConnectionClosedError`.
    """


class _Refused(Exception):
    """Raised by the session's status check: the upgrade got ``status`` instead of 101."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is ``localhost`` or a loopback address (no proxy applies)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def env_proxy(url: str) -> tuple[str | None, str | None]:
    """The proxy the environment sets for ``url``, and its ``Proxy-Authorization``.

    Like ``websockets``: ``ws://`` uses ``http_proxy``, ``wss://`` uses ``https_proxy``
    (``all_proxy`` for either); ``no_proxy`` and loopback endpoints bypass it.  Returns
    ``(None, None)`` when no proxy applies.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(url) or proxy_bypass(host):
        return None, None
    proxies = getproxies()
    scheme = "https" if parts.scheme == "wss" else "http"
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy:
        return None, None
    proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    authorization = None
    if proxy_parts.username is not None:
        import base64

        user_pass = f"{unquote(proxy_parts.username)}:{unquote(proxy_parts.password or '')}"
        authorization = "Basic " + base64.b64encode(user_pass.encode()).decode()
    netloc = proxy_parts.netloc.rpartition("@")[2]
    return f"{proxy_parts.scheme}://{netloc}", authorization


class WebSocket:
    """One open client WebSocket (aiohttp) and the session that owns its TCP connection.

    Not safe for concurrent ``recv()`` calls: the connection's reader task is the only
    reader.  ``send()`` may be called by one writer while ``recv()`` waits.
    """

    __slots__ = (
        "_direct",
        "_feed",
        "_masked",
        "_overhead",
        "_protocol",
        "_queue",
        "_session",
        "_ws",
        "close_code",
        "close_reason",
        "frames",
        "receive",
        "subprotocol",
        "text",
    )

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession) -> None:
        from aiohttp import WSMsgType

        self._ws = ws
        self._session = session
        self.receive = ws.receive
        """The raw read, for the connection's reader loop: ``await receive()`` returns a
        message ``(kind, data, extra)``; ``kind is text`` means ``data`` is a text frame,
        anything else goes to :meth:`non_text`.  One coroutine layer less than
        :meth:`recv` per frame, on the client's hottest path."""
        self.text = WSMsgType.TEXT
        """The ``kind`` of a text frame."""
        self.subprotocol: str | None = ws.protocol
        """The subprotocol the server selected (``None``: none)."""
        self.close_code: int | None = None
        """The close code, once the connection is closed."""
        self.close_reason = ""
        """The close reason, once the connection is closed."""
        self._direct = _direct_writer(ws)
        self._masked = _websocket_mask is not None and getattr(self._direct, "use_mask", 0) is True
        """Whether frames are built here (:func:`_masked_frames`) rather than by aiohttp."""
        self._feed: _Feed | None = None
        self._protocol, self._queue = _receive_queue(ws)
        self._overhead = _entry_overhead(self._queue)
        self.frames: deque[tuple[Any, int]] = (
            self._queue._buffer if self._queue is not None else deque()
        )
        """The frames parsed and not read yet, first first, each ``(message, size)`` with
        ``message`` as :attr:`receive` returns it.  Only :meth:`feed`'s callback takes
        any from here (with ``popleft()`` (an entry taken may be put back with
        ``appendleft()``), then :meth:`taken`)."""

    async def recv(self) -> str | bytes:
        """Return the next data frame: ``str`` for text, ``bytes`` for binary.

        Pings are answered by aiohttp; a close frame is answered (the closing handshake)
        before :class:`TransportClosed` is raised.  Cancelling it loses no frame: a frame
        stays queued until a ``recv()`` returns it.

        Raises:
            TransportClosed: the connection is closed (``close_code``/``close_reason`` set).
        """
        msg = await self.receive()
        if msg.type is self.text:
            data: str = msg.data
            return data
        return self.non_text(msg)

    def non_text(self, msg: tuple[Any, ...]) -> bytes:
        """Handle a message of :attr:`receive` that is not a text frame.

        Returns:
            The payload of a binary frame.

        Raises:
            TransportClosed: the connection is closed (``close_code``/``close_reason`` set).
        """
        from aiohttp import WebSocketError, WSMsgType

        kind, data, extra = msg

        if kind == WSMsgType.BINARY:
            assert isinstance(data, bytes)
            return data
        if self.close_code is None:
            if kind == WSMsgType.CLOSE:  # the server closed; aiohttp answered it
                self.close_code = int(data) if isinstance(data, int) else ABNORMAL_CLOSURE
                self.close_reason = extra if isinstance(extra, str) else ""
            elif kind == WSMsgType.ERROR and isinstance(data, WebSocketError):
                self.close_code, self.close_reason = data.code, str(data)  # we closed with it
            elif kind != WSMsgType.CLOSING:  # dropped without a close frame, or a local error
                self.close_code = ABNORMAL_CLOSURE
        raise TransportClosed

    def feed(self, on_frames: Callable[[], None], direct: Direct | None = None) -> bool:
        """Read text frames as they are parsed, in the socket's callback: ``False`` if the
        installed aiohttp does not allow it (or :data:`PLAIN_READ_ENV` turns it off).

        Once installed, while the reader waits in :meth:`wait_frames`, ``on_frames()`` is
        called right after each chunk of bytes from the socket is parsed.  It takes the
        text frames at the head of :attr:`frames` (``popleft()``), in order, reports them
        with :meth:`taken` (before it returns, or in a callback it schedules with
        ``call_soon`` then, which runs before the socket's next chunk is handed over: the
        chunk's frames are then not all parsed yet, nor the queue's flow control run),
        and calls :meth:`wake` to hand
        over to the reader as soon as the head is anything else (a close, ping, pong or
        binary frame), or to stop taking frames; it must not raise.  The reader then
        reads with :attr:`receive` until :meth:`pending` is false, and waits again.  So
        the reader task no longer wakes per chunk before the code it serves, and
        aiohttp's read coroutine is not run per frame.

        With ``direct`` (``(start, on_frame, end)``), and when the receive queue is the one
        :func:`open_websocket` gave aiohttp (:func:`_direct_queue_class`), frames are even
        taken one by one as aiohttp's parser makes them, before they are queued: for a
        chunk of at least :data:`DIRECT_MIN_CHUNK` bytes that arrives while the reader
        waits and nothing is queued, ``start()`` says
        whether to (``True``), then each message the parser makes, with its size, goes to
        ``on_frame(message, size)`` in place of the queue, until it calls
        :meth:`decline` (that message and the rest of the chunk are queued, in order, for
        ``on_frames()``) or :meth:`stop_direct` (the rest of the chunk is queued).
        ``end()`` is called once the chunk is parsed, before ``on_frames()``.  None of
        them may raise.  A frame taken so is never queued: no entry is made for it,
        nothing is reported with :meth:`taken`, no flow control runs.
        """
        protocol, queue = self._protocol, self._queue
        if (
            protocol is None
            or queue is None
            or self._overhead is None
            or os.environ.get(PLAIN_READ_ENV, "0") != "0"
        ):
            return False
        self._feed = feed = _Feed(protocol._payload_parser, on_frames, self.frames)
        if direct is not None and isinstance(queue, _DirectQueue):
            feed.direct_queue, feed.direct = queue, direct
        protocol._payload_parser = feed
        return True

    def decline(self, message: Any, size: int) -> None:
        """Queue ``message`` (of ``size`` bytes), which :meth:`feed`'s ``on_frame`` does not
        take, and the rest of the chunk being parsed."""
        queue = self._queue
        self.stop_direct()
        queue.feed_data(message, size)

    def stop_direct(self) -> None:
        """Queue the rest of the chunk being parsed: :meth:`feed`'s ``on_frame`` gets no
        more of it."""
        vars(self._queue).pop("feed_data", None)

    def taken(self) -> None:
        """Account for the frames taken from :attr:`frames` since the last call: the
        receive queue's size shrinks by what reading them one by one would have removed,
        and its flow control runs once (it resumes the socket, or the parsing of a chunk
        it stopped, when there is room)."""
        queue, frames, overhead = self._queue, self.frames, self._overhead
        assert queue is not None
        assert overhead is not None
        # The queue counts every frame it holds or held and nobody read, each as its
        # size plus the overhead: what the frames left do not account for was taken.
        left = len(frames) * overhead
        if frames:
            left += sum(entry[1] for entry in frames)
        size = queue._size - left
        if size <= 0:
            return
        # The queue's read() is the one way to shrink its size: one read of a stand-in
        # entry at the head, as large as every frame taken and its overhead.
        frames.appendleft((None, size - overhead))
        _read_now(queue)

    def pending(self) -> bool:
        """Whether :attr:`receive` returns without waiting (a frame or the end is there)."""
        queue = self._queue
        return (
            queue is None
            or bool(self.frames)
            or queue.is_eof()
            or self._ws.closed
            or (self._feed is not None and self._feed.stopped)
        )

    async def wait_frames(self) -> None:
        """Let :meth:`feed`'s callback take the frames until it calls :meth:`wake`, the
        connection ends or :meth:`close` begins; at once when :meth:`pending`."""
        feed = self._feed
        assert feed is not None
        if self.pending():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        feed.waiter = waiter
        # Gone already (or released): the end of the queue is on its way (feed_eof).
        lost = self.lost()
        if lost is not None:
            lost.add_done_callback(feed.lost)
        try:
            await waiter
        finally:
            feed.waiter = None
            if lost is not None:
                lost.remove_done_callback(feed.lost)

    def refeed(self) -> None:
        """Call :meth:`feed`'s callback now if the reader still waits in
        :meth:`wait_frames`: for frames it left at the head of :attr:`frames` to take
        later (else the reader reads them)."""
        feed = self._feed
        if feed is not None and feed.waiter is not None:
            feed.on_frames()

    def wake(self) -> None:
        """Stop :meth:`feed`'s callback: :meth:`wait_frames` returns."""
        if self._feed is not None:
            self._feed.wake()

    async def send(self, text: str) -> None:
        """Send one text frame (waits only when the socket's write buffer is full).

        Raises:
            TransportClosed: the connection is closed or closing.
        """
        try:
            await self._ws.send_str(text)
        except Exception as exc:  # ConnectionResetError, aiohttp.ClientError: it went away
            raise TransportClosed from exc

    def send_now(self, text: str) -> bool:
        """Write one text frame at once if the socket takes it without waiting.

        The frame is written whole, synchronously, or not at all (``False``): when the
        socket's write buffer is over its limit (the transport paused writing), when the
        connection is closing, or when the installed aiohttp offers no synchronous frame
        write.  Then the caller queues it for :meth:`send`, which waits for room.  With
        nothing to wait for, no cancellation can cut a frame in two.
        """
        writer = self._direct
        if writer is None or writer._closing or writer.protocol._paused:
            return False
        transport = writer.transport
        if transport.is_closing():
            return False
        if self._masked:
            transport.write(_masked_frames((text,)))
        else:
            writer._write_websocket_frame(text.encode(), _TEXT_OPCODE, 0)
        return True

    def send_batch_now(self, texts: Sequence[str]) -> bool:
        """Write text frames at once, in order and in one socket write, if the socket takes
        them without waiting (as :meth:`send_now` does one); else write nothing
        (``False``)."""
        writer = self._direct
        if writer is None or not self._masked or writer._closing or writer.protocol._paused:
            return False
        transport = writer.transport
        if transport.is_closing():
            return False
        transport.write(_masked_frames(texts))
        return True

    async def send_batch(self, texts: Sequence[str]) -> None:
        """Send text frames in order, in one socket write when aiohttp allows it; then wait
        only if the socket's write buffer is full.

        The frames are all written before the first wait, so a cancellation (of the
        writer, when the connection closes) cuts none of them in two.

        Raises:
            TransportClosed: the connection is closed or closing.
        """
        writer = self._direct
        if writer is None or len(texts) == 1:
            for text in texts:
                await self.send(text)
            return
        transport = writer.transport
        if writer._closing or transport.is_closing():
            raise TransportClosed
        if self._masked:
            transport.write(_masked_frames(texts))
        else:
            # aiohttp builds (and masks) each frame and hands it to its transport: lend it
            # a collector for the moment, then write the frames together.
            collector = _Collector()
            writer.transport = collector
            try:
                for text in texts:
                    writer._write_websocket_frame(text.encode(), _TEXT_OPCODE, 0)
            finally:
                writer.transport = transport
            transport.write(b"".join(collector.chunks))
        if writer.protocol._paused:
            try:
                await writer.protocol._drain_helper()
            except Exception as exc:  # the connection went while draining
                raise TransportClosed from exc

    async def close(self, code: int) -> None:
        """Send a close frame with ``code``, wait for the server's (up to the close
        timeout), then release the TCP connection and wait until it is gone (up to
        :data:`RELEASE_TIMEOUT`, then it is aborted).  Idempotent.

        Over TLS, releasing the connection starts a TLS shutdown that completes on later
        loop turns: without the wait, a caller that closes its event loop right after
        ``close()`` would leave the socket open.

        Cancellation aborts the connection at once and propagates.
        """
        feed = self._feed
        if feed is not None:  # from now on, aiohttp's close() reads what is left
            feed.stopped = True
            feed.wake()
        transport = getattr(self._connection(), "transport", None)
        lost = self.lost() if transport is not None else None
        try:
            await self._ws.close(code=code)
        finally:
            if self.close_code is None:
                self.close_code = self._ws.close_code or code
            try:
                await self._session.close()
                if lost is not None and not lost.done():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(lost), RELEASE_TIMEOUT)
            finally:
                if transport is not None and lost is not None:
                    if not lost.done():
                        transport.abort()  # not gone in time (a TLS shutdown), or cancelled
                    elif not lost.cancelled():
                        lost.exception()  # how it went does not matter: seen, not logged

    def _connection(self) -> Any:
        """aiohttp's connection under the WebSocket (``None`` once released), reached
        through the upgrade response that aiohttp keeps."""
        return getattr(getattr(self._ws, "_response", None), "connection", None)

    @property
    def local_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of this end of the TCP connection (``None``: unknown or closed)."""
        transport = getattr(self._connection(), "transport", None)
        if transport is None:
            return None
        address = transport.get_extra_info("sockname")
        if not address:
            return None
        return str(address[0]), int(address[1])

    def lost(self) -> asyncio.Future[None] | None:
        """A future done when the TCP connection goes (``None``: it has gone already).

        For a reader that stops reading for a while: a close frame waits, unread, in the
        receive queue, but the end of the connection is still seen here.  The future may
        hold the connection's error; callers only look at whether it is done.
        """
        protocol = getattr(self._connection(), "protocol", None)
        closed = getattr(protocol, "closed", None)
        return closed if isinstance(closed, asyncio.Future) else None

    def abort(self) -> None:
        """Close the TCP connection at once, without a closing handshake."""
        response = getattr(self._ws, "_response", None)  # aiohttp keeps the upgrade response
        if response is not None:
            response.close()
        if self.close_code is None:
            self.close_code = ABNORMAL_CLOSURE


_TEXT_OPCODE: Final = 0x1

_websocket_mask: Callable[[bytes, bytearray], None] | None
try:  # aiohttp's compiled masking (3.11 and later)
    from aiohttp._websocket.helpers import websocket_mask as _websocket_mask
except ImportError:  # pragma: no cover - an older aiohttp: it builds the frames
    _websocket_mask = None

_random_key: Final = functools.partial(random.getrandbits, 32)
"""A frame's masking key, drawn as aiohttp draws it."""
_HEAD_SHORT: Final = struct.Struct("!BBL").pack
_HEAD_MEDIUM: Final = struct.Struct("!BBHL").pack
_HEAD_LONG: Final = struct.Struct("!BBQL").pack


def _masked_frames(texts: Sequence[str]) -> bytes:
    """``texts`` as the bytes of final, uncompressed text frames from a client: each masked
    with a fresh random key (RFC 6455, section 5.3), exactly what aiohttp's
    ``_write_websocket_frame`` writes for each, made without its per-frame method calls."""
    parts: list[bytes | bytearray] = []
    append = parts.append
    mask, key_of = _websocket_mask, _random_key
    assert mask is not None
    for text in texts:
        payload = bytearray(text.encode())
        size = len(payload)
        key = key_of()
        mask(key.to_bytes(4, "big"), payload)
        if size < 126:
            append(_HEAD_SHORT(0x81, 0x80 | size, key))
        elif size < 65536:
            append(_HEAD_MEDIUM(0x81, 0x80 | 126, size, key))
        else:
            append(_HEAD_LONG(0x81, 0x80 | 127, size, key))
        append(payload)
    return b"".join(parts)


class _Collector:
    """Stands in for a transport while frames are built: keeps what is written."""

    __slots__ = ("chunks",)

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)


class _Feed:
    """Stands in for aiohttp's frame parser on its connection protocol: parses each chunk
    from the socket with it, then, while a reader waits (:meth:`WebSocket.wait_frames`),
    lets ``on_frames`` take the parsed text frames (:meth:`WebSocket.feed`)."""

    __slots__ = ("_frames", "_parser", "direct", "direct_queue", "on_frames", "stopped", "waiter")

    def __init__(self, parser: Any, on_frames: Callable[[], None], frames: deque[Any]) -> None:
        self._parser = parser
        self._frames = frames
        self.on_frames = on_frames
        self.direct_queue: Any = None  # a _DirectQueue
        """The receive queue, when frames may be taken as they are parsed (``direct``)."""
        self.direct: Direct | None = None
        """:meth:`WebSocket.feed`'s ``direct``, when ``direct_queue`` is set."""
        self.waiter: asyncio.Future[None] | None = None
        """Set while the reader waits: frames are taken here until it is done."""
        self.stopped = False
        """The WebSocket is closing: the reader does not wait here any more."""

    def feed_data(self, data: bytes) -> Any:
        queue, direct = self.direct_queue, self.direct
        if (
            queue is not None
            and direct is not None
            and len(data) >= DIRECT_MIN_CHUNK
            and self.waiter is not None
            and not self._frames
            and direct[0]()
        ):
            # aiohttp's parser calls the queue's feed_data per message: on_frame, for now.
            queue.feed_data = direct[1]
            try:
                result = self._parser.feed_data(data)
            finally:
                vars(queue).pop("feed_data", None)
                direct[2]()
        else:
            result = self._parser.feed_data(data)
        if self.waiter is not None:
            self.on_frames()
            if result[0]:  # a protocol error: it is queued, for the reader
                self.wake()
        return result

    def feed_eof(self) -> None:
        self._parser.feed_eof()
        self.wake()

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def lost(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled():
            future.exception()  # retrieved: the reader reports how it closed
        self.wake()


class _DirectQueue:
    """Marks the receive queue :func:`open_websocket` gives aiohttp (a subclass of
    aiohttp's, made by :func:`_direct_queue_class`)."""

    __slots__ = ()


_DIRECT_QUEUES: dict[type, type] = {}


def _direct_queue_class(kind: type) -> type:
    """A subclass of aiohttp's receive queue class ``kind`` (made once per class) whose
    instances have a ``__dict__``: a ``feed_data`` set on one replaces the queue's for
    aiohttp's parser (a compiled parser looks the method up on the object for every
    message; without one there, it calls its own at once)."""
    made = _DIRECT_QUEUES.get(kind)
    if made is None:
        made = _DIRECT_QUEUES[kind] = type("DirectQueue", (kind, _DirectQueue), {})
    return made


@functools.lru_cache(maxsize=8)
def _response_class(max_msg_size: int) -> type[aiohttp.ClientWebSocketResponse]:
    """aiohttp's client WebSocket response, whose frame parser gets a receive queue that
    can hand each message over as it is parsed (:class:`_DirectQueue`).

    aiohttp makes the queue, then the response with it, then the parser with the same
    queue (the response is not asked), sets it on the response (``_parser``) and reads
    it back from there for the connection.  So the response makes a queue of its own
    and, when aiohttp sets ``_parser``, a parser for that queue.  Anything unexpected
    (compression, other classes or signatures) keeps aiohttp's queue and parser, and an
    aiohttp older than 3.11 gets its own response class.  :func:`_adopt_queue` finishes
    the job once the connection is open.
    """
    from aiohttp import ClientWebSocketResponse

    try:  # aiohttp 3.11 and later
        from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
    except ImportError:
        return ClientWebSocketResponse

    class Response(ClientWebSocketResponse):
        def __init__(self, reader: Any, *args: Any, **kwargs: Any) -> None:
            # aiohttp's queue and parser, and the ones made here (None: none).
            self._appsync_theirs: tuple[Any, Any] = (reader, None)
            self._appsync_queue: Any = None
            self._appsync_parser: Any = None
            self._appsync_made: Any = None
            if type(reader) is WebSocketDataQueue and not kwargs.get("compress"):
                with contextlib.suppress(Exception):
                    reader = _direct_queue_class(WebSocketDataQueue)(
                        reader._protocol, reader._limit // 2, loop=asyncio.get_running_loop()
                    )
                    self._appsync_queue = reader
            super().__init__(reader, *args, **kwargs)

        @property
        def _parser(self) -> Any:
            return self._appsync_parser

        @_parser.setter
        def _parser(self, parser: Any) -> None:
            queue = self._appsync_queue
            if queue is not None and self._appsync_made is None and type(parser) is WebSocketReader:
                self._appsync_theirs = (self._appsync_theirs[0], parser)
                try:
                    parser = WebSocketReader(queue, max_msg_size, compress=False, decode_text=True)
                except Exception:  # pragma: no cover - another signature: aiohttp's own
                    pass
                else:
                    self._appsync_made = parser
            self._appsync_parser = parser

    return Response


def _adopt_queue(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Once ``ws`` is open: its connection protocol reports the end of the connection to
    the receive queue the response made (:func:`_response_class`), as it would to
    aiohttp's.  If aiohttp did not go the way described there (its connection protocol
    does not feed the parser made for that queue), ``ws`` goes back to aiohttp's queue
    and parser."""
    queue = getattr(ws, "_appsync_queue", None)
    if queue is None:
        return
    ws._appsync_queue = None  # type: ignore[attr-defined]
    made = ws._appsync_made  # type: ignore[attr-defined]
    protocol = getattr(getattr(ws._response, "connection", None), "protocol", None)
    if made is not None and getattr(protocol, "_payload_parser", None) is made:
        ws._reader, ws._parser = queue, made
        protocol._payload = queue  # type: ignore[union-attr]
        return
    reader, parser = ws._appsync_theirs  # type: ignore[attr-defined]
    ws._reader = reader
    if parser is not None:
        ws._parser = parser


def _read_now(queue: Any) -> Any:
    """The first message of aiohttp's receive ``queue``, which holds one (never waits)."""
    coro = queue.read()
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()  # pragma: no cover - a message is queued: read() returns at once
    raise RuntimeError("the receive queue waited with a message queued")  # pragma: no cover


class _Protocol:
    """A connection protocol's flow control, for :func:`_entry_overhead`: never paused."""

    _reading_paused = False

    def pause_reading(self) -> None:  # pragma: no cover - the limit is never reached
        pass

    def resume_reading(self) -> None:  # pragma: no cover - never paused
        pass


_OVERHEADS: dict[type, int | None] = {}


def _entry_overhead(queue: Any) -> int | None:
    """What aiohttp's receive ``queue`` counts per message beyond its size, if one read of
    a stand-in entry accounts for several messages taken from its deque (else ``None``).

    Measured once per queue type on a queue of its own: messages are queued, two are
    taken from the deque, a stand-in of their sizes and one overhead is read, and the
    size left must be that of the third message alone.
    """
    if queue is None:
        return None
    kind = type(queue)
    if kind in _OVERHEADS:
        return _OVERHEADS[kind]
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop to make a probe with: not measured (nothing kept)
        return None
    overhead: int | None = None
    with contextlib.suppress(Exception):
        probe = kind(_Protocol(), 1 << 20, loop=loop)
        probe.feed_data("a", 10)
        measured = probe._size - 10
        probe.feed_data("b", 20)
        probe.feed_data("c", 30)
        first = probe._buffer.popleft()
        second = probe._buffer.popleft()
        probe._buffer.appendleft((None, first[1] + second[1] + measured))
        if (
            (first, second) == (("a", 10), ("b", 20))
            and measured >= 0
            and _read_now(probe) is None
            and probe._size == 30 + measured
            and _read_now(probe) == "c"
            and probe._size == 0
        ):
            overhead = measured
    _OVERHEADS[kind] = overhead
    return overhead


def _receive_queue(ws: aiohttp.ClientWebSocketResponse) -> tuple[Any, Any]:
    """aiohttp's connection protocol and receive queue under ``ws``, when the protocol's
    frame parser may be wrapped and the queue read synchronously (else ``(None, None)``).

    aiohttp's connection protocol hands every chunk from the socket to the WebSocket's
    frame parser (``_payload_parser.feed_data``), which puts each parsed message on the
    receive queue (``_payload``, also the response's ``_reader``): a deque ``_buffer`` of
    ``(message, size)``, read by the coroutine ``read()``, which returns without waiting
    when the deque is not empty.
    """
    connection = getattr(getattr(ws, "_response", None), "connection", None)
    protocol = getattr(connection, "protocol", None)
    queue = getattr(ws, "_reader", None)
    parser = getattr(protocol, "_payload_parser", None)
    if (
        protocol is not None
        and queue is not None
        and parser is not None
        and parser is getattr(ws, "_parser", None)
        and getattr(protocol, "_payload", None) is queue
        and getattr(protocol, "_payload_parser_failed", None) is False
        and callable(getattr(parser, "feed_data", None))
        and callable(getattr(parser, "feed_eof", None))
        and type(getattr(queue, "_buffer", None)) is deque
        and type(getattr(queue, "_size", None)) is int
        and callable(getattr(queue, "read", None))
        and callable(getattr(queue, "is_eof", None))
        and isinstance(getattr(ws, "closed", None), bool)
    ):
        return protocol, queue
    return None, None


def _direct_writer(ws: aiohttp.ClientWebSocketResponse) -> Any:
    """aiohttp's frame writer under ``ws`` if it can write a frame synchronously, else ``None``.

    aiohttp (3.11 and later) builds and writes an uncompressed frame in one synchronous
    step (``_write_websocket_frame``) and only then, in ``send_frame``, may wait for the
    socket to drain.  :meth:`WebSocket.send_now` uses that step alone when the socket
    needs no draining; a writer without it (an older aiohttp) or one that compresses is
    not used, and every frame goes through :meth:`WebSocket.send`.
    """
    writer = getattr(ws, "_writer", None)
    protocol = getattr(writer, "protocol", None)
    if (
        callable(getattr(writer, "_write_websocket_frame", None))
        and not getattr(writer, "compress", True)
        and isinstance(getattr(writer, "_closing", None), bool)
        and isinstance(getattr(protocol, "_paused", None), bool)
        and getattr(writer, "transport", None) is not None
    ):
        return writer
    return None


async def _check_upgrade(response: aiohttp.ClientResponse) -> None:
    """The session's status check: anything but ``101`` is a refusal; keep its body."""
    if response.status != 101:
        body = b""
        with contextlib.suppress(Exception):
            body = await response.content.read(MAX_REFUSAL_BODY)
        raise _Refused(response.status, body)


async def open_websocket(
    endpoint: str,
    *,
    subprotocols: Sequence[str],
    ssl: ssl_module.SSLContext | None,
    max_size: int | None,
    close_timeout: float | None,
) -> WebSocket:
    """Open a WebSocket to ``endpoint`` offering ``subprotocols``.

    No timeout of its own: the caller bounds it with the handshake timeout.  Cancelled,
    it closes whatever it opened before the cancellation propagates.  Proxies come from
    the environment (:func:`env_proxy`) except for loopback endpoints.

    Raises:
        UnauthorizedError: the upgrade was refused with HTTP 401 or 403.
        HandshakeError: any other refusal, a broken upgrade, or no connection at all.
    """
    import aiohttp

    proxy, proxy_authorization = env_proxy(endpoint)
    session = aiohttp.ClientSession(
        headers={"User-Agent": USER_AGENT},
        timeout=aiohttp.ClientTimeout(total=None),  # the handshake timeout covers it
        raise_for_status=_check_upgrade,
        ws_response_class=_response_class(max_size or 0),
    )
    try:
        ws = await session.ws_connect(
            endpoint,
            protocols=tuple(subprotocols),
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=close_timeout),
            autoclose=True,
            autoping=True,  # AppSync keeps alive with "ka" frames; pings are just answered
            heartbeat=None,
            max_msg_size=max_size or 0,
            ssl=ssl if ssl is not None else True,
            compress=0,
            proxy=proxy,
            proxy_headers=(
                {"Proxy-Authorization": proxy_authorization} if proxy_authorization else None
            ),
        )
    except BaseException as exc:
        await session.close()
        if isinstance(exc, _Refused):
            raise _status_error(exc.status, exc.body) from None
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            raise HandshakeError(
                f"the WebSocket handshake with {endpoint} failed: {exc.message}"
            ) from exc
        if isinstance(exc, aiohttp.ClientError | OSError):
            raise HandshakeError(f"cannot connect to {endpoint}: {exc}") from exc
        raise
    _adopt_queue(ws)
    return WebSocket(ws, session)


def _status_error(status: int, body: bytes) -> AppSyncEventsError:
    errors: tuple[ErrorDetail, ...] = ()
    with contextlib.suppress(RemoteProtocolError):
        errors = decode_error_body(body or b"{}")
    if status in (401, 403):
        return UnauthorizedError(errors, status=status, operation="connect")
    return HandshakeError(f"the server refused the WebSocket upgrade with HTTP {status}", errors)
