"""The write hold over real loopback sockets: the frames a reader handles back to back (a
read burst) reach each socket in order, in fewer transport writes; a write is never held
once the reader would wait; closes, aborts and faults keep their order; the caps flush
early.

A burst is made by writing several client frames in one go: the server reads them in
one ``recv`` and its reader handles them without waiting in between.  Each server-side
transport's writes are counted by wrapping its ``write`` (and ``abort``) on the instance.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from appsync_emulator import EmulatorServer, Limits, outbound, ws_connection
from appsync_emulator.faults import DelayReply, WithholdReply
from appsync_emulator.outbound import Cork
from appsync_emulator.ws_connection import WebSocketConnection

from .conftest import RawClient, fast_config, open_raw

CHANNEL = "/default/held"
_KA = '{"type":"ka"}'


def _client_frame(text: str) -> bytes:
    """A masked text frame as a client sends it (the zero mask leaves the payload as is)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
    return header + b"\0\0\0\0" + payload


def _publish_frame(client: RawClient, pub_id: str, value: int) -> bytes:
    return _client_frame(
        json.dumps(
            {
                "type": "publish",
                "id": pub_id,
                "channel": CHANNEL,
                "events": [json.dumps({"v": value})],
                "authorization": client.auth,
            }
        )
    )


def _burst(client: RawClient, frames: list[bytes]) -> None:
    """Send ``frames`` in one transport write: the server reads them as one burst."""
    transport: Any = client.ws.transport
    transport.write(b"".join(frames))


class Log:
    """The writes (and aborts) of one server-side transport, in order."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.calls: list[tuple[str, bytes]] = []
        write, abort = transport.write, transport.abort

        def counted_write(data: bytes) -> None:
            self.calls.append(("write", bytes(data)))
            write(data)

        def counted_abort() -> None:
            self.calls.append(("abort", b""))
            abort()

        transport.write = counted_write
        transport.abort = counted_abort

    @property
    def writes(self) -> list[bytes]:
        """The writes, but those of keep-alives alone (their timer's, not a burst's)."""
        return [
            data
            for call, data in self.calls
            if call == "write" and any(text != _KA for _, text in _frames(data))
        ]

    def texts(self) -> list[str]:
        """The text frames written (server frames are unmasked), in order, but ``ka``."""
        texts = [text for _, text in _frames(b"".join(self.writes)) if text is not None]
        return [text for text in texts if text != _KA]

    def since(self, mark: int) -> list[int]:
        """The opcodes of every frame written from call ``mark`` on."""
        data = b"".join(data for call, data in self.calls[mark:] if call == "write")
        return [opcode for opcode, _ in _frames(data)]

    def restore(self) -> None:
        for name in ("write", "abort"):
            self.transport.__dict__.pop(name, None)


def _frames(data: bytes) -> Iterator[tuple[int, str | None]]:
    """``(opcode, text or None)`` of each unmasked frame in ``data``."""
    while data:
        opcode, n = data[0] & 0x0F, data[1] & 0x7F
        start = 2
        if n == 126:
            (n,) = struct.unpack("!H", data[2:4])
            start = 4
        elif n == 127:
            (n,) = struct.unpack("!Q", data[2:10])
            start = 10
        payload = data[start : start + n]
        yield opcode, payload.decode() if opcode == 1 else None
        data = data[start + n :]


def _connections(server: EmulatorServer) -> dict[str, WebSocketConnection]:
    return dict(server.emulator.operations.subscribers)  # type: ignore[arg-type]


def _publisher_side(server: EmulatorServer, pub_log: Log) -> tuple[WebSocketConnection, Cork]:
    """The publisher's server-side connection (the one ``pub_log`` logs) and the cork."""
    (conn,) = [c for c in _connections(server).values() if c.transport is pub_log.transport]
    return conn, server.emulator.operations.cork


async def _setup(
    server: EmulatorServer, subscribers: int
) -> tuple[RawClient, list[RawClient], Log, list[Log]]:
    """A publisher and subscribers (s0, s1...), each server-side transport logged."""
    before = set(_connections(server))
    publisher = await open_raw(server)
    await publisher.init()
    (pub_id,) = set(_connections(server)) - before
    clients, logs = [], []
    for i in range(subscribers):
        known = set(_connections(server))
        client = await open_raw(server)
        await client.init()
        assert (await client.subscribe(CHANNEL, f"s{i}"))["type"] == "subscribe_success"
        (conn_id,) = set(_connections(server)) - known
        clients.append(client)
        logs.append(Log(_connections(server)[conn_id].transport))
    return publisher, clients, Log(_connections(server)[pub_id].transport), logs


