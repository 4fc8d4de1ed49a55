"""The fan-out over real sockets: asyncio's TCP transport under aiohttp's WebSocket, whose
state the kept routes read from their attributes.  Each attribute must agree with the
public method or property it stands for, and a subscriber that cannot be written at once
must still be queued (backpressure), with the others written directly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from appsync_emulator import EmulatorServer
from appsync_emulator.outbound import Cork, FramedEvents, OutboundQueue, _plain, _Routes, fan_out
from appsync_emulator.recorder import Recorder
from appsync_events.protocol import codec
from appsync_events.protocol.channels import parse_channel

from .conftest import RawClient, open_raw

CHANNEL = "/default/plain"


async def _subscribers(server: EmulatorServer, count: int) -> list[RawClient]:
    clients = []
    for i in range(count):
        raw = await open_raw(server)
        await raw.init()
        assert (await raw.subscribe(CHANNEL, f"s{i}"))["type"] == "subscribe_success"
        clients.append(raw)
    return clients


async def _publish(publisher: RawClient, pub_id: str, value: int) -> None:
    await publisher.publish(CHANNEL, [json.dumps({"v": value})], pub_id)
    await publisher.expect("publish_success", id=pub_id)


def _queues(server: EmulatorServer) -> tuple[Any, list[OutboundQueue]]:
    operations = server.emulator.operations
    found = operations.broker.lookup(parse_channel(CHANNEL))
    return found, [operations.subscribers[conn_id].outbound for conn_id, _ in found.keys]


async def _event(client: RawClient, sub_id: str) -> Any:
    frame = await client.expect("data", id=sub_id)
    return json.loads(frame["event"])["v"]


async def _fanned_out(server: EmulatorServer, count: int) -> tuple[list[RawClient], RawClient]:
    """``count`` subscribers (s0, s1...) and a publisher whose first publish (``p1``, the
    value 1) reached every one of them: the channel's routes are made."""
    subscribers = await _subscribers(server, count)
    publisher = await open_raw(server)
    await publisher.init()
    await _publish(publisher, "p1", 1)
    for i, client in enumerate(subscribers):
        assert await _event(client, f"s{i}") == 1
    return subscribers, publisher


@pytest.mark.asyncio
async def test_plain_sockets_are_read_directly_and_agree_with_their_methods(
    server: EmulatorServer,
) -> None:
    subscribers, publisher = await _fanned_out(server, 3)
    found, queues = _queues(server)
    routes = found.routes
    assert routes is not None
    assert routes.checks is not None
    assert routes.writes is not None
    assert [check[0] for check in routes.checks] == queues
    for queue in queues:
        assert _plain(queue)
        transport: Any = queue.transport
        socket: Any = queue.socket
        flow: Any = queue.flow
        assert transport._closing is transport.is_closing() is False
        assert transport._protocol_paused is flow.writing_paused is False
        assert socket._closed is socket.closed is False
    # A transport over its high-water mark pauses its protocol; both say so.
    middle = queues[1]
    transport = middle.transport
    transport.get_write_buffer_size = lambda: 1 << 20  # as if the peer stopped reading
    transport._maybe_pause_protocol()
    assert transport._protocol_paused is middle.flow.writing_paused is True  # type: ignore[union-attr]
    await _publish(publisher, "p2", 2)
    assert await _event(subscribers[0], "s0") == 2
    assert await _event(subscribers[2], "s2") == 2
    writer = middle.writer
    assert writer is not None  # queued behind the paused transport
    assert len(middle.queue) == 1
    del transport.get_write_buffer_size  # drained
    transport._maybe_resume_protocol()
    assert transport._protocol_paused is middle.flow.writing_paused is False  # type: ignore[union-attr]
    assert await _event(subscribers[1], "s1") == 2
    async with asyncio.timeout(5):
        await writer
    assert middle.writer is None
    # Idle again: the next fan-out writes every subscriber directly.
    await _publish(publisher, "p3", 3)
    for i, client in enumerate(subscribers):
        assert await _event(client, f"s{i}") == 3
    recorded = [r for r in server.emulator.recorder.sent if r.frame_type == "data"]
    assert len(recorded) == 9
    for client in (*subscribers, publisher):
        await client.ws.close()


@pytest.mark.asyncio
async def test_a_closing_transport_or_socket_is_not_written_directly(
    server: EmulatorServer,
) -> None:
    subscribers, publisher = await _fanned_out(server, 2)
    _, queues = _queues(server)
    # The second subscriber's WebSocket is closing (its close frame is on the way): the
    # fan-out must not write a data frame after it.
    second = queues[1]
    socket: Any = second.socket
    socket._closed = True
    assert socket.closed
    await _publish(publisher, "p2", 2)
    assert await _event(subscribers[0], "s0") == 2
    data = [r for r in server.emulator.recorder.sent if r.frame_type == "data"]
    assert [(r.connection_id, r.id) for r in data].count((second.connection_id, "s1")) == 1
    socket._closed = False
    for client in (*subscribers, publisher):
        await client.ws.close()


