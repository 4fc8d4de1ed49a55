"""The outbound queue's write paths, with a fake socket: the fan-out's direct writes (one
write per subscriber, decided when the fan-out reaches it and made when the cork is
released), the queue and its writer under backpressure, closes and cancellation."""

from __future__ import annotations

import asyncio
import json
import logging
import struct

import pytest

from appsync_emulator._logging import ConnectionLogger
from appsync_emulator.faults import FaultPlan
from appsync_emulator.outbound import Cork, FramedEvents, OutboundQueue
from appsync_emulator.recorder import ConnectionInfo, Recorder
from appsync_events.protocol import codec


class FakeSocket:
    """The transport, its protocol's flow control and the WebSocket's closed flag."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.writing_paused = False
        self.closing = False
        self.closed = False
        self.resumed = asyncio.Event()
        self.draining = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    async def drain(self) -> None:
        self.draining.set()
        await self.resumed.wait()

    def resume(self) -> None:
        self.writing_paused = False
        self.resumed.set()

    def texts(self) -> list[str]:
        """The text frames written, in order (unmasked, uncompressed, unfragmented)."""
        data = b"".join(self.writes)
        out: list[str] = []
        while data:
            assert data[0] == 0x81, data[:2]
            size, start = data[1], 2
            if size == 126:
                size, start = struct.unpack("!H", data[2:4])[0], 4
            elif size == 127:
                size, start = struct.unpack("!Q", data[2:10])[0], 10
            out.append(data[start : start + size].decode())
            data = data[start + size :]
        return out


def make_queue(
    socket: FakeSocket, cork: Cork, recorder: Recorder, conn_id: str = "c1", limit: int = 100
) -> tuple[OutboundQueue, list[tuple[int, str]]]:
    closes: list[tuple[int, str]] = []
    queue = OutboundQueue(
        send=_no_send,
        transport=socket,
        flow=socket,
        drain=socket.drain,
        socket=socket,
        cork=cork,
        recorder=recorder,
        plan=FaultPlan(),
        info=ConnectionInfo(id=conn_id, opened_at=0.0),
        limit=limit,
        close=lambda code, reason: closes.append((code, reason)),
        on_error=_raise,
        log=ConnectionLogger(logging.getLogger("test.outbound"), conn_id),
        debug=False,
    )
    return queue, closes


async def _no_send(text: str) -> None:
    raise AssertionError("frames go to the transport")


def _raise(exc: BaseException) -> None:
    raise exc


def framed(*events: str) -> FramedEvents:
    return FramedEvents(codec.DataEvents(events), faults=False)


def data(sub_id: str, event: str) -> str:
    return codec.encode_data_frames(sub_id, (event,))[0]


@pytest.mark.asyncio
async def test_a_fan_out_writes_each_idle_subscriber_once_on_release() -> None:
    """Under the cork nothing is written; on release each idle, writable subscriber gets
    all of the publish's frames in one write, recorded before it is written."""
    cork, recorder = Cork(), Recorder()
    sockets = [FakeSocket() for _ in range(3)]
    queues = [make_queue(s, cork, recorder, f"c{i}")[0] for i, s in enumerate(sockets)]
    events = framed('{"a":1}', '"two"')
    with cork:
        for i, queue in enumerate(queues):
            queue.put_framed(f"s{i}", events)
        assert all(not s.writes for s in sockets)
        assert recorder.sent == []
    for i, socket in enumerate(sockets):
        assert len(socket.writes) == 1
        assert socket.texts() == [data(f"s{i}", '{"a":1}'), data(f"s{i}", '"two"')]
    assert [(r.connection_id, r.data) for r in recorder.sent] == [
        (f"c{i}", data(f"s{i}", e)) for i in range(3) for e in ('{"a":1}', '"two"')
    ]
    assert events.direct == []  # handed over on release


@pytest.mark.asyncio
async def test_frames_held_before_a_fan_out_go_first() -> None:
    """A connection with a frame already in the cork (the publisher's publish_success)
    gets its fan-out frames after it, in one order, however many subscriptions match."""
    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, _ = make_queue(socket, cork, recorder)
    other_socket = FakeSocket()
    other, _ = make_queue(other_socket, cork, recorder, "c2")
    events = framed('"e"')
    with cork:
        queue.put_raw('{"type":"publish_success"}')
        other.put_framed("x", events)
        queue.put_framed("s1", events)
        queue.put_framed("s2", events)
        other.put_framed("y", events)
    assert socket.texts() == ['{"type":"publish_success"}', data("s1", '"e"'), data("s2", '"e"')]
    assert other_socket.texts() == [data("x", '"e"'), data("y", '"e"')]


@pytest.mark.asyncio
async def test_successive_fan_outs_keep_their_order() -> None:
    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, _ = make_queue(socket, cork, recorder)
    for n in range(5):
        with cork:
            queue.put_framed("s1", framed(f'"{n}a"', f'"{n}b"'))
    assert socket.texts() == [data("s1", f'"{n}{x}"') for n in range(5) for x in "ab"]
    assert len(socket.writes) == 5


