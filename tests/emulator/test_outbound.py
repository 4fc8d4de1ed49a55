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
from appsync_emulator.broker import Broker
from appsync_emulator.faults import FaultPlan
from appsync_emulator.outbound import Cork, FramedEvents, OutboundQueue, fan_out
from appsync_emulator.recorder import ConnectionInfo, Recorder
from appsync_events.protocol import codec
from appsync_events.protocol.channels import parse_channel, parse_subscribe_channel


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


@pytest.mark.parametrize(
    "events",
    [
        (),
        ('"one"',),
        ('{"a":1}', '"x\\u0000y"', '"\x00\n\x1f"', '"é😀"', '"\ud800"', "[]"),
    ],
)
def test_framed_events_tails_are_each_literal_closed(events: tuple[str, ...]) -> None:
    """Each event's tail is its JSON string literal (UTF-8) and the frame's closing brace,
    whatever the events hold (control characters, non-ASCII, a lone surrogate)."""
    literals = codec.DataEvents(events).literals
    assert framed(*events).tails == [(literal + "}").encode() for literal in literals]


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


class FakeCore:
    def __init__(self) -> None:
        self.ready: bool | None = True

    def data_ready(self, subscription_id: str) -> bool | None:
        return self.ready


class FakeConnection:
    """A WebSocket connection as the fan-out sees it: closing, core, queue, deliver."""

    def __init__(self, queue: OutboundQueue) -> None:
        self.closing = False
        self.protocol = FakeCore()
        self.outbound = queue
        self.delivered: list[str] = []

    def deliver(
        self, subscription_id: str, events: FramedEvents, key: tuple[str, str] | None = None
    ) -> int:
        self.delivered.append(subscription_id)
        if self.closing or not self.protocol.data_ready(subscription_id):
            return 0
        self.outbound.put_framed(subscription_id, events, key)
        return len(events.tails)


def _fan_out_setup(
    count: int,
) -> tuple[Cork, Recorder, list[FakeSocket], list[FakeConnection], Broker]:
    cork, recorder = Cork(), Recorder()
    sockets = [FakeSocket() for _ in range(count)]
    conns = [
        FakeConnection(make_queue(s, cork, recorder, f"c{i}")[0]) for i, s in enumerate(sockets)
    ]
    broker = Broker()
    for i in range(count):
        broker.add(f"c{i}", f"s{i}", parse_subscribe_channel("default/a"))
    return cork, recorder, sockets, conns, broker


@pytest.mark.asyncio
async def test_fan_out_writes_idle_subscribers_without_deliver_and_keeps_its_routes() -> None:
    """Idle, writable subscribers get their frames on release with no call to deliver;
    the resolved routes are kept in the match and reused until a subscription changes."""
    cork, recorder, sockets, conns, broker = _fan_out_setup(3)
    subscribers = {f"c{i}": c for i, c in enumerate(conns)}
    found = broker.lookup(parse_channel("default/a"))
    for n in range(2):
        events = framed(f'"e{n}"')
        with cork:
            assert fan_out(found, subscribers, events, cork) == 3
            assert all(len(s.writes) == n for s in sockets)
        assert found.routes is not None
    assert broker.lookup(parse_channel("default/a")) is found
    assert found.routes.checks is None  # type: ignore[attr-defined]  # fakes: their methods
    assert all(c.delivered == [] for c in conns)
    for i, socket in enumerate(sockets):
        assert socket.texts() == [data(f"s{i}", '"e0"'), data(f"s{i}", '"e1"')]
    assert [r.connection_id for r in recorder.sent] == ["c0", "c1", "c2"] * 2
    broker.remove("c1", "s1")
    assert broker.lookup(parse_channel("default/a")).routes is None


@pytest.mark.asyncio
async def test_fan_out_hands_every_other_subscriber_to_deliver() -> None:
    """Closing, not ready, paused, stalled, busy or closed queues go through deliver,
    which queues, holds or drops as it always did; the idle one is written directly."""
    cork, _, sockets, conns, broker = _fan_out_setup(7)
    subscribers = {f"c{i}": c for i, c in enumerate(conns)}
    conns[1].closing = True  # a closing connection's queue is closed
    conns[1].outbound.closed = True
    conns[2].protocol.ready = None
    sockets[3].writing_paused = True
    conns[4].outbound.write_gate.clear()
    sockets[5].closed = True
    conns[6].outbound.close_sent = (1000, "")
    found = broker.lookup(parse_channel("default/a"))
    with cork:
        assert fan_out(found, subscribers, framed('"x"'), cork) == 5  # not c1, c2
    assert [bool(c.delivered) for c in conns] == [False, True, True, True, True, True, True]
    assert sockets[0].texts() == [data("s0", '"x"')]
    assert all(not s.writes for s in sockets[1:])
    assert len(conns[3].outbound.queue) == 1
    assert len(conns[4].outbound.queue) == 1
    conns[3].outbound.cancel_writer()
    conns[4].outbound.cancel_writer()


