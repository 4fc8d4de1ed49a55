"""Text frames taken in the socket's callback (``WebSocket.feed``), and the plain reader.

A raw aiohttp server writes chosen frames in one transport write, so that the client
parses them from one chunk: text frames mixed with pings, closes and bad frames, a
burst larger than a paused subscription's inbox.  Each test runs on both read paths:
``fed`` (frames taken as they are parsed) and ``plain`` (every frame through the reader
task's ``receive()``, as when the installed aiohttp does not allow the other).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web

import appsync_events
from appsync_events import Overflow, PublishResult, Subscription, _transport, authorizer
from appsync_events._transport import (
    _OVERHEADS,
    PLAIN_READ_ENV,
    WebSocket,
    _DirectQueue,
    _entry_overhead,
    _receive_queue,
)
from appsync_events.connection import Connection
from appsync_events.errors import ConnectionClosedError
from appsync_events.protocol import codec

from .helpers import API_KEY, WAIT, serve_realtime

pytestmark = pytest.mark.asyncio


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server frame."""
    size = len(payload)
    if size < 126:
        return struct.pack("!BB", 0x80 | opcode, size) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, size) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, size) + payload


def text(obj: Any) -> bytes:
    return frame(0x1, json.dumps(obj).encode())


def data(sub_id: str, n: int) -> bytes:
    return text({"type": "data", "id": sub_id, "event": json.dumps({"n": n})})


PING = frame(0x9, b"are you there")
KA = text({"type": "ka"})


def close(code: int, reason: str) -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason.encode())


class RawServer:
    """Acks, accepts subscriptions, then writes what the test gives it, as it is."""

    def __init__(self) -> None:
        self.port = 0
        self.received: asyncio.Queue[tuple[WSMsgType, Any]] = asyncio.Queue()
        self.subscribed: asyncio.Queue[str] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("aws-appsync-event-ws",), autoping=False)
        await ws.prepare(request)
        self.transport = request.transport  # type: ignore[assignment]
        while True:
            msg = await ws.receive()
            if msg.type is not WSMsgType.TEXT:
                await self.received.put((msg.type, msg.data))
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
                continue
            message = json.loads(msg.data)
            if message["type"] == "connection_init":
                await ws.send_str(json.dumps({"type": "connection_ack"}))
            elif message["type"] == "subscribe":
                await ws.send_str(json.dumps({"type": "subscribe_success", "id": message["id"]}))
                await self.subscribed.put(message["id"])
            elif message["type"] == "unsubscribe":
                await ws.send_str(json.dumps({"type": "unsubscribe_success", "id": message["id"]}))
            else:
                await self.received.put((msg.type, message))
        return ws

    def write(self, *frames: bytes) -> None:
        """Write ``frames`` in one transport write."""
        assert self.transport is not None
        self.transport.write(b"".join(frames))

    async def __aenter__(self) -> RawServer:
        self.runner, self.port = await serve_realtime(self._handle)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    async def connect(self, **kwargs: Any) -> appsync_events.Client:
        authz = authorizer.ApiKey(api_key=API_KEY, endpoint=f"http://127.0.0.1:{self.port}/event")
        kwargs.setdefault("operation_timeout", WAIT)
        return await appsync_events.connect(
            f"ws://127.0.0.1:{self.port}/event/realtime", authorizer=authz, **kwargs
        )