async def _values(client: RawClient, sub_id: str, count: int) -> list[int]:
    values = []
    for _ in range(count):
        frame = await client.expect("data", id=sub_id)
        values.append(json.loads(frame["event"])["v"])
    return values


async def _close_all(*clients: RawClient) -> None:
    for client in clients:
        await client.ws.close()


@pytest.mark.asyncio
async def test_a_read_burst_reaches_each_socket_in_order_in_fewer_writes(
    server: EmulatorServer,
) -> None:
    publisher, subscribers, pub_log, sub_logs = await _setup(server, 2)
    count = 8
    _burst(publisher, [_publish_frame(publisher, f"p{i}", i) for i in range(count)])
    for i in range(count):
        await publisher.expect("publish_success", id=f"p{i}")
    for n, client in enumerate(subscribers):
        assert await _values(client, f"s{n}", count) == list(range(count))
    # In order on each socket, and in fewer writes than frames (one per socket when the
    # burst is read at once, as it is here).
    assert [json.loads(t)["id"] for t in pub_log.texts()] == [f"p{i}" for i in range(count)]
    assert len(pub_log.writes) < count
    for log in sub_logs:
        assert [json.loads(json.loads(t)["event"])["v"] for t in log.texts()] == list(range(count))
        assert len(log.writes) < count
    cork = server.emulator.operations.cork
    assert not cork.holding
    assert not cork.held
    # The recorder has every frame, in the same order.
    data = [r for r in server.emulator.recorder.sent if r.frame_type == "data"]
    assert len(data) == 2 * count
    await _close_all(publisher, *subscribers)


@pytest.mark.asyncio
async def test_a_lone_publish_is_written_before_the_reader_waits(server: EmulatorServer) -> None:
    publisher, subscribers, pub_log, sub_logs = await _setup(server, 1)
    await publisher.publish(CHANNEL, [json.dumps({"v": 1})], "p1")
    # Nothing follows it: its reply and data frame leave before the reader waits again
    # (waiting on the frames themselves: a held write would never arrive).
    await publisher.expect("publish_success", id="p1")
    assert await _values(subscribers[0], "s0", 1) == [1]
    assert len(pub_log.writes) == len(sub_logs[0].writes) == 1
    assert not server.emulator.operations.cork.held
    await _close_all(publisher, *subscribers)


@pytest.mark.asyncio
async def test_frames_that_need_a_coroutine_flush_the_burst_first() -> None:
    """A publish limit makes each publish a coroutine: what the burst held before it is
    written before it is awaited, and the order holds."""
    async with EmulatorServer(fast_config(limits=Limits(max_publish_per_second=1000))) as server:
        publisher, subscribers, pub_log, _ = await _setup(server, 1)
        _burst(publisher, [_publish_frame(publisher, f"p{i}", i) for i in range(4)])
        for i in range(4):
            await publisher.expect("publish_success", id=f"p{i}")
        assert await _values(subscribers[0], "s0", 4) == [0, 1, 2, 3]
        assert [json.loads(t)["id"] for t in pub_log.texts()] == ["p0", "p1", "p2", "p3"]
        await _close_all(publisher, *subscribers)
        server.check()


@pytest.mark.asyncio
async def test_a_close_frame_follows_every_frame_held_before_it(server: EmulatorServer) -> None:
    publisher, subscribers, pub_log, _ = await _setup(server, 1)
    conn, cork = _publisher_side(server, pub_log)
    # As a reader would: frames written while the hold is on, then a close.
    mark = len(pub_log.calls)
    cork.hold()
    conn.outbound.put_text('{"type":"ka"}', "ka", "")
    conn.outbound.put_text('{"type":"ka"}', "ka", "")
    assert cork.held  # held, not written yet
    assert pub_log.since(mark) == []
    await conn.close_now(4000, "bye")
    assert not cork.holding
    assert await publisher.closed() == (4000, "bye")
    assert pub_log.since(mark) == [1, 1, 8]  # both frames, then the close frame
    # Nothing is written after the close.
    conn.outbound.put_text('{"type":"ka"}', "ka", "")
    assert pub_log.since(mark) == [1, 1, 8]
    await _close_all(*subscribers)