@pytest.mark.asyncio
async def test_fan_out_uses_deliver_with_faults_without_cork_or_queue() -> None:
    """Outbound faults, no cork, a debug queue or a subscriber without a raw queue: every
    subscriber goes through deliver."""
    cork, _, sockets, conns, broker = _fan_out_setup(2)
    subscribers: dict[str, object] = {f"c{i}": c for i, c in enumerate(conns)}
    found = broker.lookup(parse_channel("default/a"))
    events = FramedEvents(codec.DataEvents(('"f"',)), faults=True)
    with cork:
        assert fan_out(found, subscribers, events, cork) == 2
    assert [c.delivered for c in conns] == [["s0"], ["s1"]]
    assert fan_out(found, subscribers, framed('"g"'), cork) == 2  # no cork: written at once
    assert [c.delivered for c in conns] == [["s0", "s0"], ["s1", "s1"]]
    assert sockets[0].texts() == [data("s0", '"f"'), data("s0", '"g"')]

    class Plain:
        def __init__(self) -> None:
            self.calls = 0

        def deliver(self, subscription_id: str, events: FramedEvents, key: object = None) -> int:
            self.calls += 1
            return 1

    plain = Plain()
    conns[1].outbound.debug = True
    subscribers["c0"] = plain
    broker.add("c2", "s2", parse_subscribe_channel("default/a"))  # drops the routes
    found = broker.lookup(parse_channel("default/a"))
    with cork:
        assert fan_out(found, subscribers, framed('"h"'), cork) == 2  # c2 is not open
    assert found.routes is None  # resolved again next time
    subscribers["c2"] = conns[0]
    with cork:
        assert fan_out(found, subscribers, framed('"i"'), cork) == 3
    assert found.routes is not None
    assert plain.calls == 2
    assert conns[1].delivered[-2:] == ["s1", "s1"]


@pytest.mark.asyncio
async def test_fan_out_switches_to_deliver_mid_way_and_keeps_each_queue_in_order() -> None:
    """Idle subscribers before a busy one are written directly, the busy one is queued
    through deliver, and the idle ones after it are still written directly."""
    cork, _, sockets, conns, broker = _fan_out_setup(4)
    subscribers = {f"c{i}": c for i, c in enumerate(conns)}
    sockets[2].writing_paused = True
    found = broker.lookup(parse_channel("default/a"))
    events = framed('"y"')
    with cork:
        assert fan_out(found, subscribers, events, cork) == 4
        assert [c.delivered for c in conns] == [[], [], ["s2"], []]
        assert events.direct == [conns[0].outbound, conns[1].outbound, conns[3].outbound]
        assert events.prefixes is None  # looked up on release
    for i in (0, 1, 3):
        assert sockets[i].texts() == [data(f"s{i}", '"y"')]
    assert len(conns[2].outbound.queue) == 1
    conns[2].outbound.cancel_writer()
    routes = found.routes
    assert routes is not None
    assert len(routes.queues) == 4  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_queue_closed_before_the_release_is_skipped_and_the_kept_lists_stay() -> None:
    """A direct subscriber whose queue closes before the release gets nothing; the
    kept routes the write list came from are not changed."""
    cork, recorder, sockets, conns, broker = _fan_out_setup(3)
    subscribers = {f"c{i}": c for i, c in enumerate(conns)}
    found = broker.lookup(parse_channel("default/a"))
    with cork:
        assert fan_out(found, subscribers, framed('"z"'), cork) == 3
        conns[1].outbound.closed = True
    assert [bool(s.writes) for s in sockets] == [True, False, True]
    assert [r.connection_id for r in recorder.sent] == ["c0", "c2"]
    assert found.keys == [("c0", "s0"), ("c1", "s1"), ("c2", "s2")]
    assert len(found.routes.direct) == 3  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_the_write_gate_mirrors_its_state_in_the_queue() -> None:
    """Closing the write gate marks the queue stalled (what the fan-out reads); opening it
    clears the mark and wakes the writer."""
    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, _ = make_queue(socket, cork, recorder)
    assert not queue.stalled
    assert queue.idle_writable()
    queue.write_gate.clear()
    assert queue.stalled
    assert not queue.idle_writable()
    queue.put_raw("held")
    assert socket.writes == []
    queue.write_gate.set()
    assert not queue.stalled
    writer = queue.writer
    assert writer is not None
    await writer
    assert socket.texts() == ["held"]
    assert queue.idle_writable()
    queue.close_sent = (1000, "")
    assert not queue.idle_writable()