def _publisher_queue(server: EmulatorServer) -> OutboundQueue:
    """The outbound queue of the one connection that is not subscribed."""
    found, _ = _queues(server)
    subscribed = {conn_id for conn_id, _ in found.keys}
    operations = server.emulator.operations
    (conn_id,) = [c for c in operations.subscribers if c not in subscribed]
    queue: OutboundQueue = operations.subscribers[conn_id].outbound
    return queue


@pytest.mark.asyncio
@pytest.mark.parametrize("close", [False, True])
async def test_the_release_trusts_the_fan_out_unless_a_queue_closed_since(
    server: EmulatorServer, close: bool
) -> None:
    """The fan-out notes the cork's close count when it found every subscriber open; the
    release writes without looking at each again unless a queue was closed (or asked to
    close) since: then that one gets nothing, and the publisher's reply still goes first."""
    subscribers, publisher = await _fanned_out(server, 3)
    operations = server.emulator.operations
    cork = operations.cork
    found, queues = _queues(server)
    reply = _publisher_queue(server)
    events = FramedEvents(codec.DataEvents((json.dumps({"v": 2}),)), faults=False)
    with cork:
        reply.put_text('{"type":"publish_success","id":"px"}', "publish_success", "px")
        assert fan_out(found, operations.subscribers, events, cork) == 3
        assert events.closes == cork.closes
        assert events.recorder is operations.recorder
        if close:
            assert queues[1].put_close(1000, "")
            assert events.closes != cork.closes
    assert events.closes == -1  # taken by the release
    await publisher.expect("publish_success", id="px")
    assert await _event(subscribers[0], "s0") == 2
    assert await _event(subscribers[2], "s2") == 2
    sent = [(r.connection_id, r.id) for r in operations.recorder.sent if r.frame_type == "data"]
    assert sent.count((queues[1].connection_id, "s1")) == (1 if close else 2)
    if close:
        assert await subscribers[1].closed() == (1000, "")
    else:
        assert await _event(subscribers[1], "s1") == 2
    for client in (*subscribers, publisher):
        await client.ws.close()


def test_queues_count_their_closes_in_their_cork() -> None:
    """Setting ``closed`` or ``close_sent`` (whoever does it) counts in the cork."""
    cork = Cork()

    class Bare(OutboundQueue):
        def __init__(self) -> None:  # only what the two properties use
            self.cork = cork
            self._closed = False
            self._close_sent = None

    queue = Bare()
    queue.closed = True
    queue.close_sent = (1000, "")
    assert queue.closed
    assert queue.close_sent == (1000, "")
    assert cork.closes == 2


@pytest.mark.asyncio
async def test_routes_over_queues_of_other_recorders_or_corks_look_at_each_queue(
    server: EmulatorServer,
) -> None:
    """Kept routes note a recorder and a cork only when all their queues share them; else
    the release looks at every queue again (the general release)."""
    subscribers, publisher = await _fanned_out(server, 2)
    operations = server.emulator.operations
    cork = operations.cork
    found, queues = _queues(server)
    other = Recorder()
    queues[0].recorder = other
    queues[0].cork = Cork()
    try:
        targets = [operations.subscribers[conn_id] for conn_id, _ in found.keys]
        found.routes = _Routes(found.keys, targets)
        assert found.routes.checks is not None
        assert found.routes.recorder is None
        assert found.routes.cork is None
        reply = _publisher_queue(server)
        events = FramedEvents(codec.DataEvents((json.dumps({"v": 2}),)), faults=False)
        with cork:
            reply.put_text('{"type":"publish_success","id":"px"}', "publish_success", "px")
            assert fan_out(found, operations.subscribers, events, cork) == 2
            assert events.closes == -1
        await publisher.expect("publish_success", id="px")
        assert await _event(subscribers[0], "s0") == 2
        assert await _event(subscribers[1], "s1") == 2
        # The general release: the fan-out is recorded once, by its first queue's recorder.
        assert [(r.connection_id, r.id) for r in other.sent] == [
            (queues[0].connection_id, "s0"),
            (queues[1].connection_id, "s1"),
        ]
    finally:
        queues[0].recorder = operations.recorder
        queues[0].cork = cork
        found.routes = None
    for client in (*subscribers, publisher):
        await client.ws.close()