@pytest.fixture(params=["fed", "fed-stdlib", "plain"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on both read paths (the fed one also without the fast parser, as
    without ``orjson``)."""
    if request.param == "plain":
        monkeypatch.setenv(PLAIN_READ_ENV, "1")
    else:
        monkeypatch.delenv(PLAIN_READ_ENV, raising=False)
    if request.param == "fed-stdlib":
        monkeypatch.setattr(codec, "_FAST", None)
    name: str = request.param
    return name


@pytest_asyncio.fixture
async def server() -> AsyncIterator[RawServer]:
    async with RawServer() as s:
        yield s


def connection(client: appsync_events.Client) -> Connection:
    conn: Connection = client._connection
    return conn


def check_path(client: appsync_events.Client, path: str) -> None:
    assert (connection(client).ws._feed is not None) is (path != "plain")


async def test_mixed_chunk_in_order(server: RawServer, path: str) -> None:
    """Text, ping, text, close in one chunk: both events, the pong, then the close."""
    client = await server.connect()
    check_path(client, path)
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    server.write(data(sub_id, 1), PING, KA, data(sub_id, 2), close(4000, "bye"))
    async with asyncio.timeout(WAIT):
        assert (await sub.next()).json() == {"n": 1}
        assert (await sub.next()).json() == {"n": 2}
        with pytest.raises(ConnectionClosedError) as caught:
            await sub.next()
        assert caught.value.code == 4000
        assert await server.received.get() == (WSMsgType.PONG, b"are you there")
    await client.close()


async def test_frames_after_a_ping_are_taken_again(server: RawServer, path: str) -> None:
    """After a ping (read by the reader task), later chunks of text are taken as before."""
    client = await server.connect()
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    async with asyncio.timeout(WAIT):
        for n in range(5):
            server.write(data(sub_id, 2 * n), PING)
            assert (await sub.next()).json() == {"n": 2 * n}
            assert await server.received.get() == (WSMsgType.PONG, b"are you there")
            server.write(data(sub_id, 2 * n + 1))
            assert (await sub.next()).json() == {"n": 2 * n + 1}
    if path == "fed":
        assert connection(client).ws._feed is not None
    await client.close()


async def test_answers_are_taken_in_the_callback(server: RawServer, path: str) -> None:
    """An answer resolves its operation; the publish over HTTP is not involved here."""
    client = await server.connect()
    check_path(client, path)
    subs = [await client.subscribe(f"default/{n}") for n in range(3)]
    ids = [await server.subscribed.get() for _ in subs]
    server.write(*(data(sub_id, n) for n, sub_id in enumerate(ids)))
    async with asyncio.timeout(WAIT):
        for n, sub in enumerate(subs):
            assert (await sub.next()).json() == {"n": n}
    await client.close()


async def test_pause_with_frames_queued(
    server: RawServer, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PAUSE: a burst of five inboxes arrives in one chunk; reading stops at a full inbox
    with the rest queued, and every event arrives, in order, as the consumer reads."""
    paused = asyncio.Event()
    pause_reading = Connection._pause_reading

    async def pausing(self: Connection) -> None:
        paused.set()
        await pause_reading(self)

    monkeypatch.setattr(Connection, "_pause_reading", pausing)
    client = await server.connect()
    sub = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=4)
    sub_id = await server.subscribed.get()
    conn = connection(client)
    server.write(*(data(sub_id, n) for n in range(20)), KA)
    async with asyncio.timeout(WAIT):
        await paused.wait()
        assert len(sub._inbox) == 4
        assert conn.ws.frames  # the rest waits in the receive queue
        got = [(await sub.next()).json() for _ in range(20)]
        assert got == [{"n": n} for n in range(20)]
        # Reading resumed: later frames arrive as before.
        server.write(data(sub_id, 20))
        assert (await sub.next()).json() == {"n": 20}
    assert conn._hold is None
    await client.close()


async def test_pause_then_close_in_the_queue(server: RawServer, path: str) -> None:
    """PAUSE with a close frame queued behind the burst: every event, then the close."""
    client = await server.connect()
    sub = await client.subscribe("default/a", overflow=Overflow.PAUSE, capacity=2)
    sub_id = await server.subscribed.get()
    server.write(*(data(sub_id, n) for n in range(6)), close(4001, "later"))
    async with asyncio.timeout(WAIT):
        got = [(await sub.next()).json() for _ in range(6)]
        assert got == [{"n": n} for n in range(6)]
        with pytest.raises(ConnectionClosedError) as caught:
            await sub.next()
        assert caught.value.code == 4001
    await client.close()


async def test_error_while_handling_a_frame_fails_the_connection(
    server: RawServer, path: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception handling a frame fails the connection with a clear error; nothing
    reaches aiohttp or the event loop's exception handler."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    try:
        client = await server.connect()
        sub = await client.subscribe("default/a")
        sub_id = await server.subscribed.get()
        conn = connection(client)
        protocol = conn.protocol
        receive_event = protocol.receive_event

        def broken(frame: str) -> Any:
            if ": 2}" in frame:
                raise ZeroDivisionError("boom")
            return receive_event(frame)

        protocol.receive_event = broken  # type: ignore[method-assign]
        # The reader parses events itself when the fast parser is there: break that too.
        fast = codec._FAST
        if fast is not None:

            def broken_parse(frame: str) -> Any:
                if ": 2}" in frame:
                    raise ZeroDivisionError("boom")
                return fast(frame)

            monkeypatch.setattr(codec, "_FAST", broken_parse)
        with caplog.at_level(logging.ERROR, logger="appsync_events.client"):
            server.write(data(sub_id, 1), data(sub_id, 2), data(sub_id, 3))
            async with asyncio.timeout(WAIT):
                assert (await sub.next()).json() == {"n": 1}
                with pytest.raises(ConnectionClosedError, match="internal error") as caught:
                    await sub.next()
                assert isinstance(caught.value.__cause__, ZeroDivisionError)
                await conn.wait_closed()
        assert "background task appsync-events reader failed" in caplog.text
        await client.close()
    finally:
        loop.set_exception_handler(None)
    assert unhandled == []


async def test_invalid_frame_after_text(server: RawServer, path: str) -> None:
    """A frame aiohttp refuses (invalid UTF-8) after an event: the event, then 1007."""
    client = await server.connect()
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    server.write(data(sub_id, 1), frame(0x1, b"\xff\xfe"))
    async with asyncio.timeout(WAIT):
        assert (await sub.next()).json() == {"n": 1}
        with pytest.raises(ConnectionClosedError) as caught:
            await sub.next()
    assert caught.value.code == 1007
    await client.close()


async def test_dropped_connection_while_taking_frames(server: RawServer, path: str) -> None:
    """The server drops the TCP connection after a chunk: events, then 1006."""
    client = await server.connect()
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    server.write(data(sub_id, 1), data(sub_id, 2))
    assert server.transport is not None
    server.transport.abort()
    async with asyncio.timeout(WAIT):
        assert (await sub.next()).json() == {"n": 1}
        assert (await sub.next()).json() == {"n": 2}
        with pytest.raises(ConnectionClosedError) as caught:
            await sub.next()
    assert caught.value.code == 1006
    await client.close()


async def test_client_close_while_taking_frames(server: RawServer, path: str) -> None:
    """Closing the client while the reader waits for frames: the closing handshake."""
    client = await server.connect()
    await client.subscribe("default/a")
    await server.subscribed.get()
    await client.close()
    async with asyncio.timeout(WAIT):
        assert await server.received.get() == (WSMsgType.CLOSE, 1000)


async def test_large_chunk_over_the_queue_limit(server: RawServer, path: str) -> None:
    """More bytes in one chunk than aiohttp's receive queue holds: it stops parsing, and
    resumes as frames are taken; every event arrives, in order."""
    client = await server.connect()
    sub = await client.subscribe("default/a", capacity=1000)
    sub_id = await server.subscribed.get()
    big = "x" * 2000
    server.write(
        *(
            text({"type": "data", "id": sub_id, "event": json.dumps({"n": n, "b": big})})
            for n in range(500)
        )
    )
    async with asyncio.timeout(WAIT):
        for n in range(500):
            assert (await sub.next()).json()["n"] == n
    # The frames taken before a read was woken are reported right after that read (one
    # callback, already scheduled): one loop turn.
    await asyncio.sleep(0)
    queue = connection(client).ws._queue
    assert queue is not None
    assert queue._size == 0  # every frame taken was accounted for
    assert not queue._protocol._reading_paused
    await client.close()


async def test_receive_queue_checks() -> None:
    """The callback is not installed when aiohttp's internals are not as expected."""

    class Bare:
        pass

    assert _receive_queue(Bare()) == (None, None)  # type: ignore[arg-type]
    assert _entry_overhead(None) is None
    assert _entry_overhead(Bare()) is None  # cannot be made as aiohttp's queue is
    assert Bare in _OVERHEADS
    assert _entry_overhead(Bare()) is None  # measured once per type


async def test_plain_path_when_the_internals_differ(
    server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An aiohttp without the expected internals: every frame through ``receive()``."""
    monkeypatch.delenv(PLAIN_READ_ENV, raising=False)
    monkeypatch.setattr(_transport, "_receive_queue", lambda ws: (None, None))
    client = await server.connect()
    ws: WebSocket = connection(client).ws
    assert ws._feed is None
    assert ws.pending()  # nothing to wait for: receive() is the way to read
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    server.write(data(sub_id, 1), PING, data(sub_id, 2))
    async with asyncio.timeout(WAIT):
        assert (await sub.next()).json() == {"n": 1}
        assert (await sub.next()).json() == {"n": 2}
    await client.close()


async def test_entry_overhead_of_both_aiohttp_queues() -> None:
    """aiohttp's compiled receive queue and its pure-Python one account alike."""
    from aiohttp._websocket import reader, reader_py

    loop = asyncio.get_running_loop()
    for kind in {reader.WebSocketDataQueue, reader_py.WebSocketDataQueue}:
        queue = kind(None, 1024, loop=loop)  # type: ignore[arg-type]
        assert _entry_overhead(queue) == reader_py.MSG_SIZE_OVERHEAD


async def test_frames_logged_at_debug(
    server: RawServer, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With DEBUG logging, every frame taken is logged, and delivered as without it."""
    caplog.set_level(logging.DEBUG, logger="appsync_events")
    client = await server.connect()
    check_path(client, path)
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    server.write(data(sub_id, 1), KA, data(sub_id, 2))
    async with asyncio.timeout(WAIT):
        assert (await sub.next()).json() == {"n": 1}
        assert (await sub.next()).json() == {"n": 2}
    await client.close()
    received = [r.getMessage() for r in caplog.records if "] < " in r.getMessage()]
    assert sum('"type": "data"' in m for m in received) == 2
    assert any('"type": "ka"' in m for m in received)


async def test_entry_overhead_needs_a_running_loop() -> None:
    """Without a running loop (here: in another thread) nothing is measured or kept."""
    from aiohttp._websocket import reader_py

    class Queue(reader_py.WebSocketDataQueue):
        pass

    queue = Queue(None, 1024, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    assert await asyncio.to_thread(_entry_overhead, queue) is None
    assert Queue not in _OVERHEADS
    assert _entry_overhead(queue) == reader_py.MSG_SIZE_OVERHEAD  # with one: measured


async def test_wait_frames_waits_without_the_lost_future(
    server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the TCP connection already released (no ``lost()`` future) and the end of the
    queue not there yet, ``wait_frames()`` still waits (it never spins) until woken."""
    from appsync_events._transport import open_websocket

    monkeypatch.delenv(PLAIN_READ_ENV, raising=False)
    ws = await open_websocket(
        f"ws://127.0.0.1:{server.port}/event/realtime",
        subprotocols=["aws-appsync-event-ws"],
        ssl=None,
        max_size=None,
        close_timeout=WAIT,
    )
    try:
        assert ws.feed(lambda: None)
        monkeypatch.setattr(WebSocket, "lost", lambda self: None)
        waiting = ws.wait_frames()
        assert isinstance(waiting.send(None), asyncio.Future)  # suspended on its waiter
        ws.wake()
        with pytest.raises(StopIteration):
            waiting.send(None)
    finally:
        monkeypatch.undo()
        await ws.close(1000)


@pytest.mark.parametrize("debug", [False, True])
async def test_publish_answers_in_one_chunk(
    server: RawServer, path: str, debug: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Answers to concurrent publishes, an event and a late duplicate answer in one chunk:
    each publish gets its own result, the event arrives, the duplicate is ignored."""
    if debug:
        caplog.set_level(logging.DEBUG, logger="appsync_events")
    client = await server.connect()
    check_path(client, path)
    assert connection(client).debug is debug
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    publishes = [asyncio.ensure_future(client.publish("default/b", n)) for n in range(3)]
    async with asyncio.timeout(WAIT):
        ids = [(await server.received.get())[1]["id"] for _ in publishes]

        def answer(n: int) -> bytes:
            return text(
                {
                    "type": "publish_success",
                    "id": ids[n],
                    "successful": [{"identifier": f"e{n}", "index": 0}],
                    "failed": [],
                }
            )

        server.write(answer(2), data(sub_id, 7), answer(0), answer(1), answer(1))
        results = await asyncio.gather(*publishes)
        assert [r.successful[0].identifier for r in results] == ["e0", "e1", "e2"]
        assert (await sub.next()).json() == {"n": 7}
        # Ordered after the duplicate answer: read once this arrives.
        server.write(KA, data(sub_id, 8))
        assert (await sub.next()).json() == {"n": 8}
    assert connection(client)._waiters == {}
    await client.close()


async def test_publish_now_on_a_failed_connection(server: RawServer, path: str) -> None:
    """``publish_now`` raises the connection's failure and sends nothing."""
    client = await server.connect()
    conn = connection(client)
    prepared = conn.protocol.prepare_publish("default/a", ["1"], html_escape=False)
    failure = ConnectionClosedError(4000, "gone")
    conn.fail(failure)
    with pytest.raises(ConnectionClosedError) as caught:
        conn.publish_now("op-1", prepared, None)
    assert caught.value is failure
    assert "op-1" not in conn.protocol.pending
    await client.close()


def publish_answer(operation_id: str, identifier: str) -> bytes:
    return text(
        {
            "type": "publish_success",
            "id": operation_id,
            "successful": [{"identifier": identifier, "index": 0}],
            "failed": [],
        }
    )


async def test_answer_after_an_event_waits_for_the_woken_read(server: RawServer, path: str) -> None:
    """An event for a waiting read, then a publish's answer, then more in one chunk: the
    read gets its event before the answer is parsed (taken in the socket's callback), and
    everything arrives, in order."""
    client = await server.connect()
    check_path(client, path)
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    publishing = [asyncio.ensure_future(client.publish("default/a", n)) for n in range(2)]
    async with asyncio.timeout(WAIT):
        ids = [(await server.received.get())[1]["id"] for _ in publishing]
        server.write(
            data(sub_id, 1),
            publish_answer(ids[0], "e0"),
            data(sub_id, 2),
            publish_answer(ids[1], "e1"),
        )
        assert (await sub.next()).json() == {"n": 1}  # waits: the chunk is not read yet
        # The fed path left the answer for a callback behind this read.
        assert connection(client)._waiters[ids[0]].done() is (path == "plain")
        assert (await sub.next()).json() == {"n": 2}
        results = await asyncio.gather(*publishing)
        assert [r.successful[0].identifier for r in results] == ["e0", "e1"]
        server.write(KA, data(sub_id, 3))
        assert (await sub.next()).json() == {"n": 3}
    assert connection(client)._waiters == {}
    await client.close()


async def _publish_in_flight(
    server: RawServer,
) -> tuple[appsync_events.Client, Subscription, str, asyncio.Future[PublishResult], str]:
    """A client subscribed to ``default/a`` (and the subscription's id), and a publish the
    server received and has not answered (and its operation id)."""
    client = await server.connect()
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    publishing = asyncio.ensure_future(client.publish("default/a", 1))
    async with asyncio.timeout(WAIT):
        operation_id: str = (await server.received.get())[1]["id"]
    return client, sub, sub_id, publishing, operation_id


async def test_answer_left_for_later_then_a_close(server: RawServer, path: str) -> None:
    """An event, a publish's answer and a close in one chunk: the answer left for later is
    taken, then the close is read by the reader task."""
    client, sub, sub_id, publishing, operation_id = await _publish_in_flight(server)
    async with asyncio.timeout(WAIT):
        server.write(data(sub_id, 1), publish_answer(operation_id, "e0"), close(4000, "bye"))
        assert (await sub.next()).json() == {"n": 1}  # waits: the chunk is not read yet
        assert (await publishing).successful[0].identifier == "e0"
        with pytest.raises(ConnectionClosedError) as caught:
            await sub.next()
        assert caught.value.code == 4000
    await client.close()


async def test_answer_left_for_later_when_the_reader_stopped_waiting(
    server: RawServer, path: str
) -> None:
    """The reader stops waiting in the socket's callback (as a close does) right after the
    read got its event, before the answer left for later is taken: the reader task reads
    the answer itself."""
    client, sub, sub_id, publishing, operation_id = await _publish_in_flight(server)
    async with asyncio.timeout(WAIT):
        server.write(data(sub_id, 1), publish_answer(operation_id, "e0"))
        assert (await sub.next()).json() == {"n": 1}  # waits: the chunk is not read yet
        connection(client).ws.wake()
        assert (await publishing).successful[0].identifier == "e0"
        server.write(data(sub_id, 2))
        assert (await sub.next()).json() == {"n": 2}
    await client.close()


async def test_event_for_a_subscription_the_client_no_longer_holds(
    server: RawServer, path: str
) -> None:
    """An event for an id the core still routes (say, a late subscribe it unsubscribes at
    once) but no subscription object holds is dropped; the next event goes through."""
    client = await server.connect()
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    conn = connection(client)
    conn.protocol._active["ghost"] = "default/ghost"
    server.write(data("ghost", 1), data(sub_id, 2))
    async with asyncio.timeout(WAIT):
        assert (await sub.next()).json() == {"n": 2}
    assert sub.pending == 0
    await client.close()


def count_direct(client: appsync_events.Client) -> list[Any]:
    """The messages the fed path's ``on_frame`` is given (frames taken as parsed)."""
    feed = connection(client).ws._feed
    assert feed is not None
    assert feed.direct is not None
    seen: list[Any] = []
    start, on_frame, end = feed.direct

    def counting(message: Any, size: int) -> None:
        seen.append(message)
        on_frame(message, size)

    feed.direct = (start, counting, end)
    return seen


async def test_only_big_chunks_are_taken_as_they_are_parsed(server: RawServer) -> None:
    """A chunk shorter than DIRECT_MIN_CHUNK (a lone event, say) is queued as before; a
    longer one is taken as aiohttp parses it."""
    client = await server.connect()
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    seen = count_direct(client)
    async with asyncio.timeout(WAIT):
        server.write(data(sub_id, 0))
        assert (await sub.next()).json() == {"n": 0}
        assert seen == []
        flood = [data(sub_id, n) for n in range(1, 101)]
        assert sum(map(len, flood)) >= _transport.DIRECT_MIN_CHUNK
        server.write(*flood)
        for n in range(1, 101):
            assert (await sub.next()).json() == {"n": n}
    assert seen  # (the socket may cut the flood into chunks of any size)
    await client.close()


async def test_events_taken_as_they_are_parsed(
    server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the fast parser, a chunk of events is taken as aiohttp parses it, never
    queued; a ping ends that: it and the rest of its chunk are queued, in order."""
    monkeypatch.setattr(_transport, "DIRECT_MIN_CHUNK", 0)  # small chunks too
    client = await server.connect()
    ws = connection(client).ws
    assert isinstance(ws._queue, _DirectQueue)
    assert ws._protocol is not None
    assert ws._protocol._payload is ws._queue
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    seen = count_direct(client)
    async with asyncio.timeout(WAIT):
        server.write(*(data(sub_id, n) for n in range(5)))
        for n in range(5):
            assert (await sub.next()).json() == {"n": n}
        assert len(seen) == 5
        server.write(data(sub_id, 5), PING, data(sub_id, 6), data(sub_id, 7))
        for n in range(5, 8):
            assert (await sub.next()).json() == {"n": n}
        assert await server.received.get() == (WSMsgType.PONG, b"are you there")
    assert len(seen) == 7  # the ping is declined; the two events after it are queued
    assert seen[-1].type is WSMsgType.PING
    assert not ws.frames
    await client.close()


async def test_frames_not_taken_as_parsed_while_some_are_queued(
    server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pause stops taking frames as they are parsed (the rest of the chunk is queued),
    and a chunk that arrives while frames wait in the queue is queued behind them."""
    monkeypatch.setattr(_transport, "DIRECT_MIN_CHUNK", 0)  # small chunks too
    client = await server.connect(
        backpressure=appsync_events.Backpressure(subscription_events=2, overflow="pause")
    )
    sub = await client.subscribe("default/a")
    sub_id = await server.subscribed.get()
    seen = count_direct(client)
    async with asyncio.timeout(WAIT):
        server.write(*(data(sub_id, n) for n in range(4)))
        assert (await sub.next()).json() == {"n": 0}  # the second filled the inbox: paused
        server.write(data(sub_id, 4))
        for n in range(1, 5):
            assert (await sub.next()).json() == {"n": n}
    assert len(seen) == 2  # the first event (wakes the read), the second (fills the inbox)
    await client.close()


async def test_response_keeps_aiohttp_queue_and_parser_when_unexpected() -> None:
    """The response gives aiohttp's parser a queue of its own only for an uncompressed
    connection with aiohttp's queue, and keeps it only if the connection feeds the parser
    made for it; otherwise aiohttp's queue and parser stay, or come back."""
    from aiohttp import ClientWSTimeout
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader

    class Upgrade:
        def __init__(self, parser: object = None) -> None:
            self.connection = types.SimpleNamespace(
                protocol=types.SimpleNamespace(_payload_parser=parser, _payload=None)
            )

    response_class = _transport._response_class(0)
    assert _transport._response_class(0) is response_class  # made once per size
    loop = asyncio.get_running_loop()

    def make(reader: Any, compress: int = 0, upgrade: Upgrade | None = None) -> Any:
        return response_class(
            reader,
            None,
            None,
            upgrade or Upgrade(),
            ClientWSTimeout(),
            True,
            True,
            loop,
            compress=compress,
        )

    def queue() -> Any:
        return WebSocketDataQueue(_transport._Protocol(), 1024, loop=loop)  # type: ignore[arg-type]

    for theirs, compress in ((queue(), 15), (NotAiohttps(), 0)):
        ws = make(theirs, compress)
        assert ws._reader is theirs
        ws._parser = parser = object()
        assert ws._parser is parser
        _transport._adopt_queue(ws)  # nothing to adopt
        assert (ws._reader, ws._parser) == (theirs, parser)

    # The expected way: aiohttp sets its parser, then feeds the one read back.
    theirs = queue()
    upgrade = Upgrade()
    ws = make(theirs, upgrade=upgrade)
    assert isinstance(ws._reader, _DirectQueue)
    assert type(ws._reader) is _transport._direct_queue_class(WebSocketDataQueue)
    their_parser = WebSocketReader(theirs, 0, compress=False, decode_text=True)
    ws._parser = their_parser
    mine = ws._parser
    assert mine is not their_parser
    ws._parser = their_parser  # once made, kept: a later parser is taken as it is
    assert ws._parser is their_parser
    ws._parser = mine
    protocol = upgrade.connection.protocol
    protocol._payload_parser = mine
    _transport._adopt_queue(ws)
    assert protocol._payload is ws._reader
    assert isinstance(ws._reader, _DirectQueue)
    _transport._adopt_queue(ws)  # once
    assert protocol._payload is ws._reader

    # The connection feeds aiohttp's parser, or no parser was ever set: aiohttp's back.
    for set_parser in (True, False):
        theirs = queue()
        ws = make(theirs)
        their_parser = WebSocketReader(theirs, 0, compress=False, decode_text=True)
        if set_parser:
            ws._parser = their_parser
        _transport._adopt_queue(ws)
        assert ws._reader is theirs
        assert ws._parser is (their_parser if set_parser else None)


class NotAiohttps:
    """A receive queue of another kind."""


async def test_response_class_of_an_older_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without aiohttp's ``_websocket`` package (before 3.11), aiohttp's own response."""
    import sys

    from aiohttp import ClientWebSocketResponse

    from appsync_events import _transport

    monkeypatch.setitem(sys.modules, "aiohttp._websocket.reader", None)
    assert _transport._response_class.__wrapped__(0) is ClientWebSocketResponse