@pytest.mark.asyncio
async def test_a_queued_close_goes_after_the_held_frames(server: EmulatorServer) -> None:
    publisher, subscribers, pub_log, _ = await _setup(server, 1)
    conn, cork = _publisher_side(server, pub_log)
    mark = len(pub_log.calls)
    cork.hold()
    conn.outbound.put_text('{"type":"ka"}', "ka", "")
    conn.schedule_close(4001, "later")
    conn.outbound.put_text('{"type":"ka"}', "ka", "")  # after the close: never sent
    cork.flush_held()
    assert await publisher.closed() == (4001, "later")
    assert pub_log.since(mark) == [1, 8]
    await _close_all(*subscribers)


@pytest.mark.asyncio
async def test_an_abort_writes_the_held_frames_first(server: EmulatorServer) -> None:
    publisher, subscribers, pub_log, sub_logs = await _setup(server, 1)
    conn, cork = _publisher_side(server, pub_log)
    mark, other_mark = len(pub_log.calls), len(sub_logs[0].calls)
    cork.hold()
    conn.outbound.put_text('{"type":"ka"}', "ka", "")
    other: Any = sub_logs[0].transport
    cork.write(other, b'\x81\x0d{"type":"ka"}')  # another socket's held write (a ka)
    conn.abort()
    # The aborted socket's held frame was written before the abort; the hold stopped,
    # so the other socket's was written too.
    assert [call for call, _ in pub_log.calls[mark:]] == ["write", "abort"]
    assert sub_logs[0].since(other_mark) == [1]
    assert not cork.holding
    assert not cork.held
    assert (await publisher.closed())[0] is None
    await _close_all(*subscribers)


@pytest.mark.asyncio
async def test_a_socket_aborted_while_held_gets_nothing_more(server: EmulatorServer) -> None:
    publisher, subscribers, pub_log, _ = await _setup(server, 1)
    cork = server.emulator.operations.cork
    transport: Any = pub_log.transport
    mark = len(pub_log.calls)
    cork.hold()
    cork.write(transport, b"\x81\x00")
    transport.abort()  # not through the connection: the flush skips a closing transport
    cork.flush_held()
    assert [call for call, _ in pub_log.calls[mark:]] == ["abort"]
    assert (await publisher.closed())[0] is None
    await _close_all(*subscribers)


@pytest.mark.asyncio
async def test_delayed_and_withheld_replies_keep_the_burst_in_order(
    server: EmulatorServer,
) -> None:
    publisher, subscribers, pub_log, sub_logs = await _setup(server, 1)
    with server.inject(DelayReply(0.05, match="publish_success")):
        _burst(publisher, [_publish_frame(publisher, f"p{i}", i) for i in range(4)])
        # The data frames leave with the burst; the replies when their timers fire.
        assert await _values(subscribers[0], "s0", 4) == [0, 1, 2, 3]
        for i in range(4):
            await publisher.expect("publish_success", id=f"p{i}")
    assert len(sub_logs[0].writes) < 4
    with server.inject(WithholdReply(match="publish_success")):
        _burst(publisher, [_publish_frame(publisher, f"q{i}", 10 + i) for i in range(3)])
        assert await _values(subscribers[0], "s0", 3) == [10, 11, 12]
    _burst(publisher, [_publish_frame(publisher, "r0", 20)])
    await publisher.expect("publish_success", id="r0")  # no q* reply came before it
    assert await _values(subscribers[0], "s0", 1) == [20]
    assert [json.loads(t)["id"] for t in pub_log.texts()] == ["p0", "p1", "p2", "p3", "r0"]
    await _close_all(publisher, *subscribers)


@pytest.mark.asyncio
async def test_the_per_socket_cap_writes_early_in_order(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound, "HOLD_WRITES", 3)
    publisher, subscribers, pub_log, sub_logs = await _setup(server, 1)
    count = 9
    _burst(publisher, [_publish_frame(publisher, f"p{i}", i) for i in range(count)])
    for i in range(count):
        await publisher.expect("publish_success", id=f"p{i}")
    assert await _values(subscribers[0], "s0", count) == list(range(count))
    # Three writes held per socket at most: a fourth writes the four at once.
    for log in (pub_log, sub_logs[0]):
        assert len(log.writes) >= 3
        assert len(log.texts()) == count
    assert [json.loads(t)["id"] for t in pub_log.texts()] == [f"p{i}" for i in range(count)]
    await _close_all(publisher, *subscribers)