@pytest.mark.asyncio
async def test_a_lone_text_frame_goes_out_on_release_before_the_fan_out() -> None:
    """``put_text`` under the cork (the publisher's publish_success): written and recorded
    on release, in one write, before the connection's fan-out frames."""
    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, _ = make_queue(socket, cork, recorder)
    events = framed('"e"')
    with cork:
        queue.put_text('{"type":"publish_success","id":"p"}', "publish_success", "p")
        queue.put_framed("s1", events)
        assert not socket.writes
    assert socket.texts() == ['{"type":"publish_success","id":"p"}', data("s1", '"e"')]
    assert socket.writes[0] == b"\x81#" + b'{"type":"publish_success","id":"p"}'
    assert [(r.frame_type, r.id) for r in recorder.sent] == [
        ("publish_success", "p"),
        ("data", "s1"),
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize("why", ["paused", "debug", "waiting"])
async def test_a_lone_text_frame_is_placed_when_it_cannot_go_at_once(why: str) -> None:
    """Released onto a paused socket, a debug queue or behind waiting frames, the frame
    takes the queue's general path: same frames, same order, same records."""
    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, _ = make_queue(socket, cork, recorder)
    if why == "debug":
        queue.debug = True
    with cork:
        queue.put_text('{"type":"publish_success","id":"p"}', "publish_success", "p")
        if why == "paused":
            socket.writing_paused = True
        if why == "waiting":
            queue.queue.append(('"before"', None, None, None))
    if why == "paused":
        assert not socket.writes
        socket.resume()
    if why == "waiting":
        queue.writer = asyncio.get_running_loop().create_task(queue.run())
    if queue.writer is not None:
        await queue.writer
    expected = ['{"type":"publish_success","id":"p"}']
    if why == "waiting":
        expected.insert(0, '"before"')
    assert socket.texts() == expected
    assert [r.id for r in recorder.sent][-1] == "p"


@pytest.mark.asyncio
async def test_a_lone_text_frame_passes_the_outbound_faults() -> None:
    """With an outbound fault installed, ``put_text`` is subject to it (here replaced)."""
    from appsync_emulator.faults import CorruptFrame

    cork, recorder = Cork(), Recorder()
    socket = FakeSocket()
    queue, _ = make_queue(socket, cork, recorder)
    queue.plan.add(CorruptFrame(match="publish_success", text='"bad"'))
    queue.put_text('{"type":"publish_success","id":"p"}', "publish_success", "p")
    if queue.writer is not None:
        await queue.writer
    assert socket.texts() == ['"bad"']


@pytest.mark.asyncio
@pytest.mark.parametrize("closed", [False, True])
async def test_a_publish_reply_and_its_fan_out_are_recorded_together(closed: bool) -> None:
    """The publisher's reply and a fan-out to other connections: the reply first, each
    subscriber's frames in one write, the records those of the reply then the fan-out (a
    subscriber closed before the release gets nothing and is not recorded)."""
    cork, recorder = Cork(), Recorder()
    sockets = [FakeSocket() for _ in range(3)]
    queues = [make_queue(s, cork, recorder, f"c{i}")[0] for i, s in enumerate(sockets)]
    events = framed('"e1"', '"e2"')
    with cork:
        queues[0].put_text('{"type":"publish_success","id":"p"}', "publish_success", "p")
        queues[1].put_framed("s1", events)
        queues[2].put_framed("s2", events)
        if closed:
            queues[2].shut()
        assert not any(s.writes for s in sockets)
    assert sockets[0].texts() == ['{"type":"publish_success","id":"p"}']
    assert sockets[1].writes == [b"".join(_frame_bytes(data("s1", e)) for e in ('"e1"', '"e2"'))]
    if closed:
        assert not sockets[2].writes
    else:
        assert sockets[2].texts() == [data("s2", '"e1"'), data("s2", '"e2"')]
    expected = [("c0", '{"type":"publish_success","id":"p"}')]
    for i in (1,) if closed else (1, 2):
        expected += [(f"c{i}", data(f"s{i}", e)) for e in ('"e1"', '"e2"')]
    assert [(r.connection_id, r.data) for r in recorder.sent] == expected
    assert events.direct == []


def _frame_bytes(text: str) -> bytes:
    payload = text.encode()
    return bytes((0x81, len(payload))) + payload


@pytest.mark.asyncio
async def test_fan_out_frames_of_every_header_size() -> None:
    """Events whose frames take the 2-, 4- and 10-byte headers, in one publish: framed
    alike for subscription ids of different lengths."""
    cork, recorder = Cork(), Recorder()
    sockets = [FakeSocket() for _ in range(2)]
    queues = [make_queue(s, cork, recorder, f"c{i}")[0] for i, s in enumerate(sockets)]
    texts = ('"' + "x" * 40 + '"', '"' + "y" * 200 + '"', '"' + "z" * 70_000 + '"', "1")
    events = framed(*texts)
    with cork:
        queues[0].put_framed("s", events)
        queues[1].put_framed("subscription-with-a-longer-id", events)
    assert sockets[0].texts() == [data("s", t) for t in texts]
    assert sockets[1].texts() == [data("subscription-with-a-longer-id", t) for t in texts]