@pytest.mark.asyncio
async def test_a_paused_socket_gets_the_queue_and_the_writer_in_order() -> None:
    """Backpressure: while the transport is paused, frames are queued (not written) and
    a writer task writes them, oldest first, once it drains; what follows a non-empty
    queue waits behind it, even when the socket is writable again."""
    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, _ = make_queue(socket, cork, recorder)
    socket.writing_paused = True
    with cork:
        queue.put_framed("s1", framed('"1"', '"2"'))
    assert socket.writes == []
    assert len(queue.queue) == 2
    assert queue.writer is not None
    with cork:
        queue.put_framed("s1", framed('"3"'))
    assert len(queue.queue) == 3
    socket.resume()
    writer = queue.writer
    await asyncio.wait_for(writer, 5)
    assert queue.writer is None
    assert socket.texts() == [data("s1", f'"{n}"') for n in (1, 2, 3)]
    assert [r.data for r in recorder.sent] == [data("s1", f'"{n}"') for n in (1, 2, 3)]
    with cork:  # idle again: direct
        queue.put_framed("s1", framed('"4"'))
    assert socket.texts()[-1] == data("s1", '"4"')
    assert queue.writer is None


@pytest.mark.asyncio
async def test_the_bound_holds_on_the_fan_out_path() -> None:
    """More frames waiting than the limit closes with 1008 and drops the queue; past half
    the limit the fan-out reports pressure."""
    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, closes = make_queue(socket, cork, recorder, limit=4)
    socket.writing_paused = True
    first = framed('"1"', '"2"', '"3"')
    with cork:
        queue.put_framed("s1", first)
    assert not first.pressure
    assert len(queue.queue) == 3
    second = framed('"4"')
    with cork:
        queue.put_framed("s1", second)
    assert second.pressure  # 3 of 4 waiting when the fan-out reached it
    with cork:
        queue.put_framed("s1", framed('"5"'))
    assert closes == [(1008, "send queue overflow")]
    assert len(queue.queue) == 0
    assert [e.errors[0].error_type for e in recorder.errors] == ["SlowConsumer"]
    writer = queue.cancel_writer()
    if writer is not None:
        await asyncio.gather(writer, return_exceptions=True)


@pytest.mark.asyncio
async def test_a_queue_closed_before_the_release_gets_nothing() -> None:
    """A subscriber closed between the fan-out and the release is neither written to nor
    recorded; the others are."""
    cork, recorder = Cork(), Recorder()
    sockets = [FakeSocket(), FakeSocket()]
    first, _ = make_queue(sockets[0], cork, recorder, "c1")
    second, _ = make_queue(sockets[1], cork, recorder, "c2")
    events = framed('"e"')
    with cork:
        first.put_framed("s1", events)
        second.put_framed("s2", events)
        first.shut()
    assert sockets[0].writes == []
    assert sockets[1].texts() == [data("s2", '"e"')]
    assert [r.connection_id for r in recorder.sent] == ["c2"]
    with cork:  # every target closed: nothing at all
        second.put_framed("s2", framed('"f"'))
        second.put_close(1000, "")
    assert sockets[1].texts() == [data("s2", '"e"')]


@pytest.mark.asyncio
async def test_a_closing_socket_is_never_written_directly() -> None:
    """Once the WebSocket started closing (or the transport is closing), frames are
    queued and the writer stops without writing them."""
    cork, recorder = Cork(), Recorder()
    for flag in ("closed", "closing"):
        socket = FakeSocket()
        queue, _ = make_queue(socket, cork, recorder)
        setattr(socket, flag, True)
        with cork:
            queue.put_framed("s1", framed('"e"'))
        writer = queue.writer
        assert writer is not None
        await asyncio.wait_for(writer, 5)
        assert socket.writes == []
        assert queue.closed


@pytest.mark.asyncio
async def test_cancelling_the_writer_mid_drain_leaves_the_queue_consistent() -> None:
    """The writer, cancelled while it waits for the socket to drain (the connection is
    closing), ends; the queue keeps its frames in order and a new writer starts with the
    next frame."""
    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, _ = make_queue(socket, cork, recorder)
    socket.writing_paused = True
    with cork:
        queue.put_framed("s1", framed('"1"', '"2"'))
    await asyncio.wait_for(socket.draining.wait(), 5)  # the writer waits for the socket
    writer = queue.cancel_writer()
    assert writer is not None
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert queue.writer is None
    assert len(queue.queue) == 2
    socket.resume()
    with cork:
        queue.put_framed("s1", framed('"3"'))
    assert queue.writer is not None
    await asyncio.wait_for(queue.writer, 5)
    assert socket.texts() == [data("s1", f'"{n}"') for n in (1, 2, 3)]


@pytest.mark.asyncio
async def test_prefixes_are_shared_and_bounded() -> None:
    """The subscription prefixes are made once per id, for every connection, and the
    cache does not grow without bound."""
    from appsync_emulator import outbound

    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, _ = make_queue(socket, cork, recorder)
    ids = [f"sub-{n}" for n in range(outbound._MAX_PREFIXES + 10)]
    for sub_id in ids:
        with cork:
            queue.put_framed(sub_id, framed('"e"'))
    assert len(outbound._PREFIXES) <= outbound._MAX_PREFIXES
    texts = socket.texts()
    assert [json.loads(t)["id"] for t in texts] == ids