@pytest.mark.asyncio
async def test_the_byte_cap_writes_every_socket_early(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound, "HOLD_BYTES", 1)  # every held write passes it
    publisher, subscribers, pub_log, sub_logs = await _setup(server, 1)
    count = 5
    _burst(publisher, [_publish_frame(publisher, f"p{i}", i) for i in range(count)])
    for i in range(count):
        await publisher.expect("publish_success", id=f"p{i}")
    assert await _values(subscribers[0], "s0", count) == list(range(count))
    assert len(pub_log.writes) == len(sub_logs[0].writes) == count
    await _close_all(publisher, *subscribers)


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


def test_the_cork_holds_per_socket_in_order_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    cork = Cork()
    a, b = FakeTransport(), FakeTransport()
    cork.write(a, b"0")  # not holding: at once
    assert a.writes == [b"0"]
    cork.hold()
    cork.write(a, b"1")
    cork.write(b, b"x")
    cork.write(a, b"2")
    assert a.writes == [b"0"]
    assert b.writes == []
    assert cork.held_bytes == 3
    cork.flush_held()
    assert a.writes == [b"0", b"12"]
    assert b.writes == [b"x"]
    assert not cork.holding
    assert cork.held_bytes == 0
    cork.flush_held()  # nothing held: nothing written
    assert a.writes == [b"0", b"12"]
    # The per-socket cap writes that socket's writes at once, the others stay held.
    monkeypatch.setattr(outbound, "HOLD_WRITES", 2)
    cork.hold()
    cork.write(b, b"y")
    cork.write(a, b"3")
    cork.write(a, b"4")
    assert a.writes[-1] == b"34"
    assert cork.held == {b: [b"y"]}
    assert cork.held_bytes == 1
    assert cork.holding
    # The byte cap writes every socket at once and goes on holding.
    monkeypatch.setattr(outbound, "HOLD_WRITES", 64)
    monkeypatch.setattr(outbound, "HOLD_BYTES", 3)
    cork.write(b, b"zz")
    cork.write(a, b"5")
    assert b.writes == [b"x", b"yzz"]
    assert a.writes[-1] == b"5"
    assert cork.held == {}
    assert cork.holding
    cork.flush_held()


@pytest.mark.asyncio
async def test_without_a_visible_read_buffer_every_frame_is_written_before_the_next_read(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader whose buffer cannot be seen may wait on any read: nothing is held across
    one (each publish's frames are written before the next is read)."""
    assert ws_connection._read_buffer(object()) is None  # type: ignore[arg-type]
    monkeypatch.setattr(ws_connection, "_read_buffer", lambda ws: None)
    publisher, subscribers, pub_log, sub_logs = await _setup(server, 1)
    count = 4
    _burst(publisher, [_publish_frame(publisher, f"p{i}", i) for i in range(count)])
    for i in range(count):
        await publisher.expect("publish_success", id=f"p{i}")
    assert await _values(subscribers[0], "s0", count) == list(range(count))
    assert len(pub_log.writes) == len(sub_logs[0].writes) == count
    await _close_all(publisher, *subscribers)


@pytest.mark.asyncio
async def test_binary_frames_in_a_burst_keep_their_place(server: EmulatorServer) -> None:
    """A binary frame's ``error`` answer is held with the burst's other frames, in order."""
    publisher, subscribers, pub_log, _ = await _setup(server, 1)
    binary = bytes((0x82, 0x80 | 3)) + b"\0\0\0\0" + b"abc"
    _burst(
        publisher,
        [_publish_frame(publisher, "p0", 0), binary, _publish_frame(publisher, "p1", 1)],
    )
    await publisher.expect("publish_success", id="p0")
    await publisher.expect("error")
    await publisher.expect("publish_success", id="p1")
    assert await _values(subscribers[0], "s0", 2) == [0, 1]
    assert [json.loads(t)["type"] for t in pub_log.texts()] == [
        "publish_success",
        "error",
        "publish_success",
    ]
    assert len(pub_log.writes) < 3
    await _close_all(publisher, *subscribers)
